package cli

import (
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestAck(t *testing.T) {
	h := newHarness(t)
	h.respond("Acknowledge", &notifyv1.AcknowledgeResponse{Acknowledged: 1})
	out, err := h.run(t, "ack", "ntf-1")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "Acknowledge", &notifyv1.AcknowledgeRequest{Id: "ntf-1", Actor: "alice"})
	if out != "acknowledged 1 notification(s) for notification ntf-1 as alice\n" {
		t.Fatalf("printed %q", out)
	}

	h.respond("Acknowledge", &notifyv1.AcknowledgeResponse{Acknowledged: 3})
	out, err = h.run(t, "ack", "--conversation", "c-42", "--actor", "bob", "--json")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "Acknowledge", &notifyv1.AcknowledgeRequest{ConversationId: "c-42", Actor: "bob"})
	var resp notifyv1.AcknowledgeResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil || resp.GetAcknowledged() != 3 {
		t.Fatalf("--json: %v %s", err, out)
	}

	h.respond("Acknowledge", &notifyv1.AcknowledgeResponse{})
	if out, err = h.run(t, "ack", "ntf-1"); err != nil || !strings.Contains(out, "nothing to acknowledge") {
		t.Fatalf("second ack: %v %q", err, out)
	}

	for _, args := range [][]string{{"ack"}, {"ack", "ntf-1", "--conversation", "c-42"}, {"ack", "a", "b"}} {
		if _, err := h.run(t, args...); err == nil || !strings.Contains(err.Error(), "NOTIFICATION_ID or --conversation") {
			t.Errorf("%v: %v", args, err)
		}
	}
	if n := h.calls("Acknowledge"); n != 3 {
		t.Fatalf("Acknowledge called %d times, want 3", n)
	}
}

func TestParseRecipient(t *testing.T) {
	person := func(id string) *notifyv1.Recipient {
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_Person{Person: id}}
	}
	role := func(r, team string) *notifyv1.Recipient {
		return &notifyv1.Recipient{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: r, Team: team}}}
	}
	good := map[string]*notifyv1.Recipient{
		"alice":              person("alice"),
		" alice ":            person("alice"),
		"hero":               role("hero", ""),
		"HERO":               role("hero", ""),
		"secondary:platform": role("secondary", "platform"),
		"person:hero":        person("hero"),
		"#support":           {Target: &notifyv1.Recipient_SlackChannel{SlackChannel: "#support"}},
	}
	for in, want := range good {
		got, err := parseRecipient(in)
		if err != nil || !proto.Equal(got, want) {
			t.Errorf("parseRecipient(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"alice", "hero", "secondary:platform", "#support"} {
		if rc, _ := parseRecipient(in); recipientText(rc) != in {
			t.Errorf("recipientText(parseRecipient(%q)) = %q", in, recipientText(rc))
		}
	}
	for _, in := range []string{"", "secondary", "secondary:", "#", "person:", "team:platform"} {
		if got, err := parseRecipient(in); err == nil {
			t.Errorf("parseRecipient(%q) = %v, want an error", in, got)
		}
	}
}

func sampleNotification() *notifyv1.Notification {
	return &notifyv1.Notification{
		Id: "ntf-7", IdempotencyKey: "incident-1", Urgency: notifyv1.Urgency_URGENCY_HIGH, Title: "EU cluster down",
		Text: "Ingest 5xx since 09:58\nsee #incidents", ConversationId: "c-42", CreatedAt: ts("2026-03-04T10:00:00Z"),
		AcknowledgedAt: ts("2026-03-04T10:03:00Z"), AcknowledgedBy: "carol",
		Deliveries: []*supportv1.DeliveryEvent{
			{Recipient: "carol", Channel: "slack", Status: supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, Attempt: 1, OccurredAt: ts("2026-03-04T10:00:01Z")},
			{Recipient: "carol", Channel: "pagerduty", Status: supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, Attempt: 3,
				Error: "PagerDuty answered 429", OccurredAt: ts("2026-03-04T10:01:00Z")},
		},
	}
}

func TestNotify(t *testing.T) {
	h := newHarness(t)
	h.respond("Notify", &notifyv1.NotifyResponse{Notification: sampleNotification(), Created: true})
	out, err := h.run(t, "notify", "--to", "secondary:platform", "--to", "#incidents", "--page", "--key", "incident-1",
		"--title", "EU cluster down", "--text", "Ingest 5xx since 09:58", "--conversation", "c-42",
		"--link", "Grafana=https://grafana.internal/d/ingest?from=now-1h", "--link", "https://status.acme.io")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "Notify", &notifyv1.NotifyRequest{
		IdempotencyKey: "incident-1", Urgency: notifyv1.Urgency_URGENCY_HIGH, Title: "EU cluster down", Text: "Ingest 5xx since 09:58",
		ConversationId: "c-42",
		Recipients: []*notifyv1.Recipient{
			{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "secondary", Team: "platform"}}},
			{Target: &notifyv1.Recipient_SlackChannel{SlackChannel: "#incidents"}},
		},
		Links: []*notifyv1.Link{
			{Title: "Grafana", Url: "https://grafana.internal/d/ingest?from=now-1h"},
			{Title: "https://status.acme.io", Url: "https://status.acme.io"},
		},
	})
	want := `notification ntf-7 sent (page, key incident-1)
RECIPIENT  CHANNEL    STATUS     ATTEMPTS  AT                    ERROR
carol      slack      delivered  1         2026-03-04 10:00 UTC  -
carol      pagerduty  failed     3         2026-03-04 10:01 UTC  PagerDuty answered 429
`
	if out != want {
		t.Fatalf("notify:\n%s\nwant:\n%s", out, want)
	}
}

