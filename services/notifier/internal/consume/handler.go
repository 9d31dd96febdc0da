// Package consume turns what the notifier consumes into escalations,
// acknowledgements and stops: support.conversation.* events,
// support.action.{ack,escalate,close} and
// support.rotation.{shift_started,gap_ahead,gap_covered}. Each Handler method is a
// bus.Handler for one stream; it decodes the message, builds the trigger
// (triggers.go, pure functions) and hands it to the escalation runner, or
// acknowledges and stops through the dispatcher. It keeps no state of its
// own. Reminders (reminders.go) asks rotation for the shifts about to
// start and reminds their people the same way.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/escalate"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// People names the people of the organisation;
// rotationv1.RotationServiceClient satisfies it.
type People interface {
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// Handler handles the notifier's streams. Its methods are safe for
// concurrent use.
type Handler struct {
	dispatcher *deliver.Dispatcher
	runner     *escalate.Runner
	people     People
	logger     *slog.Logger
	clock      clock.Clock
	gapNotice  time.Duration
}

// Deps are the handler's collaborators.
type Deps struct {
	Dispatcher *deliver.Dispatcher
	Runner     *escalate.Runner
	// People maps a Slack user id to a person.
	People People
	Logger *slog.Logger
	// Clock dates the events that carry no time of their own.
	Clock clock.Clock
	// GapNotice is how long before a coverage gap it is announced.
	GapNotice time.Duration
}

// New returns a Handler.
func New(deps Deps) (*Handler, error) {
	switch {
	case deps.Dispatcher == nil:
		return nil, errors.New("consume: Dispatcher is required")
	case deps.Runner == nil:
		return nil, errors.New("consume: Runner is required")
	case deps.People == nil:
		return nil, errors.New("consume: People is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{dispatcher: deps.Dispatcher, runner: deps.Runner, people: deps.People, logger: deps.Logger,
		clock: clock.OrReal(deps.Clock), gapNotice: deps.GapNotice}, nil
}

// Conversation reacts to one support.conversation.* event.
func (h *Handler) Conversation(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.ConversationEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode conversation event: %w", err))
	}
	if ev.GetId() == "" {
		ev.Id = msg.Headers().Get(bus.HeaderID)
	}
	at := ev.GetOccurredAt().AsTime()
	if ev.GetOccurredAt() == nil {
		at = h.clock.Now()
	}
	if ev.GetType() == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_HANDOFF {
		return h.handoff(ctx, &ev, at)
	}
	conv := ev.GetConversation()
	if conv.GetId() == "" {
		return bus.Permanent(errors.New("conversation event without a conversation id"))
	}
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED:
		return h.stop(ctx, conv.GetId(), "answered", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED:
		return h.stop(ctx, conv.GetId(), "closed", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		if err := h.dispatcher.ResumeConversation(ctx, conv.GetId(), at); err != nil {
			return bus.AtLocation("reopened", err)
		}
	}
	d := Deadlines(&ev, at)
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		// Recorded with the escalation the event starts, in its
		// transaction: one commit for a new conversation, not two.
	default:
		if d != (store.Deadlines{}) {
			if err := h.runner.Learn(ctx, conv.GetId(), d); err != nil {
				return bus.AtLocation("deadlines", err)
			}
		}
	}
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED:
		return h.opened(ctx, &ev, at, d, OpenedKey(ev.GetId()), "opened")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		return h.opened(ctx, &ev, at, d, EventKey("reopened", ev.GetId()), "reopened")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE:
		t, ok := DeadlineTrigger(&ev, at)
		if !ok {
			return nil
		}
		return h.trigger(ctx, conv, t, "deadline")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED:
		return h.trigger(ctx, conv, EscalatedTrigger(&ev, at), "escalated")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED:
		t, ok := RetieredTrigger(&ev, at)
		if !ok {
			return nil
		}
		return h.trigger(ctx, conv, t, "retiered")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE:
		if IsAlert(conv) {
			if _, err := h.runner.Update(ctx, SentryGroup(conv.GetId()), SentryUpdate(&ev, at), at); err != nil {
				return bus.AtLocation("message", err)
			}
		}
	}
	return nil
}

