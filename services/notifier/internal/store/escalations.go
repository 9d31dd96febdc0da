package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// EscalationStatus is an escalation's state.
type EscalationStatus string

// Escalation states.
const (
	// EscalationActive has steps left to fire.
	EscalationActive EscalationStatus = "active"
	// EscalationDone fired every step; nobody acknowledged.
	EscalationDone EscalationStatus = "done"
	// EscalationAcked was acknowledged.
	EscalationAcked EscalationStatus = "acked"
	// EscalationStopped ended because the conversation was answered or
	// closed.
	EscalationStopped EscalationStatus = "stopped"
)

// Deadlines are a conversation's first-response deadlines as triage
// reported them; zero when unknown.
type Deadlines struct {
	Great, Okay, TooLate time.Time
}

// NewEscalation is an escalation to start.
type NewEscalation struct {
	// Key names the triggering event; a second start with the same key
	// starts nothing.
	Key string
	// GroupKey, when set, allows one open (active or done) escalation per
	// group: a second start in the group starts nothing.
	GroupKey string
	Kind     string
	PolicyID string
	// Policy is the policy snapshot (JSON), read back by whoever fires.
	Policy         []byte
	ConversationID string
	Team           string
	Tier           string
	Category       string
	// PersonID is the incoming hero of a handoff.
	PersonID  string
	Title     string
	Body      string
	Links     []notify.Link
	StartedAt time.Time
	// Held handoffs wait for the incoming hero's shift (ReleaseHandoffs).
	Held      bool
	CreatedAt time.Time
	// AckTimeout, when positive, re-escalates an acknowledged escalation
	// whose conversation has no staff reply that long after the
	// acknowledgement (ReEscalateDue).
	AckTimeout time.Duration
	// FirstStep is the plan position to start from (a re-escalation
	// starts at the step that was acknowledged); 0 for the first.
	FirstStep int
	// Reported are the conversation's deadlines as the triggering event
	// reported them (zero: none). StartEscalation records them as
	// LearnDeadlines does, in its own transaction; they are not kept
	// with the escalation (Escalation.Deadlines are the conversation's).
	Reported Deadlines
	// UnlessStopped starts nothing when the conversation was answered or
	// closed at or after StartedAt (the event came late): the check is
	// made by StartEscalation's first round trip, not one of its own.
	UnlessStopped bool
}

// Escalation is a recorded escalation.
type Escalation struct {
	ID string
	NewEscalation
	NextStep int
	// DueAt is when NextStep is due; zero while it waits for a deadline or
	// when no step is left.
	DueAt      time.Time
	Hurried    bool
	Status     EscalationStatus
	StopReason string
	// Deadlines of the conversation, read with the escalation.
	Deadlines Deadlines
	// The pending storm update, if any.
	RefreshText    string
	RefreshEventAt time.Time
	RefreshDueAt   time.Time
	RefreshedAt    time.Time
	Refreshes      int
	// AckDueAt is when an acknowledged escalation re-escalates unless its
	// conversation is answered or closed first; zero for none.
	AckDueAt time.Time
}

// FiredStep is one step fired: its notification (EscalationID and Step are
// set by the store) and deliveries.
type FiredStep struct {
	Position     int
	Notification NewNotification
	Deliveries   []NewDelivery
}

// Fired is what firing an escalation did and where it stands now.
type Fired struct {
	Steps []FiredStep
	// NextStep and DueAt (zero: waiting for a deadline) describe the next
	// step when Status is active.
	NextStep int
	DueAt    time.Time
	// Hurried keeps DueAt although it is sooner than planned.
	Hurried bool
	Status  EscalationStatus
	// StartedAt, when set, moves the start the plan counts from (a step
	// fired sooner than planned brings the steps after it forward too).
	StartedAt time.Time
}

// FireFunc decides what to fire for a locked escalation. An error leaves
// the escalation as it was.
type FireFunc func(ctx context.Context, esc Escalation) (Fired, error)

const escalationCols = `e.id, e.key, e.group_key, e.kind, e.policy_id, e.policy, e.conversation_id, e.team, e.tier,
	e.category, e.person_id, e.title, e.body, e.links, e.started_at, e.held, e.created_at, e.next_step, e.due_at,
	e.hurried, e.status, e.stop_reason, e.refresh_text, e.refresh_event_at, e.refresh_due_at, e.refreshed_at,
	e.refreshes, d.great, d.okay, d.too_late, e.ack_timeout_ms, e.ack_due_at`

const escalationFrom = ` FROM escalations e
	LEFT JOIN conversation_deadlines d ON e.conversation_id <> '' AND d.conversation_id = e.conversation_id`

