package engine

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/outbound"
	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// Replies.
//
// A reply is a staff message in its conversation, applied like any staff
// message (first response, assignment on the first reply, awaiting the
// customer), stored in the same transaction as its outbound row (state
// SENDING) and the outbox row that publishes its OutboundMessage on
// support.outbound.<channel>; the channel's own service sends it and
// answers with a receipt, which moves the outbound row to SENT or FAILED.
// The provider's echo of the reply (Slack's message event, GitHub's
// comment webhook, a copy of the email) carries the outbound id and is
// matched to the staff message, never stored as a second one.

// maxReplyRunes bounds a reply's text per channel: what Slack's
// chat.postMessage and GitHub's comments take, and for email a size no
// mail system refuses.
var maxReplyRunes = map[supportv1.Channel]int{
	supportv1.Channel_CHANNEL_SLACK:  40000,
	supportv1.Channel_CHANNEL_GITHUB: 65536,
	supportv1.Channel_CHANNEL_EMAIL:  1 << 20,
}

// Written in: where a reply was written (the staff message's "written_in"
// attribute).
const (
	WrittenInSidekick = "sidekick"
	WrittenInMirror   = "mirror"
)

// replyAuthor is who a reply is by.
type replyAuthor struct {
	// author is the staff message's author.
	author *supportv1.Author
	// out is the OutboundMessage's author.
	out *supportv1.OutboundAuthor
}

// authorOf is the author of a reply written by actor: the person when the
// directory knows them, else their identity as given (counted and logged
// as unknown staff on channel).
func (e *Engine) authorOf(d *people.Directory, actorName, channel string) replyAuthor {
	if p, ok := d.Resolve(actorName); ok {
		name := p.Name
		if name == "" {
			name = p.ID
		}
		return replyAuthor{
			author: &supportv1.Author{Id: p.ID, PersonId: p.ID, Name: name, Email: p.Email, Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF},
			out:    &supportv1.OutboundAuthor{PersonId: p.ID, DisplayName: name, Email: p.Email},
		}
	}
	e.unknown.Saw(channel, actorName)
	return replyAuthor{
		author: &supportv1.Author{Id: actorName, Name: actorName, Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF},
		out:    &supportv1.OutboundAuthor{PersonId: actorName, DisplayName: actorName},
	}
}

// Reply stores a staff reply by actor and queues it to be sent to the
// customer on the conversation's own channel.
func (e *Engine) Reply(ctx context.Context, id, actorName, text string) (*triagev1.ReplyResponse, error) {
	text = strings.TrimSpace(text)
	actorName = strings.TrimSpace(actorName)
	switch {
	case text == "":
		return nil, fmt.Errorf("reply text is required: %w", ErrInvalid)
	case actorName == "":
		return nil, fmt.Errorf("the actor (who replies) is required: %w", ErrInvalid)
	}
	d, err := e.directory(ctx)
	if err != nil {
		return nil, err
	}
	ra := e.authorOf(d, actorName, "console")
	var resp *triagev1.ReplyResponse
	c, err := e.change(ctx, id, func(p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) (conv.Outcome, error) {
		var err error
		resp, err = e.reply(ctx, p, c, st, ra, text, map[string]string{"written_in": WrittenInSidekick}, now)
		return conv.Outcome{}, err
	})
	if err != nil {
		return nil, err
	}
	resp.Conversation = c
	return resp, nil
}

