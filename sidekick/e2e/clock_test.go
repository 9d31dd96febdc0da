package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// fakeClockStack is the whole stack on a fake clock the test moves:
// stack.Clock.Advance(d) is d passing for every timer of every service.
type fakeClockStack struct {
	*devstack.Stack
	Clock *clock.Fake
}

// startStackAt runs the whole stack on a fake clock standing at at.
func startStackAt(t *testing.T, at time.Time, environ ...string) (*fakeClockStack, *syncBuffer) {
	t.Helper()
	fake := clock.NewFake(at)
	stack, console := startStackOn(t, fake, environ...)
	return &fakeClockStack{Stack: stack, Clock: fake}, console
}

// advanceUntil moves the clock by d, then waits (at most a minute of wall
// time) for cond, nudging the clock a second further every 200ms: a loop
// that was between two waits when the clock jumped, and so set its timer
// from the time before the jump, sees the next nudge.
func (s *fakeClockStack) advanceUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	s.Clock.Advance(d)
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s after moving the clock by %s (now %s)", what, d, s.Clock.Now().UTC().Format(time.RFC3339))
		}
		time.Sleep(200 * time.Millisecond)
		s.Clock.Advance(time.Second)
	}
}

// shortPolicies makes Subscriber first-response thresholds short, so a
// breach is minutes of covered time away.
const shortPolicies = `policies:
  - {tier: subscriber, first_response: 5m, okay: 10m, too_late: 30m}
`

