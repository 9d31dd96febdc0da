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

// ListPeople answers the Slack-id mapping: alice is U0ALICE.
func (*fakeRotation) ListPeople(context.Context, *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	return &rotationv1.ListPeopleResponse{People: []*rotationv1.Person{{Id: "alice", SlackId: "U0ALICE"}}}, nil
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
