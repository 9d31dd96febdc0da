package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// The set-based writes of a transaction: each table's rows for a whole
// batch of changes in one statement. Rows without conflict handling go
// with COPY; the others with INSERT or UPDATE over unnest'ed arrays.
//
// Statements that join unnest'ed arrays to a table also filter the table
// with = ANY on an indexed column, so they probe the index whatever the
// estimate of the arrays' length.

// Copier writes rows with COPY (a pgx.Tx or pgx.Conn).
type Copier interface {
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// ConversationWrite is a conversation to write with its state (State nil:
// the conversation's fields only).
type ConversationWrite struct {
	Conversation *supportv1.Conversation
	State        *State
}

var newConversationColumns = []string{"id", "channel", "thread_key", "status", "close_reason", "tier", "tier_reason",
	"categories", "tags", "subject", "customer_id", "author", "assignee", "team", "opened_at", "first_response_at",
	"last_customer_message_at", "next_deadline_at", "deadline_level", "message_count", "permalink", "updated_at",
	"alert", "clock", "first_response_work_seconds", "first_response_level", "suggested_categories", "suggestion_confidence",
	"suggestion_source", "categories_confirmed", "classify_input", "learned_input", "learned_categories"}

// newConversationRow is a new conversation's values in
// newConversationColumns' order.
func newConversationRow(w ConversationWrite) ([]any, error) {
	args, err := conversationArgs(w.Conversation)
	if err != nil {
		return nil, err
	}
	st := w.State
	if st == nil {
		st = &State{}
	}
	v, err := stateValuesOf(w.Conversation.GetId(), st)
	if err != nil {
		return nil, err
	}
	return append(args, v.clock, v.frSeconds, v.frLevel, v.suggested, v.confidence, v.source, v.confirmed,
		v.input, v.learnedInput, v.learned), nil
}

// CopyConversations inserts new conversations with their state. It fails
// when a thread already has a conversation.
func CopyConversations(ctx context.Context, q Copier, cs []ConversationWrite) error {
	if len(cs) == 0 {
		return nil
	}
	rows := make([][]any, len(cs))
	for i, w := range cs {
		var err error
		if rows[i], err = newConversationRow(w); err != nil {
			return err
		}
	}
	if _, err := q.CopyFrom(ctx, pgx.Identifier{"conversations"}, newConversationColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("insert %d conversations: %w", len(cs), err)
	}
	return nil
}

var insertNewConversation = `INSERT INTO conversations (` + strings.Join(newConversationColumns, ", ") + `) VALUES (` +
	func() string {
		ps := make([]string, len(newConversationColumns))
		for i := range ps {
			ps[i] = fmt.Sprintf("$%d", i+1)
		}
		return strings.Join(ps, ", ")
	}() + `)`

// InsertConversations is CopyConversations for a few conversations: a
// statement each, which a pipelined q sends without a round trip of its
// own.
func InsertConversations(ctx context.Context, q Querier, cs []ConversationWrite) error {
	for _, w := range cs {
		row, err := newConversationRow(w)
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, insertNewConversation, row...); err != nil {
			return fmt.Errorf("insert conversation of %s: %w", w.Conversation.GetThreadKey(), err)
		}
	}
	return nil
}

// conversationArrays are the mutable fields of conversations as one array
// per column.
type conversationArrays struct {
	ids, tierReasons, categories, tags, subjects, assignees, teams, permalinks []string
	statuses, closeReasons, tiers, levels                                      []int16
	customerIDs                                                                []*string
	firstResponse, lastCustomer, deadlines                                     []*time.Time
	messageCounts                                                              []int32
	updated                                                                    []time.Time
	alerts                                                                     []*string
}

func (a *conversationArrays) add(c *supportv1.Conversation) error {
	alert, err := alertJSON(c)
	if err != nil {
		return err
	}
	a.alerts = append(a.alerts, alert)
	a.ids = append(a.ids, c.GetId())
	a.statuses = append(a.statuses, int16(c.GetStatus()))
	a.closeReasons = append(a.closeReasons, int16(c.GetCloseReason()))
	a.tiers = append(a.tiers, int16(c.GetTier()))
	a.tierReasons = append(a.tierReasons, c.GetTierReason())
	a.categories = append(a.categories, arrayLiteral(c.GetCategories()))
	a.tags = append(a.tags, arrayLiteral(c.GetTags()))
	a.subjects = append(a.subjects, c.GetSubject())
	a.customerIDs = append(a.customerIDs, customerID(c))
	a.assignees = append(a.assignees, c.GetAssignee())
	a.teams = append(a.teams, c.GetTeam())
	a.firstResponse = append(a.firstResponse, tm(c.GetFirstResponseAt()))
	a.lastCustomer = append(a.lastCustomer, tm(c.GetLastCustomerMessageAt()))
	a.deadlines = append(a.deadlines, tm(c.GetNextDeadlineAt()))
	a.levels = append(a.levels, int16(c.GetDeadlineLevel()))
	a.messageCounts = append(a.messageCounts, c.GetMessageCount())
	a.permalinks = append(a.permalinks, c.GetPermalink())
	a.updated = append(a.updated, c.GetUpdatedAt().AsTime())
	return nil
}

