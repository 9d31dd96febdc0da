package ingestslack

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/httpx/httpxtest"
	"github.com/sidekickhq/sidekick/platform/logging"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackfake"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacksig"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

// now is the service's clock in every test; requests are signed at it.
var now = time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)

// Users of the fake workspace T061EG9R6, in users.info's shape.
const (
	userGuest = `{"id":"W012A3CDE","team_id":"T061EG9R6","name":"kim","real_name":"Kim Guest","deleted":false,
		"profile":{"real_name":"Kim Guest","display_name":"kim","email":"kim@customer.example","team":"T061EG9R6"},
		"is_admin":false,"is_owner":false,"is_restricted":true,"is_ultra_restricted":false,"is_bot":false,"is_app_user":false}`
	userStaff = `{"id":"U024BE7LH","team_id":"T061EG9R6","name":"alice","real_name":"Alice Example","deleted":false,
		"profile":{"real_name":"Alice Example","display_name":"alice","email":"alice@sidekick.example","team":"T061EG9R6"},
		"is_admin":false,"is_owner":false,"is_restricted":false,"is_ultra_restricted":false,"is_bot":false,"is_app_user":false}`
	userExternal = `{"id":"U07EXTCUST","team_id":"T0CUSTOMER","name":"dana","real_name":"Dana Customer","deleted":false,
		"profile":{"real_name":"Dana Customer","display_name":"dana","team":"T0CUSTOMER"},
		"is_restricted":false,"is_ultra_restricted":false,"is_bot":false}`
)

type fixture struct {
	nats  *bustest.Server
	js    jetstream.JetStream
	slack *slackfake.Server
	svc   *Service
	mux   *http.ServeMux
	reg   *prometheus.Registry
}

