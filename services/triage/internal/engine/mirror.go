package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// The support-channel mirror.
//
// With a support channel configured (Mirror.Channel, the handbook's
// #_customer_support), every conversation that starts anywhere else gets a
// thread there. Triage decides what is posted and ingest-slack posts it,
// as OutboundMessages of the mirror kinds on support.outbound.slack, sent
// effectively once like replies:
//
//   - MIRROR_HEADER when a customer opens the conversation: customer,
//     tier, categories, status, assignee, deadline, the console link, with
//     close and assign buttons. Its receipt's ts roots the thread and is
//     recorded as the alias "mirror:<channel>/<ts>";
//   - MIRROR_COPY for each message of the conversation (the customer's,
//     and replies written anywhere but the thread), in the thread; copies
//     made before the header's ts is known wait for it;
//   - MIRROR_UPDATE, the header rewritten, when what it shows changes.
//
// A staff message in the thread is a reply to the customer on the
// conversation's own channel, or a private note when it starts with
// Mirror.NotePrefix. Our own posts carry message metadata that
// ingest-slack drops, so they never come back as messages.

// MirrorConfig configures the support-channel mirror.
type MirrorConfig struct {
	// Channel is the Slack channel id of the support channel; empty: no
	// mirror.
	Channel string
	// NotePrefix starts a thread message that is a private note rather
	// than a reply; default "!note".
	NotePrefix string
}

// mirrorable reports whether c gets a thread in the support channel:
// customer conversations from anywhere but the support channel itself.
// Alerts, whatever their source, never do: the support channel is the
// customers', and the handbook gives Sentry errors to the owning team's
// secondary, whom notifier pages (a team or ops channel hears of them
// through the sentry_alert policy's slack_channel step).
func (e *Engine) mirrorable(c *supportv1.Conversation) bool {
	if e.cfg.Mirror.Channel == "" || conv.IsAlertConversation(c) {
		return false
	}
	switch c.GetChannel() {
	case supportv1.Channel_CHANNEL_EMAIL, supportv1.Channel_CHANNEL_GITHUB:
		return true
	case supportv1.Channel_CHANNEL_SLACK:
		t, ok := SlackThread(c.GetThreadKey())
		return ok && t.GetChannel() != e.cfg.Mirror.Channel
	}
	return false
}

// MirrorAlias is the thread alias of a mirror thread.
func MirrorAlias(channel, ts string) string { return "mirror:" + channel + "/" + ts }

// mirrorOf returns c's mirror (nil: none yet), loading it once per pipe.
func (e *Engine) mirrorOf(ctx context.Context, p *pipe, id string) (*store.Mirror, error) {
	if m, ok := p.mirrors[id]; ok {
		return m, nil
	}
	got, err := store.Mirrors(ctx, p, []string{id})
	if err != nil {
		return nil, err
	}
	p.mirrors[id] = got[id]
	return got[id], nil
}

// preloadMirrors loads the mirrors of these conversations in one query.
func (e *Engine) preloadMirrors(ctx context.Context, p *pipe, ids []string) error {
	if e.cfg.Mirror.Channel == "" || len(ids) == 0 {
		return nil
	}
	got, err := store.Mirrors(ctx, p, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		p.mirrors[id] = got[id]
	}
	return nil
}

// shown is what a mirror header shows that changes: when it differs from
// what was posted, the header is rewritten.
func shown(c *supportv1.Conversation) string {
	return strings.Join([]string{c.GetStatus().String(), c.GetAssignee(), c.GetDeadlineLevel().String(), c.GetTier().String(),
		strings.Join(c.GetCategories(), ","), c.GetCustomer().GetName()}, "|")
}

// mirror posts what a change of c means for its thread in the support
// channel (see the comment at the top of this file), through p.
func (e *Engine) mirror(ctx context.Context, p *pipe, c *supportv1.Conversation, out conv.Outcome, now time.Time) error {
	if !e.mirrorable(c) {
		return nil
	}
	var copies []*supportv1.InboundMessage
	customer := false
	for _, ev := range out.Events {
		m := ev.Message
		switch {
		case m == nil || conv.Kind(m) != supportv1.MessageKind_MESSAGE_KIND_POSTED || m.GetAttributes()["written_in"] == WrittenInMirror:
		case ev.Type == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
			ev.Type == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE,
			ev.Type == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED:
			copies = append(copies, m)
			customer = customer || conv.Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
		}
	}
	mr, err := e.mirrorOf(ctx, p, c.GetId())
	if err != nil {
		return err
	}
	if mr == nil {
		if !customer {
			return nil // a thread starts with a customer's message
		}
		if mr, err = e.startMirror(ctx, p, c, now); err != nil {
			return err
		}
	}
	for _, m := range copies {
		if err := e.issue(ctx, p, e.mirrorCopy(c, mr, m, now), now); err != nil {
			return err
		}
	}
	return e.refreshHeader(ctx, p, c, mr, now)
}

