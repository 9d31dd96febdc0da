package notifier

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/escalate"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// OpenedKey is the key of the escalation an OPENED event starts: one per
// event id, whatever Nats-Msg-Id it was published with. The notification
// of its step n has the key escalate.StepKey(OpenedKey(id), n).
func OpenedKey(eventID string) string { return "conversation.opened/" + eventID }

// EventKey is the key of the escalation a conversation event of the given
// type ("reopened", "deadline", "escalated", "handoff") starts.
func EventKey(what, eventID string) string { return "conversation." + what + "/" + eventID }

// ActionKey is the key of the escalation an action ("escalate") starts:
// one per action id, whether notifier sees the click itself or triage's
// event that carries it out (ConversationEvent.action_id).
func ActionKey(what, actionID string) string { return "action." + what + "/" + actionID }

// SentryGroup is the storm group of a Sentry conversation's alerts: one
// open escalation, its messages updated rather than repeated.
func SentryGroup(conversationID string) string { return "sentry/" + conversationID }

// handleConversation reacts to one support.conversation.* event.
func (s *Service) handleConversation(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.ConversationEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode conversation event: %w", err))
	}
	if ev.GetId() == "" {
		ev.Id = msg.Headers().Get(bus.HeaderID)
	}
	at := ev.GetOccurredAt().AsTime()
	if ev.GetOccurredAt() == nil {
		at = s.deps.Now()
	}
	if ev.GetType() == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_HANDOFF {
		return s.handoff(ctx, &ev, at)
	}
	conv := ev.GetConversation()
	if conv.GetId() == "" {
		return bus.Permanent(errors.New("conversation event without a conversation id"))
	}
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED:
		return s.stop(ctx, conv.GetId(), "answered", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED:
		return s.stop(ctx, conv.GetId(), "closed", ev.GetActor(), at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		if err := s.engine.ResumeConversation(ctx, conv.GetId(), at); err != nil {
			return bus.AtLocation("reopened", err)
		}
	}
	if err := s.learn(ctx, &ev, at); err != nil {
		return bus.AtLocation("deadlines", err)
	}
	switch ev.GetType() {
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED:
		return s.opened(ctx, &ev, at, OpenedKey(ev.GetId()), "opened")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED:
		return s.opened(ctx, &ev, at, EventKey("reopened", ev.GetId()), "reopened")
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE:
		return s.deadline(ctx, &ev, at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED:
		return s.escalated(ctx, &ev, at)
	case supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE:
		if conv.GetChannel() == supportv1.Channel_CHANNEL_SENTRY {
			if _, err := s.esc.Update(ctx, SentryGroup(conv.GetId()), sentryUpdate(&ev, at), at); err != nil {
				return bus.AtLocation("message", err)
			}
		}
	}
	return nil
}

func (s *Service) stop(ctx context.Context, conversationID, what, actor string, at time.Time) error {
	reason := what
	if actor != "" && actor != "system" {
		reason += " by " + actor
	}
	if err := s.engine.StopConversation(ctx, conversationID, reason, at); err != nil {
		return bus.AtLocation(what, err)
	}
	// The response clock stopped: its deadlines are void.
	if err := s.store.ForgetDeadlines(ctx, conversationID); err != nil {
		return bus.AtLocation(what, err)
	}
	return nil
}

// learn records the response deadlines an event tells: the conversation's
// next deadline with its current level, and the threshold a deadline event
// reports as just passed.
func (s *Service) learn(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	d := Deadlines(ev, at)
	if d == (store.Deadlines{}) {
		return nil
	}
	return s.esc.Learn(ctx, ev.GetConversation().GetId(), d)
}

// Deadlines are the response deadlines ev tells about an open
// conversation. Conversation.next_deadline_at is the threshold after its
// deadline_level: the great deadline at level GREAT (or unset), okay at
// OKAY, too late at LATE. A DEADLINE event's own time is when the
// threshold it reports was passed: great for OKAY, okay for LATE, too late
// for BREACHED.
func Deadlines(ev *supportv1.ConversationEvent, at time.Time) store.Deadlines {
	var d store.Deadlines
	c := ev.GetConversation()
	if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		return d
	}
	if next := c.GetNextDeadlineAt(); next != nil {
		switch c.GetDeadlineLevel() {
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED, supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT:
			d.Great = next.AsTime()
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY:
			d.Okay = next.AsTime()
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE:
			d.TooLate = next.AsTime()
		}
	}
	if ev.GetType() == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_DEADLINE {
		switch eventLevel(ev) {
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY:
			d.Great = at
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE:
			d.Okay = at
		case supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED:
			d.TooLate = at
		}
	}
	return d
}