// newFixture starts embedded NATS and a fake Slack Web API and builds the
// service; the bot token is set unless cfg.BotToken is "-".
func newFixture(t *testing.T, cfg Config, deps Deps) *fixture {
	t.Helper()
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(t)
	fake := slackfake.Start(t, "acme")
	fake.AddUser(userGuest)
	fake.AddUser(userStaff)
	fake.AddUser(userExternal)
	cfg.SigningSecret = secret
	switch cfg.BotToken {
	case "":
		cfg.BotToken = "xoxb-test"
	case "-":
		cfg.BotToken = ""
	}
	cfg.APIURL = fake.APIURL()
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	deps.JS = js
	deps.Publisher = bus.NewPublisher(js, Source)
	deps.Registry = reg
	deps.Now = func() time.Time { return now }
	svc, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	// As FromKit does before the first event.
	if err := svc.learnWorkspace(context.Background()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	return &fixture{nats: srv, js: js, slack: fake, svc: svc, mux: mux, reg: reg}
}

func payload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("internal/slackevent/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signing modes for post.
const (
	signed = iota
	unsigned
	wrongSecret
	stale
)

// post sends body to path as Slack does, signed at the fixture's clock.
func (f *fixture) post(t *testing.T, path, contentType string, body []byte, mode int, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	ts := strconv.FormatInt(now.Unix(), 10)
	switch mode {
	case signed:
		req.Header.Set(slacksig.HeaderTimestamp, ts)
		req.Header.Set(slacksig.HeaderSignature, slacksig.Sign([]byte(secret), ts, body))
	case wrongSecret:
		req.Header.Set(slacksig.HeaderTimestamp, ts)
		req.Header.Set(slacksig.HeaderSignature, slacksig.Sign([]byte("not the secret"), ts, body))
	case stale:
		old := strconv.FormatInt(now.Add(-6*time.Minute).Unix(), 10)
		req.Header.Set(slacksig.HeaderTimestamp, old)
		req.Header.Set(slacksig.HeaderSignature, slacksig.Sign([]byte(secret), old, body))
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) event(t *testing.T, body []byte, mode int, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	return f.post(t, "/slack/events", "application/json", body, mode, hdr...)
}

// stored returns the raw messages on subject in stream.
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
	for _, raw := range stored(t, f.js, bus.StreamInbound, bus.InboundSubject("slack")) {
		m := &supportv1.InboundMessage{}
		if err := proto.Unmarshal(raw.Data, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *fixture) count(typ, result string) float64 {
	return testutil.ToFloat64(f.svc.metrics.events.WithLabelValues(typ, result))
}

func TestEventEndToEnd(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	rec := f.event(t, payload(t, "message.json"), signed)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	raws := stored(t, f.js, bus.StreamInbound, bus.InboundSubject("slack"))
	if len(raws) != 1 {
		t.Fatalf("want 1 message in SUPPORT_INBOUND, got %d", len(raws))
	}
	h := raws[0].Header
	for k, want := range map[string]string{
		jetstream.MsgIDHeader: "slack:Ev0PV52K21",
		bus.HeaderID:          "slack:Ev0PV52K21",
		bus.HeaderSpecVersion: "1.0",
		bus.HeaderType:        "sidekick.support.v1.InboundMessage",
		bus.HeaderSource:      "sidekick/ingest-slack",
		bus.HeaderContentType: "application/protobuf",
		bus.HeaderTime:        now.Format(time.RFC3339Nano),
	} {
		if got := h.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	m := f.inbound(t)[0]
	if m.GetId() != "slack:Ev0PV52K21" || m.GetChannel() != supportv1.Channel_CHANNEL_SLACK || m.GetSourceId() != "1700000000.000100" ||
		m.GetThreadKey() != "slack:T061EG9R6/C0LAN2Q65/1700000000.000100" || m.GetKind() != supportv1.MessageKind_MESSAGE_KIND_POSTED {
		t.Fatalf("message %v", m)
	}
	// users.info says W012A3CDE is a guest of our workspace: a customer,
	// although the event alone would have made them staff.
	a := m.GetAuthor()
	if a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || a.GetName() != "Kim Guest" || a.GetEmail() != "kim@customer.example" || a.GetHandle() != "kim" {
		t.Fatalf("author %v", a)
	}
	if m.GetPermalink() != "https://acme.slack.com/archives/C0LAN2Q65/p1700000000000100" {
		t.Fatalf("permalink %q", m.GetPermalink())
	}
	if m.GetSubject() != "Hi! Our session recordings stopped showing up since this morning." || !strings.Contains(m.GetText(), "Any idea?") {
		t.Fatalf("subject %q text %q", m.GetSubject(), m.GetText())
	}
	if m.GetAttributes()["author_source"] != "users.info" || !m.GetReceivedAt().AsTime().Equal(now) {
		t.Fatalf("attributes %v received %s", m.GetAttributes(), m.GetReceivedAt().AsTime())
	}
	if f.count("message", "published") != 1 {
		t.Fatal("published not counted")
	}
	if n := testutil.ToFloat64(f.svc.metrics.requests.WithLabelValues("events", "200")); n != 1 {
		t.Fatalf("requests{events,200} = %v", n)
	}
}

func TestRetryStoredOnce(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	body := payload(t, "message.json")
	if rec := f.event(t, body, signed); rec.Code != http.StatusOK {
		t.Fatalf("first delivery: %d", rec.Code)
	}
	// Slack retries with the same event_id and says so.
	for i := 1; i <= 3; i++ {
		rec := f.event(t, body, signed, "X-Slack-Retry-Num", strconv.Itoa(i), "X-Slack-Retry-Reason", "http_timeout")
		if rec.Code != http.StatusOK {
			t.Fatalf("retry %d: %d", i, rec.Code)
		}
	}
	if n := len(f.inbound(t)); n != 1 {
		t.Fatalf("want the event stored once, got %d", n)
	}
	if f.count("message", "duplicate") != 3 {
		t.Fatalf("duplicates counted %v", f.count("message", "duplicate"))
	}
	if f.slack.Calls("users.info") != 1 {
		t.Fatalf("users.info called %d times, want 1 (cached)", f.slack.Calls("users.info"))
	}
}

func TestRejectedRequestsPublishNothing(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 4096}, Deps{})
	body := payload(t, "message.json")
	for name, c := range map[string]struct {
		path string
		body []byte
		mode int
		want int
	}{
		"events unsigned":           {"/slack/events", body, unsigned, http.StatusUnauthorized},
		"events wrong secret":       {"/slack/events", body, wrongSecret, http.StatusUnauthorized},
		"events stale":              {"/slack/events", body, stale, http.StatusUnauthorized},
		"events too large":          {"/slack/events", append(bytes.Repeat([]byte(" "), 4096), body...), signed, http.StatusRequestEntityTooLarge},
		"events not json":           {"/slack/events", []byte("token=x&type=event_callback"), signed, http.StatusBadRequest},
		"events truncated":          {"/slack/events", body[:len(body)/2], signed, http.StatusBadRequest},
		"verification no challenge": {"/slack/events", []byte(`{"type":"url_verification","token":"x"}`), signed, http.StatusBadRequest},
		"interactions unsigned":     {"/slack/interactions", []byte("payload=%7B%7D"), unsigned, http.StatusUnauthorized},
		"interactions no payload":   {"/slack/interactions", []byte("nothing=here"), signed, http.StatusBadRequest},
		"interactions not json":     {"/slack/interactions", []byte("payload=%7Bnope"), signed, http.StatusBadRequest},
		"commands unsigned":         {"/slack/commands", []byte("command=%2Fhero"), unsigned, http.StatusUnauthorized},
		"commands stale":            {"/slack/commands", []byte("command=%2Fhero"), stale, http.StatusUnauthorized},
		"commands not a form":       {"/slack/commands", []byte("text=%zz"), signed, http.StatusBadRequest},
	} {
		t.Run(name, func(t *testing.T) {
			if rec := f.post(t, c.path, "application/x-www-form-urlencoded", c.body, c.mode); rec.Code != c.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, c.want, rec.Body)
			}
		})
	}
	if n := len(f.inbound(t)); n != 0 {
		t.Fatalf("%d messages published for rejected requests", n)
	}
	if n := len(stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))); n != 0 {
		t.Fatalf("%d dead letters for rejected requests", n)
	}
	if f.count("unknown", "unauthorized") != 3 || f.count("unknown", "too_large") != 1 {
		t.Fatalf("metrics: unauthorized %v too_large %v", f.count("unknown", "unauthorized"), f.count("unknown", "too_large"))
	}
}