// TestMessageToHandoffOnTheFakeClock follows one Slack message through
// everything time does to it, on a fake clock, in seconds of wall time:
//
//  1. Tuesday 10:00 London, a Subscriber writes in the shared channel;
//     the Support Hero gets a Slack DM.
//  2. Nobody answers. The clock moves past the too-late threshold (30
//     minutes of covered time, from the organisation file): triage's
//     deadline timer fires, the breach escalates by the default policy,
//     and the hero is paged (PagerDuty and a Slack DM).
//  3. The hero clicks Acknowledge on the page: the notification is
//     acknowledged and the PagerDuty incident too.
//  4. The clock moves to Monday 09:00 London, the hero handoff: rotation
//     announces the new shift, triage summarises the open conversations,
//     and the incoming hero gets the summary, with this conversation in
//     it, as a Slack DM.
func TestMessageToHandoffOnTheFakeClock(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	tuesday := time.Date(2026, 3, 3, 10, 0, 0, 0, london)
	slack := fakes.NewSlack("sidekick-demo", "T0DEMO")
	t.Cleanup(slack.Close)
	if err := slack.AddUser(`{"id":"U0CUSTOMER1","team_id":"T0ACME","name":"wile","real_name":"Wile E. Coyote",
		"is_bot":false,"profile":{"real_name":"Wile E. Coyote","display_name":"wile","email":"wile@acme.example"}}`); err != nil {
		t.Fatal(err)
	}
	pd := fakes.NewPagerDuty("e2e-routing-key")
	t.Cleanup(pd.Close)
	stack, _ := startStackAt(t, tuesday,
		"SIDEKICK_ORG_CONFIG="+orgFile(t, shortPolicies),
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL="+slack.APIURL(),
		"SIDEKICK_PAGERDUTY_ROUTING_KEY=e2e-routing-key",
		"SIDEKICK_PAGERDUTY_URL="+pd.URL(),
	)
	a := dialStack(t, stack.Stack)
	a.addCustomer(t, acmeSubscriber)
	secret := stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"]
	heroAt := func(at time.Time) *rotationv1.Person {
		t.Helper()
		resp, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: timestamppb.New(at)})
		if err != nil || resp.GetOnCall().GetPerson().GetId() == "" {
			t.Fatalf("WhoIsOnCall(hero, %s): %v %v", at, resp, err)
		}
		return resp.GetOnCall().GetPerson()
	}
	hero := heroAt(tuesday)
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range slack.Posted() {
				t.Logf("slack %s to %s: %q", m.Method, m.Target, m.Text)
			}
			t.Logf("pagerduty: %+v", pd.Events())
		}
	})
	// dm finds the Slack DM to p that match accepts.
	dm := func(p *rotationv1.Person, match func(fakes.SlackMessage) bool) (fakes.SlackMessage, bool) {
		for _, m := range slack.Posted() {
			if m.Target == p.GetSlackId() && match(m) {
				return m, true
			}
		}
		return fakes.SlackMessage{}, false
	}
	dmTo := func(p *rotationv1.Person, what string, match func(fakes.SlackMessage) bool) fakes.SlackMessage {
		t.Helper()
		var got fakes.SlackMessage
		waitFor(t, 30*time.Second, what, func() bool {
			var ok bool
			got, ok = dm(p, match)
			return ok
		})
		return got
	}

	// 1. The message, signed at the stack's time, and the hero's DM.
	now := stack.Clock.Now()
	ts := fmt.Sprintf("%d.000100", now.Unix())
	subject := "Our self-hosted upgrade to 1.43 fails on migrations"
	if code := postSlack(t, stack.HTTPAddr, secret, now.Unix(), messageEvent("Ev0CLOCK0001", "U0CUSTOMER1", subject, ts)); code != http.StatusOK {
		t.Fatalf("Slack message event: want 200, got %d", code)
	}
	ping := dmTo(hero, "the hero's DM about the new conversation", func(m fakes.SlackMessage) bool {
		_, ok := m.Button("sidekick_ack")
		return ok && strings.Contains(m.Text, "new Subscriber conversation")
	})
	_, convID, _ := ackButton(t, ping)
	c := a.get(t, convID).GetConversation()
	if c.GetTier() != supportv1.Tier_TIER_SUBSCRIBER {
		t.Fatalf("conversation %s: tier %s, want Subscriber", convID, c.GetTier())
	}
	if len(pd.Events()) != 0 {
		t.Fatalf("paged before any deadline: %+v", pd.Events())
	}

	// 2. Forty minutes later, nobody having answered: the breach escalates
	// by the default policy (deadline-breached), which pages the owning
	// team's secondary. A Slack conversation has no owning team until
	// somebody escalates it to one, so the page goes to the hero instead:
	// somebody must hear.
	var trigger fakes.PagerDutyEvent
	stack.advanceUntil(t, 40*time.Minute, "the PagerDuty page", func() bool {
		for _, e := range pd.Events() {
			if e.EventAction == "trigger" && strings.Contains(e.DedupKey, convID) {
				trigger = e
				return true
			}
		}
		return false
	})
	if level := a.get(t, convID).GetConversation().GetDeadlineLevel(); level != supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED {
		t.Errorf("paged with the conversation's deadline %s, want breached", level)
	}
	if !strings.Contains(trigger.DedupKey, hero.GetId()) {
		t.Errorf("page %q: want it for the hero, %s", trigger.DedupKey, hero.GetId())
	}
	page := dmTo(hero, "the page's Slack DM to the hero", func(m fakes.SlackMessage) bool {
		b, ok := m.Button("sidekick_ack")
		return ok && strings.HasPrefix(b.Value, "conv:"+convID+"|") && m.TS != ping.TS && strings.HasPrefix(m.Text, "page")
	})

	// 3. The hero acknowledges the page from Slack.
	pageAck, _, notifID := ackButton(t, page)
	clicked := stack.Clock.Now()
	click := blockActions("T0DEMO", hero.GetSlackId(), hero.GetId(), page.Channel, page.TS, pageAck.ActionID, pageAck.Value,
		fmt.Sprintf("%d.%06d", clicked.Unix(), clicked.Nanosecond()/1000))
	if code := postInteractionAt(t, stack.HTTPAddr, secret, clicked, click); code != http.StatusOK {
		t.Fatalf("block_actions: want 200, got %d", code)
	}
	// The click stops the whole breach escalation: the page and the hero's
	// ping of the same step are both acknowledged, by the hero.
	waitFor(t, 30*time.Second, "the page to be acknowledged", func() bool {
		n, err := a.notifier.GetNotification(rpcCtx(t), &notifyv1.GetNotificationRequest{Id: notifID})
		if err != nil {
			t.Fatalf("GetNotification(%s): %v", notifID, err)
		}
		by := n.GetNotification().GetAcknowledgedBy()
		if by != "" && by != hero.GetId() && by != hero.GetSlackId() {
			t.Fatalf("page acknowledged by %q, want the hero %s", by, hero.GetId())
		}
		return by != ""
	})
	waitFor(t, 30*time.Second, "the PagerDuty incident to be acknowledged", func() bool {
		return slices.ContainsFunc(pd.Events(), func(e fakes.PagerDutyEvent) bool {
			return e.EventAction == "acknowledge" && e.DedupKey == trigger.DedupKey
		})
	})

	// 4. On to the hero handoff, Monday 09:00 London: the incoming hero
	// gets the summary with the conversation still open.
	handoff := time.Date(2026, 3, 9, 9, 0, 0, 0, london)
	next := heroAt(handoff)
	if next.GetId() == hero.GetId() {
		t.Fatalf("the demo rotation keeps %s on for a second week", hero.GetId())
	}
	var summary fakes.SlackMessage
	stack.advanceUntil(t, handoff.Sub(stack.Clock.Now())+time.Minute, "the handoff summary to the incoming hero", func() bool {
		var ok bool
		summary, ok = dm(next, func(m fakes.SlackMessage) bool { return strings.Contains(m.Text, "handoff from") })
		return ok
	})
	if !strings.Contains(string(summary.Blocks), subject) || !strings.Contains(summary.Text, "from "+hero.GetId()) {
		t.Errorf("the handoff summary %q does not come from %s or list the open conversation %q:\n%s", summary.Text, hero.GetId(), subject, summary.Blocks)
	}
	if got := a.heroNow(t); got.GetId() != next.GetId() {
		t.Errorf("hero after the handoff: %s, want %s", got.GetId(), next.GetId())
	}
}