func eventLevel(ev *supportv1.ConversationEvent) supportv1.DeadlineLevel {
	if l := ev.GetDeadlineLevel(); l != supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED {
		return l
	}
	return ev.GetConversation().GetDeadlineLevel()
}

// live reports whether a conversation event still calls for telling
// anyone: not closed at once (spam), not answered or closed since.
func (s *Service) live(ctx context.Context, conv *supportv1.Conversation, at time.Time) (bool, error) {
	if conv.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
		return false, nil
	}
	stopped, err := s.engine.ConversationStopped(ctx, conv.GetId(), at)
	if err != nil {
		return false, err
	}
	if stopped {
		s.deps.Logger.Info("conversation answered or closed before its event was handled; not notifying",
			"conversation", conv.GetId(), "at", at)
	}
	return !stopped, nil
}

// opened starts the new-conversation policy (the Sentry alert policy for a
// Sentry issue) for a conversation that opened or reopened.
func (s *Service) opened(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time, key, what string) error {
	if ev.GetId() == "" {
		return bus.Permanent(errors.New(what + " event without an id"))
	}
	conv := ev.GetConversation()
	if ok, err := s.live(ctx, conv, at); err != nil || !ok {
		return bus.AtLocation(what, err)
	}
	t := OpenedTrigger(ev)
	t.Key, t.At = key, at
	if _, err := s.esc.Trigger(ctx, t); err != nil {
		return bus.AtLocation(what, err)
	}
	return nil
}

// OpenedTrigger is the escalation trigger of an OPENED event: the
// new_conversation policy, or sentry_alert for a Sentry issue (grouped by
// conversation, so a storm makes one message that is updated).
func OpenedTrigger(ev *supportv1.ConversationEvent) escalate.Trigger {
	conv := ev.GetConversation()
	m := ev.GetMessage()
	var text strings.Builder
	// Slack and GitHub comments have no subject of their own: it is the
	// text's first line, which is not worth saying twice.
	if subj := firstNonEmpty(conv.GetSubject(), m.GetSubject()); subj != "" && !strings.HasPrefix(strings.TrimSpace(m.GetText()), strings.TrimSpace(subj)) {
		text.WriteString(subj)
		text.WriteString("\n")
	}
	text.WriteString(excerpt(m.GetText(), 400))
	t := escalate.Trigger{
		Key:            OpenedKey(ev.GetId()),
		Event:          policyEvent(policy.NewConversation, conv),
		ConversationID: conv.GetId(),
		Title:          fmt.Sprintf("new %s conversation from %s", tierName(conv.GetTier()), who(conv)),
		Text:           strings.TrimSpace(text.String()),
		Links:          links(conv, m),
		At:             ev.GetOccurredAt().AsTime(),
	}
	if conv.GetChannel() == supportv1.Channel_CHANNEL_SENTRY {
		t.Event.Kind = policy.SentryAlert
		t.Group = SentryGroup(conv.GetId())
		t.Title = "Sentry alert: " + firstNonEmpty(conv.GetSubject(), m.GetSubject(), "issue "+conv.GetThreadKey())
		if team := conv.GetTeam(); team != "" {
			t.Title += " (" + team + ")"
		}
	}
	return t
}

