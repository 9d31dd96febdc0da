package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Live updates: the console hears triage's conversation events on NATS
// (support.conversation.>, a core subscription: a page that misses one is
// still right on its next load) and streams them as server-sent events to
// the pages open in browsers, whose script (static/live.js) then fetches
// the page again and swaps in the parts that changed. Without NATS the
// stream answers 204 and pages stay as they were loaded.

// conversationEvents is every subject triage publishes conversation events
// on (bus.ConversationSubject of each event), and their common prefix.
const (
	conversationEvents = bus.AllConversations
	conversationPrefix = "support.conversation."
)

// LivePath is the server-sent events stream.
const LivePath = BasePath + "/live"

// liveKeepAlive is how often an idle stream gets a comment, so proxies
// and load balancers do not close it as idle.
const liveKeepAlive = 25 * time.Second

// liveBuffer is how many events wait for a slow browser before newer
// ones are dropped; the next one delivered refreshes the page anyway.
const liveBuffer = 16

// change is what a page hears of an event: which conversation changed,
// and how (opened, message, assigned, closed, ...). Nothing of the
// customer's text: the page fetches that through the usual rendering.
type change struct {
	Conversation string `json:"conversation"`
	Type         string `json:"type"`
}

// hub fans conversation changes out to the streams open in browsers.
type hub struct {
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	// done is closed when the console stops, ending every stream, so
	// that the HTTP server's graceful shutdown does not wait on them.
	done     chan struct{}
	stopOnce sync.Once
}

// watcher is one open stream: every change, or one conversation's.
type watcher struct {
	conversation string
	ch           chan change
}

func newHub() *hub { return &hub{watchers: map[*watcher]struct{}{}, done: make(chan struct{})} }

// close ends every stream, and any opened later.
func (h *hub) close() { h.stopOnce.Do(func() { close(h.done) }) }

func (h *hub) watch(conversation string) *watcher {
	w := &watcher{conversation: conversation, ch: make(chan change, liveBuffer)}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) stop(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// publish hands c to every stream that wants it, never waiting for one.
func (h *hub) publish(c change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if w.conversation != "" && w.conversation != c.Conversation {
			continue
		}
		select {
		case w.ch <- c:
		default:
		}
	}
}

// changeOf reads a conversation event as published by triage.
func changeOf(m *nats.Msg) (change, error) {
	var ev supportv1.ConversationEvent
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		return change{}, fmt.Errorf("decode conversation event on %s: %w", m.Subject, err)
	}
	id := ev.GetConversation().GetId()
	if id == "" {
		return change{}, fmt.Errorf("conversation event on %s names no conversation", m.Subject)
	}
	return change{Conversation: id, Type: strings.TrimPrefix(m.Subject, conversationPrefix)}, nil
}

// listen feeds the hub from NATS until ctx is done.
func (s *Service) listen(ctx context.Context) error {
	sub, err := s.deps.NATS.Subscribe(conversationEvents, func(m *nats.Msg) {
		c, err := changeOf(m)
		if err != nil {
			s.deps.Logger.Warn("console: live update skipped", "error", err)
			return
		}
		s.live.publish(c)
	})
	if err != nil {
		return fmt.Errorf("console: subscribe to conversation events: %w", err)
	}
	<-ctx.Done()
	if err := sub.Unsubscribe(); err != nil {
		s.deps.Logger.Warn("console: unsubscribe from conversation events", "error", err)
	}
	return nil
}

// liveStream is GET /console/live[?conversation=<id>]: server-sent events,
// one "change" event per conversation change (of that conversation only,
// when given), until the browser leaves or the session expires.
func (s *Service) liveStream(w http.ResponseWriter, r *http.Request, v *visitor) {
	if s.deps.NATS == nil {
		// EventSource stops reconnecting on 204.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	conversation := r.URL.Query().Get("conversation")
	if len(conversation) > maxFilterLen {
		http.Error(w, "conversation id too long", http.StatusBadRequest)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout would cut the stream; this one has no
	// end but the browser's, the session's or the server's shutdown.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		s.deps.Logger.Debug("console: live stream keeps the write timeout", "error", err)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	watch := s.live.watch(conversation)
	defer s.live.stop(watch)
	s.metrics.liveStreams.Inc()
	defer s.metrics.liveStreams.Dec()
	if _, err := fmt.Fprint(w, "retry: 3000\n: live\n\n"); err != nil || rc.Flush() != nil {
		return
	}
	keepAlive := s.deps.Clock.NewTicker(liveKeepAlive)
	defer keepAlive.Stop()
	expires := s.deps.Clock.NewTimer(v.expires.Sub(s.deps.Clock.Now()))
	defer expires.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-s.live.done:
			return
		case <-expires.Chan():
			// Signed in no longer: the page's next load asks again.
			return
		case <-keepAlive.Chan():
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case c := <-watch.ch:
			data, _ := json.Marshal(c)
			_, err = fmt.Fprintf(w, "event: change\ndata: %s\n\n", data)
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}