// startMirror posts c's header.
func (e *Engine) startMirror(ctx context.Context, p *pipe, c *supportv1.Conversation, now time.Time) (*store.Mirror, error) {
	om := &supportv1.OutboundMessage{
		Id: NewID(), ConversationId: c.GetId(), Channel: supportv1.Channel_CHANNEL_SLACK,
		Text: headerText(c), CreatedAt: timestamppb.New(now), Kind: supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER,
		Conversation: e.snapshot(c),
		Target:       &supportv1.OutboundMessage_Slack{Slack: &supportv1.SlackTarget{Channel: e.cfg.Mirror.Channel}},
	}
	o := &store.Outbound{Request: om, ConversationID: c.GetId(), Kind: om.GetKind(),
		State: triagev1.DeliveryState_DELIVERY_STATE_SENDING, CreatedAt: now, UpdatedAt: now}
	if err := e.issue(ctx, p, o, now); err != nil {
		return nil, err
	}
	mr := &store.Mirror{ConversationID: c.GetId(), Channel: e.cfg.Mirror.Channel, HeaderID: om.GetId(), Shown: shown(c)}
	p.mirrors[c.GetId()] = mr
	return mr, store.SaveMirror(ctx, p, mr)
}

// snapshot is c as a header shows it, with its console link.
func (e *Engine) snapshot(c *supportv1.Conversation) *supportv1.Conversation {
	s := proto.Clone(c).(*supportv1.Conversation)
	return e.decorate(s)
}

// headerText is the plain text of a header (notifications, and clients
// that show no blocks).
func headerText(c *supportv1.Conversation) string {
	who := c.GetCustomer().GetName()
	if who == "" {
		who = firstNonEmpty(c.GetAuthor().GetName(), c.GetAuthor().GetId(), "a customer")
	}
	return fmt.Sprintf("%s on %s: %s", who, channelName(c.GetChannel()), c.GetSubject())
}