// opened starts the new-conversation policy (the Sentry alert policy for a
// Sentry issue) for a conversation that opened or reopened, with the
// deadlines d the event reported.
func (h *Handler) opened(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time, d store.Deadlines, key, what string) error {
	if ev.GetId() == "" {
		return bus.Permanent(errors.New(what + " event without an id"))
	}
	t := OpenedTrigger(ev)
	t.Key, t.At, t.Deadlines = key, at, d
	return h.trigger(ctx, ev.GetConversation(), t, what)
}

// trigger starts t for an event about conv (what names the event in dead
// letters), unless the conversation was closed at once or answered or
// closed since (the runner checks that in the transaction that starts
// the escalation); the deadlines t reports are recorded either way.
func (h *Handler) trigger(ctx context.Context, conv *supportv1.Conversation, t escalate.Trigger, what string) error {
	if conv.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		return bus.AtLocation(what, h.runner.Learn(ctx, conv.GetId(), t.Deadlines))
	}
	t.UnlessStopped = true
	out, err := h.runner.Trigger(ctx, t)
	if err != nil {
		return bus.AtLocation(what, err)
	}
	if out.Stopped {
		h.logger.Info("conversation answered or closed before its event was handled; not notifying",
			"conversation", conv.GetId(), "at", t.At)
	}
	return nil
}

// stop ends the notifications and escalations of a conversation that was
// answered or closed; its response clock stopped, so its deadlines are
// void.
func (h *Handler) stop(ctx context.Context, conversationID, what, actor string, at time.Time) error {
	reason := what
	if actor != "" && actor != "system" {
		reason += " by " + actor
	}
	if err := h.dispatcher.StopConversation(ctx, conversationID, reason, at); err != nil {
		return bus.AtLocation(what, err)
	}
	if err := h.runner.ForgetDeadlines(ctx, conversationID); err != nil {
		return bus.AtLocation(what, err)
	}
	return nil
}

// zoneOf is personID's time zone, from rotation's directory; nil (UTC)
// when rotation does not answer or the person has none: a summary is not
// held back for want of a zone.
func (h *Handler) zoneOf(ctx context.Context, personID string) *time.Location {
	ps, err := h.people.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		h.logger.Warn("handoff summary in UTC: list people", "person", personID, "error", err)
		return nil
	}
	return personZones(ps.GetPeople())[personID]
}

// handoff gives the incoming hero the handoff summary when their shift
// starts: at once if rotation already said it started, else when it does
// (support.rotation.shift_started), or after the handoff wait at the
// latest.
func (h *Handler) handoff(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	if ev.GetId() == "" || ev.GetHandoff() == nil {
		return bus.Permanent(errors.New("handoff event without an id or a summary"))
	}
	t := HandoffTrigger(ev, h.zoneOf(ctx, ev.GetHandoff().GetToPerson()))
	t.At = at
	if _, err := h.runner.Handoff(ctx, t); err != nil {
		return bus.AtLocation("handoff", err)
	}
	return nil
}

// Rotation reacts to support.rotation.shift_started (releasing a waiting
// handoff summary) and gap_ahead (announcing the gap).
func (h *Handler) Rotation(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.RotationEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode rotation event: %w", err))
	}
	if ev.GetId() == "" {
		ev.Id = msg.Headers().Get(bus.HeaderID)
	}
	switch ev.GetType() {
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED:
		if !ev.GetHero() || ev.GetPersonId() == "" {
			return nil
		}
		start := ev.GetStart().AsTime()
		if ev.GetStart() == nil {
			start = ev.GetOccurredAt().AsTime()
		}
		if err := h.runner.ShiftStarted(ctx, ev.GetId(), ev.GetPersonId(), start); err != nil {
			return bus.AtLocation("shift_started", err)
		}
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD:
		if _, err := h.runner.Trigger(ctx, GapTrigger(&ev, h.gapNotice)); err != nil {
			return bus.AtLocation("gap_ahead", err)
		}
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_COVERED:
		// Not announced yet (due a day ahead): the announcement is
		// cancelled and nobody hears of a gap that is gone. Announced:
		// the same policy tells them it is gone. Never announced:
		// nothing.
		exists, fired, err := h.runner.CancelUnfired(ctx, GapKey(&ev), "gap covered before it was announced")
		if err != nil {
			return bus.AtLocation("gap_covered", err)
		}
		if !exists || !fired {
			return nil
		}
		at := ev.GetOccurredAt().AsTime()
		if ev.GetOccurredAt() == nil {
			at = h.clock.Now()
		}
		if _, err := h.runner.Trigger(ctx, GapCoveredTrigger(&ev, at)); err != nil {
			return bus.AtLocation("gap_covered", err)
		}
	}
	return nil
}

