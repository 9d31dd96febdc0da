// Package conv is the conversation state machine: how an inbound message or
// a person's command changes a conversation, and which events and audit
// lines that produces. It is pure; the engine loads and saves.
//
// Status rules:
//   - Only a customer's posted message opens a conversation. Bot and
//     automated messages, and staff messages in a thread no customer
//     opened, are recorded and open nothing.
//   - A customer message reopens an awaiting or closed conversation
//     (REOPENED, then MESSAGE).
//   - A staff reply to an open conversation makes it await the customer
//     (RESPONDED); the first staff reply also records first_response_at and,
//     when nobody is assigned, assigns the author (ASSIGNED): their person
//     id when triage recognised them (Author.person_id), else their channel
//     identity.
//   - THREAD_CLOSED at the source closes (resolved); THREAD_REOPENED
//     reopens. EDITED and DELETED change the stored message only.
package conv

import (
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// System is the actor of changes nobody in particular made.
const System = "system"

// Event is one conversation event to publish.
type Event struct {
	Type supportv1.ConversationEventType
	// Actor is a person id or System.
	Actor  string
	Reason string
	// Message caused the event (OPENED, MESSAGE, RESPONDED).
	Message *supportv1.InboundMessage
	// Level is the threshold a DEADLINE event reports.
	Level supportv1.DeadlineLevel
	// Handoff is the summary a HANDOFF event carries.
	Handoff *supportv1.HandoffSummary
	// ActionID is the support.action the event carries out, if any.
	ActionID string
	// PreviousTier is the tier before, on a TRIAGED event that changed it.
	PreviousTier supportv1.Tier
}

// Audit actions the report reads from the conversation row, where the
// engine keeps them (who wrote the first response, when it was last
// closed): see store.ReportFact.
const (
	ActionResponded = "responded"
	ActionClosed    = "closed"
	// FirstResponse is the detail of the first ActionResponded.
	FirstResponse = "first response"
)

// Audit is one line of the audit trail.
type Audit struct {
	Actor  string
	Action string
	Detail string
}

// Store says what to do with the inbound message itself.
type Store int

// What to do with an inbound message.
const (
	// StoreInsert records the message (attached to the conversation when
	// there is one).
	StoreInsert Store = iota
	// StoreEdit replaces the stored message with the same source id.
	StoreEdit
	// StoreDelete marks the stored message with the same source id deleted.
	StoreDelete
)

// Outcome is what applying something to a conversation produced.
type Outcome struct {
	// Changed is true when the conversation row changed.
	Changed bool
	Events  []Event
	Audit   []Audit
	// Store applies to inbound messages only.
	Store Store
}

func (o *Outcome) event(t supportv1.ConversationEventType, actor, reason string, m *supportv1.InboundMessage) {
	o.Events = append(o.Events, Event{Type: t, Actor: actor, Reason: reason, Message: m})
}

// Merge appends what another change to the same conversation produced.
// Store keeps o's value.
func (o *Outcome) Merge(other Outcome) {
	o.Changed = o.Changed || other.Changed
	o.Events = append(o.Events, other.Events...)
	o.Audit = append(o.Audit, other.Audit...)
}

// Event appends an event.
func (o *Outcome) Event(e Event) { o.Events = append(o.Events, e) }

// AuditLine appends an audit line.
func (o *Outcome) AuditLine(actor, action, detail string) { o.audit(actor, action, detail) }

func (o *Outcome) audit(actor, action, detail string) {
	o.Audit = append(o.Audit, Audit{Actor: actor, Action: action, Detail: detail})
}

// Role is the author role of a message, unspecified counting as customer
// so that nothing a customer wrote is ignored.
func Role(m *supportv1.InboundMessage) supportv1.AuthorRole {
	r := m.GetAuthor().GetRole()
	if r == supportv1.AuthorRole_AUTHOR_ROLE_UNSPECIFIED {
		return supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
	}
	return r
}

// Kind is the message kind, unspecified counting as posted.
func Kind(m *supportv1.InboundMessage) supportv1.MessageKind {
	k := m.GetKind()
	if k == supportv1.MessageKind_MESSAGE_KIND_UNSPECIFIED {
		return supportv1.MessageKind_MESSAGE_KIND_POSTED
	}
	return k
}

// Opens reports whether m opens a conversation when its thread has none.
func Opens(m *supportv1.InboundMessage) bool {
	return Kind(m) == supportv1.MessageKind_MESSAGE_KIND_POSTED && Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
}

// MessageTime is when m was written: sent_at, else received_at, else now.
func MessageTime(m *supportv1.InboundMessage, now time.Time) time.Time {
	switch {
	case m.GetSentAt().IsValid() && m.GetSentAt().AsTime().Unix() > 0:
		return m.GetSentAt().AsTime()
	case m.GetReceivedAt().IsValid() && m.GetReceivedAt().AsTime().Unix() > 0:
		return m.GetReceivedAt().AsTime()
	}
	return now
}

// actorOf is who m is by: the person of the organisation file its author
// is, else their channel identity.
func actorOf(m *supportv1.InboundMessage) string {
	if id := m.GetAuthor().GetPersonId(); id != "" {
		return id
	}
	if id := m.GetAuthor().GetId(); id != "" {
		return id
	}
	return System
}

// maxSubject bounds a subject taken from a message's text.
const maxSubject = 120

// Subject is m's subject, or the first line of its text, shortened.
func Subject(m *supportv1.InboundMessage) string {
	s := strings.TrimSpace(m.GetSubject())
	if s == "" {
		s = strings.TrimSpace(m.GetText())
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
	}
	if utf8.RuneCountInString(s) > maxSubject {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:maxSubject-1])) + "…"
	}
	return s
}

