package ingestgithub

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/httpx/httpxtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-github/internal/ghwebhook"
)

const secret = "test-webhook-secret"

type fixture struct {
	srv *bustest.Server
	js  jetstream.JetStream
	svc *Service
	mux *http.ServeMux
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(t)
	cfg.WebhookSecret = secret
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = time.Second
	}
	svc, err := New(cfg, Deps{
		Publisher: bus.NewPublisher(js, Source),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("github"), data, hdr, cause)
		},
		Registry: prometheus.NewRegistry(),
		Now:      func() time.Time { return time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	return &fixture{srv: srv, js: js, svc: svc, mux: mux}
}

func payload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("internal/ghwebhook/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deliver posts body as GitHub does; sig "" signs it correctly, "-" sends none.
func (f *fixture) deliver(t *testing.T, event, delivery string, body []byte, sig string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/044aadd")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-GitHub-Hook-ID", "109948940")
	switch sig {
	case "":
		req.Header.Set("X-Hub-Signature-256", ghwebhook.Sign([]byte(secret), body))
	case "-":
	default:
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

// stored returns the raw messages on subject in the stream.
func stored(t *testing.T, js jetstream.JetStream, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

func (f *fixture) inbound(t *testing.T) []*supportv1.InboundMessage {
	t.Helper()
	var out []*supportv1.InboundMessage
	for _, raw := range stored(t, f.js, bus.StreamInbound, bus.InboundSubject("github")) {
		m := &supportv1.InboundMessage{}
		if err := proto.Unmarshal(raw.Data, m); err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get(jetstream.MsgIDHeader) != m.GetId() || raw.Header.Get(bus.HeaderSource) != Source {
			t.Fatalf("headers %v for %s", raw.Header, m.GetId())
		}
		out = append(out, m)
	}
	return out
}

func (f *fixture) count(event, result string) float64 {
	return testutil.ToFloat64(f.svc.requests.WithLabelValues(event, result))
}

func TestWebhook(t *testing.T) {
	f := newFixture(t, Config{Repositories: "acme/main:high,acme/docs"})
	opened := payload(t, "issues-opened.json")

	// Refused before anything is published.
	if rec := f.deliver(t, "issues", "d-nosig", opened, "-"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("no signature: %d", rec.Code)
	}
	if rec := f.deliver(t, "issues", "d-badsig", opened, ghwebhook.Sign([]byte("wrong"), opened)); rec.Code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", rec.Code)
	}
	if rec := f.deliver(t, "issues", "d-bad", []byte(`{"action":`), ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("malformed: %d", rec.Code)
	}
	if rec := f.deliver(t, "issues", "", opened, ""); rec.Code != http.StatusBadRequest {
		t.Fatalf("no delivery id: %d", rec.Code)
	}
	if rec := f.deliver(t, "ping", "d-ping", payload(t, "ping.json"), ""); rec.Code != http.StatusOK {
		t.Fatalf("ping: %d", rec.Code)
	}
	if rec := f.deliver(t, "push", "d-push", []byte(`{"ref":"refs/heads/main"}`), ""); rec.Code != http.StatusOK || f.count("other", "ignored_event") != 1 {
		t.Fatalf("unknown event: %d, metric %v", rec.Code, f.count("other", "ignored_event"))
	}
	if rec := f.deliver(t, "issues", "d-milestoned", payload(t, "issues-milestoned.json"), ""); rec.Code != http.StatusOK || f.count("issues", "ignored_action") != 1 {
		t.Fatalf("other action: %d", rec.Code)
	}
	other := bytes.ReplaceAll(opened, []byte(`"full_name": "acme/main"`), []byte(`"full_name": "evil/main"`))
	if rec := f.deliver(t, "issues", "d-evil", other, ""); rec.Code != http.StatusOK || f.count("issues", "ignored_repository") != 1 {
		t.Fatalf("repository not allowed: %d", rec.Code)
	}
	if n := len(f.inbound(t)); n != 0 {
		t.Fatalf("%d messages published for refused or ignored deliveries", n)
	}

	// Accepted deliveries; the first is delivered twice, as a redelivery
	// keeps X-GitHub-Delivery, and a third time replayed under a fresh
	// delivery id (the same signed body): stored once.
	for _, d := range []struct{ event, id, file string }{
		{"issues", "d-1", "issues-opened.json"},
		{"issue_comment", "d-2", "issue_comment-created-staff.json"},
		{"issues", "d-1", "issues-opened.json"},
		{"discussion", "d-3", "discussion-created.json"},
		{"issues", "d-4", "issues-closed.json"},
		{"issues", "d-replayed", "issues-opened.json"},
	} {
		if rec := f.deliver(t, d.event, d.id, payload(t, d.file), ""); rec.Code != http.StatusOK {
			t.Fatalf("%s %s: %d %s", d.event, d.id, rec.Code, rec.Body)
		}
	}
	if f.count("issues", "duplicate") != 2 {
		t.Fatalf("redelivery and replay not seen as duplicates: %v", f.count("issues", "duplicate"))
	}
	msgs := f.inbound(t)
	if len(msgs) != 4 {
		t.Fatalf("want 4 messages (the redelivery and the replay stored once), got %d", len(msgs))
	}
	if msgs[0].GetId() != "github:issues.opened:444500041" || msgs[0].GetThreadKey() != "github:acme/main#123" || msgs[0].GetAttributes()["priority_hint"] != "high" {
		t.Fatalf("first message %v", msgs[0])
	}
	if msgs[1].GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF || msgs[1].GetThreadKey() != msgs[0].GetThreadKey() {
		t.Fatalf("staff comment %v", msgs[1])
	}
	if msgs[2].GetThreadKey() != "github:acme/main/discussions#7" {
		t.Fatalf("discussion %v", msgs[2])
	}
	if msgs[3].GetKind() != supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED {
		t.Fatalf("closed %v", msgs[3])
	}
}

func TestWebhookDeadLetter(t *testing.T) {
	f := newFixture(t, Config{})
	body := []byte(`{"action":"opened","repository":{"full_name":"acme/main"},"issue":{"number":0}}`)
	if rec := f.deliver(t, "issues", "d-unusable", body, ""); rec.Code != http.StatusOK {
		t.Fatalf("unusable: %d %s", rec.Code, rec.Body)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 {
		t.Fatalf("want 1 dead letter, got %d", len(dl))
	}
	h := dl[0].Header
	if h.Get(bus.HeaderErrorLocation) != "ingest-github/webhook/issues" || !strings.Contains(h.Get(bus.HeaderError), "no issue number") {
		t.Fatalf("dead letter headers %v", h)
	}
	if h.Get("github-delivery") != "d-unusable" || !bytes.Equal(dl[0].Data, body) {
		t.Fatalf("dead letter %v %q", h, dl[0].Data)
	}
	if len(f.inbound(t)) != 0 {
		t.Fatal("unusable delivery was published")
	}
}

func TestWebhookSizeLimit(t *testing.T) {
	f := newFixture(t, Config{})
	big := make([]byte, MaxPayloadBytes+1)
	if rec := f.deliver(t, "issues", "d-big", big, ""); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("26 MB: %d", rec.Code)
	}
	// A large comment under the cap goes through.
	comment := payload(t, "issue_comment-created.json")
	long := strings.Repeat("stack trace line\\n", 60000) // ~1 MB of JSON, ~60k lines of text
	comment = bytes.Replace(comment, []byte(`"Here are the logs: lock timeout on posthog_event."`), []byte(`"`+long+`"`), 1)
	if rec := f.deliver(t, "issue_comment", "d-long", comment, ""); rec.Code != http.StatusOK {
		t.Fatalf("long comment: %d %s", rec.Code, rec.Body)
	}
}

func TestWebhookNATSDown(t *testing.T) {
	f := newFixture(t, Config{PublishTimeout: 300 * time.Millisecond})
	f.srv.Shutdown()
	if rec := f.deliver(t, "issues", "d-down", payload(t, "issues-opened.json"), ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("publish failure: %d", rec.Code)
	}
	if rec := f.deliver(t, "issues", "d-down2", []byte(`{"action":"opened","repository":{"full_name":"acme/main"}}`), ""); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("dead-letter failure: %d", rec.Code)
	}
	if f.count("issues", "error") != 2 {
		t.Fatalf("error metric %v", f.count("issues", "error"))
	}
	// GitHub (or `sidekick github redeliver`) retries once NATS is back.
	f.srv.Restart(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := f.deliver(t, "issues", "d-down", payload(t, "issues-opened.json"), "")
		if rec.Code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %d", rec.Code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(f.inbound(t)); n != 1 {
		t.Fatalf("want 1 message after the retry, got %d", n)
	}
}

func TestNewRefusesMissingSecret(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_GITHUB_WEBHOOK_SECRET") {
		t.Fatalf("want an error naming the variable, got %v", err)
	}
	if _, err := New(Config{WebhookSecret: "s", Repositories: "nope"}, Deps{Publisher: bus.NewPublisher(nil, Source), DeadLetter: func(context.Context, string, []byte, nats.Header, error) error { return nil }}); err == nil {
		t.Fatal("want an error for a bad repository list")
	}
}

