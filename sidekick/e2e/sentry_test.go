package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestSentryStorm is the Sentry path under a storm: N signed webhooks
// about one issue (error.created and event_alert.triggered, each a
// distinct event) are all answered 200 and become one conversation whose
// messages count N occurrences in all. The owning team's secondary is
// paged once: one console page, one PagerDuty alert, one signed webhook.
func TestSentryStorm(t *testing.T) {
	const (
		n       = 500
		alerts  = 100 // of them event_alert.triggered, the rest error.created
		senders = 8
		issueID = "4505871234"
		key     = "R0UTINGKEYE2E0000000000000000000"
	)
	pd := fakes.NewPagerDuty(key)
	t.Cleanup(pd.Close)
	hook := fakes.NewWebhook("e2e-webhook-secret")
	t.Cleanup(hook.Close)
	stack, console := startStack(t,
		"SIDEKICK_SENTRY_COALESCE_INTERVAL=250ms",
		"SIDEKICK_SENTRY_OWNERSHIP=api=platform",
		"SIDEKICK_PAGERDUTY_ROUTING_KEY="+key,
		"SIDEKICK_PAGERDUTY_URL="+pd.URL(),
		"SIDEKICK_WEBHOOK_URL="+hook.URL(),
		"SIDEKICK_WEBHOOK_SECRET=e2e-webhook-secret",
	)
	a := dialStack(t, stack)
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}

	// The storm: senders post at once, as Sentry's workers do.
	start := time.Now()
	codes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range senders {
		wg.Go(func() {
			for i := range next {
				ev := fakes.SentryEvent{
					Org: "acme", Project: "api", IssueID: issueID, EventID: fmt.Sprintf("%032x", i+1),
					Title: "StripeTimeout: Request to Stripe timed out after 30s", Culprit: "billing.views in charge_card",
					Time: start.Add(time.Duration(i) * time.Millisecond), Release: "api@2026.11.3",
				}
				resource, body := "error", fakes.SentryErrorCreated(ev)
				if i%(n/alerts) == 0 {
					resource, body = "event_alert", fakes.SentryEventAlertTriggered(ev, "Page on new errors")
				}
				codes[i], errs[i] = sentry.Send(context.Background(), resource, fmt.Sprintf("req-%08d", i), body)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	t.Logf("%d webhooks answered in %s", n, time.Since(start).Round(time.Millisecond))
	for i := range n {
		if errs[i] != nil || codes[i] != http.StatusOK {
			t.Fatalf("webhook %d: status %d, err %v", i, codes[i], errs[i])
		}
	}

	// One conversation; its messages count every occurrence once.
	var conv *supportv1.Conversation
	counted := 0
	waitFor(t, 30*time.Second, fmt.Sprintf("occurrences adding up to %d", n), func() bool {
		conv = a.byThread(t, supportv1.Channel_CHANNEL_SENTRY, "sentry:"+issueID)
		if conv == nil {
			return false
		}
		counted = 0
		for _, m := range a.get(t, conv.GetId()).GetMessages() {
			c, err := strconv.Atoi(m.GetAttributes()["occurrences"])
			if err != nil {
				t.Fatalf("message %s: occurrences %q: %v", m.GetId(), m.GetAttributes()["occurrences"], err)
			}
			counted += c
		}
		if counted > n {
			t.Fatalf("messages count %d occurrences, more than the %d sent", counted, n)
		}
		return counted == n
	})
	msgs := a.get(t, conv.GetId()).GetMessages()
	t.Logf("%d occurrences in %d messages", counted, len(msgs))
	if cs := a.list(t, supportv1.Channel_CHANNEL_SENTRY); len(cs) != 1 {
		t.Fatalf("want 1 Sentry conversation, got %d", len(cs))
	}
	if conv.GetTeam() != "platform" {
		t.Errorf("team %q, want platform (project api)", conv.GetTeam())
	}
	if len(msgs) >= n/2 {
		t.Errorf("%d messages for %d occurrences: the storm was not coalesced", len(msgs), n)
	}

	// Paged once: on the console, at PagerDuty, on the webhook.
	waitFor(t, 15*time.Second, "the page", func() bool {
		return len(pingsAbout(console.String(), conv.GetId())) >= 1 && len(pd.Events()) >= 1 && len(hook.Deliveries()) >= 1
	})
	if pings := conversationPings(console.String()); len(pings) != 1 || pings[0].ConversationID != conv.GetId() {
		t.Errorf("want exactly one console ping or page, about %s; got %+v", conv.GetId(), pings)
	}
	triggers := 0
	for _, ev := range pd.Events() {
		if ev.EventAction != "trigger" {
			continue
		}
		triggers++
		if ev.Payload.CustomDetails["conversation_id"] != conv.GetId() || ev.Payload.Severity != "critical" {
			t.Errorf("PagerDuty trigger %+v: want conversation %s, severity critical", ev.Payload, conv.GetId())
		}
	}
	if triggers != 1 || pd.Rejected() != 0 {
		t.Errorf("PagerDuty: %d triggers (want 1), %d rejected events", triggers, pd.Rejected())
	}
	sent := 0
	for _, d := range hook.Deliveries() {
		if d.Payload.Type == "notification" {
			sent++
			if d.Payload.ConversationID != conv.GetId() || d.Payload.Urgency != "page" {
				t.Errorf("webhook %+v: want a page about %s", d.Payload, conv.GetId())
			}
		}
	}
	if sent != 1 || hook.Rejected() != 0 {
		t.Errorf("webhook: %d notifications (want 1), %d failed the signature check", sent, hook.Rejected())
	}
}

// TestSentryStormUpdatesThePage: after a storm, the page the owning team's
// secondary got in Slack is rewritten (chat.update, buttons kept) to show
// how many events followed, as the notifier's storm handling promises
// ("one open escalation, its messages updated rather than repeated").
func TestSentryStormUpdatesThePage(t *testing.T) {
	const (
		n       = 100
		issueID = "4505879999"
	)
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	stack, _ := startStack(t,
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
		"SIDEKICK_SENTRY_COALESCE_INTERVAL=250ms",
		"SIDEKICK_SENTRY_OWNERSHIP=api=platform",
		"SIDEKICK_NOTIFIER_REFRESH_INTERVAL=1s",
	)
	a := dialStack(t, stack)
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}
	send := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			ev := fakes.SentryEvent{Org: "acme", Project: "api", IssueID: issueID, EventID: fmt.Sprintf("%032x", i+1),
				Title: "KafkaConsumerLag: partition 3 is 2h behind", Time: time.Now()}
			if code, err := sentry.Send(context.Background(), "error", fmt.Sprintf("storm-%05d", i), fakes.SentryErrorCreated(ev)); err != nil || code != http.StatusOK {
				t.Fatalf("webhook %d: status %d, err %v", i, code, err)
			}
		}
	}
	// The storm's first events open the conversation and page; the rest
	// come after the page, so they can only show as its rewrite (on a
	// slow machine the whole storm could otherwise be in before the
	// first page, leaving nothing to rewrite).
	const first = 10
	send(0, first)
	var conv *supportv1.Conversation
	waitFor(t, time.Minute, "the storm's conversation", func() bool {
		conv = a.byThread(t, supportv1.Channel_CHANNEL_SENTRY, "sentry:"+issueID)
		return conv != nil
	})
	page := awaitSlackPage(t, slack, conv.GetId())
	send(first, n)
	waitFor(t, time.Minute, fmt.Sprintf("occurrences adding up to %d", n), func() bool {
		sum := 0
		for _, m := range a.get(t, conv.GetId()).GetMessages() {
			c, _ := strconv.Atoi(m.GetAttributes()["occurrences"])
			sum += c
		}
		return sum == n
	})
	waitFor(t, time.Minute, "the page to be rewritten with the storm (chat.update keeping the buttons)", func() bool {
		for _, u := range slack.Updated() {
			if u.Channel == page.Channel && u.TS == page.TS && len(u.Buttons()) > 0 && strings.Contains(u.Text+string(u.Blocks), "more events") {
				return true
			}
		}
		return false
	})
}