func scanEscalation(row pgx.Row) (Escalation, error) {
	var e Escalation
	var links []byte
	var status string
	var due, refreshEvent, refreshDue, refreshed, great, okay, tooLate, ackDue *time.Time
	var ackTimeoutMS int64
	err := row.Scan(&e.ID, &e.Key, &e.GroupKey, &e.Kind, &e.PolicyID, &e.Policy, &e.ConversationID, &e.Team, &e.Tier,
		&e.Category, &e.PersonID, &e.Title, &e.Body, &links, &e.StartedAt, &e.Held, &e.CreatedAt, &e.NextStep, &due,
		&e.Hurried, &status, &e.StopReason, &e.RefreshText, &refreshEvent, &refreshDue, &refreshed,
		&e.Refreshes, &great, &okay, &tooLate, &ackTimeoutMS, &ackDue)
	if err != nil {
		return e, err
	}
	e.Status = EscalationStatus(status)
	e.AckTimeout = time.Duration(ackTimeoutMS) * time.Millisecond
	for _, x := range []struct {
		dst *time.Time
		src *time.Time
	}{{&e.DueAt, due}, {&e.RefreshEventAt, refreshEvent}, {&e.RefreshDueAt, refreshDue}, {&e.RefreshedAt, refreshed},
		{&e.Deadlines.Great, great}, {&e.Deadlines.Okay, okay}, {&e.Deadlines.TooLate, tooLate}, {&e.AckDueAt, ackDue}} {
		if x.src != nil {
			*x.dst = *x.src
		}
	}
	if err := json.Unmarshal(links, &e.Links); err != nil {
		return e, fmt.Errorf("decode links: %w", err)
	}
	return e, nil
}