func TestFromKit(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	kit := &app.Kit{Name: Name, JS: js, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}
	if _, err := FromKit(context.Background(), kit); err == nil || !strings.Contains(err.Error(), "SIDEKICK_GITHUB_WEBHOOK_SECRET") {
		t.Fatalf("without the secret: %v", err)
	}
	kit.Environ = []string{"SIDEKICK_GITHUB_WEBHOOK_SECRET=" + secret, "SIDEKICK_GITHUB_REPOSITORIES=acme/main:high"}
	svc, err := FromKit(context.Background(), kit)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.(app.HTTPService).Register(mux)
	f := &fixture{js: js, mux: mux, svc: svc.(*Service)}
	if rec := f.deliver(t, "issues", "kit-1", payload(t, "issues-opened.json"), ""); rec.Code != http.StatusOK || len(f.inbound(t)) != 1 {
		t.Fatalf("delivery through FromKit: %d", rec.Code)
	}
}

// TestUnsignedBodyIsNotRead: GitHub signs the body, so a signed delivery
// is read (within the size limit) before its signature is checked; one
// without a well-formed signature is refused from its headers alone.
// Before, every body was read first.
func TestUnsignedBodyIsNotRead(t *testing.T) {
	f := newFixture(t, Config{})
	for name, sig := range map[string]string{"none": "", "not sha256": "sha1=00", "short": "sha256=00"} {
		body := httpxtest.NewBody(MaxPayloadBytes)
		code := httpxtest.Post(f.mux, "/github/webhook", body, map[string]string{"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": sig})
		if code != http.StatusUnauthorized || body.BytesRead() != 0 {
			t.Errorf("signature %s: status %d after reading %d bytes; want 401 before reading", name, code, body.BytesRead())
		}
	}
}

