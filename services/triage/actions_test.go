package triage

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// ListPeople answers with the tests' people: alice is U0ALICE.
func (*fakeRotation) ListPeople(context.Context, *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	return &rotationv1.ListPeopleResponse{People: testPeople()}, nil
}

// TestCloseAndAssignActions: the Close button (support.action.close) closes
// the conversation in triage, recorded under the person who clicked; an
// assign action reassigns; redelivered actions change nothing more.
func TestCloseAndAssignActions(t *testing.T) {
	h := newHarness(t)
	h.deps.Rotation = serveRotation(t, &fakeRotation{hero: "bob"})
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	th := triagetest.Slack("ACT")
	h.send(t, at(h.clock, th.Customer("U0CUST", "Recordings are missing")))
	h.settled(t)
	id := byThread(t, convs, th.ThreadKey).GetId()

	pub := bus.NewPublisher(h.js, "test/ingest-slack")
	act := func(evID string, a *supportv1.Action) {
		t.Helper()
		a.Id, a.ConversationId, a.OccurredAt = evID, id, timestamppb.New(h.clock.Now())
		subject := map[supportv1.ActionType]string{supportv1.ActionType_ACTION_TYPE_CLOSE: "close", supportv1.ActionType_ACTION_TYPE_ASSIGN: "assign"}[a.GetType()]
		if _, err := pub.Publish(ctx, bus.Event{Subject: bus.ActionSubject(subject), ID: evID, Message: a}); err != nil {
			t.Fatal(err)
		}
	}
	get := func() *triagev1.GetConversationResponse {
		t.Helper()
		resp, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	act("act-assign", &supportv1.Action{Type: supportv1.ActionType_ACTION_TYPE_ASSIGN, Assignee: "carol", Actor: "bob", Source: "console"})
	triagetest.Eventually(t, "assigned to carol", func() bool { return get().GetConversation().GetAssignee() == "carol" })

	act("act-close", &supportv1.Action{Type: supportv1.ActionType_ACTION_TYPE_CLOSE, Actor: "U0ALICE", Source: "slack"})
	act("act-close-again", &supportv1.Action{Type: supportv1.ActionType_ACTION_TYPE_CLOSE, Actor: "U0ALICE", Source: "slack"})
	triagetest.Eventually(t, "closed", func() bool {
		return get().GetConversation().GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
	})
	triagetest.Eventually(t, "both close actions handled", func() bool {
		info, err := h.js.Consumer(ctx, bus.StreamActions, DurableActions)
		if err != nil {
			return false
		}
		ci, err := info.Info(ctx)
		return err == nil && ci.AckFloor.Stream == 3
	})
	resp := get()
	if c := resp.GetConversation(); c.GetCloseReason() != supportv1.CloseReason_CLOSE_REASON_RESOLVED {
		t.Fatalf("close reason %v", c.GetCloseReason())
	}
	closes := 0
	for _, e := range resp.GetAudit() {
		if e.GetAction() == "closed" {
			closes++
			if e.GetActor() != "alice" {
				t.Errorf("closed by %q, want the person behind the Slack id (alice)", e.GetActor())
			}
		}
	}
	if closes != 1 {
		t.Fatalf("want one close in the audit trail, got %d: %v", closes, resp.GetAudit())
	}
}

// TestEscalateAction: the Escalate button (support.action.escalate) is
// recorded like the console's Escalate: an audit line under the person who
// clicked and one ESCALATED event naming the action. The same action
// redelivered later (past JetStream's duplicate window) changes nothing;
// an escalation of a closed conversation is acked without a trace; one of
// an unknown conversation is dead-lettered.
func TestEscalateAction(t *testing.T) {
	h := newHarness(t)
	h.deps.Rotation = serveRotation(t, &fakeRotation{hero: "bob"})
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	open := func(thread string) string {
		t.Helper()
		th := triagetest.Slack(thread)
		h.send(t, at(h.clock, th.Customer("U0CUST", "The Helm upgrade fails")))
		h.settled(t)
		return byThread(t, convs, th.ThreadKey).GetId()
	}
	id, closed := open("ESC"), open("ESC-CLOSED")
	if _, err := convs.Close(ctx, &triagev1.CloseRequest{Id: closed, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}

	pub := bus.NewPublisher(h.js, "test/ingest-slack")
	var seq uint64
	escalate := func(msgID, actionID, conversationID string) {
		t.Helper()
		a := &supportv1.Action{Id: actionID, Type: supportv1.ActionType_ACTION_TYPE_ESCALATE, ConversationId: conversationID,
			NotificationId: "notif-1", Actor: "U0ALICE", Reason: "needs deployment knowledge", Source: "slack",
			OccurredAt: timestamppb.New(h.clock.Now())}
		ack, err := pub.Publish(ctx, bus.Event{Subject: bus.ActionSubject("escalate"), ID: msgID, Message: a})
		if err != nil {
			t.Fatal(err)
		}
		seq = ack.Sequence
	}
	escalate("act-esc", "act-esc", id)
	escalate("act-esc/redelivered", "act-esc", id)
	escalate("act-esc-closed", "act-esc-closed", closed)
	escalate("act-esc-unknown", "act-esc-unknown", "no-such-conversation")
	triagetest.Eventually(t, "every escalate action handled", func() bool {
		c, err := h.js.Consumer(ctx, bus.StreamActions, DurableActions)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream == seq
	})
	h.settled(t)

	resp, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	var escalations []*triagev1.AuditEntry
	for _, e := range resp.GetAudit() {
		if e.GetAction() == "escalated" {
			escalations = append(escalations, e)
		}
	}
	if len(escalations) != 1 || escalations[0].GetActor() != "alice" || escalations[0].GetDetail() != "needs deployment knowledge" {
		t.Fatalf("escalations in the audit trail: %v, want one by alice (the person behind U0ALICE)", escalations)
	}

	events, _ := triagetest.ConversationEvents(t, h.js)
	escalated := eventsOf(events, supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED)
	if len(escalated) != 1 {
		t.Fatalf("%d ESCALATED events, want 1: %v", len(escalated), escalated)
	}
	if e := escalated[0]; e.GetConversation().GetId() != id || e.GetActionId() != "act-esc" || e.GetActor() != "alice" ||
		e.GetReason() != "needs deployment knowledge" {
		t.Fatalf("ESCALATED event %v", e)
	}

	closedResp, err := convs.GetConversation(ctx, &triagev1.GetConversationRequest{Id: closed})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range closedResp.GetAudit() {
		if e.GetAction() == "escalated" {
			t.Errorf("the closed conversation's audit trail has an escalation: %v", e)
		}
	}

	if n := h.deadLetters(t); n != 1 {
		t.Fatalf("dead letters: %d, want 1 (the unknown conversation)", n)
	}
	// Each action id is claimed once; the closed conversation's was not.
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM inbox WHERE subject = $1`, bus.ActionSubject("escalate")); n != 1 {
		t.Fatalf("%d escalate actions claimed in the inbox, want 1", n)
	}
}
