package notifier

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// The handbook's defaults, driven by triage's deadlines: a Priority
// conversation pings the hero at once and pages them when the okay
// deadline passes; a breach of too late pages the team's secondary and
// pings the hero.
func TestDefaultPriorityPolicyFollowsTheDeadlines(t *testing.T) {
	st := newStack(t, "")
	s, _ := st.run(t)
	t0 := st.clock.Now()
	great, okay := t0.Add(15*time.Minute), t0.Add(time.Hour)

	ev := openedFor("ev-d0", "conv-d", "platform", t0)
	ev.Conversation.DeadlineLevel = supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT
	ev.Conversation.NextDeadlineAt = timestamppb.New(great)
	st.publish(t, bus.ConversationSubject("opened"), "ev-d0", ev)
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
	if esc := st.escalation(t, consume.OpenedKey("ev-d0")); esc.PolicyID != "priority-new" || esc.NextStep != 1 || !esc.DueAt.IsZero() {
		t.Fatalf("escalation %s at step %d due %v; want priority-new waiting at step 1 for the okay deadline", esc.PolicyID, esc.NextStep, esc.DueAt)
	}
	// The deadline the OPENED event reported is recorded by the
	// transaction that starts its escalation (one commit for a new
	// conversation, not one for each).
	var deadlineTx, escalationTx string
	if err := st.pool.QueryRow(context.Background(), `SELECT
		(SELECT xmin::text FROM conversation_deadlines WHERE conversation_id = 'conv-d'),
		(SELECT xmin::text FROM escalations WHERE key = $1)`, consume.OpenedKey("ev-d0")).Scan(&deadlineTx, &escalationTx); err != nil {
		t.Fatal(err)
	}
	if deadlineTx != escalationTx {
		t.Errorf("the deadline was recorded by transaction %s, the escalation by %s; want one transaction", deadlineTx, escalationTx)
	}

	// Triage: great passed; the conversation's next deadline is okay's.
	st.advance(t, 15*time.Minute)
	deadline := func(id string, level supportv1.DeadlineLevel, next time.Time) *supportv1.ConversationEvent {
		d := openedFor(id, "conv-d", "platform", st.clock.Now())
		d.Type, d.DeadlineLevel, d.Actor = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE, level, "system"
		d.Conversation.DeadlineLevel = level
		if !next.IsZero() {
			d.Conversation.NextDeadlineAt = timestamppb.New(next)
		}
		return d
	}
	st.handled(t, bus.ConversationSubject("deadline"), "ev-d1", deadline("ev-d1", supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY, okay))
	if esc := st.escalation(t, consume.OpenedKey("ev-d0")); !esc.DueAt.Equal(okay) {
		t.Fatalf("page due %v, want the okay deadline %v", esc.DueAt, okay)
	}
	st.advance(t, okay.Sub(st.clock.Now())-time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 1 {
		t.Fatalf("%d posts a second before the okay deadline, want 1", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "the page at the okay deadline", func() bool {
		return len(st.posts("U0ALICE")) == 2 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1
	})

	// Next working day: too late. The secondary is paged, the hero pinged.
	st.advance(t, 22*time.Hour)
	st.publish(t, bus.ConversationSubject("deadline"), "ev-d2", deadline("ev-d2", supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, time.Time{}))
	notifiertest.Eventually(t, "the breach escalation", func() bool {
		return len(st.posts("U0BOB")) == 1 && len(st.posts("U0ALICE")) == 3 && len(st.pd.Events(pagerduty.ActionTrigger)) == 2
	})
	if esc := st.escalation(t, consume.EventKey("deadline", "ev-d2")); esc.PolicyID != "deadline-breached" || esc.Status != store.EscalationDone {
		t.Errorf("breach escalation %s %s", esc.PolicyID, esc.Status)
	}
	// The same level reported again (triage retried) escalates nothing more.
	st.handled(t, bus.ConversationSubject("deadline"), "ev-d3", deadline("ev-d3", supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, time.Time{}))
	if n := len(st.posts("")); n != 4 {
		t.Errorf("%d posts after a repeated breach, want 4", n)
	}
}

// Community conversations go into the hero's digest: none is sent one by
// one; one message lists those still open when the digest is due.
func TestCommunityConversationsCollectIntoADigest(t *testing.T) {
	st := newStack(t, "")
	s, _ := st.run(t)
	community := func(id, conv, subject string) *supportv1.ConversationEvent {
		ev := openedFor(id, conv, "", st.clock.Now())
		ev.Conversation.Tier = supportv1.Tier_TIER_COMMUNITY
		ev.Conversation.Subject = subject
		return ev
	}
	st.publish(t, bus.ConversationSubject("opened"), "ev-c1", community("ev-c1", "conv-c1", "How do I self-host?"))
	st.publish(t, bus.ConversationSubject("opened"), "ev-c2", community("ev-c2", "conv-c2", "Docs typo"))
	st.publish(t, bus.ConversationSubject("opened"), "ev-c3", community("ev-c3", "conv-c3", "Feature idea"))
	st.handled(t, bus.ConversationSubject("responded"), "ev-c4", &supportv1.ConversationEvent{
		Id: "ev-c4", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, Actor: "bob",
		OccurredAt: timestamppb.New(st.clock.Now().Add(time.Minute)), Conversation: &supportv1.Conversation{Id: "conv-c2"},
	})
	st.tick(t, s)
	if n := len(st.posts("")); n != 0 {
		t.Fatalf("%d messages for Community conversations before the digest, want 0", n)
	}
	// The clock starts at 10:00 UTC: the 4-hourly digest is due at 12:00.
	st.advance(t, 2*time.Hour-time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 0 {
		t.Fatalf("%d messages a second before the digest", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "the digest", func() bool { return len(st.posts("U0ALICE")) == 1 })
	blocks := st.posts("")[0].Form.Get("blocks")
	for _, want := range []string{"Digest: 2 new conversations", "How do I self-host?", "Feature idea"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("digest lacks %q: %s", want, blocks)
		}
	}
	if strings.Contains(blocks, "Docs typo") {
		t.Errorf("the answered conversation is in the digest: %s", blocks)
	}
	st.advance(t, 4*time.Hour)
	st.tick(t, s)
	if n := len(st.posts("")); n != 1 {
		t.Errorf("%d messages after the next digest time with nothing new, want 1", n)
	}
}

// The incoming hero gets the handoff summary when their shift starts, not
// before; a coverage gap is announced the configured time ahead.
func TestHandoffWaitsForTheShiftAndGapsAreAnnounced(t *testing.T) {
	st := newStack(t, "")
	st.cfg.GapNotice = 24 * time.Hour
	// Alice reads her handoff in her own zone.
	alice := proto.Clone(notifiertest.Alice).(*rotationv1.Person)
	alice.Timezone = "America/New_York"
	st.rot.SetPerson(alice)
	ny, err := time.LoadLocation(alice.Timezone)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := st.run(t)
	ctx := context.Background()
	t0 := st.clock.Now()
	deadline := time.Date(t0.Year(), t0.Month(), t0.Day(), 15, 0, 0, 0, time.UTC).Add(24 * time.Hour)

	handoff := &supportv1.ConversationEvent{
		Id: "ev-h1", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_HANDOFF, Actor: "system",
		OccurredAt: timestamppb.New(t0),
		Handoff: &supportv1.HandoffSummary{FromPerson: "bob", ToPerson: "alice", MissingNotes: []string{"conv-h2"},
			Notes: []*supportv1.HandoffNote{{ConversationId: "conv-h1", Author: "bob", Text: "Stripe is looking at it, ticket 4411"}},
			Open: []*supportv1.Conversation{
				{Id: "conv-h1", Tier: supportv1.Tier_TIER_PRIORITY, Subject: "Checkout fails", Customer: &supportv1.CustomerRef{Name: "Acme"},
					NextDeadlineAt: timestamppb.New(deadline)},
				{Id: "conv-h2", Tier: supportv1.Tier_TIER_SUBSCRIBER, Subject: "Export is slow"},
			}},
	}
	st.handled(t, bus.ConversationSubject("handoff"), "ev-h1", handoff)
	if n := len(st.posts("")); n != 0 {
		t.Fatalf("%d messages before the shift started", n)
	}

	st.advance(t, 2*time.Minute)
	shift := &supportv1.RotationEvent{Id: "rotation:shift_started:hero:alice:1", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED,
		RotationId: "hero", Hero: true, PersonId: "alice", PreviousPersonId: "bob",
		Start: timestamppb.New(st.clock.Now()), End: timestamppb.New(st.clock.Now().Add(7 * 24 * time.Hour)), OccurredAt: timestamppb.New(st.clock.Now())}
	if _, err := st.pub.Publish(ctx, bus.Event{Subject: bus.RotationSubject("shift_started"), ID: shift.GetId(), Message: shift}); err != nil {
		t.Fatal(err)
	}
	notifiertest.Eventually(t, "the handoff summary", func() bool { return len(st.posts("U0ALICE")) == 1 })
	blocks := st.posts("")[0].Form.Get("blocks")
	for _, want := range []string{"Handoff from bob: 2 open conversations", "[Priority] Checkout fails — Acme",
		"Note from bob: Stripe is looking at it, ticket 4411", "Without a handoff note: conv-h2",
		"(next deadline " + deadline.In(ny).Format("Mon 15:04 MST") + ")"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("summary lacks %q: %s", want, blocks)
		}
	}

	// A second handoff after the shift started is sent at once.
	handoff.Id = "ev-h2"
	handoff.OccurredAt = timestamppb.New(st.clock.Now())
	st.publish(t, bus.ConversationSubject("handoff"), "ev-h2", handoff)
	notifiertest.Eventually(t, "the late handoff summary", func() bool { return len(st.posts("U0ALICE")) == 2 })

	// Rotation sees a gap 30 hours ahead: announced 24 hours before it.
	gapStart := st.clock.Now().Add(30 * time.Hour)
	gap := &supportv1.RotationEvent{Id: "rotation:gap_ahead:platform-secondary:platform:1", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD,
		RotationId: "platform-secondary", TeamId: "platform", Start: timestamppb.New(gapStart), End: timestamppb.New(gapStart.Add(8 * time.Hour)),
		OccurredAt: timestamppb.New(st.clock.Now()), Detail: "everyone on the rotation is off"}
	st.handled(t, bus.RotationSubject("gap_ahead"), gap.GetId(), gap)
	st.advance(t, 6*time.Hour-time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 2 {
		t.Fatalf("%d messages: the gap was announced more than 24h ahead", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "the gap announcement", func() bool { return len(st.posts("U0ALICE")) == 3 })
	if text := st.posts("")[2].Form.Get("text"); !strings.Contains(text, "coverage gap ahead: no platform secondary on call") {
		t.Errorf("gap announcement = %q", text)
	}
}

// The Escalate button acknowledges the message it is on and runs the
// explicit-escalation policy for the team's secondary; a second click
// while that runs escalates nothing more.
func TestEscalateButtonEscalatesOnce(t *testing.T) {
	st := newStack(t, "")
	s, _ := st.run(t)
	ctx := context.Background()
	st.publish(t, bus.ConversationSubject("opened"), "ev-x1", openedFor("ev-x1", "conv-x1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
	id := notificationOf(t, st.posts("U0ALICE")[0])
	for i, actID := range []string{"act-x1", "act-x2"} {
		act := &supportv1.Action{Id: actID, Type: supportv1.ActionType_ACTION_TYPE_ESCALATE, ConversationId: "conv-x1", NotificationId: id,
			Actor: "alice", Source: "slack", Reason: "needs deployment knowledge", OccurredAt: timestamppb.New(st.clock.Now().Add(time.Duration(i) * time.Second))}
		st.handled(t, bus.ActionSubject("escalate"), actID, act)
	}
	notifiertest.Eventually(t, "the secondary's ping", func() bool { return len(st.posts("U0BOB")) == 1 })
	if text := st.posts("U0BOB")[0].Form.Get("blocks"); !strings.Contains(text, "Alice escalated: new Priority conversation from Jane Doe") ||
		!strings.Contains(text, "needs deployment knowledge") {
		t.Errorf("escalation message = %s", text)
	}
	// The update can come from the action's handler or, when the action
	// raced the send, from the delivery that records the sent message.
	notifiertest.Eventually(t, "the hero's message updated", func() bool { return len(st.slack.Calls("chat.update")) >= 1 })
	if u := st.slack.Calls("chat.update"); len(u) != 1 || !strings.Contains(u[0].Form.Get("text"), "acknowledged by alice") {
		t.Errorf("updates = %+v; want the hero's message acknowledged", u)
	}
	// 15 minutes unacknowledged: the secondary is paged.
	st.advance(t, 15*time.Minute)
	st.tick(t, s)
	notifiertest.Eventually(t, "the secondary's page", func() bool {
		return len(st.posts("U0BOB")) == 2 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1
	})
	// The hero's own escalation was acknowledged: no page at the okay
	// deadline for her.
	if esc := st.escalation(t, consume.OpenedKey("ev-x1")); esc.Status != store.EscalationAcked {
		t.Errorf("hero's escalation %s, want acked", esc.Status)
	}
	var n int
	if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM escalations WHERE kind = 'explicit_escalation'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d explicit escalations (%v), want 1", n, err)
	}
}

// escalatedFor is triage's ESCALATED event for an escalation of
// conversationID by alice, made from the action actionID (none: from the
// console or the CLI).
func escalatedFor(eventID, conversationID, actionID string, at time.Time) *supportv1.ConversationEvent {
	ev := openedFor(eventID, conversationID, "platform", at)
	ev.Type, ev.Message = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED, nil
	ev.Actor, ev.Reason, ev.ActionId = "alice", "needs deployment knowledge", actionID
	return ev
}

// The Escalate button reaches notifier twice: the click itself
// (support.action.escalate) and triage's ESCALATED event recording it,
// which names the action. Whichever comes first pings the team's
// secondary, and 15 minutes later one page goes out; the other changes
// nothing, even when it comes after the secondary acknowledged (triage
// was behind). An escalation made in triage without the button still
// escalates.
func TestEscalateButtonAndTriagesEventEscalateOnce(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		eventFirst, ackFirst bool
	}{
		{name: "click first"},
		{name: "event first", eventFirst: true},
		{name: "event after the secondary acknowledged", ackFirst: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStack(t, "")
			s, _ := st.run(t)
			ctx := context.Background()
			st.publish(t, bus.ConversationSubject("opened"), "ev-e1", openedFor("ev-e1", "conv-e1", "platform", st.clock.Now()))
			notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
			act := &supportv1.Action{Id: "slack:action/T0/U0ALICE/1700000000.1/sidekick_escalate", Type: supportv1.ActionType_ACTION_TYPE_ESCALATE,
				ConversationId: "conv-e1", NotificationId: notificationOf(t, st.posts("U0ALICE")[0]),
				Actor: "U0ALICE", Source: "slack", Reason: "needs deployment knowledge", OccurredAt: timestamppb.New(st.clock.Now())}
			click := func() { st.handled(t, bus.ActionSubject("escalate"), act.GetId(), act) }
			echo := func() {
				st.handled(t, bus.ConversationSubject("escalated"), "ev-e2", escalatedFor("ev-e2", "conv-e1", act.GetId(), st.clock.Now()))
			}
			switch {
			case tc.eventFirst:
				echo()
				click()
			case tc.ackFirst:
				click()
				if len(st.posts("U0BOB")) != 1 {
					t.Fatalf("%d posts to the secondary after the click, want 1", len(st.posts("U0BOB")))
				}
				ack := &supportv1.Action{Id: "act-ack-bob", Type: supportv1.ActionType_ACTION_TYPE_ACK, NotificationId: notificationOf(t, st.posts("U0BOB")[0]),
					Actor: "bob", Source: "slack", OccurredAt: timestamppb.New(st.clock.Now())}
				st.handled(t, bus.ActionSubject("ack"), ack.GetId(), ack)
				if esc := st.escalation(t, consume.ActionKey("escalate", act.GetId())); esc.Status != store.EscalationAcked {
					t.Fatalf("explicit escalation %s after bob's ack, want acked", esc.Status)
				}
				echo()
			default:
				click()
				echo()
			}
			if n := len(st.posts("U0BOB")); n != 1 {
				t.Fatalf("%d posts to the secondary, want 1", n)
			}
			if esc := st.escalation(t, consume.ActionKey("escalate", act.GetId())); esc.Kind != "explicit_escalation" || esc.GroupKey != consume.ExplicitGroup("conv-e1") {
				t.Errorf("escalation %s in group %q, want explicit_escalation in %s", esc.Kind, esc.GroupKey, consume.ExplicitGroup("conv-e1"))
			}
			var n int
			if err := st.pool.QueryRow(ctx, `SELECT count(*) FROM escalations WHERE kind = 'explicit_escalation'`).Scan(&n); err != nil || n != 1 {
				t.Errorf("%d explicit escalations (%v), want 1", n, err)
			}
			if tc.ackFirst {
				// The console's Escalate names no action: a new escalation,
				// the first one being acknowledged.
				st.handled(t, bus.ConversationSubject("escalated"), "ev-e3", escalatedFor("ev-e3", "conv-e1", "", st.clock.Now()))
				if n := len(st.posts("U0BOB")); n != 2 {
					t.Fatalf("%d posts to the secondary after an escalation from the console, want 2", n)
				}
				return
			}
			// 15 minutes unacknowledged: exactly one page.
			st.advance(t, 15*time.Minute)
			st.tick(t, s)
			notifiertest.Eventually(t, "the secondary's page", func() bool { return len(st.pd.Events(pagerduty.ActionTrigger)) >= 1 })
			st.tick(t, s)
			if n := len(st.pd.Events(pagerduty.ActionTrigger)); n != 1 {
				t.Errorf("%d PagerDuty triggers, want 1", n)
			}
		})
	}
}

// The Close button stops the escalation and the message says so.
func TestCloseButtonStopsTheEscalation(t *testing.T) {
	st := newStack(t, threeSteps)
	s, _ := st.run(t)
	st.publish(t, bus.ConversationSubject("opened"), "ev-z1", openedFor("ev-z1", "conv-z1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
	st.advance(t, time.Minute)
	act := &supportv1.Action{Id: "act-z1", Type: supportv1.ActionType_ACTION_TYPE_CLOSE, NotificationId: notificationOf(t, st.posts("U0ALICE")[0]),
		Actor: "alice", Source: "slack", OccurredAt: timestamppb.New(st.clock.Now())}
	st.handled(t, bus.ActionSubject("close"), act.GetId(), act)
	// As for an ack: the action's handler or the delivery that records the
	// sent message updates it, whichever comes second.
	notifiertest.Eventually(t, "the hero's message updated", func() bool { return len(st.slack.Calls("chat.update")) >= 1 })
	if u := st.slack.Calls("chat.update"); len(u) != 1 || !strings.Contains(u[0].Form.Get("text"), "closed by alice") {
		t.Errorf("updates = %+v", u)
	}
	st.advance(t, time.Hour)
	st.tick(t, s)
	if len(st.posts("")) != 1 || len(st.pd.Events("")) != 0 {
		t.Errorf("%d posts, %d pages after closing", len(st.posts("")), len(st.pd.Events("")))
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-z1")); esc.Status != store.EscalationStopped || esc.StopReason != "closed by alice" {
		t.Errorf("escalation %s (%s)", esc.Status, esc.StopReason)
	}
}

// An event no policy matches tells nobody: it is counted every time and
// logged once per kind, not once per event (a busy Community queue made
// thousands of identical lines).
func TestUnmatchedEventsAreCountedAndLoggedOncePerKind(t *testing.T) {
	st := newStack(t, `
escalation:
  defaults: false
  policies:
    - id: priority-new
      match: {kind: new_conversation, tier: priority}
      steps:
        - {notify: hero, via: ping}
`)
	var logs notifiertest.Buffer
	st.deps.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	st.run(t)
	for i := range 3 {
		id := fmt.Sprintf("ev-u%d", i)
		ev := openedFor(id, "conv-"+id, "", st.clock.Now())
		ev.Conversation.Tier = supportv1.Tier_TIER_COMMUNITY
		st.handled(t, bus.ConversationSubject("opened"), id, ev)
	}
	if v := testutil.ToFloat64(counterVec(t, st.reg, "sidekick_notifier_events_unmatched_total")); v != 3 {
		t.Errorf("unmatched events counted %v, want 3", v)
	}
	if n := strings.Count(logs.String(), "no escalation policy matches"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logs.String())
	}
	if n := len(st.posts("")); n != 0 {
		t.Errorf("%d messages for events no policy matches", n)
	}
}
