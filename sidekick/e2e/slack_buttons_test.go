package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// acmeSubscriber is a paying customer known by their Slack user id, so
// their conversations ping the hero at once.
var acmeSubscriber = &triagev1.Customer{
	Id: "acme", Name: "Acme", Organisation: "Acme", Plan: "cloud",
	MonthlyRevenueCents: 25000, SlackUserIds: []string{"U0CUSTOMER1"},
}

// checkAcknowledged asserts that the notification is acknowledged by one
// of who, and that support.notify.acked says so, once.
func checkAcknowledged(t *testing.T, a api, stack *devstack.Stack, notificationID, conversationID string, who ...string) {
	t.Helper()
	js := jetStream(t, stack)
	var n *notifyv1.Notification
	waitFor(t, 15*time.Second, "the notification to be acknowledged", func() bool {
		resp, err := a.notifier.GetNotification(rpcCtx(t), &notifyv1.GetNotificationRequest{Id: notificationID})
		if err != nil {
			t.Fatalf("GetNotification(%s): %v", notificationID, err)
		}
		n = resp.GetNotification()
		return n.GetAcknowledgedBy() != ""
	})
	t.Logf("notification %s acknowledged by %q", notificationID, n.GetAcknowledgedBy())
	if !slices.Contains(who, n.GetAcknowledgedBy()) || n.GetAcknowledgedAt() == nil || n.GetConversationId() != conversationID {
		t.Errorf("notification %s: acknowledged by %q at %v, conversation %q; want one of %v, conversation %s",
			notificationID, n.GetAcknowledgedBy(), n.GetAcknowledgedAt(), n.GetConversationId(), who, conversationID)
	}
	subject := bus.NotifySubject("acked")
	var acked supportv1.DeliveryEvent
	waitFor(t, 15*time.Second, subject+" on "+bus.StreamNotify, func() bool {
		return lastOn(t, js, bus.StreamNotify, subject, &acked)
	})
	if acked.GetNotificationId() != notificationID || acked.GetConversationId() != conversationID ||
		acked.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED || !slices.Contains(who, acked.GetRecipient()) {
		t.Errorf("%s event: %v", subject, &acked)
	}
	if got := subjectCount(t, js, bus.StreamNotify, subject); got != 1 {
		t.Errorf("%d %s events, want 1 (a retried click acknowledges once)", got, subject)
	}
}

// TestSlackAckButton is the Acknowledge button: a customer's Slack message
// pings the hero on the console; the ids of that ping make the button's
// value "conv:<id>|notif:<id>", and a signed block_actions interaction
// clicking it acknowledges the notification (GetNotification names who)
// and puts support.notify.acked on the stream. Slack retrying the click
// changes nothing.
func TestSlackAckButton(t *testing.T) {
	stack, console := startStack(t)
	a := dialStack(t, stack)
	a.addCustomer(t, acmeSubscriber)
	hero := a.heroNow(t)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	now := time.Now()

	body := messageEvent("Ev0BUTTONS1", "U0CUSTOMER1", "Funnels show no data since this morning", fmt.Sprintf("%d.000200", now.Unix()))
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
		t.Fatalf("Slack message event: want 200, got %d", code)
	}
	var ping consolePing
	waitFor(t, 15*time.Second, "the console ping of the hero", func() bool {
		for _, p := range consolePings(console.String()) {
			if strings.HasPrefix(p.Line, "[notify] ping "+hero.GetName()+" (Support Hero)") && p.NotificationID != "" {
				ping = p
				return true
			}
		}
		return false
	})
	if cs := a.list(t, supportv1.Channel_CHANNEL_SLACK); len(cs) != 1 || cs[0].GetId() != ping.ConversationID {
		t.Fatalf("the ping names conversation %q; conversations %v", ping.ConversationID, cs)
	}

	value := "conv:" + ping.ConversationID + "|notif:" + ping.NotificationID
	click := blockActions("T0DEMO", hero.GetSlackId(), hero.GetId(), fakes.DMChannel(hero.GetSlackId()), "1700000000.000100",
		"sidekick_ack", value, fmt.Sprintf("%d.123456", now.Unix()))
	for range 2 { // Slack retries when the first answer is slow
		if code := postInteraction(t, stack.HTTPAddr, secret, click); code != http.StatusOK {
			t.Fatalf("block_actions: want 200, got %d", code)
		}
	}
	checkAcknowledged(t, a, stack, ping.NotificationID, ping.ConversationID, hero.GetSlackId(), hero.GetId())

	// The click itself is on SUPPORT_ACTIONS for any subscriber.
	var action supportv1.Action
	if !lastOn(t, jetStream(t, stack), bus.StreamActions, bus.ActionSubject("ack"), &action) {
		t.Fatalf("no %s event", bus.ActionSubject("ack"))
	}
	if action.GetType() != supportv1.ActionType_ACTION_TYPE_ACK || action.GetConversationId() != ping.ConversationID ||
		action.GetNotificationId() != ping.NotificationID || action.GetSource() != "slack" {
		t.Errorf("action event: %v", &action)
	}
}