func escalationWhere(ctx context.Context, q querier, where string, args ...any) (Escalation, error) {
	e, err := scanEscalation(q.QueryRow(ctx, `SELECT `+escalationCols+escalationFrom+` WHERE `+where, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Escalation{}, fmt.Errorf("escalation: %w", ErrNotFound)
	}
	if err != nil {
		return Escalation{}, fmt.Errorf("read escalation: %w", err)
	}
	return e, nil
}

// Escalation returns the escalation with id.
func (s *Store) Escalation(ctx context.Context, id string) (Escalation, error) {
	return escalationWhere(ctx, s.pool, "e.id = $1", id)
}

// EscalationByKey returns the escalation started under key.
func (s *Store) EscalationByKey(ctx context.Context, key string) (Escalation, error) {
	return escalationWhere(ctx, s.pool, "e.key = $1", key)
}

// LatestEscalation returns the most recent escalation of a conversation.
func (s *Store) LatestEscalation(ctx context.Context, conversationID string) (Escalation, error) {
	return escalationWhere(ctx, s.pool, "e.conversation_id = $1 ORDER BY e.created_at DESC, e.id LIMIT 1", conversationID)
}

// StartEscalation records ne and, in the same transaction, fires what is
// due at once, unless an escalation with the same key or an open one of
// the same group exists: then it returns that one with created false.
// The deadlines ne reports are recorded in the same transaction, and the
// conversation's active escalations fired again when they changed (as
// LearnDeadlines and FireEscalation would). notificationIDs are the
// notifications of the steps fired, to send after the commit. With
// ne.UnlessStopped, a conversation answered or closed since starts
// nothing: esc is then empty but for its Status (stopped) and its
// StopReason.
//
// This is the path of every new conversation, so it makes three round
// trips to PostgreSQL and one commit: the begin, the group's lock, the
// conversation's stop and the escalation's insert go together (one pgx
// batch); then, after the steps are decided, the notifications with
// their deliveries, the escalation's advance and the deadlines; then the
// commit.
func (s *Store) StartEscalation(ctx context.Context, ne NewEscalation, now time.Time, fire FireFunc) (esc Escalation, created bool, notificationIDs []string, err error) {
	insert, err := insertEscalationArgs(ne)
	if err != nil {
		return Escalation{}, false, nil, fmt.Errorf("start escalation %s: %w", ne.Key, err)
	}
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if ne.GroupKey != "" {
		b.Queue(lockGroupSQL, ne.GroupKey)
	}
	var stop conversationStop
	if ne.ConversationID != "" {
		b.Queue(conversationStopSQL, ne.ConversationID, ne.StartedAt).QueryRow(stop.scan)
	}
	b.Queue(insertEscalationSQL, append(insert, ne.UnlessStopped)...).QueryRow(func(row pgx.Row) error {
		var err error
		esc, err = scanEscalation(row)
		switch {
		case err == nil:
			created = true
		case !errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("insert escalation: %w", err)
		}
		return nil
	})
	// The deadlines are written with the transaction's last round trip:
	// the conversation's other events (its TRIAGED event carries the same
	// deadline) wait for that row until this transaction commits, so it
	// is held from there, not across the steps' rotation lookups.
	var learn func(*pgx.Batch)
	var waiting []string
	if d := ne.Reported; !d.zero() && ne.ConversationID != "" {
		learn = func(b *pgx.Batch) {
			b.Queue(learnDeadlinesActive, ne.ConversationID, nullTime(d.Great), nullTime(d.Okay), nullTime(d.TooLate), now).Query(func(rows pgx.Rows) error {
				var err error
				if _, waiting, err = scanLearned(rows); err != nil {
					return fmt.Errorf("record deadlines: %w", err)
				}
				return nil
			})
		}
	}
	err = beginBatch(ctx, s.pool, b, func(tx pgx.Tx) error {
		if created {
			// The steps are decided with the deadlines as they will be
			// recorded: the event's, over those known before.
			esc.Deadlines = esc.Deadlines.over(ne.Reported)
			var ids []string
			var err error
			if esc, ids, err = fireChecked(ctx, tx, esc, stop, now, fire, learn); err != nil {
				return err
			}
			notificationIDs = append(notificationIDs, ids...)
		} else if learn != nil {
			lb := &pgx.Batch{}
			learn(lb)
			if err := tx.SendBatch(ctx, lb).Close(); err != nil {
				return err
			}
		}
		// The conversation's other escalations that wait for a deadline
		// it reported are fired now that it is known (rare: an OPENED
		// event comes first).
		for _, id := range waiting {
			if created && id == esc.ID {
				continue
			}
			_, _, ids, err := lockAndFire(ctx, tx, now, fire, activeByID, id)
			if err != nil {
				return fmt.Errorf("escalation %s: %w", id, err)
			}
			notificationIDs = append(notificationIDs, ids...)
		}
		if !created && ne.UnlessStopped && stop.stopped {
			esc = Escalation{Status: EscalationStopped, StopReason: stop.reason}
			return nil
		}
		if !created {
			var err error
			esc, err = escalationWhere(ctx, tx, "e.key = $1 OR (e.group_key <> '' AND e.group_key = $2 AND e.status IN ('active', 'done')) ORDER BY e.key = $1 DESC LIMIT 1",
				ne.Key, ne.GroupKey)
			if errors.Is(err, ErrNotFound) && ne.UnlessStopped {
				// The stop committed between the read and the insert.
				esc, err = Escalation{Status: EscalationStopped}, nil
			}
			return err
		}
		if ne.GroupKey == "" {
			return nil
		}
		// An update of the group handled before this escalation existed is
		// its first refresh, due now.
		if _, err := tx.Exec(ctx, `
			WITH u AS (DELETE FROM group_updates WHERE group_key = $2 RETURNING text, event_at)
			UPDATE escalations e SET refresh_text = u.text, refresh_event_at = u.event_at, refresh_due_at = $3, updated_at = $3
			FROM u WHERE e.id = $1 AND e.status IN ('active', 'done')`, esc.ID, ne.GroupKey, now); err != nil {
			return fmt.Errorf("take the group's update: %w", err)
		}
		return nil
	})
	if err != nil {
		return Escalation{}, false, nil, fmt.Errorf("start escalation %s: %w", ne.Key, err)
	}
	return esc, created, notificationIDs, nil
}

// over is d with the deadlines r knows (non-zero) in place of its own,
// as learnDeadlines records them.
func (d Deadlines) over(r Deadlines) Deadlines {
	for _, x := range []struct{ dst, src *time.Time }{{&d.Great, &r.Great}, {&d.Okay, &r.Okay}, {&d.TooLate, &r.TooLate}} {
		if !x.src.IsZero() {
			*x.dst = *x.src
		}
	}
	return d
}

// beginBatch sends b, which begins a transaction (pgx.Batch.BeginTx:
// no round trip of its own for the begin), runs fn in the transaction
// and commits it, or rolls it back when b or fn fails.
func beginBatch(ctx context.Context, pool *pgxpool.Pool, b *pgx.Batch, fn func(pgx.Tx) error) error {
	br := pool.SendBatch(ctx, b)
	tx := br.Tx()
	// Safe after the commit; it also gives the connection back.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := br.Close(); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// insertEscalationSQL inserts an escalation (insertEscalationArgs) and
// reads it back with its conversation's deadlines, unless its key exists,
// or an open escalation of its group, or ($19) the conversation was
// answered or closed at or after its start.
const insertEscalationSQL = `
	WITH e AS (
		INSERT INTO escalations (key, group_key, kind, policy_id, policy, conversation_id, team, tier, category,
			person_id, title, body, links, started_at, held, created_at, updated_at, ack_timeout_ms, next_step)
		SELECT $1, $2, $3, $4, $5, $6::text, $7, $8, $9, $10, $11, $12, $13::jsonb, $14::timestamptz, $15, $16, $16, $17, $18
		WHERE NOT ($19::bool AND EXISTS (SELECT 1 FROM conversation_stops s WHERE s.conversation_id = $6::text AND s.occurred_at >= $14::timestamptz))
		ON CONFLICT DO NOTHING
		RETURNING *
	)
	SELECT ` + escalationCols + ` FROM e
	LEFT JOIN conversation_deadlines d ON e.conversation_id <> '' AND d.conversation_id = e.conversation_id`

func insertEscalationArgs(ne NewEscalation) ([]any, error) {
	links, err := json.Marshal(nonNil(ne.Links))
	if err != nil {
		return nil, fmt.Errorf("encode links: %w", err)
	}
	return []any{ne.Key, ne.GroupKey, ne.Kind, ne.PolicyID, ne.Policy, ne.ConversationID, ne.Team, ne.Tier, ne.Category,
		ne.PersonID, ne.Title, ne.Body, string(links), ne.StartedAt, ne.Held, ne.CreatedAt,
		ne.AckTimeout.Milliseconds(), ne.FirstStep}, nil
}

// insertEscalation records ne in tx and returns it, read back with its
// conversation's deadlines in the same statement, or pgx.ErrNoRows when
// its key (or an open escalation of its group) exists.
func insertEscalation(ctx context.Context, tx pgx.Tx, ne NewEscalation) (Escalation, error) {
	args, err := insertEscalationArgs(ne)
	if err != nil {
		return Escalation{}, err
	}
	esc, err := scanEscalation(tx.QueryRow(ctx, insertEscalationSQL, append(args, false)...))
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Escalation{}, fmt.Errorf("insert escalation: %w", err)
	}
	return esc, err
}

// ReEscalateDue takes one acknowledged escalation whose acknowledgement
// timed out by now (ack_due_at passed, the conversation neither answered
// nor closed: that would have stopped it) that no one else holds, clears
// its timeout so it re-escalates once, and starts the escalation next
// makes of it, firing what is due, in one transaction. found is false
// when none is due; started is false when next's key existed already.
func (s *Store) ReEscalateDue(ctx context.Context, now time.Time, next func(Escalation) NewEscalation, fire FireFunc) (acked, esc Escalation, found, started bool, notificationIDs []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		acked, err = scanEscalation(tx.QueryRow(ctx, `SELECT `+escalationCols+escalationFrom+`
			WHERE e.status = 'acked' AND e.ack_due_at <= $1 ORDER BY e.ack_due_at LIMIT 1 FOR UPDATE OF e SKIP LOCKED`, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock acknowledged escalation: %w", err)
		}
		found = true
		if _, err := tx.Exec(ctx, `UPDATE escalations SET ack_due_at = NULL, updated_at = $2 WHERE id = $1`, acked.ID, now); err != nil {
			return fmt.Errorf("clear the acknowledgement timeout: %w", err)
		}
		esc, err = insertEscalation(ctx, tx, next(acked))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		started = true
		esc, notificationIDs, err = fireLocked(ctx, tx, esc, now, fire)
		return err
	})
	if err != nil {
		return acked, Escalation{}, found, false, nil, fmt.Errorf("re-escalate %s: %w", acked.ID, err)
	}
	return acked, esc, found, started, notificationIDs, nil
}