func (a *conversationArrays) args() []any {
	return []any{a.ids, a.statuses, a.closeReasons, a.tiers, a.tierReasons, a.categories, a.tags, a.subjects,
		a.customerIDs, a.assignees, a.teams, a.firstResponse, a.lastCustomer, a.deadlines, a.levels, a.messageCounts,
		a.permalinks, a.updated, a.alerts}
}

const conversationsUnnest = `unnest($1::text[], $2::smallint[], $3::smallint[], $4::smallint[], $5::text[], $6::text[], $7::text[],
		$8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::timestamptz[], $14::timestamptz[],
		$15::smallint[], $16::int[], $17::text[], $18::timestamptz[], $19::text[]`

const conversationsUnnestAs = `AS u(id, status, close_reason, tier, tier_reason, categories, tags, subject, customer_id, assignee, team,
		first_response_at, last_customer_message_at, next_deadline_at, deadline_level, message_count, permalink, updated_at, alert`

const conversationsSet = `status = u.status, close_reason = u.close_reason, tier = u.tier, tier_reason = u.tier_reason,
		categories = u.categories::text[], tags = u.tags::text[], subject = u.subject, customer_id = u.customer_id,
		assignee = u.assignee, team = u.team, first_response_at = u.first_response_at,
		last_customer_message_at = u.last_customer_message_at, next_deadline_at = u.next_deadline_at,
		deadline_level = u.deadline_level, message_count = u.message_count, permalink = u.permalink, updated_at = u.updated_at,
		alert = u.alert::jsonb`

// fewRows is the most rows UpdateConversations and InsertMessages write
// with a statement each: a statement over unnest'ed arrays is planned at
// every call (about 0.1 ms for the conversations, several times a row's
// update), which only more rows make up for.
const fewRows = 4

// UpdateConversations writes every mutable field of existing
// conversations, with their state for those that carry one: one statement
// for each kind (a statement each for fewRows or fewer).
func UpdateConversations(ctx context.Context, q Querier, cs []ConversationWrite) error {
	if len(cs) <= fewRows {
		for _, w := range cs {
			if err := updateConversation(ctx, q, w); err != nil {
				return err
			}
		}
		return nil
	}
	var plain, full conversationArrays
	var (
		clocks, sources, inputs, suggested, learned []string
		frSeconds                                   []*float64
		frLevels                                    []int16
		confidence                                  []float64
		confirmed                                   []bool
		learnedInputs                               []*string
	)
	for _, w := range cs {
		if w.State == nil {
			if err := plain.add(w.Conversation); err != nil {
				return err
			}
			continue
		}
		if err := full.add(w.Conversation); err != nil {
			return err
		}
		v, err := stateValuesOf(w.Conversation.GetId(), w.State)
		if err != nil {
			return err
		}
		var li *string
		if v.learnedInput != nil {
			s := string(v.learnedInput)
			li = &s
		}
		clocks, inputs, learnedInputs = append(clocks, string(v.clock)), append(inputs, string(v.input)), append(learnedInputs, li)
		frSeconds, frLevels = append(frSeconds, v.frSeconds), append(frLevels, v.frLevel)
		suggested, learned = append(suggested, arrayLiteral(v.suggested)), append(learned, arrayLiteral(v.learned))
		confidence, sources, confirmed = append(confidence, v.confidence), append(sources, v.source), append(confirmed, v.confirmed)
	}
	if len(plain.ids) > 0 {
		_, err := q.Exec(ctx, `UPDATE conversations c SET `+conversationsSet+`
			FROM `+conversationsUnnest+`) `+conversationsUnnestAs+`)
			WHERE c.id = ANY($1) AND c.id = u.id`, plain.args()...)
		if err != nil {
			return fmt.Errorf("update %d conversations: %w", len(plain.ids), err)
		}
	}
	if len(full.ids) > 0 {
		args := append(full.args(), clocks, frSeconds, frLevels, suggested, confidence, sources, confirmed, inputs,
			learnedInputs, learned)
		_, err := q.Exec(ctx, `UPDATE conversations c SET `+conversationsSet+`,
				clock = u.clock::jsonb, first_response_work_seconds = u.fr_seconds, first_response_level = u.fr_level,
				suggested_categories = u.suggested::text[], suggestion_confidence = u.confidence,
				suggestion_source = u.source, categories_confirmed = u.confirmed, classify_input = u.input::jsonb,
				learned_input = u.learned_input::jsonb, learned_categories = u.learned::text[]
			FROM `+conversationsUnnest+`, $20::text[], $21::float8[], $22::smallint[], $23::text[], $24::float8[],
				$25::text[], $26::bool[], $27::text[], $28::text[], $29::text[]) `+conversationsUnnestAs+`,
				clock, fr_seconds, fr_level, suggested, confidence, source, confirmed, input, learned_input, learned)
			WHERE c.id = ANY($1) AND c.id = u.id`, args...)
		if err != nil {
			return fmt.Errorf("update %d conversations: %w", len(full.ids), err)
		}
	}
	return nil
}