// Open returns a new conversation for the message that opens it; Apply
// that message next with opened set.
func Open(id string, m *supportv1.InboundMessage, now time.Time) *supportv1.Conversation {
	at := timestamppb.New(MessageTime(m, now))
	c := &supportv1.Conversation{
		Id:        id,
		ThreadKey: m.GetThreadKey(),
		Channel:   m.GetChannel(),
		Status:    supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
		Subject:   Subject(m),
		Team:      m.GetTeam(),
		OpenedAt:  at,
		Permalink: m.GetPermalink(),
		Author:    m.GetAuthor(),
		UpdatedAt: timestamppb.New(now),
		Kind:      supportv1.ConversationKind_CONVERSATION_KIND_CUSTOMER,
	}
	if IsAlert(m) {
		c.Kind = supportv1.ConversationKind_CONVERSATION_KIND_ALERT
		c.Alert = &supportv1.Alert{Project: m.GetAttributes()[AttrProject]}
	}
	return c
}

// Apply changes c for the inbound message m; opened is true when m just
// opened c (see Open). c is nil when the thread has no conversation: the
// message is then only recorded.
func Apply(c *supportv1.Conversation, m *supportv1.InboundMessage, opened bool, now time.Time) Outcome {
	var o Outcome
	kind := Kind(m)
	switch kind {
	case supportv1.MessageKind_MESSAGE_KIND_EDITED:
		o.Store = StoreEdit
		return o
	case supportv1.MessageKind_MESSAGE_KIND_DELETED:
		o.Store = StoreDelete
		return o
	}
	if c == nil {
		return o
	}
	at := MessageTime(m, now)
	actor := actorOf(m)
	if IsAlertConversation(c) && (kind == supportv1.MessageKind_MESSAGE_KIND_UPDATED ||
		kind == supportv1.MessageKind_MESSAGE_KIND_POSTED && Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER) {
		countOccurrences(c, m, at)
		o.Changed = true
	}
	switch kind {
	case supportv1.MessageKind_MESSAGE_KIND_POSTED:
		switch Role(m) {
		case supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER:
			customerPosted(&o, c, m, opened, at, actor)
		case supportv1.AuthorRole_AUTHOR_ROLE_STAFF:
			staffPosted(&o, c, m, at, actor)
		}
	case supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED:
		if c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
			reason := "closed at the source"
			if r := m.GetAttributes()["state_reason"]; r != "" {
				reason += " (" + r + ")"
			}
			c.Status = supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
			c.CloseReason = supportv1.CloseReason_CLOSE_REASON_RESOLVED
			o.Changed = true
			o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED, actor, reason, m)
			o.audit(actor, ActionClosed, reason)
		}
	case supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED:
		if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
			reopen(&o, c, actor, "reopened at the source", m)
		}
	case supportv1.MessageKind_MESSAGE_KIND_UPDATED:
		// An aggregate changed at the source (a Sentry issue's occurrence
		// count, a GitHub label): subscribers hear it as a message event,
		// so a page can be updated; status and response clock stay.
		c.MessageCount++
		o.Changed = true
		o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, actor, "updated at the source", m)
	}
	if o.Changed {
		c.UpdatedAt = timestamppb.New(now)
	}
	return o
}