// FireDue locks one active escalation due at now that no one else holds
// and fires it. found is false when none is due. On error esc is the
// escalation as it was before.
func (s *Store) FireDue(ctx context.Context, now time.Time, fire FireFunc) (esc Escalation, found bool, notificationIDs []string, err error) {
	return s.fireWhere(ctx, now, fire, `e.status = 'active' AND e.due_at <= $1 ORDER BY e.due_at LIMIT 1`, now)
}

// FireEscalation locks the escalation id (unless someone else holds it:
// found is then false) and fires what is due. It also recomputes the due
// time of an active escalation, after its conversation's deadlines
// changed.
func (s *Store) FireEscalation(ctx context.Context, id string, now time.Time, fire FireFunc) (esc Escalation, found bool, notificationIDs []string, err error) {
	return s.fireWhere(ctx, now, fire, activeByID, id)
}

// activeByID selects the active escalation $1.
const activeByID = `e.id = $1 AND e.status = 'active'`

func (s *Store) fireWhere(ctx context.Context, now time.Time, fire FireFunc, where string, arg any) (esc Escalation, found bool, notificationIDs []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		esc, found, notificationIDs, err = lockAndFire(ctx, tx, now, fire, where, arg)
		return err
	})
	if err != nil {
		// esc is the escalation as it was, so the caller can postpone it.
		return esc, found, nil, fmt.Errorf("fire escalation %s: %w", esc.ID, err)
	}
	return esc, found, notificationIDs, nil
}