// mirrorCopy is the post of m in c's thread: waiting until the header's
// ts is known.
func (e *Engine) mirrorCopy(c *supportv1.Conversation, mr *store.Mirror, m *supportv1.InboundMessage, now time.Time) *store.Outbound {
	a := m.GetAuthor()
	name := firstNonEmpty(a.GetName(), a.GetHandle(), a.GetPersonId(), a.GetId(), "someone")
	verb := "wrote"
	if conv.Role(m) == supportv1.AuthorRole_AUTHOR_ROLE_STAFF {
		verb = "replied"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s on %s:\n\n%s", name, verb, channelName(c.GetChannel()), strings.TrimSpace(m.GetText()))
	for _, at := range m.GetAttachments() {
		fmt.Fprintf(&b, "\n[attachment: %s]", at.GetName())
	}
	om := &supportv1.OutboundMessage{
		Id: NewID(), ConversationId: c.GetId(), Channel: supportv1.Channel_CHANNEL_SLACK, Text: b.String(),
		CreatedAt: timestamppb.New(now), Kind: supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_COPY,
		Target: &supportv1.OutboundMessage_Slack{Slack: &supportv1.SlackTarget{Channel: mr.Channel, ThreadTs: mr.TS}},
	}
	state := triagev1.DeliveryState_DELIVERY_STATE_SENDING
	if mr.TS == "" {
		state = store.StateWaiting
	}
	return &store.Outbound{Request: om, ConversationID: c.GetId(), Kind: om.GetKind(), MessageID: m.GetId(),
		State: state, CreatedAt: now, UpdatedAt: now}
}

// refreshHeader rewrites the header when what it shows changed (once it
// is posted: the receipt of the header compares again).
func (e *Engine) refreshHeader(ctx context.Context, p *pipe, c *supportv1.Conversation, mr *store.Mirror, now time.Time) error {
	if mr.TS == "" || shown(c) == mr.Shown {
		return nil
	}
	mr.Shown = shown(c)
	om := &supportv1.OutboundMessage{
		Id: NewID(), ConversationId: c.GetId(), Channel: supportv1.Channel_CHANNEL_SLACK,
		Text: headerText(c), CreatedAt: timestamppb.New(now), Kind: supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_UPDATE,
		Conversation: e.snapshot(c),
		Target:       &supportv1.OutboundMessage_Slack{Slack: &supportv1.SlackTarget{Channel: mr.Channel, Ts: mr.TS}},
	}
	o := &store.Outbound{Request: om, ConversationID: c.GetId(), Kind: om.GetKind(),
		State: triagev1.DeliveryState_DELIVERY_STATE_SENDING, CreatedAt: now, UpdatedAt: now}
	if err := e.issue(ctx, p, o, now); err != nil {
		return err
	}
	return store.SaveMirror(ctx, p, mr)
}

// headerPosted roots the thread at the header's ts: the alias that leads
// thread messages to the conversation, the copies that waited for it,
// and a rewrite if the conversation changed meanwhile.
func (e *Engine) headerPosted(ctx context.Context, p *pipe, o *store.Outbound, now time.Time) error {
	c, err := store.ConversationByID(ctx, p, o.ConversationID, false) // locked by HandleReceipt
	if err != nil {
		return err
	}
	mr, err := e.mirrorOf(ctx, p, c.GetId())
	if err != nil || mr == nil || mr.HeaderID != o.Request.GetId() {
		return err
	}
	mr.TS = o.ProviderID
	if err := store.InsertAlias(ctx, p, MirrorAlias(mr.Channel, mr.TS), c.GetId()); err != nil {
		return err
	}
	if err := store.SaveMirror(ctx, p, mr); err != nil {
		return err
	}
	waiting, err := store.WaitingCopies(ctx, p, c.GetId())
	if err != nil {
		return err
	}
	for _, w := range waiting {
		w.Request.GetSlack().ThreadTs = mr.TS
		w.State, w.UpdatedAt = triagev1.DeliveryState_DELIVERY_STATE_SENDING, now
		if err := store.UpdateOutbound(ctx, p, w); err != nil {
			return err
		}
		if err := e.publishOutbound(p, w.Request, now); err != nil {
			return err
		}
	}
	return e.refreshHeader(ctx, p, c, mr, now)
}

// mirrorMessage handles a message in conversation l's mirror thread: a
// staff message is a reply to the customer (or a note, with the note
// prefix); anything else stays out of the conversation.
func (e *Engine) mirrorMessage(ctx context.Context, p *pipe, d *people.Directory, m *supportv1.InboundMessage, l *store.Locked, now time.Time) (Result, error) {
	if conv.Kind(m) != supportv1.MessageKind_MESSAGE_KIND_POSTED || conv.Role(m) != supportv1.AuthorRole_AUTHOR_ROLE_STAFF || l == nil {
		e.cfg.Logger.Info("a message in a mirror thread that is not a staff post; not part of the conversation",
			"message_id", m.GetId(), "kind", conv.Kind(m).String(), "role", conv.Role(m).String())
		return Recorded, nil
	}
	c, st := l.Conversation, l.State
	a := m.GetAuthor()
	ra := replyAuthor{
		author: &supportv1.Author{Id: a.GetId(), PersonId: a.GetPersonId(), Name: firstNonEmpty(a.GetName(), a.GetHandle(), a.GetId()),
			Email: a.GetEmail(), Handle: a.GetHandle(), Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF},
		out: &supportv1.OutboundAuthor{PersonId: firstNonEmpty(a.GetPersonId(), a.GetId()), DisplayName: firstNonEmpty(a.GetName(), a.GetHandle(), a.GetId()), Email: a.GetEmail()},
	}
	if person, ok := d.ByID(a.GetPersonId()); ok && person.Name != "" {
		ra.author.Name, ra.out.DisplayName = person.Name, person.Name
	}
	text := strings.TrimSpace(m.GetText())
	if note, ok := strings.CutPrefix(text, e.notePrefix()); ok {
		return Applied, e.note(ctx, p, c, actorOf(a), strings.TrimSpace(note), "from the support channel", now)
	}
	if text == "" {
		return Recorded, nil
	}
	_, err := e.reply(ctx, p, c, st, ra, text, map[string]string{"written_in": WrittenInMirror, "mirror_ts": m.GetSourceId()}, now)
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrConflict) {
		// The person wrote it for the customer, who cannot get it: keep it
		// where the team sees it, with the reason.
		e.cfg.Logger.Warn("a reply in the support channel could not be sent", "conversation_id", c.GetId(), "error", err)
		return Applied, e.note(ctx, p, c, actorOf(a), "Not sent to the customer ("+err.Error()+"):\n\n"+text, "from the support channel", now)
	}
	if err != nil {
		return "", err
	}
	return Applied, nil
}

func (e *Engine) notePrefix() string {
	if e.cfg.Mirror.NotePrefix != "" {
		return e.cfg.Mirror.NotePrefix
	}
	return "!note"
}

// note stores a private note on c through p.
func (e *Engine) note(ctx context.Context, p *pipe, c *supportv1.Conversation, who, text, detail string, now time.Time) error {
	if text == "" {
		return nil
	}
	if len(text) > maxNote {
		text = strings.ToValidUTF8(text[:maxNote], "")
	}
	n := &triagev1.Note{Id: NewID(), Author: who, Text: text, CreatedAt: timestamppb.New(now)}
	if err := store.InsertNote(ctx, p, c.GetId(), n); err != nil {
		return err
	}
	p.auditLine(c.GetId(), who, "noted", detail, now)
	return nil
}