func TestURLVerification(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	rec := f.event(t, payload(t, "url_verification.json"), signed)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"`) {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := f.event(t, payload(t, "url_verification.json"), unsigned); rec.Code != http.StatusUnauthorized {
		t.Fatalf("unsigned verification: %d", rec.Code)
	}
}

func TestThreadLifecycle(t *testing.T) {
	f := newFixture(t, Config{Channels: []string{"C0LAN2Q65"}}, Deps{})
	names := []string{"message.json", "thread_reply.json", "message_changed.json", "bot_message.json", "message_deleted.json"}
	for _, name := range names {
		if rec := f.event(t, payload(t, name), signed); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, rec.Code, rec.Body)
		}
	}
	msgs := f.inbound(t)
	if len(msgs) != 5 {
		t.Fatalf("want 5 messages, got %d", len(msgs))
	}
	// Each body is read into a buffer the next request reuses: every
	// message must still carry its own event's id and text.
	for i, name := range names {
		env, err := slackevent.Parse(payload(t, name))
		if err != nil {
			t.Fatal(err)
		}
		it, _, err := slackevent.Classify(env, slackevent.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if msgs[i].GetId() != "slack:"+env.EventID || msgs[i].GetText() != it.Text {
			t.Errorf("message %d is %s %q, want %s's: slack:%s %q", i, msgs[i].GetId(), msgs[i].GetText(), name, env.EventID, it.Text)
		}
	}
	wantKinds := []supportv1.MessageKind{
		supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.MessageKind_MESSAGE_KIND_EDITED,
		supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.MessageKind_MESSAGE_KIND_DELETED,
	}
	wantRoles := []supportv1.AuthorRole{
		supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
		supportv1.AuthorRole_AUTHOR_ROLE_BOT, supportv1.AuthorRole_AUTHOR_ROLE_STAFF,
	}
	for i, m := range msgs {
		if m.GetThreadKey() != "slack:T061EG9R6/C0LAN2Q65/1700000000.000100" {
			t.Errorf("message %d thread key %q", i, m.GetThreadKey())
		}
		if m.GetKind() != wantKinds[i] || m.GetAuthor().GetRole() != wantRoles[i] {
			t.Errorf("message %d: kind %s role %s", i, m.GetKind(), m.GetAuthor().GetRole())
		}
		if m.GetPermalink() != "https://acme.slack.com/archives/C0LAN2Q65/p1700000000000100" {
			t.Errorf("message %d permalink %q", i, m.GetPermalink())
		}
	}
	// The links were built from auth.test's answer, asked once, not from
	// a Web API call per event.
	if f.slack.Calls("chat.getPermalink") != 0 || f.slack.Calls("auth.test") != 1 {
		t.Fatalf("chat.getPermalink called %d times, auth.test %d", f.slack.Calls("chat.getPermalink"), f.slack.Calls("auth.test"))
	}
}