// lockAndFire locks the escalation where selects in tx (unless someone
// else holds it: found is then false) and fires what is due. On an error
// after the lock, esc is the escalation as it was.
func lockAndFire(ctx context.Context, tx pgx.Tx, now time.Time, fire FireFunc, where string, arg any) (esc Escalation, found bool, notificationIDs []string, err error) {
	esc, err = scanEscalation(tx.QueryRow(ctx, `SELECT `+escalationCols+escalationFrom+` WHERE `+where+` FOR UPDATE OF e SKIP LOCKED`, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return Escalation{}, false, nil, nil
	}
	if err != nil {
		return esc, false, nil, fmt.Errorf("lock escalation: %w", err)
	}
	fired, ids, err := fireLocked(ctx, tx, esc, now, fire)
	if err != nil {
		return esc, true, nil, err
	}
	return fired, true, ids, nil
}

// fireLocked fires esc, locked in tx: unless its conversation was answered
// or closed since it started, fire decides which steps are due; they are
// recorded with their deliveries and the escalation advanced.
func fireLocked(ctx context.Context, tx pgx.Tx, esc Escalation, now time.Time, fire FireFunc) (Escalation, []string, error) {
	if esc.Status != EscalationActive {
		return esc, nil, nil
	}
	var stop conversationStop
	if esc.ConversationID != "" {
		if err := stop.scan(tx.QueryRow(ctx, conversationStopSQL, esc.ConversationID, esc.StartedAt)); err != nil {
			return esc, nil, err
		}
	}
	return fireChecked(ctx, tx, esc, stop, now, fire, nil)
}

// conversationStopSQL reads the stop of conversation $1 at or after $2.
const conversationStopSQL = `SELECT reason FROM conversation_stops WHERE conversation_id = $1 AND occurred_at >= $2`

// conversationStop is what conversationStopSQL read.
type conversationStop struct {
	stopped bool
	reason  string
}

func (c *conversationStop) scan(row pgx.Row) error {
	err := row.Scan(&c.reason)
	switch {
	case err == nil:
		c.stopped = true
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("read conversation stop: %w", err)
	}
	return nil
}

// fireChecked is fireLocked once the conversation's stop is read: the
// steps' notifications with their deliveries and the escalation's advance
// (or its stop) are written in one round trip, with what also queues.
func fireChecked(ctx context.Context, tx pgx.Tx, esc Escalation, stop conversationStop, now time.Time, fire FireFunc, also func(*pgx.Batch)) (Escalation, []string, error) {
	b := &pgx.Batch{}
	send := func() error {
		if also != nil {
			also(b)
		}
		if b.Len() == 0 {
			return nil
		}
		return tx.SendBatch(ctx, b).Close()
	}
	if esc.Status != EscalationActive {
		return esc, nil, send()
	}
	if stop.stopped {
		b.Queue(`UPDATE escalations SET status = 'stopped', stop_reason = $2, due_at = NULL, updated_at = $3 WHERE id = $1`,
			esc.ID, stop.reason, now)
		if err := send(); err != nil {
			return esc, nil, fmt.Errorf("stop escalation: %w", err)
		}
		esc.Status, esc.StopReason, esc.DueAt = EscalationStopped, stop.reason, time.Time{}
		return esc, nil, nil
	}
	f, err := fire(ctx, esc)
	if err != nil {
		return esc, nil, err
	}
	ids := make([]string, len(f.Steps))
	for i, st := range f.Steps {
		n := st.Notification
		n.EscalationID, n.Step = esc.ID, st.Position
		if err := queueNotification(b, n, st.Deliveries, &ids[i]); err != nil {
			return esc, nil, err
		}
	}
	var due *time.Time
	if f.Status == EscalationActive && !f.DueAt.IsZero() {
		due = &f.DueAt
	}
	if f.Status == "" {
		f.Status = EscalationActive
	}
	if f.StartedAt.IsZero() {
		f.StartedAt = esc.StartedAt
	}
	b.Queue(`UPDATE escalations SET next_step = $2, due_at = $3, hurried = $4, status = $5, started_at = $6, updated_at = $7 WHERE id = $1`,
		esc.ID, f.NextStep, due, f.Hurried && due != nil, string(f.Status), f.StartedAt, now)
	if err := send(); err != nil {
		return esc, nil, fmt.Errorf("record fired steps and advance escalation: %w", err)
	}
	for i, st := range f.Steps {
		if ids[i] != "" {
			continue
		}
		// Its key was recorded before (ON CONFLICT DO NOTHING returned no id).
		var err error
		if ids[i], err = notificationIDByKey(ctx, tx, st.Notification.IdempotencyKey); err != nil {
			return esc, nil, err
		}
	}
	esc.StartedAt = f.StartedAt
	esc.NextStep, esc.Hurried, esc.Status = f.NextStep, f.Hurried && due != nil, f.Status
	esc.DueAt = time.Time{}
	if due != nil {
		esc.DueAt = *due
	}
	return esc, ids, nil
}

// Postpone makes an active escalation due at until (firing it failed: say
// rotation is unreachable).
func (s *Store) Postpone(ctx context.Context, id string, until, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE escalations SET due_at = $2, updated_at = $3 WHERE id = $1 AND status = 'active'`,
		id, until, now); err != nil {
		return fmt.Errorf("postpone escalation %s: %w", id, err)
	}
	return nil
}

// learnDeadlines records the deadlines $2, $3, $4 (null: unknown) of
// conversation $1 at $5, keeping those it does not know, and returns the
// conversation's id when anything changed. Reporting what is recorded
// already (triage's TRIAGED event carries the deadline its OPENED event
// did) touches no row: an upsert whose update is skipped still locks the
// row, which takes a transaction id and a commit PostgreSQL flushes to
// disk, for nothing.
const learnDeadlines = `
	INSERT INTO conversation_deadlines AS c (conversation_id, great, okay, too_late, updated_at)
	SELECT $1, $2::timestamptz, $3::timestamptz, $4::timestamptz, $5
	WHERE NOT EXISTS (SELECT 1 FROM conversation_deadlines o WHERE o.conversation_id = $1
		AND o.great IS NOT DISTINCT FROM COALESCE($2::timestamptz, o.great)
		AND o.okay IS NOT DISTINCT FROM COALESCE($3::timestamptz, o.okay)
		AND o.too_late IS NOT DISTINCT FROM COALESCE($4::timestamptz, o.too_late))
	ON CONFLICT (conversation_id) DO UPDATE SET
		great = COALESCE(excluded.great, c.great),
		okay = COALESCE(excluded.okay, c.okay),
		too_late = COALESCE(excluded.too_late, c.too_late),
		updated_at = excluded.updated_at
	WHERE c.great IS DISTINCT FROM COALESCE(excluded.great, c.great)
	   OR c.okay IS DISTINCT FROM COALESCE(excluded.okay, c.okay)
	   OR c.too_late IS DISTINCT FROM COALESCE(excluded.too_late, c.too_late)
	RETURNING conversation_id`

// learnDeadlinesActive is learnDeadlines with, when anything changed,
// the conversation's active escalations (their steps may wait for a
// deadline): a row with the conversation's id and a null escalation id
// when it has none, no row when nothing changed.
const learnDeadlinesActive = `WITH learned AS (` + learnDeadlines + `)
	SELECT learned.conversation_id, e.id FROM learned
	LEFT JOIN escalations e ON e.conversation_id = learned.conversation_id AND e.status = 'active'
	ORDER BY e.created_at`

// scanLearned reads learnDeadlinesActive's rows.
func scanLearned(rows pgx.Rows) (changed bool, active []string, err error) {
	for rows.Next() {
		var conv string
		var id *string
		if err := rows.Scan(&conv, &id); err != nil {
			return false, nil, err
		}
		changed = true
		if id != nil {
			active = append(active, *id)
		}
	}
	return changed, active, rows.Err()
}

// LearnDeadlines records the deadlines of a conversation that d knows
// (non-zero), keeping the others, and reports whether anything changed,
// with the conversation's active escalations then (read in the same
// statement), to be fired again.
func (s *Store) LearnDeadlines(ctx context.Context, conversationID string, d Deadlines, now time.Time) (changed bool, active []string, err error) {
	if d.zero() {
		return false, nil, nil
	}
	rows, err := s.pool.Query(ctx, learnDeadlinesActive, conversationID, nullTime(d.Great), nullTime(d.Okay), nullTime(d.TooLate), now)
	if err == nil {
		changed, active, err = scanLearned(rows)
		rows.Close()
	}
	if err != nil {
		return false, nil, fmt.Errorf("record deadlines of %s: %w", conversationID, err)
	}
	return changed, active, nil
}

func (d Deadlines) zero() bool { return d.Great.IsZero() && d.Okay.IsZero() && d.TooLate.IsZero() }

// ForgetDeadlines drops a conversation's deadlines (its response clock
// stopped).
func (s *Store) ForgetDeadlines(ctx context.Context, conversationID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM conversation_deadlines WHERE conversation_id = $1`, conversationID); err != nil {
		return fmt.Errorf("forget deadlines of %s: %w", conversationID, err)
	}
	return nil
}