func updateConversation(ctx context.Context, q Querier, w ConversationWrite) error {
	c := w.Conversation
	sql := `UPDATE conversations SET status = $2, close_reason = $3, tier = $4, tier_reason = $5,
		categories = $6, tags = $7, subject = $8, customer_id = $9, assignee = $10, team = $11,
		first_response_at = $12, last_customer_message_at = $13, next_deadline_at = $14, deadline_level = $15,
		message_count = $16, permalink = $17, updated_at = $18, alert = $19`
	alert, err := alertJSON(c)
	if err != nil {
		return err
	}
	args := []any{c.GetId(), int16(c.GetStatus()), int16(c.GetCloseReason()), int16(c.GetTier()), c.GetTierReason(),
		nonNil(c.GetCategories()), nonNil(c.GetTags()), c.GetSubject(), customerID(c), c.GetAssignee(), c.GetTeam(),
		tm(c.GetFirstResponseAt()), tm(c.GetLastCustomerMessageAt()), tm(c.GetNextDeadlineAt()), int16(c.GetDeadlineLevel()),
		c.GetMessageCount(), c.GetPermalink(), c.GetUpdatedAt().AsTime(), alert}
	if w.State != nil {
		v, err := stateValuesOf(c.GetId(), w.State)
		if err != nil {
			return err
		}
		sql += `, clock = $20, first_response_work_seconds = $21, first_response_level = $22,
		suggested_categories = $23, suggestion_confidence = $24, suggestion_source = $25, categories_confirmed = $26,
		classify_input = $27, learned_input = $28, learned_categories = $29`
		args = append(args, v.clock, v.frSeconds, v.frLevel, v.suggested, v.confidence, v.source, v.confirmed,
			v.input, v.learnedInput, v.learned)
	}
	if _, err := q.Exec(ctx, sql+` WHERE id = $1`, args...); err != nil {
		return fmt.Errorf("update conversation %s: %w", c.GetId(), err)
	}
	return nil
}