func TestPermalinkBeforeTheWorkspaceIsKnown(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	f.svc.workspace.Store(nil)
	f.slack.FailAuthTest("ratelimited")
	if err := f.svc.learnWorkspace(context.Background()); err == nil {
		t.Fatal("learnWorkspace: want auth.test's error")
	}
	if rec := f.event(t, payload(t, "message.json"), signed); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// Until auth.test answers, the link is the web client's thread view,
	// which needs only ids; the event is not held up for it.
	if l := f.inbound(t)[0].GetPermalink(); l != "https://app.slack.com/client/T061EG9R6/C0LAN2Q65/thread/C0LAN2Q65-1700000000.000100" {
		t.Fatalf("permalink before auth.test answered: %q", l)
	}
	if n := f.slack.Calls("auth.test"); n != 2 {
		t.Fatalf("auth.test called %d times on the request path", n-2)
	}
	f.slack.FailAuthTest("")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.svc.learnWorkspaceUntilKnown(ctx); err != nil || f.svc.workspaceURL() != "https://acme.slack.com/" {
		t.Fatalf("learnWorkspaceUntilKnown: %v, url %q", err, f.svc.workspaceURL())
	}
	if l := slackevent.Permalink(f.svc.workspaceURL(), "T061EG9R6", "C0LAN2Q65", "1700000000.000100"); l != "https://acme.slack.com/archives/C0LAN2Q65/p1700000000000100" {
		t.Fatalf("permalink after auth.test answered: %q", l)
	}
}

func TestIgnoredEvents(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	for name, result := range map[string]string{
		"self_message.json":           "ignored_self",
		"channel_join.json":           "ignored_subtype",
		"message_changed_unfurl.json": "ignored_unchanged",
		"app_mention.json":            "ignored_mention",
		"app_rate_limited.json":       "ignored_envelope",
	} {
		if rec := f.event(t, payload(t, name), signed); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", name, rec.Code)
		}
		typ := map[string]string{
			"self_message.json": "message", "channel_join.json": "channel_join", "message_changed_unfurl.json": "message_changed",
			"app_mention.json": "app_mention", "app_rate_limited.json": "app_rate_limited",
		}[name]
		if f.count(typ, result) != 1 {
			t.Errorf("%s: %s{%s} not counted", name, result, typ)
		}
	}
	if n := len(f.inbound(t)); n != 0 {
		t.Fatalf("%d messages published for ignored events", n)
	}
}

func TestChannelAllowList(t *testing.T) {
	f := newFixture(t, Config{Channels: []string{"C0SUPPORT"}}, Deps{})
	if rec := f.event(t, payload(t, "message.json"), signed); rec.Code != http.StatusOK || f.count("message", "ignored_channel") != 1 {
		t.Fatalf("outside the allow-list: %d", rec.Code)
	}
	// A mention outside the intake channels brings the thread in.
	if rec := f.event(t, payload(t, "app_mention.json"), signed); rec.Code != http.StatusOK {
		t.Fatalf("mention: %d", rec.Code)
	}
	msgs := f.inbound(t)
	if len(msgs) != 1 || msgs[0].GetAttributes()["app_mention"] != "true" || msgs[0].GetThreadKey() != "slack:T061EG9R6/C0LAN2Q66/1515449483.000108" {
		t.Fatalf("messages %v", msgs)
	}
}