func policyEvent(kind policy.Kind, conv *supportv1.Conversation) policy.Event {
	e := policy.Event{Kind: kind, Tier: policyTier(conv.GetTier()), Team: conv.GetTeam()}
	if cs := conv.GetCategories(); len(cs) > 0 {
		e.Category = cs[0]
	}
	return e
}

func policyTier(t supportv1.Tier) policy.Tier {
	switch t {
	case supportv1.Tier_TIER_PRIORITY:
		return policy.Priority
	case supportv1.Tier_TIER_SUBSCRIBER:
		return policy.Subscriber
	case supportv1.Tier_TIER_COMMUNITY:
		return policy.Community
	}
	return ""
}

func links(conv *supportv1.Conversation, m *supportv1.InboundMessage) []notify.Link {
	var out []notify.Link
	if p := firstNonEmpty(conv.GetPermalink(), m.GetPermalink()); p != "" {
		out = append(out, notify.Link{Title: "Open in " + channelName(conv.GetChannel()), URL: p})
	}
	if u := conv.GetShareUrl(); u != "" {
		out = append(out, notify.Link{Title: "Sidekick", URL: u})
	}
	return out
}

// deadline starts the deadline policy of the level a conversation passed.
func (s *Service) deadline(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	conv := ev.GetConversation()
	var level policy.Level
	var passed string
	switch eventLevel(ev) {
	case supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY:
		level, passed = policy.Okay, "past the great deadline"
	case supportv1.DeadlineLevel_DEADLINE_LEVEL_LATE:
		level, passed = policy.Late, "past the okay deadline"
	case supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED:
		level, passed = policy.Breached, "past the too-late deadline: breached"
	default:
		return nil
	}
	if ok, err := s.live(ctx, conv, at); err != nil || !ok {
		return bus.AtLocation("deadline", err)
	}
	e := policyEvent(policy.Deadline, conv)
	e.Level = level
	text := firstNonEmpty(conv.GetSubject())
	if r := ev.GetReason(); r != "" {
		text = strings.TrimSpace(text + "\n" + r)
	}
	_, err := s.esc.Trigger(ctx, escalate.Trigger{
		Key: EventKey("deadline", ev.GetId()), Group: "deadline/" + conv.GetId() + "/" + string(level), Event: e,
		ConversationID: conv.GetId(),
		Title:          fmt.Sprintf("no first response yet to a %s conversation from %s (%s)", tierName(conv.GetTier()), who(conv), passed),
		Text:           text, Links: links(conv, ev.GetMessage()), At: at,
	})
	if err != nil {
		return bus.AtLocation("deadline", err)
	}
	return nil
}

// ExplicitGroup is the storm group of explicit escalations of a
// conversation: escalating twice while the first escalation runs (the
// button clicked twice, the click and triage's event) escalates once.
func ExplicitGroup(conversationID string) string { return "explicit/" + conversationID }

// escalated starts the explicit-escalation policy for an escalation made in
// triage (Escalate over gRPC, the CLI). An escalation triage made from an
// escalate action (Slack's Escalate button) names the action: it has the
// action's key, so it starts nothing when escalateAction already handled
// the click, even after that escalation was acknowledged; the first of the
// two to arrive pages.
func (s *Service) escalated(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	conv := ev.GetConversation()
	if ok, err := s.live(ctx, conv, at); err != nil || !ok {
		return bus.AtLocation("escalated", err)
	}
	key := EventKey("escalated", ev.GetId())
	if id := ev.GetActionId(); id != "" {
		key = ActionKey("escalate", id)
	}
	by := firstNonEmpty(ev.GetActor(), "someone")
	text := firstNonEmpty(conv.GetSubject())
	if r := ev.GetReason(); r != "" {
		text = strings.TrimSpace("Reason: " + r + "\n" + text)
	}
	_, err := s.esc.Trigger(ctx, escalate.Trigger{
		Key: key, Group: ExplicitGroup(conv.GetId()),
		Event: policyEvent(policy.ExplicitEscalation, conv), ConversationID: conv.GetId(),
		Title: fmt.Sprintf("%s escalated a %s conversation from %s", by, tierName(conv.GetTier()), who(conv)),
		Text:  text, Links: links(conv, ev.GetMessage()), At: at,
	})
	if err != nil {
		return bus.AtLocation("escalated", err)
	}
	return nil
}

