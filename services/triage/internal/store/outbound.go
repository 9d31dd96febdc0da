package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// StateWaiting is the delivery state of a mirror copy waiting for its
// header's ts; it is not a contract state.
const StateWaiting triagev1.DeliveryState = 0

// Outbound is one OutboundMessage triage issued, with its delivery.
type Outbound struct {
	Request        *supportv1.OutboundMessage
	ConversationID string
	Kind           supportv1.OutboundKind
	// MessageID is the staff message a reply is.
	MessageID  string
	State      triagev1.DeliveryState
	Retry      int32
	ProviderID string
	Permalink  string
	Reason     string
	Permanent  bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Delivery is o as the contract shows it.
func (o *Outbound) Delivery() *triagev1.OutboundDelivery {
	return &triagev1.OutboundDelivery{
		OutboundId: o.Request.GetId(), MessageId: o.MessageID, Channel: o.Request.GetChannel(), State: o.State,
		ProviderId: o.ProviderID, Permalink: o.Permalink, Reason: o.Reason, Permanent: o.Permanent, Retry: o.Retry,
		UpdatedAt: timestamppb.New(o.UpdatedAt),
	}
}

// InsertOutbound records a new OutboundMessage.
func InsertOutbound(ctx context.Context, q Querier, o *Outbound) error {
	req, err := proto.Marshal(o.Request)
	if err != nil {
		return fmt.Errorf("insert outbound %s: encode: %w", o.Request.GetId(), err)
	}
	_, err = q.Exec(ctx, `INSERT INTO outbound (id, conversation_id, kind, message_id, channel, state, retry, request, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		o.Request.GetId(), o.ConversationID, int16(o.Kind), o.MessageID, int16(o.Request.GetChannel()), int16(o.State),
		o.Retry, req, o.CreatedAt)
	if err != nil {
		return fmt.Errorf("insert outbound %s: %w", o.Request.GetId(), err)
	}
	return nil
}

const outboundColumns = `request, conversation_id, kind, message_id, state, retry, provider_id, permalink, reason, permanent, created_at, updated_at`

func scanOutbound(row pgx.Row) (*Outbound, error) {
	var (
		o           Outbound
		req         []byte
		kind, state int16
	)
	if err := row.Scan(&req, &o.ConversationID, &kind, &o.MessageID, &state, &o.Retry, &o.ProviderID, &o.Permalink,
		&o.Reason, &o.Permanent, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	o.Kind, o.State = supportv1.OutboundKind(kind), triagev1.DeliveryState(state)
	o.Request = new(supportv1.OutboundMessage)
	if err := proto.Unmarshal(req, o.Request); err != nil {
		return nil, fmt.Errorf("decode outbound request: %w", err)
	}
	return &o, nil
}

// OutboundByID loads an OutboundMessage's row, locked for update when
// forUpdate; ErrNotFound when triage never issued it.
func OutboundByID(ctx context.Context, q Querier, id string, forUpdate bool) (*Outbound, error) {
	sql := `SELECT ` + outboundColumns + ` FROM outbound WHERE id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	o, err := scanOutbound(q.QueryRow(ctx, sql, id))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("outbound message %s: %w", id, ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("load outbound %s: %w", id, err)
	}
	return o, nil
}

// OutboundByIDs loads the rows of the outbound ids triage issued among
// ids (the echoes of a batch), by id.
func OutboundByIDs(ctx context.Context, q Querier, ids []string) (map[string]*Outbound, error) {
	out := map[string]*Outbound{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT `+outboundColumns+` FROM outbound WHERE id = ANY($1) FOR UPDATE`, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d outbound messages: %w", len(ids), err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		o, err := scanOutbound(r)
		if err == nil {
			out[o.Request.GetId()] = o
		}
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("load %d outbound messages: %w", len(ids), err)
	}
	return out, nil
}

// UpdateOutbound writes a row's delivery fields and its request (a mirror
// copy learns its thread).
func UpdateOutbound(ctx context.Context, q Querier, o *Outbound) error {
	req, err := proto.Marshal(o.Request)
	if err != nil {
		return fmt.Errorf("update outbound %s: encode: %w", o.Request.GetId(), err)
	}
	_, err = q.Exec(ctx, `UPDATE outbound SET state = $2, retry = $3, provider_id = $4, permalink = $5, reason = $6,
		permanent = $7, updated_at = $8, request = $9 WHERE id = $1`,
		o.Request.GetId(), int16(o.State), o.Retry, o.ProviderID, o.Permalink, o.Reason, o.Permanent, o.UpdatedAt, req)
	if err != nil {
		return fmt.Errorf("update outbound %s: %w", o.Request.GetId(), err)
	}
	return nil
}

// Deliveries lists a conversation's replies (not its mirror posts), oldest
// first.
func Deliveries(ctx context.Context, q Querier, conversationID string) ([]*triagev1.OutboundDelivery, error) {
	rows, err := q.Query(ctx, `SELECT `+outboundColumns+` FROM outbound WHERE conversation_id = $1 AND kind = $2
		ORDER BY created_at, id`, conversationID, int16(supportv1.OutboundKind_OUTBOUND_KIND_REPLY))
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*triagev1.OutboundDelivery, error) {
		o, err := scanOutbound(r)
		if err != nil {
			return nil, err
		}
		return o.Delivery(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries of %s: %w", conversationID, err)
	}
	return out, nil
}

// WaitingCopies loads a conversation's mirror copies waiting for their
// header, oldest first, locked.
func WaitingCopies(ctx context.Context, q Querier, conversationID string) ([]*Outbound, error) {
	rows, err := q.Query(ctx, `SELECT `+outboundColumns+` FROM outbound WHERE conversation_id = $1 AND state = 0
		ORDER BY created_at, id FOR UPDATE`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("load waiting mirror copies of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Outbound, error) { return scanOutbound(r) })
	if err != nil {
		return nil, fmt.Errorf("load waiting mirror copies of %s: %w", conversationID, err)
	}
	return out, nil
}

// UpdateMessageSource records the provider's id of a staff message sent
// from Sidekick (its source id, which edits and deletes at the source
// refer to) and its link.
func UpdateMessageSource(ctx context.Context, q Querier, messageID, sourceID, permalink string) error {
	var body []byte
	err := q.QueryRow(ctx, `SELECT body FROM messages WHERE id = $1 FOR UPDATE`, messageID).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update message %s: %w", messageID, err)
	}
	var m supportv1.InboundMessage
	if err := proto.Unmarshal(body, &m); err != nil {
		return fmt.Errorf("update message %s: decode: %w", messageID, err)
	}
	if sourceID != "" {
		m.SourceId = sourceID
	}
	if permalink != "" {
		m.Permalink = permalink
	}
	if body, err = proto.Marshal(&m); err != nil {
		return fmt.Errorf("update message %s: encode: %w", messageID, err)
	}
	if _, err := q.Exec(ctx, `UPDATE messages SET source_id = $2, body = $3 WHERE id = $1`, messageID, m.GetSourceId(), body); err != nil {
		return fmt.Errorf("update message %s: %w", messageID, err)
	}
	return nil
}

// LastMessage returns the conversation's latest message of this channel
// by an author with role, nil when there is none.
func LastMessage(ctx context.Context, q Querier, conversationID string, ch supportv1.Channel, role supportv1.AuthorRole) (*supportv1.InboundMessage, error) {
	var body []byte
	err := q.QueryRow(ctx, `SELECT body FROM messages WHERE conversation_id = $1 AND channel = $2 AND author_role = $3
		AND kind = $4 AND deleted_at IS NULL ORDER BY seq DESC LIMIT 1`,
		conversationID, int16(ch), int16(role), int16(supportv1.MessageKind_MESSAGE_KIND_POSTED)).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last message of %s: %w", conversationID, err)
	}
	var m supportv1.InboundMessage
	if err := proto.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("last message of %s: decode: %w", conversationID, err)
	}
	return &m, nil
}

// InsertAlias makes alias lead to a conversation (once; a second insert of
// the same alias changes nothing).
func InsertAlias(ctx context.Context, q Querier, alias, conversationID string) error {
	if _, err := q.Exec(ctx, `INSERT INTO thread_aliases (alias, conversation_id) VALUES ($1, $2) ON CONFLICT (alias) DO NOTHING`,
		alias, conversationID); err != nil {
		return fmt.Errorf("insert thread alias %s: %w", alias, err)
	}
	return nil
}

// AliasTarget is the conversation an alias leads to.
type AliasTarget struct {
	ConversationID string
	Thread         ThreadKey
}

// ResolveAliases returns the conversations the known aliases among
// aliases lead to, by alias.
func ResolveAliases(ctx context.Context, q Querier, aliases []string) (map[string]AliasTarget, error) {
	out := map[string]AliasTarget{}
	if len(aliases) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT a.alias, c.id, c.channel, c.thread_key FROM thread_aliases a
		JOIN conversations c ON c.id = a.conversation_id WHERE a.alias = ANY($1)`, aliases)
	if err != nil {
		return nil, fmt.Errorf("resolve %d thread aliases: %w", len(aliases), err)
	}
	var (
		alias, id, key string
		ch             int16
	)
	_, err = pgx.ForEachRow(rows, []any{&alias, &id, &ch, &key}, func() error {
		out[alias] = AliasTarget{ConversationID: id, Thread: ThreadKey{Channel: supportv1.Channel(ch), Key: key}}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %d thread aliases: %w", len(aliases), err)
	}
	return out, nil
}

// Mirror is a conversation's thread in the support channel.
type Mirror struct {
	ConversationID string
	// Channel is the Slack channel id.
	Channel string
	// HeaderID is the outbound id of the header's post.
	HeaderID string
	// TS is the header's ts; empty until its receipt came.
	TS string
	// Shown is what the header shows now.
	Shown string
}

// Mirrors loads the mirrors of these conversations, by conversation id.
func Mirrors(ctx context.Context, q Querier, ids []string) (map[string]*Mirror, error) {
	out := map[string]*Mirror{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT conversation_id, channel, header_id, ts, shown FROM mirrors WHERE conversation_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load %d mirrors: %w", len(ids), err)
	}
	var m Mirror
	_, err = pgx.ForEachRow(rows, []any{&m.ConversationID, &m.Channel, &m.HeaderID, &m.TS, &m.Shown}, func() error {
		c := m
		out[m.ConversationID] = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %d mirrors: %w", len(ids), err)
	}
	return out, nil
}

// SaveMirror writes a mirror.
func SaveMirror(ctx context.Context, q Querier, m *Mirror) error {
	_, err := q.Exec(ctx, `INSERT INTO mirrors (conversation_id, channel, header_id, ts, shown) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (conversation_id) DO UPDATE SET channel = excluded.channel, header_id = excluded.header_id,
			ts = excluded.ts, shown = excluded.shown`,
		m.ConversationID, m.Channel, m.HeaderID, m.TS, m.Shown)
	if err != nil {
		return fmt.Errorf("save mirror of %s: %w", m.ConversationID, err)
	}
	return nil
}