func TestAuthorWithoutBotToken(t *testing.T) {
	f := newFixture(t, Config{BotToken: "-", WorkspaceURL: "https://acme.slack.com"}, Deps{})
	for _, name := range []string{"message.json", "shared_channel.json"} {
		if rec := f.event(t, payload(t, name), signed); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", name, rec.Code)
		}
	}
	msgs := f.inbound(t)
	if len(msgs) != 2 {
		t.Fatalf("got %d messages", len(msgs))
	}
	// Without users.info the event's team decides: ours is staff (a guest
	// cannot be told apart), another workspace is a customer.
	if a := msgs[0].GetAuthor(); a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_STAFF || msgs[0].GetAttributes()["author_source"] != "event" {
		t.Fatalf("member from the event: %v", a)
	}
	if a := msgs[1].GetAuthor(); a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || a.GetName() != "Dana Customer" || a.GetOrganisation() != "T0CUSTOMER" {
		t.Fatalf("slack connect customer: %v", a)
	}
	if msgs[0].GetPermalink() != "https://acme.slack.com/archives/C0LAN2Q65/p1700000000000100" {
		t.Fatalf("built permalink %q", msgs[0].GetPermalink())
	}
	if f.slack.Calls("users.info")+f.slack.Calls("chat.getPermalink") != 0 {
		t.Fatal("Web API called without a bot token")
	}
}

func TestUsersInfoFailureFallsBack(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	f.slack.FailUsers("ratelimited")
	if rec := f.event(t, payload(t, "shared_channel.json"), signed); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	m := f.inbound(t)[0]
	if m.GetAuthor().GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || m.GetAttributes()["author_source"] != "event" {
		t.Fatalf("fallback author %v %v", m.GetAuthor(), m.GetAttributes())
	}
	if testutil.ToFloat64(f.svc.metrics.lookups.WithLabelValues("users.info", "error")) != 1 {
		t.Fatal("lookup error not counted")
	}
}

func TestSlackConnectCustomerFromUsersInfo(t *testing.T) {
	f := newFixture(t, Config{TeamID: "T061EG9R6"}, Deps{})
	if rec := f.event(t, payload(t, "shared_channel.json"), signed); rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	a := f.inbound(t)[0].GetAuthor()
	if a.GetRole() != supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER || a.GetOrganisation() != "T0CUSTOMER" || a.GetName() != "Dana Customer" {
		t.Fatalf("author %v", a)
	}
}

func TestFileShare(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	if rec := f.event(t, payload(t, "file_share.json"), signed); rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	m := f.inbound(t)[0]
	if len(m.GetAttachments()) != 1 || m.GetAttachments()[0].GetName() != "ghostrap.png" || m.GetText() != "We got one!" {
		t.Fatalf("file share %v", m)
	}
}