// reply applies a reply to the locked conversation c through p: the staff
// message (with attrs: where it was written), its outbound row and the
// outbox row of its OutboundMessage.
func (e *Engine) reply(ctx context.Context, p *pipe, c *supportv1.Conversation, st *store.State, ra replyAuthor, text string, attrs map[string]string, now time.Time) (*triagev1.ReplyResponse, error) {
	max, ok := maxReplyRunes[c.GetChannel()]
	if !ok {
		return nil, fmt.Errorf("conversation %s came from %s, which has no customer to answer: %w",
			c.GetId(), channelName(c.GetChannel()), ErrNoWayBack)
	}
	if n := utf8.RuneCountInString(text); n > max {
		return nil, fmt.Errorf("the reply has %d characters; %s takes at most %d: %w", n, channelName(c.GetChannel()), max, ErrInvalid)
	}
	id := NewID()
	om := &supportv1.OutboundMessage{
		Id: id, ConversationId: c.GetId(), Channel: c.GetChannel(), Text: text, Author: ra.out,
		CreatedAt: timestamppb.New(now), Kind: supportv1.OutboundKind_OUTBOUND_KIND_REPLY,
	}
	msg := &supportv1.InboundMessage{
		Id: "reply:" + id, Channel: c.GetChannel(), ThreadKey: c.GetThreadKey(), Author: ra.author, Text: text,
		SentAt: timestamppb.New(now), ReceivedAt: timestamppb.New(now), Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED,
		Attributes: map[string]string{"outbound_id": id},
	}
	for k, v := range attrs {
		msg.Attributes[k] = v
	}
	if err := e.target(ctx, p, c, om, msg); err != nil {
		return nil, err
	}
	// The reply first, then what the staff message changes (the mirror's
	// header among it), so the customer's answer is not queued behind it.
	o := &store.Outbound{Request: om, ConversationID: c.GetId(), Kind: om.GetKind(), MessageID: msg.GetId(),
		State: triagev1.DeliveryState_DELIVERY_STATE_SENDING, CreatedAt: now, UpdatedAt: now}
	if err := e.issue(ctx, p, o, now); err != nil {
		return nil, err
	}
	if _, err := e.apply(ctx, p, msg, c, st, false, now); err != nil {
		return nil, err
	}
	if t := om.GetEmail(); t != nil {
		// A customer's answer may name only our Message-ID (In-Reply-To,
		// without References): it leads here.
		if err := store.InsertAlias(ctx, p, "email:"+trimAngles(t.GetMessageId()), c.GetId()); err != nil {
			return nil, err
		}
	}
	p.auditLine(c.GetId(), actorOf(ra.author), "replied", "on "+channelName(c.GetChannel())+" (outbound "+id+")", now)
	return &triagev1.ReplyResponse{Message: msg, Delivery: o.Delivery()}, nil
}

// ErrNoWayBack: the conversation has no channel a reply can go out on (a
// Sentry alert, or a thread missing what its channel needs); the gRPC
// edge answers FailedPrecondition.
var ErrNoWayBack = fmt.Errorf("no way back to the customer: %w", ErrConflict)

func actorOf(a *supportv1.Author) string {
	if a.GetPersonId() != "" {
		return a.GetPersonId()
	}
	return actor(a.GetId())
}

// issue records an OutboundMessage and, unless it waits (a mirror copy
// before its header is posted), queues it on its channel's subject.
func (e *Engine) issue(ctx context.Context, p *pipe, o *store.Outbound, now time.Time) error {
	if err := store.InsertOutbound(ctx, p, o); err != nil {
		return err
	}
	if o.State == store.StateWaiting {
		return nil
	}
	return e.publishOutbound(p, o.Request, now)
}

// publishOutbound writes the outbox row of an OutboundMessage (its
// CloudEvents id is outbound.RequestID: the id, or id/retry-N).
func (e *Engine) publishOutbound(p *pipe, m *supportv1.OutboundMessage, now time.Time) error {
	row, err := outbox.Message(bus.OutboundSubject(channelName(m.GetChannel())), outbound.RequestID(m), now, m)
	if err != nil {
		return err
	}
	p.queueEvent(row)
	return nil
}

