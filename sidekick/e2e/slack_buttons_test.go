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
	ping := awaitHeroPing(t, console, hero.GetName())
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

// handledBy waits until a durable consumer has acknowledged everything on
// its stream.
func handledBy(t *testing.T, stack *devstack.Stack, stream, durable string) {
	t.Helper()
	js := jetStream(t, stack)
	waitFor(t, 15*time.Second, durable+" to handle "+stream, func() bool {
		c, err := js.Consumer(rpcCtx(t), stream, durable)
		if err != nil {
			return false
		}
		info, err := c.Info(rpcCtx(t))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestSlackEscalateButton is the Escalate button: a customer's Slack
// message pings the hero; a signed block_actions interaction clicking
// Escalate on that ping (retried by Slack) is recorded by triage (the
// audit trail names the hero, one ESCALATED event on the stream names the
// click) and escalates once: notifier sees both the click and triage's
// event, and the console gets exactly one explicit-escalation message.
func TestSlackEscalateButton(t *testing.T) {
	stack, console := startStack(t)
	a := dialStack(t, stack)
	a.addCustomer(t, acmeSubscriber)
	hero := a.heroNow(t)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	js := jetStream(t, stack)
	now := time.Now()

	body := messageEvent("Ev0ESCALATE1", "U0CUSTOMER1", "Our self-hosted upgrade to 1.43 fails on migrations", fmt.Sprintf("%d.000300", now.Unix()))
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), body); code != http.StatusOK {
		t.Fatalf("Slack message event: want 200, got %d", code)
	}
	ping := awaitHeroPing(t, console, hero.GetName())

	value := "conv:" + ping.ConversationID + "|notif:" + ping.NotificationID
	// action_ts is when the click happened: not ahead of the clock, or the
	// escalation's first step would wait for it.
	clicked := time.Now()
	click := blockActions("T0DEMO", hero.GetSlackId(), hero.GetId(), fakes.DMChannel(hero.GetSlackId()), "1700000000.000300",
		"sidekick_escalate", value, fmt.Sprintf("%d.%06d", clicked.Unix(), clicked.Nanosecond()/1000))
	for range 2 { // Slack retries when the first answer is slow
		if code := postInteraction(t, stack.HTTPAddr, secret, click); code != http.StatusOK {
			t.Fatalf("block_actions: want 200, got %d", code)
		}
	}

	// Triage records it: the audit trail and one ESCALATED event.
	escalated := bus.ConversationSubject("escalated")
	waitFor(t, 15*time.Second, escalated+" on "+bus.StreamConversations, func() bool {
		return subjectCount(t, js, bus.StreamConversations, escalated) > 0
	})
	var action supportv1.Action
	if !lastOn(t, js, bus.StreamActions, bus.ActionSubject("escalate"), &action) {
		t.Fatalf("no %s event", bus.ActionSubject("escalate"))
	}
	if action.GetType() != supportv1.ActionType_ACTION_TYPE_ESCALATE || action.GetConversationId() != ping.ConversationID ||
		action.GetNotificationId() != ping.NotificationID || action.GetSource() != "slack" {
		t.Errorf("action event: %v", &action)
	}
	// Everything the click set off is handled before counting.
	handledBy(t, stack, bus.StreamActions, "triage-actions")
	handledBy(t, stack, bus.StreamActions, "notifier-actions")
	handledBy(t, stack, bus.StreamConversations, "notifier-conversations")

	if n := subjectCount(t, js, bus.StreamConversations, escalated); n != 1 {
		t.Errorf("%d %s events, want 1 (a retried click escalates once)", n, escalated)
	}
	var ev supportv1.ConversationEvent
	if !lastOn(t, js, bus.StreamConversations, escalated, &ev) {
		t.Fatalf("no %s event", escalated)
	}
	if ev.GetConversation().GetId() != ping.ConversationID || ev.GetActionId() != action.GetId() || ev.GetActor() != hero.GetId() {
		t.Errorf("%s event: conversation %q, action %q, actor %q; want %s, %s, %s", escalated,
			ev.GetConversation().GetId(), ev.GetActionId(), ev.GetActor(), ping.ConversationID, action.GetId(), hero.GetId())
	}
	var audit []string
	for _, e := range a.get(t, ping.ConversationID).GetAudit() {
		if e.GetAction() == "escalated" {
			audit = append(audit, e.GetActor())
		}
	}
	if !slices.Equal(audit, []string{hero.GetId()}) {
		t.Errorf("escalations in the audit trail by %v, want one by %s", audit, hero.GetId())
	}

	// Exactly one explicit escalation reached anyone; the hero's ping was
	// acknowledged by the click.
	var explicit []consolePing
	waitFor(t, 15*time.Second, "the explicit escalation on the console", func() bool {
		explicit = nil
		for _, p := range pingsAbout(console.String(), ping.ConversationID) {
			if strings.Contains(p.Line, " escalated") {
				explicit = append(explicit, p)
			}
		}
		return len(explicit) > 0
	})
	if len(explicit) != 1 {
		t.Fatalf("%d explicit-escalation messages on the console, want 1: %+v", len(explicit), explicit)
	}
	t.Logf("explicit escalation: %s", explicit[0].Line)
	checkAcknowledged(t, a, stack, ping.NotificationID, ping.ConversationID, hero.GetSlackId(), hero.GetId())
}
