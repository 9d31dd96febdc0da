package consume

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
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

// ExplicitGroup is the storm group of explicit escalations of a
// conversation: escalating twice while the first escalation runs (the
// button clicked twice, the click and triage's event) escalates once.
func ExplicitGroup(conversationID string) string { return "explicit/" + conversationID }

// DeadlineGroup is the storm group of a conversation's deadline
// escalations of one level: triage reporting the same level again
// escalates nothing more.
func DeadlineGroup(conversationID string, level policy.Level) string {
	return "deadline/" + conversationID + "/" + string(level)
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

// IsAlert reports whether conv is an alert conversation (a Sentry issue),
// which goes to the owning team's secondary by the sentry_alert policy.
func IsAlert(conv *supportv1.Conversation) bool {
	return conv.GetKind() == supportv1.ConversationKind_CONVERSATION_KIND_ALERT || conv.GetChannel() == supportv1.Channel_CHANNEL_SENTRY
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
	if IsAlert(conv) {
		t.Event.Kind = policy.SentryAlert
		t.Group = SentryGroup(conv.GetId())
		t.Title = "Sentry alert: " + firstNonEmpty(conv.GetSubject(), m.GetSubject(), "issue "+conv.GetThreadKey())
		if team := conv.GetTeam(); team != "" {
			t.Title += " (" + team + ")"
		}
	}
	return t
}

// RetieredTrigger is the escalation trigger of a TRIAGED event that moved
// an open conversation to another tier (a customer import, say): the new
// tier's new_conversation policy, as if it had opened in that tier, so a
// conversation raised to Priority reaches whoever Priority's policy names.
// ok is false for every other TRIAGED event, and for Sentry alerts, which
// have no customer tier to follow.
func RetieredTrigger(ev *supportv1.ConversationEvent, at time.Time) (t escalate.Trigger, ok bool) {
	conv := ev.GetConversation()
	prev := ev.GetPreviousTier()
	if prev == supportv1.Tier_TIER_UNSPECIFIED || prev == conv.GetTier() || IsAlert(conv) {
		return escalate.Trigger{}, false
	}
	return escalate.Trigger{
		Key:            EventKey("retiered", ev.GetId()),
		Event:          policyEvent(policy.NewConversation, conv),
		ConversationID: conv.GetId(),
		Title:          fmt.Sprintf("now %s (was %s): conversation from %s", tierName(conv.GetTier()), tierName(prev), who(conv)),
		Text:           strings.TrimSpace(firstNonEmpty(conv.GetSubject()) + "\n" + ev.GetReason()),
		Links:          links(conv, nil),
		At:             at,
	}, true
}

// DeadlineTrigger is the escalation trigger of a DEADLINE event that
// happened at at: the deadline policy of the level the conversation
// passed. ok is false for a level no policy is about.
func DeadlineTrigger(ev *supportv1.ConversationEvent, at time.Time) (t escalate.Trigger, ok bool) {
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
		return escalate.Trigger{}, false
	}
	e := policyEvent(policy.Deadline, conv)
	e.Level = level
	text := firstNonEmpty(conv.GetSubject())
	if r := ev.GetReason(); r != "" {
		text = strings.TrimSpace(text + "\n" + r)
	}
	return escalate.Trigger{
		Key: EventKey("deadline", ev.GetId()), Group: DeadlineGroup(conv.GetId(), level), Event: e,
		ConversationID: conv.GetId(),
		Title:          fmt.Sprintf("no first response yet to a %s conversation from %s (%s)", tierName(conv.GetTier()), who(conv), passed),
		Text:           text, Links: links(conv, ev.GetMessage()), At: at,
	}, true
}

// EscalatedTrigger is the escalation trigger of an escalation made in
// triage (Escalate over gRPC, the CLI) that happened at at: the
// explicit-escalation policy. An escalation triage made from an escalate
// action (Slack's Escalate button) names the action: it has the action's
// key, so it starts nothing when the action was handled already, even
// after that escalation was acknowledged; the first of the two to arrive
// pages.
func EscalatedTrigger(ev *supportv1.ConversationEvent, at time.Time) escalate.Trigger {
	conv := ev.GetConversation()
	key := EventKey("escalated", ev.GetId())
	if id := ev.GetActionId(); id != "" {
		key = ActionKey("escalate", id)
	}
	by := firstNonEmpty(ev.GetActor(), "someone")
	text := firstNonEmpty(conv.GetSubject())
	if r := ev.GetReason(); r != "" {
		text = strings.TrimSpace("Reason: " + r + "\n" + text)
	}
	return escalate.Trigger{
		Key: key, Group: ExplicitGroup(conv.GetId()),
		Event: policyEvent(policy.ExplicitEscalation, conv), ConversationID: conv.GetId(),
		Title: fmt.Sprintf("%s escalated a %s conversation from %s", by, tierName(conv.GetTier()), who(conv)),
		Text:  text, Links: links(conv, ev.GetMessage()), At: at,
	}
}