// sentryUpdate is the line a Sentry issue's new event adds to its alert.
func sentryUpdate(ev *supportv1.ConversationEvent, at time.Time) string {
	m := ev.GetMessage()
	var b strings.Builder
	fmt.Fprintf(&b, "Latest at %s", at.UTC().Format("2006-01-02 15:04:05 UTC"))
	if n := m.GetAttributes()["occurrences"]; n != "" {
		fmt.Fprintf(&b, " (%s more events)", n)
	}
	if c := ev.GetConversation().GetMessageCount(); c > 0 {
		fmt.Fprintf(&b, ", %d messages in all", c)
	}
	if t := excerpt(m.GetText(), 200); t != "" {
		b.WriteString(": ")
		b.WriteString(t)
	}
	return b.String()
}

// handoff gives the incoming hero the handoff summary when their shift
// starts: at once if rotation already said it started, else when it does
// (support.rotation.shift_started), or after HandoffWait at the latest.
func (s *Service) handoff(ctx context.Context, ev *supportv1.ConversationEvent, at time.Time) error {
	h := ev.GetHandoff()
	if ev.GetId() == "" || h == nil {
		return bus.Permanent(errors.New("handoff event without an id or a summary"))
	}
	to := h.GetToPerson()
	_, started, err := s.store.ShiftStarted(ctx, to, at.Add(-s.cfg.HandoffWait), s.deps.Now())
	if err != nil {
		return bus.AtLocation("handoff", err)
	}
	t := HandoffTrigger(ev)
	t.At = at
	if !started {
		t.Hold, t.At = true, at.Add(s.cfg.HandoffWait)
	}
	if _, err := s.esc.Trigger(ctx, t); err != nil {
		return bus.AtLocation("handoff", err)
	}
	return nil
}

// HandoffTrigger is the escalation trigger of a HANDOFF event: the handoff
// policy, with the summary as text.
func HandoffTrigger(ev *supportv1.ConversationEvent) escalate.Trigger {
	h := ev.GetHandoff()
	var b strings.Builder
	for _, c := range h.GetOpen() {
		fmt.Fprintf(&b, "• [%s] %s — %s", tierName(c.GetTier()), firstNonEmpty(c.GetSubject(), c.GetId()), who(c))
		if d := c.GetNextDeadlineAt(); d != nil {
			fmt.Fprintf(&b, " (next deadline %s)", d.AsTime().UTC().Format("Mon 15:04 UTC"))
		}
		if u := firstNonEmpty(c.GetShareUrl(), c.GetPermalink()); u != "" {
			fmt.Fprintf(&b, " %s", u)
		}
		b.WriteString("\n")
	}
	if missing := h.GetMissingNotes(); len(missing) > 0 {
		fmt.Fprintf(&b, "Without a handoff note: %s\n", strings.Join(missing, ", "))
	}
	from := firstNonEmpty(h.GetFromPerson(), "the previous hero")
	n := len(h.GetOpen())
	noun := "open conversations"
	if n == 1 {
		noun = "open conversation"
	}
	return escalate.Trigger{
		Key: EventKey("handoff", ev.GetId()), Event: policy.Event{Kind: policy.Handoff}, PersonID: h.GetToPerson(),
		Title: fmt.Sprintf("handoff from %s: %d %s", from, n, noun), Text: strings.TrimSpace(b.String()),
		At: ev.GetOccurredAt().AsTime(),
	}
}