// target fills where the reply om goes from its conversation c (see
// supportv1.OutboundMessage) and, for email, threads the staff message msg
// (its Message-ID, chosen now, and References).
func (e *Engine) target(ctx context.Context, p *pipe, c *supportv1.Conversation, om *supportv1.OutboundMessage, msg *supportv1.InboundMessage) error {
	key := c.GetThreadKey()
	switch c.GetChannel() {
	case supportv1.Channel_CHANNEL_SLACK:
		t, ok := SlackThread(key)
		if !ok {
			return fmt.Errorf("conversation %s: Slack thread key %q does not name a workspace, channel and thread: %w", c.GetId(), key, ErrNoWayBack)
		}
		om.Target = &supportv1.OutboundMessage_Slack{Slack: t}
	case supportv1.Channel_CHANNEL_GITHUB:
		t, ok := GitHubThread(key)
		if !ok {
			return fmt.Errorf("conversation %s: GitHub thread key %q does not name a repository and an issue or discussion: %w", c.GetId(), key, ErrNoWayBack)
		}
		om.Target = &supportv1.OutboundMessage_Github{Github: t}
	case supportv1.Channel_CHANNEL_EMAIL:
		last, err := store.LastMessage(ctx, p, c.GetId(), supportv1.Channel_CHANNEL_EMAIL, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER)
		if err != nil {
			return err
		}
		if last == nil {
			return fmt.Errorf("conversation %s has no email from the customer to answer: %w", c.GetId(), ErrNoWayBack)
		}
		t := e.emailTarget(c, last, om.GetId())
		if len(t.GetTo()) == 0 {
			return fmt.Errorf("conversation %s: the customer's last email has no address to answer: %w", c.GetId(), ErrNoWayBack)
		}
		om.Target = &supportv1.OutboundMessage_Email{Email: t}
		msg.SourceId = trimAngles(t.GetMessageId())
		msg.Subject = t.GetSubject()
		msg.References = t.GetReferences()
	default:
		return fmt.Errorf("conversation %s came from %s, which has no customer to answer: %w", c.GetId(), channelName(c.GetChannel()), ErrNoWayBack)
	}
	return nil
}

// SlackThread reads a Slack thread key, "slack:<team>/<channel>/<root ts>".
func SlackThread(key string) (*supportv1.SlackTarget, bool) {
	parts := strings.Split(strings.TrimPrefix(key, "slack:"), "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, false
	}
	return &supportv1.SlackTarget{TeamId: parts[0], Channel: parts[1], ThreadTs: parts[2]}, true
}

// GitHubThread reads a GitHub thread key: "github:<owner>/<repo>#<n>" (an
// issue or pull request) or "github:<owner>/<repo>/discussions#<n>".
func GitHubThread(key string) (*supportv1.GitHubTarget, bool) {
	rest, ok := strings.CutPrefix(key, "github:")
	if !ok {
		return nil, false
	}
	repo, num, ok := strings.Cut(rest, "#")
	n, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || n <= 0 {
		return nil, false
	}
	kind := supportv1.GitHubTarget_KIND_ISSUE
	if r, ok := strings.CutSuffix(repo, "/discussions"); ok {
		repo, kind = r, supportv1.GitHubTarget_KIND_DISCUSSION
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return nil, false
	}
	return &supportv1.GitHubTarget{Repository: repo, Kind: kind, Number: n}, true
}

