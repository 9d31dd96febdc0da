package pagerduty_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
)

const routingKey = "R0UT1NGKEY0123456789abcdefghijkl" // 32 characters, as PagerDuty requires

var now = time.Date(2026, 3, 3, 11, 0, 0, 0, time.UTC)

// incident is what the fake keeps per dedup key.
type incident struct {
	status   string // triggered, acknowledged, resolved
	triggers int
}

// fakePagerDuty speaks the Events API v2 as documented: POST /v2/enqueue
// with a JSON event; 202 {"status":"success","message":"Event
// processed","dedup_key":…} for a valid one, 400 {"status":"invalid
// event","message":"Event object is invalid","errors":[…]} otherwise. It
// groups events into incidents by dedup key, as PagerDuty does: a trigger
// for an open incident is absorbed into it. Scripted answers (429, 5xx)
// are served first, without recording the event.
type fakePagerDuty struct {
	mu        sync.Mutex
	events    []map[string]any
	incidents map[string]*incident
	script    []func(http.ResponseWriter)
}

func (f *fakePagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.script) > 0 {
		next := f.script[0]
		f.script = f.script[1:]
		next(w)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/v2/enqueue" {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil {
		invalid(w, "Event object is invalid", "body is not JSON")
		return
	}
	if errs := validate(ev); len(errs) > 0 {
		invalid(w, "Event object is invalid", errs...)
		return
	}
	f.events = append(f.events, ev)
	key, _ := ev["dedup_key"].(string)
	if key == "" {
		key = fmt.Sprintf("generated-%d", len(f.events))
	}
	inc := f.incidents[key]
	switch ev["event_action"] {
	case "trigger":
		if inc == nil || inc.status == "resolved" {
			inc = &incident{status: "triggered"}
			f.incidents[key] = inc
		}
		inc.triggers++
	case "acknowledge":
		if inc != nil && inc.status == "triggered" {
			inc.status = "acknowledged"
		}
	case "resolve":
		if inc != nil {
			inc.status = "resolved"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "success", "message": "Event processed", "dedup_key": key})
}

// validate checks the documented shape of an alert event.
func validate(ev map[string]any) []string {
	var errs []string
	for k := range ev {
		if !slices.Contains([]string{"routing_key", "event_action", "dedup_key", "payload", "client", "client_url", "links", "images"}, k) {
			errs = append(errs, fmt.Sprintf("unknown field '%s'", k))
		}
	}
	if rk, _ := ev["routing_key"].(string); len(rk) != 32 {
		errs = append(errs, "Length of 'routing_key' is incorrect (should be 32 characters)")
	}
	action, _ := ev["event_action"].(string)
	if !slices.Contains([]string{"trigger", "acknowledge", "resolve"}, action) {
		errs = append(errs, "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')")
	}
	if key, ok := ev["dedup_key"].(string); ok && len(key) > 255 {
		errs = append(errs, "'dedup_key' is too long")
	} else if action != "trigger" && key == "" {
		errs = append(errs, "'dedup_key' is required for acknowledge and resolve events")
	}
	payload, hasPayload := ev["payload"].(map[string]any)
	if action == "trigger" {
		if !hasPayload {
			return append(errs, "'payload' is missing or blank")
		}
		if s, _ := payload["summary"].(string); s == "" || len([]rune(s)) > 1024 {
			errs = append(errs, "'payload.summary' is missing, blank or too long")
		}
		if s, _ := payload["source"].(string); s == "" {
			errs = append(errs, "'payload.source' is missing or blank")
		}
		if s, _ := payload["severity"].(string); !slices.Contains([]string{"critical", "error", "warning", "info"}, s) {
			errs = append(errs, "'payload.severity' is invalid")
		}
		if ts, ok := payload["timestamp"].(string); ok {
			if _, err := time.Parse(time.RFC3339, ts); err != nil {
				errs = append(errs, "'payload.timestamp' is not ISO 8601")
			}
		}
		if cd, ok := payload["custom_details"]; ok {
			if _, isObject := cd.(map[string]any); !isObject {
				errs = append(errs, "'payload.custom_details' must be an object")
			}
		}
	}
	if links, ok := ev["links"].([]any); ok {
		for _, l := range links {
			if m, _ := l.(map[string]any); m == nil || m["href"] == nil {
				errs = append(errs, "'links' entries need an href")
			}
		}
	}
	return errs
}