// Action reacts to support.action.{ack,escalate,close}: what people did
// from Slack buttons, the CLI or the console.
func (h *Handler) Action(ctx context.Context, msg jetstream.Msg) error {
	var a supportv1.Action
	if err := bus.Decode(msg, &a); err != nil {
		return bus.Permanent(fmt.Errorf("decode action: %w", err))
	}
	if a.GetId() == "" {
		a.Id = msg.Headers().Get(bus.HeaderID)
	}
	if a.GetNotificationId() == "" && a.GetConversationId() == "" {
		return bus.Permanent(errors.New("action names neither a notification nor a conversation"))
	}
	if a.GetSource() == "slack" {
		a.Actor = h.personForSlack(ctx, a.GetActor())
	}
	at := a.GetOccurredAt().AsTime()
	if a.GetOccurredAt() == nil {
		at = h.clock.Now()
	}
	switch a.GetType() {
	case supportv1.ActionType_ACTION_TYPE_ACK:
		return h.ack(ctx, &a, at, true)
	case supportv1.ActionType_ACTION_TYPE_ESCALATE:
		return h.escalate(ctx, &a, at)
	case supportv1.ActionType_ACTION_TYPE_CLOSE:
		conv := a.GetConversationId()
		if conv == "" {
			n, err := h.dispatcher.Notification(ctx, a.GetNotificationId())
			if err != nil {
				return permanentIfNotFound(err)
			}
			conv = n.ConversationID
		}
		if conv == "" {
			return bus.Permanent(errors.New("close action for a notification without a conversation"))
		}
		return h.stop(ctx, conv, "closed", a.GetActor(), at)
	}
	return nil
}

// personForSlack names a Slack user by their person id in the
// organisation, so audit trails and acknowledgements read "gus", not
// "U0GUS". When rotation does not know the id (or cannot be reached), the
// Slack id is kept: the acknowledgement matters more than the name.
func (h *Handler) personForSlack(ctx context.Context, slackID string) string {
	if slackID == "" {
		return slackID
	}
	resp, err := h.people.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		h.logger.Warn("map Slack user to a person", "slack_id", slackID, "error", err)
		return slackID
	}
	for _, p := range resp.GetPeople() {
		if p.GetSlackId() == slackID {
			return p.GetId()
		}
	}
	return slackID
}

// ack acknowledges the action's notification (with its escalation), or
// every notification of its conversation. Not strictly, an unknown
// notification is no error.
func (h *Handler) ack(ctx context.Context, a *supportv1.Action, at time.Time, strict bool) error {
	ack := deliver.Ack{NotificationID: a.GetNotificationId(), ConversationID: a.GetConversationId(), Actor: a.GetActor(), Source: a.GetSource(), At: at}
	if _, err := h.dispatcher.Acknowledge(ctx, ack); err != nil {
		if errors.Is(err, store.ErrNotFound) && !strict {
			return nil
		}
		return permanentIfNotFound(err)
	}
	return nil
}

func permanentIfNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return bus.Permanent(err)
	}
	return bus.AtLocation("action", err)
}

// escalate handles the Escalate button: the person who clicked has seen
// the notification (it is acknowledged) and asks for the
// explicit-escalation policy, about the conversation the notification was
// for.
func (h *Handler) escalate(ctx context.Context, a *supportv1.Action, at time.Time) error {
	if a.GetNotificationId() != "" {
		if err := h.ack(ctx, a, at, false); err != nil {
			return err
		}
	}
	base, err := h.runner.EscalationOf(ctx, a.GetNotificationId(), a.GetConversationId())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return bus.AtLocation("escalate", err)
	}
	t := ActionTrigger(a, base, at)
	if t.ConversationID == "" {
		return bus.Permanent(errors.New("escalate action without a conversation"))
	}
	if stopped, err := h.dispatcher.ConversationStopped(ctx, t.ConversationID, at); err != nil || stopped {
		return bus.AtLocation("escalate", err)
	}
	if _, err := h.runner.Trigger(ctx, t); err != nil {
		return bus.AtLocation("escalate", err)
	}
	return nil
}