// emailTarget answers the customer's last email, last: to its Reply-To or
// From, the others on it in Cc (not our own addresses), its subject, In-Reply-To its
// Message-ID, References the thread's ids then its own, and a Message-ID of
// ours at the support address's domain.
func (e *Engine) emailTarget(c *supportv1.Conversation, last *supportv1.InboundMessage, outboundID string) *supportv1.EmailTarget {
	attrs := last.GetAttributes()
	ours := map[string]bool{}
	for _, a := range addressList(attrs["recipients"]) {
		ours[a] = true
	}
	if e.cfg.EmailFrom != "" {
		ours[strings.ToLower(e.cfg.EmailFrom)] = true
	}
	to := addressList(attrs["reply_to"])
	if len(to) == 0 {
		if from := strings.ToLower(firstNonEmpty(last.GetAuthor().GetEmail(), last.GetAuthor().GetId())); strings.Contains(from, "@") {
			to = []string{from}
		}
	}
	var cc []string
	for _, a := range append(addressList(attrs["to"]), addressList(attrs["cc"])...) {
		if !ours[a] && !slices.Contains(to, a) && !slices.Contains(cc, a) && !e.isStaffDomain(a) {
			cc = append(cc, a)
		}
	}
	var refs []string
	for _, r := range append(slices.Clone(last.GetReferences()), last.GetSourceId()) {
		if r = trimAngles(r); r != "" && !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	subject := strings.TrimSpace(last.GetSubject())
	if subject == "" {
		subject = c.GetSubject()
	}
	return &supportv1.EmailTarget{
		To: to, Cc: cc, Subject: subject, InReplyTo: trimAngles(last.GetSourceId()), References: refs,
		MessageId: "<" + outboundID + "@" + e.messageIDDomain(attrs) + ">",
	}
}

// messageIDDomain is the domain of the Message-IDs of our replies: the
// support address's (EmailFrom), else the one the customer wrote to.
func (e *Engine) messageIDDomain(attrs map[string]string) string {
	if _, d, ok := strings.Cut(e.cfg.EmailFrom, "@"); ok && d != "" {
		return d
	}
	for _, a := range addressList(attrs["recipients"]) {
		if _, d, ok := strings.Cut(a, "@"); ok && d != "" {
			return d
		}
	}
	return "sidekick.invalid"
}

// isStaffDomain reports whether an address is at one of the support
// address's domain (never copied on a reply: the reply comes from it).
func (e *Engine) isStaffDomain(addr string) bool {
	_, d, ok := strings.Cut(addr, "@")
	_, ours, ok2 := strings.Cut(e.cfg.EmailFrom, "@")
	return ok && ok2 && strings.EqualFold(d, ours)
}

// addressList reads a comma-separated list of addresses, lower case.
func addressList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	if list, err := mail.ParseAddressList(s); err == nil {
		for _, a := range list {
			out = append(out, strings.ToLower(a.Address))
		}
		return out
	}
	for _, f := range strings.Split(s, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); strings.Contains(f, "@") {
			out = append(out, trimAngles(f))
		}
	}
	return out
}

func trimAngles(s string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// RetryOutbound sends a failed reply (or mirror post) again: the same
// OutboundMessage with the next retry number.
func (e *Engine) RetryOutbound(ctx context.Context, id, actorName string) (*triagev1.OutboundDelivery, error) {
	id, actorName = strings.TrimSpace(id), strings.TrimSpace(actorName)
	switch {
	case id == "":
		return nil, fmt.Errorf("outbound id is required: %w", ErrInvalid)
	case actorName == "":
		return nil, fmt.Errorf("the actor (who retries) is required: %w", ErrInvalid)
	}
	who := e.who(ctx, actorName)
	var delivery *triagev1.OutboundDelivery
	err := e.tx(ctx, func(p *pipe, now time.Time) error {
		o, err := e.lockOutbound(ctx, p, id)
		if err != nil {
			return err
		}
		if o.State != triagev1.DeliveryState_DELIVERY_STATE_FAILED {
			return fmt.Errorf("outbound message %s is %s: only a failed one is sent again: %w", id, deliveryName(o.State), ErrConflict)
		}
		o.Retry++
		o.State, o.Reason, o.Permanent, o.UpdatedAt = triagev1.DeliveryState_DELIVERY_STATE_SENDING, "", false, now
		if err := store.UpdateOutbound(ctx, p, o); err != nil {
			return err
		}
		m := proto.Clone(o.Request).(*supportv1.OutboundMessage)
		m.Retry = o.Retry
		if err := e.publishOutbound(p, m, now); err != nil {
			return err
		}
		p.auditLine(o.ConversationID, who, "retried reply", "outbound "+id+" (retry "+strconv.Itoa(int(o.Retry))+")", now)
		delivery = o.Delivery()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return delivery, nil
}

// lockOutbound locks an outbound row and its conversation, the
// conversation first as everywhere else.
func (e *Engine) lockOutbound(ctx context.Context, p *pipe, id string) (*store.Outbound, error) {
	o, err := store.OutboundByID(ctx, p, id, false)
	if err != nil {
		return nil, err
	}
	if _, err := store.ConversationByID(ctx, p, o.ConversationID, true); err != nil {
		return nil, err
	}
	return store.OutboundByID(ctx, p, id, true)
}

// tx runs f in a transaction with a pipe, flushed before commit.
func (e *Engine) tx(ctx context.Context, f func(p *pipe, now time.Time) error) error {
	var p *pipe
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		p = newPipe(tx)
		if err := f(p, e.now()); err != nil {
			return err
		}
		return p.flush(ctx)
	})
	if err == nil {
		e.armed(p, time.Time{})
	}
	return err
}

func deliveryName(s triagev1.DeliveryState) string {
	if s == store.StateWaiting {
		return "waiting for its mirror header"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "DELIVERY_STATE_"))
}

