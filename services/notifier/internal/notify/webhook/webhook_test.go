package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/webhook"
)

var (
	secret = []byte("s3cret")
	now    = time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
)

// received is one request the fake receiver accepted as authentic.
type received struct {
	header  http.Header
	payload webhook.Payload
	raw     map[string]any
}

// receiver is a fake webhook endpoint. It checks the signature the way a
// receiver in another language would (HMAC-SHA256 over "timestamp.body",
// computed here, not with the package's own Sign), records what it got and
// answers with the next scripted status (200 when the script is empty).
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	got    []received
	script []func(w http.ResponseWriter)
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := r.Header.Get("X-Sidekick-Timestamp")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" ||
		!hmac.Equal([]byte(r.Header.Get("X-Sidekick-Signature")), []byte(want)) {
		rc.t.Errorf("unauthentic request: %s %v", r.Method, r.Header)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p webhook.Payload
	var raw map[string]any
	if err := json.Unmarshal(body, &p); err != nil || json.Unmarshal(body, &raw) != nil {
		rc.t.Errorf("body is not the payload: %v: %s", err, body)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{header: r.Header.Clone(), payload: p, raw: raw})
	var next func(http.ResponseWriter)
	if len(rc.script) > 0 {
		next, rc.script = rc.script[0], rc.script[1:]
	}
	rc.mu.Unlock()
	if next == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	next(w)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error":"scripted"}`))
	}
}

