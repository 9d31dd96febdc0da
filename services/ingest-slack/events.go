package ingestslack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/httpx"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacksig"
)

// answer is the outcome of one request, whichever transport it came by.
type answer struct {
	code int
	// body is JSON-encoded into the HTTP answer or the Socket Mode ack
	// payload; nil sends none.
	body any
}

func accepted() answer       { return answer{code: http.StatusOK} }
func okWith(body any) answer { return answer{code: http.StatusOK, body: body} }
func failure(code int, msg string) answer {
	return answer{code: code, body: map[string]string{"error": msg}}
}

// retryable reports whether Slack should deliver the input again.
func (a answer) retryable() bool { return a.code >= 500 }

// readVerified reads the body under the size limit, into buf when it fits
// (see httpx.ReadBodyInto), and checks Slack's signature, answering and
// counting the request itself when either fails.
func (s *Service) readVerified(w http.ResponseWriter, r *http.Request, route, typ string, buf []byte) ([]byte, bool) {
	// Slack signs the body, so the body is read before the signature is
	// checked; what the headers alone can refuse (no signature, a stale
	// timestamp) is refused before that.
	if err := slacksig.CheckHeaders(s.deps.Now(), r.Header.Get(slacksig.HeaderTimestamp), r.Header.Get(slacksig.HeaderSignature)); err != nil {
		s.metrics.events.WithLabelValues(typ, "unauthorized").Inc()
		s.deps.Logger.Warn("slack request rejected", "route", route, "error", err, "remote", r.RemoteAddr)
		s.reply(w, route, failure(http.StatusUnauthorized, err.Error()))
		return nil, false
	}
	body, berr := httpx.ReadBodyInto(w, r, s.cfg.MaxBodyBytes, buf)
	if berr != nil {
		s.metrics.events.WithLabelValues(typ, berr.Result).Inc()
		s.reply(w, route, failure(berr.Status, berr.Message))
		return nil, false
	}
	if err := s.verifier.Verify(s.deps.Now(), r.Header.Get(slacksig.HeaderTimestamp), r.Header.Get(slacksig.HeaderSignature), body); err != nil {
		s.metrics.events.WithLabelValues(typ, "unauthorized").Inc()
		s.deps.Logger.Warn("slack request rejected", "route", route, "error", err, "remote", r.RemoteAddr)
		s.reply(w, route, failure(http.StatusUnauthorized, err.Error()))
		return nil, false
	}
	return body, true
}

// reply writes a and counts it under route.
func (s *Service) reply(w http.ResponseWriter, route string, a answer) {
	s.metrics.requests.WithLabelValues(route, strconv.Itoa(a.code)).Inc()
	if a.body == nil {
		w.WriteHeader(a.code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.code)
	_ = json.NewEncoder(w).Encode(a.body)
}

// eventBodies lends serveEvents its request buffers. Nothing outlives the
// request: the parser copies what it keeps, and a dead letter is published
// before the handler returns.
var eventBodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers eventBodies keeps; Slack's events are
// a few kilobytes.
const maxPooledBody = 64 << 10

// serveEvents handles POST /slack/events.
func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) {
	buf := eventBodies.Get().(*[]byte)
	defer eventBodies.Put(buf)
	body, verified := s.readVerified(w, r, routeEvents, "unknown", *buf)
	if body != nil && cap(body) <= maxPooledBody {
		*buf = body[:0]
	}
	if !verified {
		return
	}
	if n := r.Header.Get("X-Slack-Retry-Num"); n != "" {
		s.deps.Logger.Info("slack retried a delivery", "retry", n, "reason", r.Header.Get("X-Slack-Retry-Reason"))
	}
	// Once a verified event is on its way it is finished even if Slack
	// hangs up: it will retry, and the retry is dropped as a duplicate.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.Timeout)
	defer cancel()
	s.reply(w, routeEvents, s.handleEvent(ctx, routeEvents, body))
}

// handleEvent processes one Events API payload, from HTTP or Socket Mode.
func (s *Service) handleEvent(ctx context.Context, route string, body []byte) answer {
	env, err := slackevent.Parse(body)
	if err != nil {
		s.metrics.events.WithLabelValues("unknown", "malformed").Inc()
		return failure(http.StatusBadRequest, err.Error())
	}
	label := slackevent.Label(env)
	if env.Type == slackevent.TypeURLVerification {
		if env.Challenge == "" {
			s.metrics.events.WithLabelValues(label, "malformed").Inc()
			return failure(http.StatusBadRequest, "url_verification without challenge")
		}
		s.metrics.events.WithLabelValues(label, "answered").Inc()
		return okWith(map[string]string{"challenge": env.Challenge})
	}
	it, ignored, err := slackevent.Classify(env, s.opts)
	switch {
	case err != nil:
		hdr := nats.Header{}
		if env.EventID != "" {
			hdr.Set("slack-event-id", env.EventID)
			hdr.Set(jetstream.MsgIDHeader, slackevent.MessageID(env.EventID))
		}
		return s.deadLetter(ctx, label, route, bus.InboundSubject("slack"), body, hdr, err)
	case ignored != "":
		if env.Type == slackevent.TypeAppRateLimited {
			s.deps.Logger.Warn("slack is rate-limiting event deliveries to the app", "team", env.TeamID)
		}
		s.metrics.events.WithLabelValues(label, "ignored_"+ignored).Inc()
		return accepted()
	}
	msg := s.normalize(ctx, env, it)
	ack, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: bus.InboundSubject("slack"), ID: msg.GetId(), Time: msg.GetReceivedAt().AsTime(), Message: msg})
	if err != nil {
		s.metrics.events.WithLabelValues(label, "error").Inc()
		s.deps.Logger.Error("publish slack event", "event_id", env.EventID, "type", label, "error", err)
		return failure(http.StatusServiceUnavailable, "could not store the event; retry")
	}
	result := "published"
	if ack.Duplicate {
		result = "duplicate"
	}
	s.metrics.events.WithLabelValues(label, result).Inc()
	return accepted()
}