// HandleReceipt records a channel's receipt of an OutboundMessage: sent
// (with the provider's id and link) or failed (with its reason). The same
// receipt again, or one of an older retry than the newest requested,
// changes nothing; so does a receipt of an id triage never issued.
func (e *Engine) HandleReceipt(ctx context.Context, rc *supportv1.OutboundReceipt) (changed bool, err error) {
	if rc.GetOutboundId() == "" {
		return false, fmt.Errorf("receipt without an outbound id: %w", ErrInvalid)
	}
	err = e.tx(ctx, func(p *pipe, now time.Time) error {
		o, err := e.lockOutbound(ctx, p, rc.GetOutboundId())
		if errors.Is(err, store.ErrNotFound) {
			e.cfg.Logger.Info("receipt of an outbound message triage did not issue; ignored", "outbound_id", rc.GetOutboundId())
			return nil
		}
		if err != nil {
			return err
		}
		if rc.GetRetry() < o.Retry {
			return nil // a late receipt of an attempt a retry replaced
		}
		next := *o
		next.Retry = rc.GetRetry()
		switch rc.GetStatus() {
		case supportv1.OutboundStatus_OUTBOUND_STATUS_SENT:
			next.State, next.Reason, next.Permanent = triagev1.DeliveryState_DELIVERY_STATE_SENT, "", false
			next.ProviderID = firstNonEmpty(rc.GetProviderId(), o.ProviderID)
			next.Permalink = firstNonEmpty(rc.GetPermalink(), o.Permalink)
		case supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED:
			if o.State == triagev1.DeliveryState_DELIVERY_STATE_SENT {
				// The echo showed it arrived: a failure reported after
				// that cannot be right.
				return nil
			}
			next.State, next.Reason, next.Permanent = triagev1.DeliveryState_DELIVERY_STATE_FAILED, rc.GetReason(), rc.GetPermanent()
		default:
			return fmt.Errorf("receipt of %s with status %s: %w", rc.GetOutboundId(), rc.GetStatus(), ErrInvalid)
		}
		if next.State == o.State && next.Retry == o.Retry && next.ProviderID == o.ProviderID && next.Permalink == o.Permalink &&
			next.Reason == o.Reason && next.Permanent == o.Permanent {
			return nil // this receipt again
		}
		next.UpdatedAt = now
		if err := store.UpdateOutbound(ctx, p, &next); err != nil {
			return err
		}
		changed = true
		return e.delivered(ctx, p, o, &next, now)
	})
	return changed, err
}