func TestNotifyDefaults(t *testing.T) {
	h := newHarness(t)
	h.respond("Notify", &notifyv1.NotifyResponse{Notification: &notifyv1.Notification{Id: "ntf-8"}})
	out, err := runEnv(t, h.env, "Handoff:\n- c-42 waits for the customer\n", "notify", "--to", "hero", "--text", "-")
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	req := h.reqs["Notify"][0].(*notifyv1.NotifyRequest)
	h.mu.Unlock()
	if !regexp.MustCompile(`^cli-[0-9a-f]{16}$`).MatchString(req.GetIdempotencyKey()) {
		t.Fatalf("generated key %q", req.GetIdempotencyKey())
	}
	want := &notifyv1.NotifyRequest{
		IdempotencyKey: req.GetIdempotencyKey(), Urgency: notifyv1.Urgency_URGENCY_LOW, Text: "Handoff:\n- c-42 waits for the customer",
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}},
	}
	h.want(t, "Notify", want)
	if want := "notification ntf-8 was already sent with key " + req.GetIdempotencyKey() + ": not sent again\nno deliveries yet\n"; out != want {
		t.Fatalf("printed %q\nwant    %q", out, want)
	}

	for _, args := range [][]string{
		{"notify", "--text", "x"},
		{"notify", "--to", "hero"},
		{"notify", "--to", "secondary", "--text", "x"},
	} {
		if _, err := h.run(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if n := h.calls("Notify"); n != 1 {
		t.Fatalf("Notify called %d times", n)
	}
}

func TestNotificationShow(t *testing.T) {
	h := newHarness(t)
	h.respond("GetNotification", &notifyv1.GetNotificationResponse{Notification: sampleNotification()})
	out, err := h.run(t, "notification", "show", "ntf-7")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "GetNotification", &notifyv1.GetNotificationRequest{Id: "ntf-7"})
	want := `ID            ntf-7
Key           incident-1
Urgency       page
To            carol
Conversation  c-42
Created       2026-03-04 10:00 UTC
Acknowledged  2026-03-04 10:03 UTC by carol
Title         EU cluster down
Text:
    Ingest 5xx since 09:58
    see #incidents

RECIPIENT  CHANNEL    STATUS     ATTEMPTS  AT                    ERROR
carol      slack      delivered  1         2026-03-04 10:00 UTC  -
carol      pagerduty  failed     3         2026-03-04 10:01 UTC  PagerDuty answered 429
`
	if out != want {
		t.Fatalf("show:\n%s\nwant:\n%s", out, want)
	}
	out, err = h.run(t, "notification", "show", "ntf-7", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got notifyv1.Notification
	if err := protojson.Unmarshal([]byte(out), &got); err != nil || !proto.Equal(&got, sampleNotification()) {
		t.Fatalf("--json: %v\n%s", err, out)
	}
}

// A failure whose outcome is unknown says how to retry without sending
// twice; a refusal does not.
func TestNotifyFailureHint(t *testing.T) {
	h := newHarness(t)
	h.fail("Notify", status.Error(codes.NotFound, "resolve person nobody: unknown person"))
	_, err := h.run(t, "notify", "--to", "nobody", "--text", "x")
	if err == nil || err.Error() != "notify: not found: resolve person nobody: unknown person" {
		t.Fatalf("refused: %v", err)
	}
	h.fail("Notify", status.Error(codes.DeadlineExceeded, "context deadline exceeded"))
	_, err = h.run(t, "notify", "--to", "alice", "--text", "x", "--key", "k-1")
	if err == nil || !strings.HasSuffix(err.Error(), "retry with --key k-1 to avoid sending twice") || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("timed out: %v", err)
	}
}