func setup(t *testing.T, script ...func(http.ResponseWriter)) (*webhook.Channel, *receiver, *httptest.Server) {
	t.Helper()
	rc := &receiver{t: t, script: script}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ch, err := webhook.New(webhook.Options{URL: srv.URL + "/hooks/sidekick", Secret: secret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return ch, rc, srv
}

var msg = notify.Message{
	NotificationID: "n1", DeliveryID: "d1",
	Recipient: notify.Recipient{PersonID: "alice", Name: "Alice", Email: "alice@example.com", SlackID: "U0ALICE", Role: "Support Hero"},
	Urgency:   notify.Page, Title: "Priority conversation waiting", Text: "Acme: “our deploy is down”",
	Links:          []notify.Link{{Title: "Open", URL: "https://sidekick.example.com/c/c42"}},
	ConversationID: "c42", DedupKey: "conv-c42|person:alice|1", Attempt: 2,
}

func TestSendSignedPayload(t *testing.T) {
	ch, rc, _ := setup(t)
	r, err := ch.Send(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != msg.DedupKey {
		t.Errorf("receipt = %q", r.Ref)
	}
	if len(rc.got) != 1 {
		t.Fatalf("receiver got %d requests", len(rc.got))
	}
	g := rc.got[0]
	if g.header.Get("Idempotency-Key") != msg.DedupKey || g.header.Get("X-Sidekick-Event") != "notification" ||
		g.header.Get("X-Sidekick-Timestamp") != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("headers = %v", g.header)
	}
	want := webhook.Payload{
		Version: "1", Type: "notification", DedupKey: msg.DedupKey, NotificationID: "n1", DeliveryID: "d1",
		ConversationID: "c42", Urgency: "page", Title: msg.Title, Text: msg.Text, Links: msg.Links,
		Recipient: webhook.Recipient{PersonID: "alice", Name: "Alice", Email: "alice@example.com", SlackID: "U0ALICE", Role: "Support Hero"},
		Attempt:   2, SentAt: now,
	}
	got := g.payload
	if got.Version != want.Version || got.Type != want.Type || got.DedupKey != want.DedupKey || got.ConversationID != want.ConversationID ||
		got.Urgency != want.Urgency || got.Title != want.Title || got.Text != want.Text || len(got.Links) != 1 || got.Links[0] != want.Links[0] ||
		got.Recipient != want.Recipient || got.Attempt != 2 || !got.SentAt.Equal(now) || got.Status != "" {
		t.Errorf("payload = %+v\nwant      %+v", got, want)
	}
	// The documented field names, as a receiver in another language sees them.
	for _, k := range []string{"version", "type", "dedup_key", "notification_id", "delivery_id", "conversation_id", "urgency", "title", "text", "links", "recipient", "attempt", "sent_at"} {
		if _, ok := g.raw[k]; !ok {
			t.Errorf("payload lacks %q: %v", k, g.raw)
		}
	}
}

func TestRetriedSendKeepsIdempotencyKey(t *testing.T) {
	ch, rc, _ := setup(t, status(http.StatusBadGateway))
	if _, err := ch.Send(context.Background(), msg); err == nil || notify.IsPermanent(err) {
		t.Fatalf("502: err = %v, want a retryable error", err)
	}
	if _, err := ch.Send(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 2 || rc.got[0].header.Get("Idempotency-Key") != rc.got[1].header.Get("Idempotency-Key") {
		t.Errorf("idempotency keys differ across the retry: %d requests", len(rc.got))
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name      string
		answer    func(http.ResponseWriter)
		wantErr   bool
		permanent bool
		after     time.Duration // 0: no Retry-After expected
	}{
		{"200", status(http.StatusOK), false, false, 0},
		{"202", status(http.StatusAccepted), false, false, 0},
		{"429 with seconds", status(http.StatusTooManyRequests, "Retry-After", "7"), true, false, 7 * time.Second},
		{"429 with a date", status(http.StatusTooManyRequests, "Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), true, false, 90 * time.Second},
		{"503 with seconds", status(http.StatusServiceUnavailable, "Retry-After", "30"), true, false, 30 * time.Second},
		{"500", status(http.StatusInternalServerError), true, false, 0},
		{"408", status(http.StatusRequestTimeout), true, false, 0},
		{"400", status(http.StatusBadRequest), true, true, 0},
		{"401", status(http.StatusUnauthorized), true, true, 0},
		{"404", status(http.StatusNotFound), true, true, 0},
		{"410", status(http.StatusGone), true, true, 0},
		{"redirect", status(http.StatusFound, "Location", "/elsewhere"), true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, _, _ := setup(t, tt.answer)
			_, err := ch.Send(context.Background(), msg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			if notify.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v (%v)", notify.IsPermanent(err), tt.permanent, err)
			}
			after, ok := notify.RetryAfter(err)
			if ok != (tt.after > 0) || after != tt.after {
				t.Errorf("retry after = %s, %v; want %s", after, ok, tt.after)
			}
		})
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	ch, _, srv := setup(t)
	srv.Close()
	_, err := ch.Send(context.Background(), msg)
	if err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
}

func TestUpdate(t *testing.T) {
	ch, rc, _ := setup(t)
	if err := ch.Update(context.Background(), notify.Receipt{Ref: msg.DedupKey}, msg, "acknowledged by alice"); err != nil {
		t.Fatal(err)
	}
	g := rc.got[0]
	if g.payload.Type != "notification.updated" || g.payload.Status != "acknowledged by alice" ||
		g.header.Get("X-Sidekick-Event") != "notification.updated" ||
		g.header.Get("Idempotency-Key") != msg.DedupKey+"|acknowledged by alice" {
		t.Errorf("update = %+v %v", g.payload, g.header)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"version":"1"}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	h := http.Header{}
	h.Set("X-Sidekick-Timestamp", ts)
	h.Set("X-Sidekick-Signature", webhook.Sign(secret, ts, body))
	if err := webhook.Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("fresh request: %v", err)
	}
	if err := webhook.Verify(secret, h, []byte(`{"version":"2"}`), now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("tampered body: %v", err)
	}
	if err := webhook.Verify([]byte("other"), h, body, now, 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("other secret: %v", err)
	}
	if err := webhook.Verify(secret, h, body, now.Add(time.Hour), 5*time.Minute); !errors.Is(err, webhook.ErrStale) {
		t.Errorf("replayed an hour later: %v", err)
	}
	// Moving the timestamp forward breaks the signature.
	h.Set("X-Sidekick-Timestamp", strconv.FormatInt(now.Add(time.Hour).Unix(), 10))
	if err := webhook.Verify(secret, h, body, now.Add(time.Hour), 5*time.Minute); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("re-timestamped replay: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []webhook.Options{
		{Secret: secret},
		{URL: "ftp://example.com", Secret: secret},
		{URL: "https://example.com/hook"},
	} {
		if _, err := webhook.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