func TestDeadLetter(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	body := []byte(`{"token":"XXYYZZ","team_id":"T061EG9R6","api_app_id":"A0MDYCDME","type":"event_callback","event_id":"Ev0BROKEN1","event_time":1700000000,
		"event":{"type":"message","text":"no timestamp on this one","user":"W012A3CDE","channel":"C0LAN2Q65","channel_type":"channel"}}`)
	if rec := f.event(t, body, signed); rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// Slack retries it anyway: stored once.
	if rec := f.event(t, body, signed, "X-Slack-Retry-Num", "1"); rec.Code != http.StatusOK {
		t.Fatalf("retry: %d", rec.Code)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 {
		t.Fatalf("want 1 dead letter, got %d", len(dl))
	}
	h := dl[0].Header
	if h.Get(bus.HeaderErrorLocation) != "ingest-slack/events/message" || !strings.Contains(h.Get(bus.HeaderError), "without ts") ||
		h.Get("slack-event-id") != "Ev0BROKEN1" || h.Get(bus.HeaderOriginalSubject) != "support.inbound.slack" || !bytes.Equal(dl[0].Data, body) {
		t.Fatalf("dead letter %v %q", h, dl[0].Data)
	}
	if len(f.inbound(t)) != 0 {
		t.Fatal("an unusable event was published")
	}

	// The dead letter is Slack's payload, marked for replay through this
	// service: still unusable, it is refused with the reason; the same
	// event with its ts (as a fixed version would read it) is published.
	if h.Get(bus.HeaderRawRequest) != Name || h.Get("slack-route") != "events" {
		t.Fatalf("dead letter not marked for replay through %s: %v", Name, h)
	}
	bustest.ServeReplay(t, f.js.Conn(), Name, f.svc.replay)
	ctx := context.Background()
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, dl[0].Data, h); !errors.Is(err, bus.ErrReplayRefused) || !strings.Contains(err.Error(), "without ts") {
		t.Fatalf("replay of the unusable event: %v", err)
	}
	fixed := bytes.Replace(body, []byte(`"channel_type":"channel"`), []byte(`"channel_type":"channel","ts":"1700000000.000100"`), 1)
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, fixed, h); err != nil {
		t.Fatal(err)
	}
	if in := f.inbound(t); len(in) != 1 || in[0].GetText() != "no timestamp on this one" {
		t.Fatalf("replayed event published %v", in)
	}
	h.Set("slack-route", "interactions")
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, fixed, h); !errors.Is(err, bus.ErrReplayRefused) || !strings.Contains(err.Error(), "do it again in Slack") {
		t.Fatalf("replay of an interaction: %v", err)
	}
}