// handleRotation reacts to support.rotation.shift_started (releasing a
// waiting handoff summary) and gap_ahead (announcing the gap).
func (s *Service) handleRotation(ctx context.Context, msg jetstream.Msg) error {
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
		if err := s.store.RecordShiftStart(ctx, ev.GetId(), ev.GetPersonId(), start); err != nil {
			return bus.AtLocation("shift_started", err)
		}
		if err := s.esc.ReleaseHandoffs(ctx, ev.GetPersonId(), start); err != nil {
			return bus.AtLocation("shift_started", err)
		}
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD:
		if _, err := s.esc.Trigger(ctx, GapTrigger(&ev, s.cfg.GapNotice)); err != nil {
			return bus.AtLocation("gap_ahead", err)
		}
	}
	return nil
}

// GapTrigger is the escalation trigger of a gap_ahead event: the
// coverage_gap policy, starting notice before the gap (or when reported,
// if later).
func GapTrigger(ev *supportv1.RotationEvent, notice time.Duration) escalate.Trigger {
	start, end := ev.GetStart().AsTime(), ev.GetEnd().AsTime()
	at := ev.GetOccurredAt().AsTime()
	if announce := start.Add(-notice); announce.After(at) {
		at = announce
	}
	whom := "Support Hero"
	if !ev.GetHero() {
		whom = firstNonEmpty(ev.GetTeamId(), ev.GetRotationId()) + " secondary on call"
	}
	const layout = "Mon 2 Jan 15:04 UTC"
	return escalate.Trigger{
		Key: "rotation.gap_ahead/" + ev.GetId(), Group: "gap/" + ev.GetRotationId() + "/" + strconv.FormatInt(start.Unix(), 10),
		Event: policy.Event{Kind: policy.CoverageGap, Team: ev.GetTeamId()},
		Title: fmt.Sprintf("coverage gap ahead: no %s from %s to %s", whom, start.UTC().Format(layout), end.UTC().Format(layout)),
		Text:  ev.GetDetail(), At: at,
	}
}

// handleAction reacts to support.action.{ack,escalate,close}: what people
// did from Slack buttons, the CLI or the console.
func (s *Service) handleAction(ctx context.Context, msg jetstream.Msg) error {
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
		a.Actor = s.personForSlack(ctx, a.GetActor())
	}
	at := a.GetOccurredAt().AsTime()
	if a.GetOccurredAt() == nil {
		at = s.deps.Now()
	}
	switch a.GetType() {
	case supportv1.ActionType_ACTION_TYPE_ACK:
		return s.ack(ctx, &a, at, true)
	case supportv1.ActionType_ACTION_TYPE_ESCALATE:
		return s.escalateAction(ctx, &a, at)
	case supportv1.ActionType_ACTION_TYPE_CLOSE:
		conv := a.GetConversationId()
		if conv == "" {
			n, err := s.store.Notification(ctx, a.GetNotificationId())
			if err != nil {
				return permanentIfNotFound(err)
			}
			conv = n.ConversationID
		}
		if conv == "" {
			return bus.Permanent(errors.New("close action for a notification without a conversation"))
		}
		return s.stop(ctx, conv, "closed", a.GetActor(), at)
	}
	return nil
}