// RecordShiftStart remembers that personID's Support Hero shift started.
func (s *Store) RecordShiftStart(ctx context.Context, eventID, personID string, start time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO hero_shifts (event_id, person_id, start_at) VALUES ($1, $2, $3)
		ON CONFLICT (event_id) DO NOTHING`, eventID, personID, start); err != nil {
		return fmt.Errorf("record shift start: %w", err)
	}
	return nil
}

// ShiftStarted returns the start of personID's (anybody's when empty)
// latest Support Hero shift that started in [since, until].
func (s *Store) ShiftStarted(ctx context.Context, personID string, since, until time.Time) (time.Time, bool, error) {
	var start time.Time
	err := s.pool.QueryRow(ctx, `SELECT start_at FROM hero_shifts WHERE ($1 = '' OR person_id = $1) AND start_at >= $2 AND start_at <= $3
		ORDER BY start_at DESC LIMIT 1`, personID, since, until).Scan(&start)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read shift starts: %w", err)
	}
	return start, true, nil
}

// ReleaseHandoffs starts the held handoffs for personID (and those naming
// nobody) from start, and fires what is due.
func (s *Store) ReleaseHandoffs(ctx context.Context, personID string, start, now time.Time, fire FireFunc) ([]string, error) {
	var ids []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+escalationCols+escalationFrom+`
			WHERE e.held AND e.status = 'active' AND (e.person_id = $1 OR e.person_id = '')
			ORDER BY e.created_at FOR UPDATE OF e SKIP LOCKED`, personID)
		if err != nil {
			return fmt.Errorf("lock held handoffs: %w", err)
		}
		held, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Escalation, error) { return scanEscalation(r) })
		if err != nil {
			return fmt.Errorf("read held handoffs: %w", err)
		}
		for _, esc := range held {
			if start.Before(esc.StartedAt) {
				esc.StartedAt = start
			}
			esc.Held = false
			if _, err := tx.Exec(ctx, `UPDATE escalations SET held = false, started_at = $2, updated_at = $3 WHERE id = $1`,
				esc.ID, esc.StartedAt, now); err != nil {
				return fmt.Errorf("release handoff: %w", err)
			}
			_, fired, err := fireLocked(ctx, tx, esc, now, fire)
			if err != nil {
				return err
			}
			ids = append(ids, fired...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release handoffs for %s: %w", personID, err)
	}
	return ids, nil
}

// QueueRefresh records text as the latest update, made at eventAt, of the
// open escalation of group, unless a newer update is recorded. due says
// when the messages are rewritten, given when the update already waiting
// is due (zero: none waits) and when they were last rewritten (zero:
// never). It returns the escalation id and the due time; id is empty when
// the group has no open escalation or a newer update is recorded. An
// update of a group that has had no escalation yet is kept for the first
// one (StartEscalation).
func (s *Store) QueueRefresh(ctx context.Context, group, text string, eventAt, now time.Time, due func(pending, refreshed time.Time) time.Time) (string, time.Time, error) {
	var id string
	var at time.Time
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockGroup(ctx, tx, group); err != nil {
			return err
		}
		var event, pending, refreshed *time.Time
		err := tx.QueryRow(ctx, `SELECT id, refresh_event_at, refresh_due_at, refreshed_at FROM escalations
			WHERE group_key = $1 AND status IN ('active', 'done') FOR UPDATE`, group).Scan(&id, &event, &pending, &refreshed)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err := tx.Exec(ctx, `
				INSERT INTO group_updates (group_key, text, event_at, updated_at)
				SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM escalations WHERE group_key = $1)
				ON CONFLICT (group_key) DO UPDATE SET text = excluded.text, event_at = excluded.event_at, updated_at = excluded.updated_at
				WHERE group_updates.event_at <= excluded.event_at`, group, text, eventAt, now)
			if err != nil {
				return fmt.Errorf("keep the update for the group's first escalation: %w", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if event != nil && event.After(eventAt) {
			id = ""
			return nil
		}
		at = due(deref(pending), deref(refreshed))
		_, err = tx.Exec(ctx, `UPDATE escalations SET refresh_text = $2, refresh_event_at = $3, refresh_due_at = $4, updated_at = $5
			WHERE id = $1`, id, text, eventAt, at, now)
		return err
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("queue refresh of %s: %w", group, err)
	}
	return id, at, nil
}

// Sent is a delivered message of an escalation, with its notification.
type Sent = Job

// RefreshFunc updates the messages already sent for esc.
type RefreshFunc func(ctx context.Context, esc Escalation, sent []Sent) error

// FireRefresh locks one escalation whose refresh is due (id, when given,
// names it), calls do with its delivered messages and records the refresh.
// While none of its messages is delivered yet but some are on their way,
// the refresh waits until later instead: an update must not be spent on
// nothing. found is false when none is due or it is held elsewhere.
func (s *Store) FireRefresh(ctx context.Context, id string, now, later time.Time, do RefreshFunc) (bool, error) {
	found := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		esc, err := scanEscalation(tx.QueryRow(ctx, `SELECT `+escalationCols+escalationFrom+`
			WHERE ($1 = '' OR e.id = $1) AND e.refresh_due_at <= $2
			ORDER BY e.refresh_due_at LIMIT 1 FOR UPDATE OF e SKIP LOCKED`, id, now))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("lock refresh: %w", err)
		}
		found = true
		if esc.Status == EscalationActive || esc.Status == EscalationDone {
			rows, err := tx.Query(ctx, `SELECT `+deliveryCols+`, `+notificationCols+`
				FROM deliveries d JOIN notifications n ON n.id = d.notification_id
				WHERE n.escalation_id = $1 AND d.status = 'delivered' AND n.acknowledged_at IS NULL
				ORDER BY d.created_at, d.dedup_key`, esc.ID)
			if err != nil {
				return fmt.Errorf("query sent messages: %w", err)
			}
			sent, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
				var j Job
				var err error
				j.Delivery, j.Notification, err = scanJob(r)
				return j, err
			})
			if err != nil {
				return fmt.Errorf("read sent messages: %w", err)
			}
			if len(sent) == 0 {
				var onTheirWay bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries d JOIN notifications n ON n.id = d.notification_id
					WHERE n.escalation_id = $1 AND d.status IN ('pending', 'sending'))`, esc.ID).Scan(&onTheirWay); err != nil {
					return fmt.Errorf("look for messages on their way: %w", err)
				}
				if onTheirWay {
					_, err := tx.Exec(ctx, `UPDATE escalations SET refresh_due_at = $2, updated_at = $3 WHERE id = $1`, esc.ID, later, now)
					return err
				}
			}
			if err := do(ctx, esc, sent); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `UPDATE escalations SET refresh_due_at = NULL, refreshed_at = $2, refreshes = refreshes + 1, updated_at = $2
			WHERE id = $1`, esc.ID, now)
		return err
	})
	if err != nil {
		return found, fmt.Errorf("refresh: %w", err)
	}
	return found, nil
}