func TestNATSDownAsksSlackToRetry(t *testing.T) {
	f := newFixture(t, Config{Timeout: 500 * time.Millisecond}, Deps{})
	f.nats.Shutdown()
	if rec := f.event(t, payload(t, "message.json"), signed); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("publish failure: %d", rec.Code)
	}
	broken := []byte(`{"type":"event_callback","team_id":"T1","event_id":"Ev0BROKEN2","event":{"type":"message","channel":"C1"}}`)
	if rec := f.event(t, broken, signed); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("dead-letter failure: %d", rec.Code)
	}
	if f.count("message", "error") != 2 {
		t.Fatalf("errors counted %v", f.count("message", "error"))
	}
	f.nats.Restart(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		rec := f.event(t, payload(t, "message.json"), signed, "X-Slack-Retry-Num", "1")
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

// blockActions is Slack's documented block_actions payload with a
// Sidekick button.
func blockActions(actionID, value, actionTS string) []byte {
	p := `{
  "type": "block_actions",
  "team": {"id": "T061EG9R6", "domain": "acme"},
  "user": {"id": "U024BE7LH", "username": "alice", "name": "alice", "team_id": "T061EG9R6"},
  "api_app_id": "A0MDYCDME",
  "token": "9s8d9as89d8as9d8as989",
  "container": {"type": "message", "message_ts": "1700000500.000100", "channel_id": "D0ALICE01", "is_ephemeral": false},
  "trigger_id": "12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3",
  "channel": {"id": "D0ALICE01", "name": "directmessage"},
  "message": {"type": "message", "bot_id": "B0LAN0Z88", "text": "New conversation for you", "ts": "1700000500.000100", "user": "U0LAN0Z89"},
  "response_url": "https://hooks.slack.com/actions/A0MDYCDME/1232321423432/D09sSasdasdAS9091209",
  "actions": [
    {"action_id": "` + actionID + `", "block_id": "sidekick_actions", "text": {"type": "plain_text", "text": "Ack", "emoji": true},
     "value": "` + value + `", "style": "primary", "type": "button", "action_ts": "` + actionTS + `"}
  ]
}`
	return []byte("payload=" + url.QueryEscape(p))
}

func TestInteractions(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	const form = "application/x-www-form-urlencoded"
	clicks := []struct{ id, value, ts, subject string }{
		{ActionAck, "conv:c-42|notif:n-7", "1700000600.100000", "ack"},
		{ActionEscalate, "conv:c-42", "1700000601.100000", "escalate"},
		{ActionClose, "c-43", "1700000602.100000", "close"},
	}
	for _, c := range clicks {
		if rec := f.post(t, "/slack/interactions", form, blockActions(c.id, c.value, c.ts), signed); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.id, rec.Code, rec.Body)
		}
	}
	// The same click delivered twice is stored once.
	if rec := f.post(t, "/slack/interactions", form, blockActions(ActionAck, "conv:c-42|notif:n-7", "1700000600.100000"), signed); rec.Code != http.StatusOK {
		t.Fatal(rec.Code)
	}
	for _, c := range clicks {
		raws := stored(t, f.js, bus.StreamActions, bus.ActionSubject(c.subject))
		if len(raws) != 1 {
			t.Fatalf("%s: %d actions stored", c.subject, len(raws))
		}
		a := &supportv1.Action{}
		if err := proto.Unmarshal(raws[0].Data, a); err != nil {
			t.Fatal(err)
		}
		if a.GetActor() != "U024BE7LH" || a.GetSource() != "slack" || raws[0].Header.Get(jetstream.MsgIDHeader) != a.GetId() ||
			raws[0].Header.Get(bus.HeaderType) != "sidekick.support.v1.Action" {
			t.Fatalf("%s: %v %v", c.subject, a, raws[0].Header)
		}
		switch c.subject {
		case "ack":
			if a.GetType() != supportv1.ActionType_ACTION_TYPE_ACK || a.GetConversationId() != "c-42" || a.GetNotificationId() != "n-7" ||
				!a.GetOccurredAt().AsTime().Equal(time.Unix(1700000600, 100000000)) {
				t.Fatalf("ack %v", a)
			}
		case "escalate":
			if a.GetType() != supportv1.ActionType_ACTION_TYPE_ESCALATE || a.GetConversationId() != "c-42" || a.GetNotificationId() != "" {
				t.Fatalf("escalate %v", a)
			}
		case "close":
			if a.GetType() != supportv1.ActionType_ACTION_TYPE_CLOSE || a.GetConversationId() != "c-43" {
				t.Fatalf("close %v", a)
			}
		}
	}
	// Someone else's button: nothing published.
	if rec := f.post(t, "/slack/interactions", form, blockActions("open_dashboard", "x", "1700000603.1"), signed); rec.Code != http.StatusOK ||
		f.count("block_actions", "ignored_action") != 1 {
		t.Fatalf("foreign button: %d", rec.Code)
	}
	// Our button with a value we cannot read: dead-lettered, 200.
	if rec := f.post(t, "/slack/interactions", form, blockActions(ActionAck, "ticket:c-1", "1700000604.1"), signed); rec.Code != http.StatusOK {
		t.Fatalf("bad value: %d", rec.Code)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 || dl[0].Header.Get(bus.HeaderErrorLocation) != "ingest-slack/interactions/block_actions" || dl[0].Header.Get(bus.HeaderOriginalSubject) != "support.action.ack" {
		t.Fatalf("dead letters %v", dl)
	}
}

func TestParseButtonValue(t *testing.T) {
	for v, want := range map[string][2]string{
		"conv:c1|notif:n1": {"c1", "n1"},
		"notif:n1|conv:c1": {"c1", "n1"},
		"conv:c1":          {"c1", ""},
		"notif:n1":         {"", "n1"},
		"c1":               {"c1", ""},
	} {
		c, n, err := ParseButtonValue(v)
		if err != nil || c != want[0] || n != want[1] {
			t.Fatalf("ParseButtonValue(%q) = %q %q %v", v, c, n, err)
		}
	}
	for _, v := range []string{"", "conv:", "conv:a|conv:b", "notif:a|notif:b", "team:t1", "conv:c1|", "conv:c1|x"} {
		if _, _, err := ParseButtonValue(v); err == nil {
			t.Fatalf("ParseButtonValue(%q) accepted", v)
		}
	}
	if c, n, _ := ParseButtonValue(ButtonValue("c9", "n9")); c != "c9" || n != "n9" {
		t.Fatal("ButtonValue does not round-trip")
	}
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_SLACK_SIGNING_SECRET") {
		t.Fatalf("missing secret: %v", err)
	}
	deps := Deps{Publisher: bus.NewPublisher(nil, Source), JS: jetstreamNil{}}
	if _, err := New(Config{SigningSecret: "s", Mode: "socket"}, deps); err == nil || !strings.Contains(err.Error(), "SIDEKICK_SLACK_APP_TOKEN") {
		t.Fatalf("socket without app token: %v", err)
	}
	if _, err := New(Config{SigningSecret: "s", Mode: "rtm"}, deps); err == nil {
		t.Fatal("unknown mode accepted")
	}
	if _, err := New(Config{SigningSecret: "s", Channels: []string{"#support"}}, deps); err == nil || !strings.Contains(err.Error(), "#support") {
		t.Fatalf("channel name accepted: %v", err)
	}
	if _, err := New(Config{SigningSecret: "s", Channels: []string{"C0LAN2Q65", " G0PRIVATE1 "}}, deps); err != nil {
		t.Fatal(err)
	}
}