// replay runs a dead-lettered Events API payload (see deadLetter) through
// Classify and normalize again and publishes the message, as handleEvent
// would have; one that is now ignored is done with. Interactions are not
// replayed: the person presses the button again.
func (s *Service) replay(ctx context.Context, body []byte, hdr nats.Header) error {
	if route := hdr.Get("slack-route"); route != routeEvents && route != routeSocketEvents {
		return fmt.Errorf("a Slack %s payload is not replayed: do it again in Slack", route)
	}
	env, err := slackevent.Parse(body)
	if err != nil {
		return fmt.Errorf("parse event: %w", err)
	}
	it, ignored, err := slackevent.Classify(env, s.opts)
	switch {
	case err != nil:
		return fmt.Errorf("event %s: %w", env.EventID, err)
	case ignored != "":
		return nil
	}
	msg := s.normalize(ctx, env, it)
	if _, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: bus.InboundSubject("slack"), ID: msg.GetId(), Time: msg.GetReceivedAt().AsTime(), Message: msg}); err != nil {
		return fmt.Errorf("publish event %s: %w", env.EventID, err)
	}
	return nil
}

// normalize resolves the author within a share of the request's budget
// and builds the message. A failed lookup falls back to what the event
// carries: the message is never held up by the Web API. The permalink is
// built here, from the workspace's URL (see learnWorkspace), never asked
// of Slack: chat.getPermalink on this path cost Slack's round trip on
// every new thread and counts against Slack's rate limits in a storm.
func (s *Service) normalize(ctx context.Context, env *slackevent.Envelope, it *slackevent.Item) *supportv1.InboundMessage {
	ourTeam := s.cfg.TeamID
	if ourTeam == "" {
		ourTeam = env.TeamID
	}
	permalink := slackevent.Permalink(s.workspaceURL(), it.Team, it.Channel, it.RootTS)
	var profile *slackevent.Profile
	source := "event"
	if s.dir != nil && it.Sender.User != "" && !it.Sender.IsBot {
		profile, source = s.author(ctx, it.Sender.User)
	}
	author := slackevent.Author(it.Sender, profile, ourTeam)
	return slackevent.Build(it, author, source, permalink, s.deps.Now())
}

// author is the sender's profile from the directory and the author's
// source, or nil and "event" when the lookup failed. The cache answers
// most events; only a miss gets a deadline of its own and a Web API call.
func (s *Service) author(ctx context.Context, user string) (*slackevent.Profile, string) {
	if p, ok := s.dir.Cached(user); ok {
		s.metrics.lookupCached.Inc()
		return p, "users.info"
	}
	lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout/3)
	defer cancel()
	p, cached, err := s.dir.User(lctx, user)
	switch {
	case err != nil:
		s.metrics.lookups.WithLabelValues("users.info", "error").Inc()
		s.deps.Logger.Warn("users.info failed; using the event's facts", "user", user, "error", err)
		return nil, "event"
	case cached: // another event fetched it meanwhile
		s.metrics.lookupCached.Inc()
	default:
		s.metrics.lookups.WithLabelValues("users.info", "fetched").Inc()
	}
	return p, "users.info"
}

// deadLetter stores input that was accepted but cannot be processed, with
// where and why, and answers 200 so Slack does not retry it; if even the
// dead letter cannot be stored, Slack is asked to retry.
func (s *Service) deadLetter(ctx context.Context, label, route, subject string, body []byte, hdr nats.Header, cause error) answer {
	location := Name + "/" + route + "/" + label
	// The body is Slack's own payload, not a message: it is replayed
	// through this service (see replay), never republished as it is.
	if hdr == nil {
		hdr = nats.Header{}
	}
	hdr.Set(bus.HeaderRawRequest, Name)
	hdr.Set("slack-route", route)
	if err := bus.DeadLetter(ctx, s.deps.JS, Name, location, subject, body, hdr, cause); err != nil {
		s.metrics.events.WithLabelValues(label, "error").Inc()
		s.deps.Logger.Error("dead-letter slack input", "location", location, "cause", cause, "error", err)
		return failure(http.StatusServiceUnavailable, "could not store the event; retry")
	}
	s.metrics.events.WithLabelValues(label, "deadletter").Inc()
	s.deps.Logger.Warn("slack input dead-lettered", "location", location, "error", cause)
	return accepted()
}