// delivered does what a reply's or mirror post's new delivery state means
// beyond its row: the staff message gets the provider's id and link; a
// failure goes in the audit trail; a mirror header's ts roots its thread.
func (e *Engine) delivered(ctx context.Context, p *pipe, before, o *store.Outbound, now time.Time) error {
	switch o.Kind {
	case supportv1.OutboundKind_OUTBOUND_KIND_REPLY:
		if o.State == triagev1.DeliveryState_DELIVERY_STATE_FAILED {
			detail := "outbound " + o.Request.GetId() + ": " + o.Reason
			p.auditLine(o.ConversationID, conv.System, "reply failed", detail, now)
			e.cfg.Logger.Warn("reply failed", "conversation_id", o.ConversationID, "outbound_id", o.Request.GetId(), "reason", o.Reason, "permanent", o.Permanent)
			return nil
		}
		if o.ProviderID != before.ProviderID || o.Permalink != before.Permalink {
			return store.UpdateMessageSource(ctx, p, o.MessageID, sourceID(o.Request, o.ProviderID), o.Permalink)
		}
	case supportv1.OutboundKind_OUTBOUND_KIND_MIRROR_HEADER:
		if o.State == triagev1.DeliveryState_DELIVERY_STATE_SENT && o.ProviderID != "" && before.ProviderID == "" {
			return e.headerPosted(ctx, p, o, now)
		}
		if o.State == triagev1.DeliveryState_DELIVERY_STATE_FAILED {
			e.cfg.Logger.Warn("mirror header failed: the conversation has no thread in the support channel until it is retried",
				"conversation_id", o.ConversationID, "outbound_id", o.Request.GetId(), "reason", o.Reason)
		}
	default:
		if o.State == triagev1.DeliveryState_DELIVERY_STATE_FAILED {
			e.cfg.Logger.Warn("mirror post failed", "conversation_id", o.ConversationID, "outbound_id", o.Request.GetId(),
				"kind", o.Kind.String(), "reason", o.Reason)
		}
	}
	return nil
}

// sourceID is the source id the channel's own events give the message the
// provider stored as providerID: what edits and deletes of it refer to.
func sourceID(m *supportv1.OutboundMessage, providerID string) string {
	switch {
	case providerID == "":
		return ""
	case m.GetEmail() != nil:
		return trimAngles(providerID)
	case m.GetGithub() != nil && m.GetGithub().GetKind() == supportv1.GitHubTarget_KIND_ISSUE:
		return "comment:" + providerID
	case m.GetGithub() != nil:
		return "" // a discussion comment's node id is not the webhook's id; the echo tells
	}
	return providerID
}

// echo handles the provider's copy of a reply Sidekick sent (an inbound
// message whose outbound_id triage issued, o): nothing is stored again;
// the staff message learns its source id and link if no receipt told
// them yet.
func (e *Engine) echo(ctx context.Context, p *pipe, m *supportv1.InboundMessage, o *store.Outbound, now time.Time) error {
	if conv.Kind(m) != supportv1.MessageKind_MESSAGE_KIND_POSTED || o.Kind != supportv1.OutboundKind_OUTBOUND_KIND_REPLY {
		return nil
	}
	next := *o
	if next.ProviderID == "" {
		next.ProviderID = m.GetSourceId()
	}
	if next.Permalink == "" {
		next.Permalink = m.GetPermalink()
	}
	if next.State != triagev1.DeliveryState_DELIVERY_STATE_SENT {
		// The provider has it: it was sent, whatever a receipt may still
		// say about an attempt.
		next.State, next.Reason, next.Permanent = triagev1.DeliveryState_DELIVERY_STATE_SENT, "", false
	}
	if next != *o {
		next.UpdatedAt = now
		if err := store.UpdateOutbound(ctx, p, &next); err != nil {
			return err
		}
	}
	return store.UpdateMessageSource(ctx, p, o.MessageID, m.GetSourceId(), next.Permalink)
}