// jetstreamNil satisfies jetstream.JetStream for constructor checks that
// never publish.
type jetstreamNil struct{ jetstream.JetStream }

// TestFromKit builds the service the way `app.Main` and `sidekick dev` do:
// configuration from the environment list, the kit's JetStream and
// registry.
func TestFromKit(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	k := &app.Kit{
		Name:     Name,
		Environ:  []string{"SIDEKICK_SLACK_SIGNING_SECRET=" + secret, "SIDEKICK_SLACK_CHANNELS=C0LAN2Q65,C0OTHER01"},
		Logger:   logging.Discard(),
		Registry: prometheus.NewRegistry(),
		JS:       js,
	}
	svc, err := FromKit(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	s := svc.(*Service)
	if s.cfg.Mode != ModeEvents || s.cfg.MaxBodyBytes != 1<<20 || s.cfg.Timeout != 2500*time.Millisecond || len(s.opts.Channels) != 2 || s.dir != nil {
		t.Fatalf("config %+v", s.cfg)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	// The kit's service runs on the real clock: a request signed ten
	// minutes before it is stale, one signed now is accepted.
	body := payload(t, "message.json")
	for _, c := range []struct {
		at   time.Time
		want int
	}{{time.Now().Add(-10 * time.Minute), http.StatusUnauthorized}, {time.Now(), http.StatusOK}} {
		ts := strconv.FormatInt(c.at.Unix(), 10)
		req := httptest.NewRequest(http.MethodPost, "/slack/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(slacksig.HeaderTimestamp, ts)
		req.Header.Set(slacksig.HeaderSignature, slacksig.Sign([]byte(secret), ts, body))
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Fatalf("signed at %s: %d, want %d: %s", c.at.Format(time.RFC3339), rec.Code, c.want, rec.Body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}

	k.Environ = []string{"SIDEKICK_SLACK_BOT_TOKEN=xoxb-1"}
	if _, err := FromKit(context.Background(), k); err == nil || !strings.Contains(err.Error(), "SIDEKICK_SLACK_SIGNING_SECRET") {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestUnsignedBodyIsNotRead: Slack signs the body, so a signed request is
// read (within the size limit) before its signature is checked; one with
// no signature, or a stale timestamp, is refused from its headers alone.
// Before, every body was read first.
func TestUnsignedBodyIsNotRead(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	ts := strconv.FormatInt(now.Unix(), 10)
	stale := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
	sig := "v0=" + strings.Repeat("00", 32)
	for name, hdr := range map[string]map[string]string{
		"no signature":    {slacksig.HeaderTimestamp: ts},
		"no timestamp":    {slacksig.HeaderSignature: sig},
		"stale timestamp": {slacksig.HeaderTimestamp: stale, slacksig.HeaderSignature: sig},
		"not v0":          {slacksig.HeaderTimestamp: ts, slacksig.HeaderSignature: "v1=00"},
	} {
		for _, path := range []string{"/slack/events", "/slack/interactions", "/slack/commands"} {
			body := httpxtest.NewBody(1 << 20)
			if code := httpxtest.Post(f.mux, path, body, hdr); code != http.StatusUnauthorized || body.BytesRead() != 0 {
				t.Errorf("%s %s: status %d after reading %d bytes; want 401 before reading", path, name, code, body.BytesRead())
			}
		}
	}
}