func invalid(w http.ResponseWriter, msg string, errs ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "invalid event", "message": msg, "errors": errs})
}

func answer(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func setup(t *testing.T, key string, script ...func(http.ResponseWriter)) (*pagerduty.Channel, *fakePagerDuty, *httptest.Server) {
	t.Helper()
	f := &fakePagerDuty{incidents: map[string]*incident{}, script: script}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ch, err := pagerduty.New(pagerduty.Options{
		RoutingKey: key, URL: srv.URL + "/v2/enqueue", ClientURL: "https://sidekick.example.com",
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return ch, f, srv
}

func message(person string) notify.Message {
	return notify.Message{
		NotificationID: "n1", DeliveryID: "d-" + person,
		Recipient: notify.Recipient{PersonID: person, Name: person, Role: "Support Hero"},
		Urgency:   notify.Page, Title: "Priority conversation from Acme unanswered for 1h", Text: "our deploy is down",
		Links:          []notify.Link{{Title: "Open in Sidekick", URL: "https://sidekick.example.com/c/c42"}},
		ConversationID: "c42", DedupKey: "k|person:" + person + "|1", Attempt: 1,
	}
}

func TestTriggerShape(t *testing.T) {
	ch, f, _ := setup(t, routingKey)
	r, err := ch.Send(context.Background(), message("alice"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Ref != "sidekick-conv-c42-alice" {
		t.Errorf("receipt = %q", r.Ref)
	}
	ev := f.events[0]
	payload := ev["payload"].(map[string]any)
	details := payload["custom_details"].(map[string]any)
	links := ev["links"].([]any)
	if ev["routing_key"] != routingKey || ev["event_action"] != "trigger" || ev["dedup_key"] != "sidekick-conv-c42-alice" ||
		ev["client"] != "Sidekick" || ev["client_url"] != "https://sidekick.example.com" {
		t.Errorf("event = %v", ev)
	}
	if payload["summary"] != "Priority conversation from Acme unanswered for 1h (for the Support Hero)" ||
		payload["source"] != "sidekick" || payload["severity"] != "critical" || payload["timestamp"] != "2026-03-03T11:00:00Z" {
		t.Errorf("payload = %v", payload)
	}
	if details["conversation_id"] != "c42" || details["recipient"] != "alice" || details["text"] != "our deploy is down" || details["urgency"] != "page" {
		t.Errorf("custom_details = %v", details)
	}
	if len(links) != 1 || links[0].(map[string]any)["href"] != "https://sidekick.example.com/c/c42" || links[0].(map[string]any)["text"] != "Open in Sidekick" {
		t.Errorf("links = %v", links)
	}
}

func TestDuplicateTriggerIsAbsorbed(t *testing.T) {
	ch, f, _ := setup(t, routingKey)
	ctx := context.Background()
	for range 2 { // a retry after a lost answer, or a second step to the same person
		if _, err := ch.Send(ctx, message("alice")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ch.Send(ctx, message("bob")); err != nil { // escalation to the secondary
		t.Fatal(err)
	}
	if len(f.incidents) != 2 || f.incidents["sidekick-conv-c42-alice"].triggers != 2 || f.incidents["sidekick-conv-c42-bob"].triggers != 1 {
		t.Errorf("incidents = %d: %+v", len(f.incidents), f.incidents)
	}
}

func TestUpdateAcknowledgesAndResolves(t *testing.T) {
	ch, f, _ := setup(t, routingKey)
	ctx := context.Background()
	m := message("alice")
	r, err := ch.Send(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Update(ctx, r, m, "acknowledged by alice"); err != nil {
		t.Fatal(err)
	}
	if got := f.incidents[r.Ref].status; got != "acknowledged" {
		t.Errorf("after ack: %s", got)
	}
	if err := ch.Update(ctx, r, m, "answered by alice"); err != nil {
		t.Fatal(err)
	}
	if got := f.incidents[r.Ref].status; got != "resolved" {
		t.Errorf("after answer: %s", got)
	}
	for _, ev := range f.events[1:] {
		if _, hasPayload := ev["payload"]; hasPayload || ev["dedup_key"] != r.Ref {
			t.Errorf("update event = %v", ev)
		}
	}
	// A receipt lost by the caller: the key is derived again.
	if err := ch.Update(ctx, notify.Receipt{}, m, "closed"); err != nil {
		t.Fatal(err)
	}
	if got := f.events[len(f.events)-1]["dedup_key"]; got != r.Ref {
		t.Errorf("derived key = %v", got)
	}
}

func TestAnswers(t *testing.T) {
	tests := []struct {
		name      string
		script    []func(http.ResponseWriter)
		key       string
		permanent bool
		after     time.Duration
	}{
		{name: "429 with Retry-After", script: []func(http.ResponseWriter){answer(http.StatusTooManyRequests, "Retry-After", "20")}, after: 20 * time.Second},
		{name: "429 without Retry-After", script: []func(http.ResponseWriter){answer(http.StatusTooManyRequests)}},
		{name: "500", script: []func(http.ResponseWriter){answer(http.StatusInternalServerError)}},
		{name: "503 with a Retry-After date", script: []func(http.ResponseWriter){answer(http.StatusServiceUnavailable, "Retry-After", now.Add(time.Minute).Format(http.TimeFormat))}, after: time.Minute},
		{name: "400 from a bad routing key", key: "too-short", permanent: true},
		{name: "403", script: []func(http.ResponseWriter){answer(http.StatusForbidden)}, permanent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := tt.key
			if key == "" {
				key = routingKey
			}
			ch, f, _ := setup(t, key, tt.script...)
			_, err := ch.Send(context.Background(), message("alice"))
			if err == nil {
				t.Fatal("no error")
			}
			if notify.IsPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v: %v", notify.IsPermanent(err), tt.permanent, err)
			}
			after, ok := notify.RetryAfter(err)
			if ok != (tt.after > 0) || after != tt.after {
				t.Errorf("retry after = %s %v, want %s", after, ok, tt.after)
			}
			if tt.permanent || len(f.events) != 0 {
				return
			}
			// The retry goes through and lands in one incident.
			if _, err := ch.Send(context.Background(), message("alice")); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if len(f.incidents) != 1 {
				t.Errorf("incidents = %v", f.incidents)
			}
		})
	}
}

func TestBadRequestNamesPagerDutysErrors(t *testing.T) {
	ch, _, _ := setup(t, "too-short")
	_, err := ch.Send(context.Background(), message("alice"))
	if err == nil || !notify.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if want := "Length of 'routing_key' is incorrect"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not carry %q", err, want)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	ch, _, srv := setup(t, routingKey)
	srv.Close()
	if _, err := ch.Send(context.Background(), message("alice")); err == nil || notify.IsPermanent(err) {
		t.Fatalf("err = %v, want retryable", err)
	}
}

func TestDedupKey(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		m    notify.Message
		want string
	}{
		{notify.Message{ConversationID: "c1", NotificationID: "n1", Recipient: notify.Recipient{PersonID: "alice"}}, "sidekick-conv-c1-alice"},
		{notify.Message{NotificationID: "n1", Recipient: notify.Recipient{PersonID: "alice"}}, "sidekick-notif-n1-alice"},
		{notify.Message{ConversationID: "c1"}, "sidekick-conv-c1"},
	}
	for _, tt := range tests {
		if got := pagerduty.DedupKey(tt.m); got != tt.want {
			t.Errorf("DedupKey(%+v) = %q, want %q", tt.m, got, tt.want)
		}
	}
	if k := pagerduty.DedupKey(notify.Message{ConversationID: string(long)}); len(k) > 255 || k != pagerduty.DedupKey(notify.Message{ConversationID: string(long)}) {
		t.Errorf("long key %q (%d)", k, len(k))
	}
}

func TestActionFor(t *testing.T) {
	for status, want := range map[string]string{
		"acknowledged by alice": "acknowledge", "answered": "resolve", "answered by bob": "resolve", "closed by bob": "resolve",
	} {
		if got := pagerduty.ActionFor(status); got != want {
			t.Errorf("ActionFor(%q) = %s, want %s", status, got, want)
		}
	}
}
