// Package store is triage's SQL: conversations, messages, notes, the audit
// trail, the inbox, the outbox and the customer directory. Every function
// takes a Querier, so the engine runs them inside its transactions.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// Querier is a pool, a connection or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ErrNotFound is returned when a conversation or customer does not exist.
var ErrNotFound = errors.New("not found")

// ClaimInbox records an inbound message id; false means it was already
// handled (the caller commits nothing else).
func ClaimInbox(ctx context.Context, q Querier, id, subject string, at time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO inbox (message_id, subject, handled_at) VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING`, id, subject, at)
	if err != nil {
		return false, fmt.Errorf("claim inbox %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

const conversationColumns = `c.id, c.channel, c.thread_key, c.status, c.close_reason, c.tier, c.tier_reason,
	c.categories, c.tags, c.subject, c.customer_id, coalesce(cu.name, ''), coalesce(cu.organisation, ''),
	c.author, c.assignee, c.team, c.opened_at, c.first_response_at, c.last_customer_message_at,
	c.next_deadline_at, c.deadline_level, c.message_count, c.permalink, c.updated_at, c.alert`

const conversationFrom = ` FROM conversations c LEFT JOIN customers cu ON cu.id = c.customer_id`

func scanConversation(row pgx.Row) (*supportv1.Conversation, error) {
	return scanConversationWith(row)
}

// scanConversationWith scans conversationColumns followed by extra columns
// into extra.
func scanConversationWith(row pgx.Row, extra ...any) (*supportv1.Conversation, error) {
	var (
		c                                  supportv1.Conversation
		channel, status, reason, tier, lvl int16
		customerID                         *string
		custName, custOrg                  string
		author, alert                      []byte
		opened, updated                    time.Time
		firstResp, lastCust, deadline      *time.Time
	)
	dest := []any{&c.Id, &channel, &c.ThreadKey, &status, &reason, &tier, &c.TierReason,
		&c.Categories, &c.Tags, &c.Subject, &customerID, &custName, &custOrg,
		&author, &c.Assignee, &c.Team, &opened, &firstResp, &lastCust,
		&deadline, &lvl, &c.MessageCount, &c.Permalink, &updated, &alert}
	err := row.Scan(append(dest, extra...)...)
	if err != nil {
		return nil, err
	}
	c.Channel = supportv1.Channel(channel)
	c.Status = supportv1.ConversationStatus(status)
	c.CloseReason = supportv1.CloseReason(reason)
	c.Tier = supportv1.Tier(tier)
	c.DeadlineLevel = supportv1.DeadlineLevel(lvl)
	if customerID != nil {
		c.Customer = &supportv1.CustomerRef{Id: *customerID, Name: custName, Organisation: custOrg}
	}
	if len(author) > 0 && string(author) != "{}" {
		var a supportv1.Author
		if err := protojson.Unmarshal(author, &a); err != nil {
			return nil, fmt.Errorf("conversation %s author: %w", c.Id, err)
		}
		c.Author = &a
	}
	c.Kind = supportv1.ConversationKind_CONVERSATION_KIND_CUSTOMER
	if alert != nil {
		var a supportv1.Alert
		if err := protojson.Unmarshal(alert, &a); err != nil {
			return nil, fmt.Errorf("conversation %s alert: %w", c.Id, err)
		}
		c.Kind, c.Alert = supportv1.ConversationKind_CONVERSATION_KIND_ALERT, &a
	}
	c.OpenedAt = timestamppb.New(opened)
	c.UpdatedAt = timestamppb.New(updated)
	c.FirstResponseAt = ts(firstResp)
	c.LastCustomerMessageAt = ts(lastCust)
	c.NextDeadlineAt = ts(deadline)
	return &c, nil
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func tm(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

func one(q Querier, ctx context.Context, where string, forUpdate bool, args ...any) (*supportv1.Conversation, error) {
	sql := `SELECT ` + conversationColumns + conversationFrom + ` WHERE ` + where
	if forUpdate {
		sql += ` FOR UPDATE OF c`
	}
	c, err := scanConversation(q.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return c, err
}

// ConversationByID loads a conversation, locked for update when forUpdate.
func ConversationByID(ctx context.Context, q Querier, id string, forUpdate bool) (*supportv1.Conversation, error) {
	c, err := one(q, ctx, `c.id = $1`, forUpdate, id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("load conversation %s: %w", id, err)
	}
	return c, err
}

func authorJSON(a *supportv1.Author) ([]byte, error) {
	if a == nil {
		return []byte("{}"), nil
	}
	return protojson.Marshal(a)
}

// alertJSON is an alert conversation's Alert as JSON, nil for a
// customer's conversation.
func alertJSON(c *supportv1.Conversation) (*string, error) {
	if c.GetKind() != supportv1.ConversationKind_CONVERSATION_KIND_ALERT {
		return nil, nil
	}
	b, err := protojson.Marshal(c.GetAlert())
	if err != nil {
		return nil, fmt.Errorf("conversation %s: alert: %w", c.GetId(), err)
	}
	s := string(b)
	return &s, nil
}

func customerID(c *supportv1.Conversation) *string {
	if id := c.GetCustomer().GetId(); id != "" {
		return &id
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func conversationArgs(c *supportv1.Conversation) ([]any, error) {
	author, err := authorJSON(c.GetAuthor())
	if err != nil {
		return nil, fmt.Errorf("insert conversation: author: %w", err)
	}
	alert, err := alertJSON(c)
	if err != nil {
		return nil, err
	}
	return []any{c.GetId(), int16(c.GetChannel()), c.GetThreadKey(), int16(c.GetStatus()), int16(c.GetCloseReason()),
		int16(c.GetTier()), c.GetTierReason(), nonNil(c.GetCategories()), nonNil(c.GetTags()), c.GetSubject(),
		customerID(c), author, c.GetAssignee(), c.GetTeam(), c.GetOpenedAt().AsTime(), tm(c.GetFirstResponseAt()),
		tm(c.GetLastCustomerMessageAt()), tm(c.GetNextDeadlineAt()), int16(c.GetDeadlineLevel()), c.GetMessageCount(),
		c.GetPermalink(), c.GetUpdatedAt().AsTime(), alert}, nil
}

// originals selects the stored messages an edit or delete refers to: the
// same channel, thread and source id, not themselves edits or deletes.
const originals = `channel = $1 AND thread_key = $2 AND source_id = $3 AND source_id <> '' AND kind NOT IN (2, 3)`

// storedBody is a stored message's row number and encoded body.
type storedBody struct {
	seq  int64
	body []byte
}

// storedBodies runs sql, which selects seq and body of messages.
func storedBodies(ctx context.Context, q Querier, sql string, args ...any) ([]storedBody, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedBody, error) {
		var s storedBody
		return s, r.Scan(&s.seq, &s.body)
	})
}

// EditMessage replaces the text (and subject, attributes and attachments
// when given) of the stored message m edits; false when none is stored.
func EditMessage(ctx context.Context, q Querier, m *supportv1.InboundMessage, at time.Time) (bool, error) {
	found, err := storedBodies(ctx, q, `SELECT seq, body FROM messages WHERE `+originals+` FOR UPDATE`,
		int16(m.GetChannel()), m.GetThreadKey(), m.GetSourceId())
	if err != nil {
		return false, fmt.Errorf("edit message %s: %w", m.GetSourceId(), err)
	}
	for _, s := range found {
		var old supportv1.InboundMessage
		if err := proto.Unmarshal(s.body, &old); err != nil {
			return false, fmt.Errorf("edit message %s: decode stored: %w", m.GetSourceId(), err)
		}
		old.Text = m.GetText()
		if m.GetSubject() != "" {
			old.Subject = m.GetSubject()
		}
		if len(m.GetAttachments()) > 0 {
			old.Attachments = m.GetAttachments()
		}
		body, err := proto.Marshal(&old)
		if err != nil {
			return false, fmt.Errorf("edit message %s: encode: %w", m.GetSourceId(), err)
		}
		if _, err := q.Exec(ctx, `UPDATE messages SET body = $2, edited_at = $3, search_text = $4 WHERE seq = $1`, s.seq, body, at, SearchText(&old)); err != nil {
			return false, fmt.Errorf("edit message %s: %w", m.GetSourceId(), err)
		}
	}
	return len(found) > 0, nil
}

// DeleteMessage marks the stored message m deletes as deleted and drops
// its text; false when none is stored.
func DeleteMessage(ctx context.Context, q Querier, m *supportv1.InboundMessage, at time.Time) (bool, error) {
	found, err := storedBodies(ctx, q, `SELECT seq, body FROM messages WHERE `+originals+` AND deleted_at IS NULL FOR UPDATE`,
		int16(m.GetChannel()), m.GetThreadKey(), m.GetSourceId())
	if err != nil {
		return false, fmt.Errorf("delete message %s: %w", m.GetSourceId(), err)
	}
	for _, s := range found {
		var old supportv1.InboundMessage
		if err := proto.Unmarshal(s.body, &old); err != nil {
			return false, fmt.Errorf("delete message %s: decode stored: %w", m.GetSourceId(), err)
		}
		old.Text, old.Attachments = "", nil
		body, err := proto.Marshal(&old)
		if err != nil {
			return false, fmt.Errorf("delete message %s: encode: %w", m.GetSourceId(), err)
		}
		if _, err := q.Exec(ctx, `UPDATE messages SET body = $2, deleted_at = $3, search_text = $4 WHERE seq = $1`, s.seq, body, at, SearchText(&old)); err != nil {
			return false, fmt.Errorf("delete message %s: %w", m.GetSourceId(), err)
		}
	}
	return len(found) > 0, nil
}

// CustomerWaiting reports whether the last message posted in the
// conversation by a customer or staff (bots and automated messages aside)
// is the customer's: nobody answered it.
func CustomerWaiting(ctx context.Context, q Querier, conversationID string) (bool, error) {
	var role int16
	err := q.QueryRow(ctx, `SELECT author_role FROM messages
		WHERE conversation_id = $1 AND kind = $2 AND author_role IN ($3, $4) AND deleted_at IS NULL
		ORDER BY seq DESC LIMIT 1`, conversationID, int16(supportv1.MessageKind_MESSAGE_KIND_POSTED),
		int16(supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER), int16(supportv1.AuthorRole_AUTHOR_ROLE_STAFF)).Scan(&role)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("last message of %s: %w", conversationID, err)
	}
	return role == int16(supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER), nil
}

// Messages lists a conversation's messages in arrival order. Deleted
// messages keep their place with an empty text and the attribute
// "deleted" = "true"; edited ones carry "edited" = "true".
func Messages(ctx context.Context, q Querier, conversationID string) ([]*supportv1.InboundMessage, error) {
	rows, err := q.Query(ctx, `SELECT body, edited_at IS NOT NULL, deleted_at IS NOT NULL FROM messages WHERE conversation_id = $1 ORDER BY seq`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("list messages of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*supportv1.InboundMessage, error) {
		var (
			body            []byte
			edited, deleted bool
		)
		if err := r.Scan(&body, &edited, &deleted); err != nil {
			return nil, err
		}
		var m supportv1.InboundMessage
		if err := proto.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, on := range map[string]bool{"edited": edited, "deleted": deleted} {
			if on {
				if m.Attributes == nil {
					m.Attributes = map[string]string{}
				}
				m.Attributes[k] = "true"
			}
		}
		return &m, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list messages of %s: %w", conversationID, err)
	}
	return out, nil
}

// Audit lists a conversation's audit trail, oldest first.
func Audit(ctx context.Context, q Querier, conversationID string) ([]*triagev1.AuditEntry, error) {
	rows, err := q.Query(ctx, `SELECT actor, action, detail, at FROM audit WHERE conversation_id = $1 ORDER BY seq`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("list audit of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*triagev1.AuditEntry, error) {
		var (
			e  triagev1.AuditEntry
			at time.Time
		)
		if err := r.Scan(&e.Actor, &e.Action, &e.Detail, &at); err != nil {
			return nil, err
		}
		e.At = timestamppb.New(at)
		return &e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit of %s: %w", conversationID, err)
	}
	return out, nil
}

// InsertNote stores a private note.
func InsertNote(ctx context.Context, q Querier, conversationID string, n *triagev1.Note) error {
	_, err := q.Exec(ctx, `INSERT INTO notes (id, conversation_id, author, text, handoff, created_at) VALUES ($1,$2,$3,$4,$5,$6)`,
		n.GetId(), conversationID, n.GetAuthor(), n.GetText(), n.GetHandoff(), n.GetCreatedAt().AsTime())
	if err != nil {
		return fmt.Errorf("insert note on %s: %w", conversationID, err)
	}
	return nil
}

// Notes lists a conversation's notes, oldest first.
func Notes(ctx context.Context, q Querier, conversationID string) ([]*triagev1.Note, error) {
	rows, err := q.Query(ctx, `SELECT id, author, text, handoff, created_at FROM notes WHERE conversation_id = $1 ORDER BY created_at, id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*triagev1.Note, error) {
		var (
			n  triagev1.Note
			at time.Time
		)
		if err := r.Scan(&n.Id, &n.Author, &n.Text, &n.Handoff, &at); err != nil {
			return nil, err
		}
		n.CreatedAt = timestamppb.New(at)
		return &n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list notes of %s: %w", conversationID, err)
	}
	return out, nil
}