// personForSlack names a Slack user by their person id in the
// organisation, so audit trails and acknowledgements read "gus", not
// "U0GUS". When rotation does not know the id (or cannot be reached), the
// Slack id is kept: the acknowledgement matters more than the name.
func (s *Service) personForSlack(ctx context.Context, slackID string) string {
	if slackID == "" {
		return slackID
	}
	resp, err := s.deps.Rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		s.deps.Logger.Warn("map Slack user to a person", "slack_id", slackID, "error", err)
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
// every notification of its conversation.
func (s *Service) ack(ctx context.Context, a *supportv1.Action, at time.Time, strict bool) error {
	ack := deliver.Ack{NotificationID: a.GetNotificationId(), ConversationID: a.GetConversationId(), Actor: a.GetActor(), Source: a.GetSource(), At: at}
	if _, err := s.engine.Acknowledge(ctx, ack); err != nil {
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

// escalateAction handles the Escalate button: the person who clicked has
// seen the notification (it is acknowledged) and asks for the
// explicit-escalation policy, about the conversation the notification was
// for.
func (s *Service) escalateAction(ctx context.Context, a *supportv1.Action, at time.Time) error {
	var base store.Escalation
	var err error
	if id := a.GetNotificationId(); id != "" {
		if err := s.ack(ctx, a, at, false); err != nil {
			return err
		}
		n, nerr := s.store.Notification(ctx, id)
		switch {
		case nerr == nil && n.EscalationID != "":
			base, err = s.store.Escalation(ctx, n.EscalationID)
		case nerr == nil:
			base = store.Escalation{NewEscalation: store.NewEscalation{ConversationID: n.ConversationID, Title: n.Title, Body: n.Body, Links: n.Links}}
		case !errors.Is(nerr, store.ErrNotFound):
			err = nerr
		}
	} else {
		base, err = s.store.LatestEscalation(ctx, a.GetConversationId())
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return bus.AtLocation("escalate", err)
	}
	conv := firstNonEmpty(a.GetConversationId(), base.ConversationID)
	if conv == "" {
		return bus.Permanent(errors.New("escalate action without a conversation"))
	}
	if stopped, err := s.engine.ConversationStopped(ctx, conv, at); err != nil || stopped {
		return bus.AtLocation("escalate", err)
	}
	about := firstNonEmpty(base.Title, "conversation "+conv)
	text := base.Body
	if r := a.GetReason(); r != "" {
		text = strings.TrimSpace("Reason: " + r + "\n" + text)
	}
	_, err = s.esc.Trigger(ctx, escalate.Trigger{
		Key: ActionKey("escalate", a.GetId()), Group: ExplicitGroup(conv),
		Event:          policy.Event{Kind: policy.ExplicitEscalation, Tier: policy.Tier(base.Tier), Team: base.Team, Category: base.Category},
		ConversationID: conv, Title: fmt.Sprintf("%s escalated: %s", firstNonEmpty(a.GetActor(), "someone"), about),
		Text: text, Links: base.Links, At: at,
	})
	if err != nil {
		return bus.AtLocation("escalate", err)
	}
	return nil
}

func tierName(t supportv1.Tier) string {
	switch t {
	case supportv1.Tier_TIER_PRIORITY:
		return "Priority"
	case supportv1.Tier_TIER_SUBSCRIBER:
		return "Subscriber"
	case supportv1.Tier_TIER_COMMUNITY:
		return "Community"
	}
	return "untriaged"
}

func channelName(c supportv1.Channel) string {
	switch c {
	case supportv1.Channel_CHANNEL_SLACK:
		return "Slack"
	case supportv1.Channel_CHANNEL_EMAIL:
		return "email"
	case supportv1.Channel_CHANNEL_GITHUB:
		return "GitHub"
	case supportv1.Channel_CHANNEL_SENTRY:
		return "Sentry"
	}
	return "source"
}

// who names the customer behind a conversation: "Jane Doe (Acme)".
func who(c *supportv1.Conversation) string {
	a := c.GetAuthor()
	person := firstNonEmpty(a.GetName(), a.GetHandle(), a.GetEmail(), c.GetCustomer().GetName(), a.GetId())
	org := firstNonEmpty(c.GetCustomer().GetOrganisation(), a.GetOrganisation())
	if c.GetCustomer().GetName() != "" && c.GetCustomer().GetName() != person {
		org = firstNonEmpty(org, c.GetCustomer().GetName())
	}
	switch {
	case person == "" && org == "":
		return "an unknown sender"
	case org == "" || org == person:
		return person
	case person == "":
		return org
	}
	return person + " (" + org + ")"
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func excerpt(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n])) + "…"
}