// TestOverMaxPayloadIsDeadLettered: a delivery whose message is over the
// NATS server's max_payload (1 MB by default) can never be stored, so it
// is dead-lettered and acknowledged. Before, the answer was 503 and every
// redelivery failed the same way.
func TestOverMaxPayloadIsDeadLettered(t *testing.T) {
	f := newFixture(t, Config{})
	body := payload(t, "issue_comment-created.json")
	body = bytes.Replace(body, []byte("Here are the logs"), []byte(strings.Repeat("x", 2<<20)), 1)
	if rec := f.deliver(t, "issue_comment", "big-1", body, ""); rec.Code != http.StatusOK {
		t.Fatalf("a 2 MB comment: %d %s, want 200 (dead-lettered)", rec.Code, rec.Body)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 || !strings.Contains(dl[0].Header.Get(bus.HeaderError), "maximum payload") {
		t.Fatalf("dead letters %v", dl)
	}
}

// An ingest-level dead letter keeps GitHub's raw delivery and is replayed
// through Normalize by the running service: a delivery an older version
// could not use becomes a message; one that still cannot is refused with
// the reason, and nothing is published for it.
func TestDeadLetterReplaysThroughTheNormaliser(t *testing.T) {
	f := newFixture(t, Config{})
	bustest.ServeReplay(t, f.js.Conn(), Name, f.svc.replay)
	ctx := context.Background()

	unusable := []byte(`{"action":"opened","repository":{"full_name":"acme/main"},"issue":{"number":0}}`)
	if rec := f.deliver(t, "issues", "d-unusable", unusable, ""); rec.Code != http.StatusOK {
		t.Fatalf("unusable: %d %s", rec.Code, rec.Body)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 || dl[0].Header.Get(bus.HeaderRawRequest) != Name {
		t.Fatalf("dead letter not marked as %s's raw request: %v", Name, dl)
	}
	err := bus.RequestReplay(ctx, f.js.Conn(), Name, dl[0].Data, dl[0].Header)
	if !errors.Is(err, bus.ErrReplayRefused) || !strings.Contains(err.Error(), "no issue number") {
		t.Fatalf("replay of a still unusable delivery: %v", err)
	}
	if len(f.inbound(t)) != 0 {
		t.Fatal("a refused replay published")
	}

	// What an older version dead-lettered, the current one can use.
	hdr := dl[0].Header
	hdr.Set("github-delivery", "d-fixed")
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, payload(t, "issues-opened.json"), hdr); err != nil {
		t.Fatal(err)
	}
	if in := f.inbound(t); len(in) != 1 || in[0].GetChannel() != supportv1.Channel_CHANNEL_GITHUB {
		t.Fatalf("replayed delivery published %v", in)
	}

	hdr.Set("body-truncated-from", "900000")
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, []byte(`{`), hdr); !errors.Is(err, bus.ErrReplayRefused) || !strings.Contains(err.Error(), "redeliver") {
		t.Fatalf("replay of a truncated body: %v", err)
	}
}
