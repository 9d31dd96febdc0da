package triage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// DurableActions is the durable consumer of the actions triage carries
// out: support.action.close, support.action.assign and
// support.action.escalate (from Slack buttons, the CLI or the console),
// and support.action.ack, which only records when an alert was first
// acknowledged: acknowledgements belong to notifier, which also pages on
// an escalate action.
const DurableActions = "triage-actions"

// DurableAcks is the durable consumer of support.notify.acked: notifier's
// record of an acknowledgement, however it was made (Slack's Acknowledge
// button, `sidekick ack`, the console, any gRPC client), from which
// triage records when an alert was first acknowledged.
const DurableAcks = "triage-acks"

// handleAction closes, assigns or escalates the conversation an action
// names. Closing and assigning are idempotent (closing a closed
// conversation, or assigning the current assignee, changes nothing);
// escalating is done once per action id. A redelivered action is harmless.
func (s *Service) handleAction(ctx context.Context, msg jetstream.Msg) error {
	var a supportv1.Action
	if err := bus.Decode(msg, &a); err != nil {
		return bus.Permanent(err)
	}
	if a.GetId() == "" {
		a.Id = msg.Headers().Get(bus.HeaderID)
	}
	id := a.GetConversationId()
	if id == "" {
		// A button on a notification that names no conversation: nothing
		// for triage to do.
		return nil
	}
	// The engine maps the actor (a Slack user id from a button) and the
	// assignee to their person.
	who := a.GetActor()
	var err error
	switch a.GetType() {
	case supportv1.ActionType_ACTION_TYPE_CLOSE:
		_, err = s.engine.Close(ctx, id, supportv1.CloseReason_CLOSE_REASON_RESOLVED, who)
	case supportv1.ActionType_ACTION_TYPE_ASSIGN:
		if a.GetAssignee() == "" {
			return bus.Permanent(errors.New("assign action without an assignee"))
		}
		_, err = s.engine.Assign(ctx, id, a.GetAssignee(), who)
	case supportv1.ActionType_ACTION_TYPE_ESCALATE:
		return s.escalateAction(ctx, &a, msg.Subject(), who)
	case supportv1.ActionType_ACTION_TYPE_ACK:
		// Time to acknowledge an alert; an acknowledgement of a
		// conversation triage does not know is notifier's business only.
		if _, err := s.engine.Acknowledge(ctx, id, who, timeOf(a.GetOccurredAt())); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return bus.AtLocation("ack", err)
		}
		return nil
	default:
		return nil
	}
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, engine.ErrInvalid):
		// An unknown conversation, or an assignee who is not a person of
		// the organisation file: the dead letter says which.
		return bus.Permanent(fmt.Errorf("action %s: conversation %s: %w", a.GetId(), id, err))
	case err != nil:
		return bus.AtLocation("action", err)
	}
	return nil
}

// handleAcked records the first acknowledgement of an alert from
// notifier's support.notify.acked, at the time notifier recorded it. One
// acknowledgement of a conversation paged several times is one event per
// notification; the first recorded counts, and the others, like a
// redelivered event, change nothing. An acknowledgement of a conversation
// triage does not know (a notification sent over gRPC naming any id) is
// notifier's business only.
func (s *Service) handleAcked(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.DeliveryEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(err)
	}
	id := ev.GetConversationId()
	if id == "" || ev.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED {
		return nil
	}
	// The recipient of an acked event is who acknowledged.
	if _, err := s.engine.Acknowledge(ctx, id, ev.GetRecipient(), timeOf(ev.GetOccurredAt())); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return bus.AtLocation("acked", err)
	}
	return nil
}

// timeOf is the time of an event's timestamp; zero when it has none.
func timeOf(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// escalateAction records an escalation made from Slack's Escalate button
// as the console's Escalate does (audit line, ESCALATED event), naming the
// action on the event so notifier, which already escalated on the click,
// does not page twice. An escalation of a closed conversation is dropped:
// the click came too late, and asking again changes nothing.
func (s *Service) escalateAction(ctx context.Context, a *supportv1.Action, subject, who string) error {
	_, dup, err := s.engine.EscalateAction(ctx, a, subject, who)
	switch {
	case errors.Is(err, engine.ErrConflict):
		s.deps.Logger.Info("escalate action on a closed conversation; nothing recorded",
			"action", a.GetId(), "conversation", a.GetConversationId(), "actor", who)
		return nil
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, engine.ErrInvalid):
		return bus.Permanent(fmt.Errorf("action %s: conversation %s: %w", a.GetId(), a.GetConversationId(), err))
	case err != nil:
		return bus.AtLocation("action", err)
	}
	if dup {
		s.deps.Logger.Debug("escalate action already recorded", "action", a.GetId(), "conversation", a.GetConversationId())
	}
	return nil
}
