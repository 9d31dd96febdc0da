package notifier

import (
	"context"
	"strings"
	"testing"

	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// `sidekick notify test` at the wire: alice's rules name Slack, email
// after 5 minutes and PagerDuty after 10 for pages; the test reaches all
// three at once, whatever the delays, and no webhook. Carol's rule names
// Slack, which cannot reach her (no Slack id): the answer says so.
func TestNotifyTestReachesEveryContactMethodAtOnce(t *testing.T) {
	st := newStack(t, `
people: [{id: alice}, {id: bob}, {id: carol}]
escalation:
  contact_rules:
    alice:
      - {channel: slack}
      - {channel: email, after: 5m}
      - {channel: pagerduty, after: 10m, urgency: page}
    carol:
      - {channel: slack}
      - {channel: email, after: 1m}
`)
	s, _ := st.run(t)
	client := st.grpcClient(t, s)
	test := func(person string) map[string]*supportv1.DeliveryEvent {
		t.Helper()
		resp, err := client.Notify(context.Background(), &notifyv1.NotifyRequest{
			IdempotencyKey: "test-" + person, Urgency: notifyv1.Urgency_URGENCY_HIGH, Title: "a test for " + person, Test: true,
			Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: person}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*supportv1.DeliveryEvent{}
		for _, d := range resp.GetNotification().GetDeliveries() {
			out[d.GetChannel()] = d
		}
		return out
	}

	got := test("alice")
	for _, ch := range []string{"slack", "email", "pagerduty"} {
		if got[ch].GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED {
			t.Errorf("alice's %s: %v, want delivered", ch, got[ch])
		}
	}
	if len(got) != 3 {
		t.Errorf("alice's test went through %d channels: %v", len(got), got)
	}
	if posts := st.posts("U0ALICE"); len(posts) != 1 || !strings.Contains(posts[0].Form.Get("text"), "a test for alice") {
		t.Errorf("Slack DMs to alice: %v", posts)
	}
	if mail := st.smtp.Mail("alice@example.com"); len(mail) != 1 {
		t.Errorf("alice got %d mails, want 1", len(mail))
	}
	if ev := st.pd.Events("trigger"); len(ev) != 1 {
		t.Errorf("PagerDuty got %d triggers, want 1", len(ev))
	}
	if n := len(st.hook.Payloads("")); n != 0 {
		t.Errorf("the webhook got %d test messages", n)
	}

	got = test("carol")
	if d := got["slack"]; d.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED || !strings.Contains(d.GetError(), "cannot reach Carol Chen") {
		t.Errorf("carol's slack: %v, want failed, cannot reach her", d)
	}
	if got["email"].GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED || len(st.smtp.Mail("carol@example.com")) != 1 {
		t.Errorf("carol's email: %v", got["email"])
	}
}