// ActionTrigger is the escalation trigger of an Escalate action that
// happened at at: the explicit-escalation policy, about what base (the
// escalation of the clicked notification, or the conversation's latest)
// was about. Its ConversationID is empty when neither names one.
func ActionTrigger(a *supportv1.Action, base store.Escalation, at time.Time) escalate.Trigger {
	conv := firstNonEmpty(a.GetConversationId(), base.ConversationID)
	about := firstNonEmpty(base.Title, "conversation "+conv)
	text := base.Body
	if r := a.GetReason(); r != "" {
		text = strings.TrimSpace("Reason: " + r + "\n" + text)
	}
	return escalate.Trigger{
		Key: ActionKey("escalate", a.GetId()), Group: ExplicitGroup(conv),
		Event:          policy.Event{Kind: policy.ExplicitEscalation, Tier: policy.Tier(base.Tier), Team: base.Team, Category: base.Category},
		ConversationID: conv, Title: fmt.Sprintf("%s escalated: %s", firstNonEmpty(a.GetActor(), "someone"), about),
		Text: text, Links: base.Links, At: at,
	}
}

// SentryUpdate is the line a Sentry issue's new event adds to its alert.
func SentryUpdate(ev *supportv1.ConversationEvent, at time.Time) string {
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

// HandoffTrigger is the escalation trigger of a HANDOFF event: the handoff
// policy, with the summary as text, for the incoming hero, who reads the
// deadlines in loc, their zone (nil: UTC).
func HandoffTrigger(ev *supportv1.ConversationEvent, loc *time.Location) escalate.Trigger {
	if loc == nil {
		loc = time.UTC
	}
	h := ev.GetHandoff()
	notes := map[string]*supportv1.HandoffNote{}
	for _, n := range h.GetNotes() {
		notes[n.GetConversationId()] = n
	}
	var b strings.Builder
	for _, c := range h.GetOpen() {
		fmt.Fprintf(&b, "• [%s] %s — %s", tierName(c.GetTier()), firstNonEmpty(c.GetSubject(), c.GetId()), who(c))
		if d := c.GetNextDeadlineAt(); d != nil {
			fmt.Fprintf(&b, " (next deadline %s)", d.AsTime().In(loc).Format("Mon 15:04 MST"))
		}
		if u := firstNonEmpty(c.GetShareUrl(), c.GetPermalink()); u != "" {
			fmt.Fprintf(&b, " %s", u)
		}
		b.WriteString("\n")
		if n := notes[c.GetId()]; n != nil {
			fmt.Fprintf(&b, "   Note from %s: %s\n", firstNonEmpty(n.GetAuthor(), "the hero"), excerpt(n.GetText(), 300))
		}
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

// GapTrigger is the escalation trigger of a gap_ahead event: the
// coverage_gap policy, starting notice before the gap (or when reported,
// if later).
func GapTrigger(ev *supportv1.RotationEvent, notice time.Duration) escalate.Trigger {
	start, end := ev.GetStart().AsTime(), ev.GetEnd().AsTime()
	at := ev.GetOccurredAt().AsTime()
	if announce := start.Add(-notice); announce.After(at) {
		at = announce
	}
	return escalate.Trigger{
		Key: GapKey(ev), Group: "gap/" + ev.GetRotationId() + "/" + strconv.FormatInt(start.Unix(), 10),
		Event: policy.Event{Kind: policy.CoverageGap, Team: ev.GetTeamId()},
		Title: fmt.Sprintf("coverage gap ahead: no %s from %s to %s", gapWhom(ev), start.UTC().Format(gapLayout), end.UTC().Format(gapLayout)),
		Text:  ev.GetDetail(), At: at,
	}
}

const gapLayout = "Mon 2 Jan 15:04 UTC"

func gapWhom(ev *supportv1.RotationEvent) string {
	if ev.GetHero() {
		return "Support Hero"
	}
	return firstNonEmpty(ev.GetTeamId(), ev.GetRotationId()) + " secondary on call"
}

// GapKey is the key of the escalation a gap_ahead event starts: one per
// gap (rotation's gap_id, the same in its gap_covered), or per event from
// a rotation older than gap ids.
func GapKey(ev *supportv1.RotationEvent) string {
	if id := ev.GetGapId(); id != "" {
		return "rotation.gap_ahead/" + id
	}
	return "rotation.gap_ahead/" + ev.GetId()
}

// GapCoveredTrigger is the escalation trigger of a gap_covered event
// whose gap was announced: the coverage_gap policy again, so whoever heard
// of the gap hears it is gone, at once.
func GapCoveredTrigger(ev *supportv1.RotationEvent, at time.Time) escalate.Trigger {
	start, end := ev.GetStart().AsTime(), ev.GetEnd().AsTime()
	return escalate.Trigger{
		Key:   "rotation.gap_covered/" + firstNonEmpty(ev.GetGapId(), ev.GetId()),
		Event: policy.Event{Kind: policy.CoverageGap, Team: ev.GetTeamId()},
		Title: fmt.Sprintf("coverage gap covered: the %s gap from %s to %s is no longer there as announced", gapWhom(ev),
			start.UTC().Format(gapLayout), end.UTC().Format(gapLayout)),
		Text: ev.GetDetail(), At: at,
	}
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