func customerPosted(o *Outcome, c *supportv1.Conversation, m *supportv1.InboundMessage, opened bool, at time.Time, actor string) {
	c.MessageCount++
	c.LastCustomerMessageAt = timestamppb.New(at)
	o.Changed = true
	switch {
	case opened:
		o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED, actor, "", m)
		o.audit(actor, "opened", supportv1.Channel_name[int32(c.GetChannel())])
		return
	case c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN:
		reopen(o, c, actor, "the customer wrote again", m)
	}
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, actor, "", m)
}

func staffPosted(o *Outcome, c *supportv1.Conversation, m *supportv1.InboundMessage, at time.Time, actor string) {
	c.MessageCount++
	o.Changed = true
	first := c.GetFirstResponseAt() == nil
	if first {
		c.FirstResponseAt = timestamppb.New(at)
	}
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		c.Status = supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER
		reason := "reply"
		if first {
			reason = FirstResponse
		}
		o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, actor, reason, m)
		o.audit(actor, ActionResponded, reason)
	} else {
		o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, actor, "", m)
	}
	if c.GetAssignee() == "" && actor != System {
		c.Assignee = actor
		o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED, actor, "first staff reply", nil)
		o.audit(actor, "assigned", "to "+actor+" (first staff reply)")
	}
}

func reopen(o *Outcome, c *supportv1.Conversation, actor, reason string, m *supportv1.InboundMessage) {
	c.Status = supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN
	c.CloseReason = supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED
	o.Changed = true
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED, actor, reason, m)
	o.audit(actor, "reopened", reason)
}

func touch(o *Outcome, c *supportv1.Conversation, now time.Time) {
	o.Changed = true
	c.UpdatedAt = timestamppb.New(now)
}

// Assign gives c to assignee ("" unassigns). Assigning to the current
// assignee changes nothing.
func Assign(c *supportv1.Conversation, assignee, actor string, now time.Time) Outcome {
	var o Outcome
	assignee = strings.TrimSpace(assignee)
	if assignee == c.GetAssignee() {
		return o
	}
	detail := "to " + assignee
	switch {
	case assignee == "":
		detail = "unassigned from " + c.GetAssignee()
	case c.GetAssignee() != "":
		detail = "from " + c.GetAssignee() + " to " + assignee
	}
	c.Assignee = assignee
	touch(&o, c, now)
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED, actor, detail, nil)
	o.audit(actor, "assigned", detail)
	return o
}

// CloseReasonName is the lowercase name of a close reason, e.g. "spam".
func CloseReasonName(r supportv1.CloseReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "CLOSE_REASON_"))
}