// arrayLiteral is ss as a PostgreSQL array literal, so that a list per row
// travels as one element of a text[] and is cast back to text[].
func arrayLiteral(ss []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		for _, r := range s {
			if r == '"' || r == '\\' {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

// MessageRow is an inbound message to record.
type MessageRow struct {
	Message *supportv1.InboundMessage
	// Body is the message encoded; nil: encode Message.
	Body []byte
	// ConversationID is empty when the thread has no conversation.
	ConversationID string
	ReceivedAt     time.Time
}

// InsertMessages records inbound messages in order (a statement each for
// fewRows or fewer); a message id stored before is left alone.
func InsertMessages(ctx context.Context, q Querier, ms []MessageRow) error {
	if len(ms) == 0 {
		return nil
	}
	var (
		ids, threads, sources []string
		texts                 []string
		convs                 []*string
		chans, kinds, roles   []int16
		bodies                = make([][]byte, 0, len(ms))
		at                    = make([]time.Time, 0, len(ms))
	)
	for _, r := range ms {
		m := r.Message
		body := r.Body
		if body == nil {
			var err error
			if body, err = proto.Marshal(m); err != nil {
				return fmt.Errorf("insert message %s: encode: %w", m.GetId(), err)
			}
		}
		var conv *string
		if r.ConversationID != "" {
			id := r.ConversationID
			conv = &id
		}
		if len(ms) <= fewRows {
			_, err := q.Exec(ctx, `INSERT INTO messages (id, conversation_id, channel, thread_key, source_id, kind, author_role, body, received_at, search_text)
				VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO NOTHING`,
				m.GetId(), conv, int16(m.GetChannel()), m.GetThreadKey(), m.GetSourceId(), int16(m.GetKind()),
				int16(m.GetAuthor().GetRole()), body, r.ReceivedAt, SearchText(m))
			if err != nil {
				return fmt.Errorf("insert message %s: %w", m.GetId(), err)
			}
			continue
		}
		ids, convs, threads, sources = append(ids, m.GetId()), append(convs, conv), append(threads, m.GetThreadKey()), append(sources, m.GetSourceId())
		chans, kinds, roles = append(chans, int16(m.GetChannel())), append(kinds, int16(m.GetKind())), append(roles, int16(m.GetAuthor().GetRole()))
		bodies, at, texts = append(bodies, body), append(at, r.ReceivedAt), append(texts, SearchText(m))
	}
	if len(ms) <= fewRows {
		return nil
	}
	_, err := q.Exec(ctx, `INSERT INTO messages (id, conversation_id, channel, thread_key, source_id, kind, author_role, body, received_at, search_text)
		SELECT id, conversation_id, channel, thread_key, source_id, kind, author_role, body, received_at, search_text
		FROM unnest($1::text[], $2::text[], $3::smallint[], $4::text[], $5::text[], $6::smallint[], $7::smallint[],
			$8::bytea[], $9::timestamptz[], $10::text[]) WITH ORDINALITY
			AS m(id, conversation_id, channel, thread_key, source_id, kind, author_role, body, received_at, search_text, n)
		ORDER BY n
		ON CONFLICT (id) DO NOTHING`, ids, convs, chans, threads, sources, kinds, roles, bodies, at, texts)
	if err != nil {
		return fmt.Errorf("insert %d messages: %w", len(ms), err)
	}
	return nil
}

// AttachThreads attaches messages recorded earlier without a conversation
// (a bot's or staff's message before the customer wrote) to the
// conversations of their threads.
func AttachThreads(ctx context.Context, q Querier, cs []*supportv1.Conversation) error {
	if len(cs) == 0 {
		return nil
	}
	ids, keys := make([]string, len(cs)), make([]string, len(cs))
	chans := make([]int16, len(cs))
	for i, c := range cs {
		ids[i], chans[i], keys[i] = c.GetId(), int16(c.GetChannel()), c.GetThreadKey()
	}
	_, err := q.Exec(ctx, `UPDATE messages m SET conversation_id = t.id
		FROM unnest($1::text[], $2::smallint[], $3::text[]) AS t(id, channel, thread_key)
		WHERE m.channel = ANY($2) AND m.thread_key = ANY($3) AND m.conversation_id IS NULL
			AND m.channel = t.channel AND m.thread_key = t.thread_key`, ids, chans, keys)
	if err != nil {
		return fmt.Errorf("attach earlier messages to %d conversations: %w", len(cs), err)
	}
	return nil
}

// AuditRow is one line of the audit trail.
type AuditRow struct {
	ConversationID, Actor, Action, Detail string
	At                                    time.Time
}

// CopyAudit appends lines to the audit trail in order (InsertAudit for a
// few).
func CopyAudit(ctx context.Context, q Copier, rows []AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		r := rows[i]
		return []any{r.ConversationID, r.Actor, r.Action, r.Detail, r.At}, nil
	})
	if _, err := q.CopyFrom(ctx, pgx.Identifier{"audit"}, []string{"conversation_id", "actor", "action", "detail", "at"}, src); err != nil {
		return fmt.Errorf("append %d audit lines: %w", len(rows), err)
	}
	return nil
}

// InsertAudit appends lines to the audit trail in order, in one INSERT
// (for a few lines, where COPY's own round trip costs more).
func InsertAudit(ctx context.Context, q Querier, rows []AuditRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids, actors, actions, details := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	at := make([]time.Time, len(rows))
	for i, r := range rows {
		ids[i], actors[i], actions[i], details[i], at[i] = r.ConversationID, r.Actor, r.Action, r.Detail, r.At
	}
	_, err := q.Exec(ctx, `INSERT INTO audit (conversation_id, actor, action, detail, at)
		SELECT conversation_id, actor, action, detail, at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) WITH ORDINALITY
			AS a(conversation_id, actor, action, detail, at, n)
		ORDER BY n`, ids, actors, actions, details, at)
	if err != nil {
		return fmt.Errorf("append %d audit lines: %w", len(rows), err)
	}
	return nil
}

// ReportFact is what the report needs of a conversation that its audit
// trail records, kept on the conversation's row so that the report reads
// rows, not audit trails: who wrote its first response, and when it was
// last closed.
type ReportFact struct {
	ConversationID string
	// FirstResponder is the actor of the first response; "" when it was
	// not written now.
	FirstResponder string
	// ClosedAt is when it was closed now; nil when it was not.
	ClosedAt *time.Time
}

// WriteReportFacts records facts on the conversations' rows (first
// responder set once, last close the latest), in one statement.
func WriteReportFacts(ctx context.Context, q Querier, facts []ReportFact) error {
	if len(facts) == 0 {
		return nil
	}
	ids, responders := make([]string, len(facts)), make([]string, len(facts))
	closed := make([]*time.Time, len(facts))
	for i, f := range facts {
		ids[i], responders[i], closed[i] = f.ConversationID, f.FirstResponder, f.ClosedAt
	}
	_, err := q.Exec(ctx, `UPDATE conversations c SET first_responder = coalesce(c.first_responder, nullif(u.responder, '')),
			last_closed_at = greatest(c.last_closed_at, u.closed_at)
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, responder, closed_at)
		WHERE c.id = ANY($1) AND c.id = u.id`, ids, responders, closed)
	if err != nil {
		return fmt.Errorf("record the report's facts of %d conversations: %w", len(facts), err)
	}
	return nil
}

// TimerRow is the armed (or, after being armed, idle) state of a
// conversation's timer.
type TimerRow struct {
	ConversationID string
	Status         int16
	Due, ArmedAt   time.Time
}

// CopyTimers inserts the timers of conversations that have none (those
// created in the same transaction).
func CopyTimers(ctx context.Context, q Copier, rows []TimerRow) error {
	if len(rows) == 0 {
		return nil
	}
	src := pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
		t := rows[i]
		return []any{t.ConversationID, t.Status, t.Due, t.ArmedAt}, nil
	})
	if _, err := q.CopyFrom(ctx, pgx.Identifier{"timers"}, []string{"conversation_id", "status", "due_at", "armed_at"}, src); err != nil {
		return fmt.Errorf("arm %d new timers: %w", len(rows), err)
	}
	return nil
}