// `sidekick notify test` asks for a test page to one person (default
// $USER), prints what each channel answered and fails when one failed.
func TestNotifyTest(t *testing.T) {
	h := newHarness(t)
	h.respond("Notify", &notifyv1.NotifyResponse{Created: true, Notification: &notifyv1.Notification{
		Id: "ntf-9", Urgency: notifyv1.Urgency_URGENCY_HIGH,
		Deliveries: []*supportv1.DeliveryEvent{
			{Recipient: "alice", Channel: "slack", Status: supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, Attempt: 1, OccurredAt: ts("2026-03-04T10:00:01Z")},
			{Recipient: "alice", Channel: "email", Status: supportv1.DeliveryStatus_DELIVERY_STATUS_PENDING, Attempt: 1,
				Error: "451 try again later", OccurredAt: ts("2026-03-04T10:00:01Z")},
		},
	}})
	out, err := h.run(t, "notify", "test")
	if err != nil {
		t.Fatal(err)
	}
	req := h.reqs["Notify"][0].(*notifyv1.NotifyRequest)
	if !req.GetTest() || req.GetUrgency() != notifyv1.Urgency_URGENCY_HIGH || !strings.HasPrefix(req.GetIdempotencyKey(), "test-") ||
		len(req.GetRecipients()) != 1 || req.GetRecipients()[0].GetPerson() != "alice" || !strings.Contains(req.GetText(), "sent by alice") {
		t.Fatalf("request = %v", req)
	}
	want := `test page ntf-9 sent to alice
RECIPIENT  CHANNEL  STATUS     ATTEMPTS  AT                    ERROR
alice      slack    delivered  1         2026-03-04 10:00 UTC  -
alice      email    pending    1         2026-03-04 10:00 UTC  451 try again later
answered: slack
still trying: email (sidekick notification show ntf-9)
`
	if out != want {
		t.Fatalf("notify test:\n%s\nwant:\n%s", out, want)
	}

	h.respond("Notify", &notifyv1.NotifyResponse{Created: true, Notification: &notifyv1.Notification{
		Id: "ntf-10", Deliveries: []*supportv1.DeliveryEvent{
			{Recipient: "bob", Channel: "slack", Status: supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, Attempt: 1,
				Error: "contact rule 1 (slack at once): slack cannot reach Bob"},
		},
	}})
	out, err = h.run(t, "notify", "test", "--person", "bob", "--ping")
	if err == nil || err.Error() != "bob could not be reached through slack" || !strings.Contains(out, "cannot reach Bob") {
		t.Fatalf("a failed channel: %v\n%s", err, out)
	}
	if req := h.reqs["Notify"][1].(*notifyv1.NotifyRequest); req.GetUrgency() != notifyv1.Urgency_URGENCY_LOW || req.GetRecipients()[0].GetPerson() != "bob" {
		t.Errorf("--person bob --ping: %v", req)
	}

	h.respond("Notify", &notifyv1.NotifyResponse{Created: true, Notification: &notifyv1.Notification{Id: "ntf-11"}})
	if _, err := h.run(t, "notify", "test", "--person", "zed"); err == nil || !strings.Contains(err.Error(), "no channel of this notifier can reach zed") {
		t.Errorf("nobody reachable: %v", err)
	}
}