// BusinessCategory is the category of marketing and partnership
// proposals (classify.Business), which go to the business contacts.
const BusinessCategory = "business"

// Filter selects conversations; zero fields match everything but business
// proposals, which only a Category or CustomerID filter lists, and alerts
// (see Kind).
type Filter struct {
	Statuses []supportv1.ConversationStatus
	Assignee string
	// Unassigned: only conversations nobody is assigned to (Assignee is
	// then ignored).
	Unassigned   bool
	Tier         supportv1.Tier
	Tag          string
	Channel      supportv1.Channel
	Category     string
	BreachedOnly bool
	// CustomerID limits to one customer's conversations.
	CustomerID string
	// OpenedFrom and OpenedTo, when not zero, limit to conversations
	// opened in [OpenedFrom, OpenedTo).
	OpenedFrom, OpenedTo time.Time
	// Kind ALERT lists alerts only; otherwise alerts (the owning team's
	// secondary's, not the hero's queue) are left out unless Channel is
	// Sentry.
	Kind   supportv1.ConversationKind
	Limit  int
	Offset int
}

// conditions returns f's SQL conditions on conversations c, adding their
// arguments with arg.
func (f Filter) conditions(arg func(any) string) []string {
	var where []string
	if len(f.Statuses) > 0 {
		st := make([]int16, len(f.Statuses))
		for i, s := range f.Statuses {
			st[i] = int16(s)
		}
		where = append(where, "c.status = ANY("+arg(st)+")")
	}
	switch {
	case f.Unassigned:
		where = append(where, "c.assignee = ''")
	case f.Assignee != "":
		where = append(where, "c.assignee = "+arg(f.Assignee))
	}
	if f.Tier != supportv1.Tier_TIER_UNSPECIFIED {
		where = append(where, "c.tier = "+arg(int16(f.Tier)))
	}
	if f.Tag != "" {
		where = append(where, "c.tags @> ARRAY["+arg(strings.ToLower(strings.TrimSpace(f.Tag)))+"::text]")
	}
	if f.Channel != supportv1.Channel_CHANNEL_UNSPECIFIED {
		where = append(where, "c.channel = "+arg(int16(f.Channel)))
	}
	if f.Category != "" {
		where = append(where, "EXISTS (SELECT 1 FROM unnest(c.categories) cat WHERE lower(cat) = lower("+arg(strings.TrimSpace(f.Category))+"))")
	} else if f.CustomerID == "" {
		// Business proposals belong to the business contacts, not to the
		// engineers' queue: listed only when asked for by category (or
		// among a customer's conversations).
		where = append(where, "coalesce(c.categories[1], '') <> "+arg(BusinessCategory))
	}
	switch {
	case f.Kind == supportv1.ConversationKind_CONVERSATION_KIND_ALERT:
		where = append(where, "c.alert IS NOT NULL")
	case f.Channel != supportv1.Channel_CHANNEL_SENTRY:
		where = append(where, "c.alert IS NULL")
	}
	if f.BreachedOnly {
		where = append(where, "c.deadline_level = "+arg(int16(supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED)))
	}
	if f.CustomerID != "" {
		where = append(where, "c.customer_id = "+arg(f.CustomerID))
	}
	if !f.OpenedFrom.IsZero() {
		where = append(where, "c.opened_at >= "+arg(f.OpenedFrom))
	}
	if !f.OpenedTo.IsZero() {
		where = append(where, "c.opened_at < "+arg(f.OpenedTo))
	}
	return where
}

// ListConversations returns conversations matching f, ordered by tier
// (Priority first), then next deadline (none last), then age.
func ListConversations(ctx context.Context, q Querier, f Filter) ([]*supportv1.Conversation, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := f.conditions(arg)
	sql := `SELECT ` + conversationColumns + conversationFrom
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY c.tier, c.next_deadline_at NULLS LAST, c.opened_at, c.id`
	if f.Limit > 0 {
		sql += ` LIMIT ` + arg(f.Limit)
	}
	if f.Offset > 0 {
		sql += ` OFFSET ` + arg(f.Offset)
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*supportv1.Conversation, error) { return scanConversation(r) })
	if err != nil {
		return nil, fmt.Errorf("list conversations: %w", err)
	}
	return out, nil
}