// Close closes c; closing it again for the same reason changes nothing.
func Close(c *supportv1.Conversation, reason supportv1.CloseReason, actor string, now time.Time) Outcome {
	var o Outcome
	if reason == supportv1.CloseReason_CLOSE_REASON_UNSPECIFIED {
		reason = supportv1.CloseReason_CLOSE_REASON_RESOLVED
	}
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED && c.GetCloseReason() == reason {
		return o
	}
	c.Status = supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED
	c.CloseReason = reason
	touch(&o, c, now)
	name := CloseReasonName(reason)
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED, actor, name, nil)
	o.audit(actor, ActionClosed, name)
	return o
}

// Reopen makes a closed or awaiting conversation open again; an open one
// is left alone.
func Reopen(c *supportv1.Conversation, actor string, now time.Time) Outcome {
	var o Outcome
	if c.GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN {
		return o
	}
	reopen(&o, c, actor, "reopened by "+actor, nil)
	c.UpdatedAt = timestamppb.New(now)
	return o
}

// Escalate records an escalation (to team when given). Every call is an
// event: escalating twice asks twice.
func Escalate(c *supportv1.Conversation, reason, team, actor string, now time.Time) Outcome {
	var o Outcome
	team = strings.TrimSpace(team)
	detail := strings.TrimSpace(reason)
	if team != "" {
		c.Team = team
		if detail != "" {
			detail += " "
		}
		detail += "(to team " + team + ")"
	}
	touch(&o, c, now)
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ESCALATED, actor, strings.TrimSpace(reason), nil)
	o.audit(actor, "escalated", detail)
	return o
}

// NormalizeLabels trims, lowercases and de-duplicates tags, keeping order
// and dropping empties.
func NormalizeLabels(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// normalizeCategories trims and de-duplicates categories (case-insensitive,
// first spelling kept), keeping order.
func normalizeCategories(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, s) }) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// Tag adds and removes tags and, when categories is not empty, replaces
// the categories (predominant first). No difference, no event.
func Tag(c *supportv1.Conversation, add, remove, categories []string, actor string, now time.Time) Outcome {
	var o Outcome
	tags := slices.Clone(c.GetTags())
	var added, removed []string
	for _, t := range NormalizeLabels(remove) {
		if i := slices.Index(tags, t); i >= 0 {
			tags = slices.Delete(tags, i, i+1)
			removed = append(removed, t)
		}
	}
	for _, t := range NormalizeLabels(add) {
		if !slices.Contains(tags, t) {
			tags = append(tags, t)
			added = append(added, t)
		}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, "+"+strings.Join(added, " +"))
	}
	if len(removed) > 0 {
		parts = append(parts, "-"+strings.Join(removed, " -"))
	}
	cats := normalizeCategories(categories)
	if len(cats) > 0 && !slices.Equal(cats, c.GetCategories()) {
		c.Categories = cats
		parts = append(parts, "categories: "+strings.Join(cats, ", "))
	}
	if len(parts) == 0 {
		return o
	}
	c.Tags = tags
	touch(&o, c, now)
	detail := strings.Join(parts, "; ")
	o.event(supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED, actor, detail, nil)
	o.audit(actor, "tagged", detail)
	return o
}

// SetTier records a (re)computed tier and customer; unchanged, no event.
func SetTier(c *supportv1.Conversation, t supportv1.Tier, reason string, customer *supportv1.CustomerRef, now time.Time) Outcome {
	var o Outcome
	if c.GetTier() == t && c.GetTierReason() == reason && c.GetCustomer().GetId() == customer.GetId() {
		return o
	}
	prev := c.GetTier()
	from := strings.ToLower(strings.TrimPrefix(prev.String(), "TIER_"))
	to := strings.ToLower(strings.TrimPrefix(t.String(), "TIER_"))
	c.Tier, c.TierReason, c.Customer = t, reason, customer
	touch(&o, c, now)
	detail := "tier " + from + " -> " + to + ": " + reason
	ev := Event{Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED, Actor: System, Reason: detail}
	if prev != t {
		// Subscribers (notifier) tell whoever the new tier's policy says.
		ev.PreviousTier = prev
	}
	o.Event(ev)
	o.audit(System, "tiered", detail)
	return o
}
