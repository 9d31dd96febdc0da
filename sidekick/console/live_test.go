package console_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// startLive is a console fed by an embedded NATS server, running; it
// returns the harness and a connection to publish events on.
func startLive(t *testing.T, cfg console.Config) (*harness, *nats.Conn) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs NATS")
	}
	srv := bustest.Start(t)
	consoleConn, _ := srv.Connect(t)
	h := startWith(t, cfg, nil, nil, func(_ string, _ *console.Config, deps *console.Deps) { deps.NATS = consoleConn })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	pub, _ := srv.Connect(t)
	return h, pub
}

// publishEvent publishes a conversation event as triage's outbox does.
func publishEvent(t *testing.T, nc *nats.Conn, event, conversation string) {
	t.Helper()
	data, err := proto.Marshal(&supportv1.ConversationEvent{Id: "e-" + conversation,
		Conversation: &supportv1.Conversation{Id: conversation, Subject: "secret customer words"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish(bus.ConversationSubject(event), data); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// stream is an open server-sent events response.
type stream struct {
	resp   *http.Response
	events chan string
}

// openStream GETs path and reads its "change" events' data in the
// background, after checking the stream's opening lines.
func (h *harness) openStream(path string) *stream {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		h.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	// The stream is registered once its opening is written.
	for _, want := range []string{"retry: 3000\n", ": live\n", "\n"} {
		if line, err := r.ReadString('\n'); err != nil || line != want {
			h.t.Fatalf("stream opening %q (%v), want %q", line, err, want)
		}
	}
	s := &stream{resp: resp, events: make(chan string, 100)}
	go func() {
		defer close(s.events)
		var event string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimSpace(strings.TrimPrefix(line, "event: "))
			case strings.HasPrefix(line, "data: ") && event == "change":
				s.events <- strings.TrimSpace(strings.TrimPrefix(line, "data: "))
			}
		}
	}()
	return s
}

// next is the stream's next event, failing the test if the stream ends.
func (s *stream) next(t *testing.T) string {
	t.Helper()
	e, ok := <-s.events
	if !ok {
		t.Fatal("the stream ended")
	}
	return e
}

// subscribed returns once the console hears events: it subscribes when Run
// starts, and until an event comes through on s it may not have.
func subscribed(t *testing.T, s *stream, pub *nats.Conn) {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		e, ok := <-s.events
		if ok {
			got <- e
		}
	}()
	for {
		publishEvent(t, pub, "opened", "c-0")
		select {
		case first := <-got:
			if first != `{"conversation":"c-0","type":"opened"}` {
				t.Fatalf("first event %s", first)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLiveStream: conversation events on NATS reach the open streams as
// "change" events naming the conversation and the event, and nothing of
// its text; a conversation's stream gets that conversation's only; an
// event that does not decode is skipped; the stream ends with the session.
func TestLiveStream(t *testing.T) {
	h, pub := startLive(t, console.Config{Token: testToken})
	h.signIn("alice")
	all := h.openStream("/console/live")
	one := h.openStream("/console/live?conversation=c-2")

	subscribed(t, all, pub)
	// The rest arrive in order. Drain what the retries left on both.
	publishEvent(t, pub, "closed", "c-mark")
	for all.next(t) != `{"conversation":"c-mark","type":"closed"}` {
	}
	if err := pub.Publish(bus.ConversationSubject("message"), []byte("not protobuf")); err != nil {
		t.Fatal(err)
	}
	publishEvent(t, pub, "message", "c-1")
	publishEvent(t, pub, "assigned", "c-2")
	if e := all.next(t); e != `{"conversation":"c-1","type":"message"}` {
		t.Fatalf("after a bad event: %s", e)
	}
	if e := all.next(t); e != `{"conversation":"c-2","type":"assigned"}` {
		t.Fatalf("next: %s", e)
	}
	for e := one.next(t); e != `{"conversation":"c-2","type":"assigned"}`; e = one.next(t) {
		if !strings.Contains(e, `"c-2"`) {
			t.Fatalf("c-2's stream got %s", e)
		}
	}

	// Pages say where their stream is.
	mustContain(t, h.get("/console/").body, `data-live-url="/console/live"`, `<script src="/console/static/console.js" defer></script>`)
	mustContain(t, h.get("/console/conversations/c-2").body, `data-live-url="/console/live?conversation=c-2"`)
	if r := h.get("/console/static/console.js"); r.code != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(r.body, "new EventSource(liveURL)") {
		t.Fatalf("console.js: %d %s", r.code, r.header.Get("Content-Type"))
	}

	// The session's end ends the stream.
	h.clock.Advance(13 * time.Hour)
	for range all.events {
	}
	for range one.events {
	}
}

// TestLiveNeedsSessionAndNATS: no stream without a session; without NATS
// the stream answers 204, which tells a browser not to retry, and pages
// name no stream.
func TestLiveNeedsSessionAndNATS(t *testing.T) {
	h, _ := startLive(t, console.Config{Token: testToken})
	if r := h.get("/console/live"); r.code == http.StatusOK || strings.Contains(r.header.Get("Content-Type"), "event-stream") {
		t.Fatalf("stream without a session: %d %s", r.code, r.header.Get("Content-Type"))
	}

	off := start(t, console.Config{Dev: true}, nil, nil)
	if r := off.get("/console/live"); r.code != http.StatusNoContent {
		t.Fatalf("without NATS: %d, want 204", r.code)
	}
	if body := off.get("/console/").body; strings.Contains(body, "data-live-url") {
		t.Fatal("a page without NATS names a stream")
	}
}