// WriteTimers sets timers: armed writes (creating those missing) the rows
// of timers armed in the transaction, with their last status; idle
// disarms the armed timers of these conversations, if they have one;
// fired records that these claimed timers fired at firedAt.
func WriteTimers(ctx context.Context, q Querier, armed []TimerRow, idle, fired []string, firedAt time.Time) error {
	if len(armed) > 0 {
		ids := make([]string, len(armed))
		statuses := make([]int16, len(armed))
		due, at := make([]time.Time, len(armed)), make([]time.Time, len(armed))
		for i, t := range armed {
			ids[i], statuses[i], due[i], at[i] = t.ConversationID, t.Status, t.Due, t.ArmedAt
		}
		_, err := q.Exec(ctx, `INSERT INTO timers (conversation_id, status, due_at, armed_at)
			SELECT * FROM unnest($1::text[], $2::smallint[], $3::timestamptz[], $4::timestamptz[])
			ON CONFLICT (conversation_id) DO UPDATE SET status = excluded.status, due_at = excluded.due_at, armed_at = excluded.armed_at`,
			ids, statuses, due, at)
		if err != nil {
			return fmt.Errorf("arm %d timers: %w", len(armed), err)
		}
	}
	if len(idle) > 0 {
		if _, err := q.Exec(ctx, `UPDATE timers SET status = 2 WHERE conversation_id = ANY($1) AND status = 1`, idle); err != nil {
			return fmt.Errorf("idle %d timers: %w", len(idle), err)
		}
	}
	if len(fired) > 0 {
		if _, err := q.Exec(ctx, `UPDATE timers SET fired_at = $2, fires = fires + 1 WHERE conversation_id = ANY($1)`, fired, firedAt); err != nil {
			return fmt.Errorf("record %d fired timers: %w", len(fired), err)
		}
	}
	return nil
}