// lockGroup serialises, per storm group, starting the group's escalation
// and recording its updates: an update handled while the escalation is
// being started waits for it, and is never kept for no one.
const lockGroupSQL = `SELECT pg_advisory_xact_lock(hashtext('notifier.group|' || $1))`

func lockGroup(ctx context.Context, tx pgx.Tx, group string) error {
	if group == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, lockGroupSQL, group); err != nil {
		return fmt.Errorf("lock group %s: %w", group, err)
	}
	return nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// CancelUnfired stops the escalation started under key when it is active
// and has fired no step yet (a coverage gap's announcement, due a day
// before the gap, when the gap is covered first). It reports whether the
// escalation exists and whether it had fired a step; an escalation
// stopped before without firing reports not fired, so a repeated cancel
// changes nothing.
func (s *Store) CancelUnfired(ctx context.Context, key, reason string, now time.Time) (exists, fired bool, err error) {
	tag, err := s.pool.Exec(ctx, `
		UPDATE escalations SET status = 'stopped', stop_reason = $2, due_at = NULL, updated_at = $3
		WHERE key = $1 AND status = 'active' AND next_step = 0`, key, reason, now)
	if err != nil {
		return false, false, fmt.Errorf("cancel escalation %s: %w", key, err)
	}
	if tag.RowsAffected() > 0 {
		return true, false, nil
	}
	var next int
	err = s.pool.QueryRow(ctx, `SELECT next_step FROM escalations WHERE key = $1`, key).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read escalation %s: %w", key, err)
	}
	return true, next > 0, nil
}
