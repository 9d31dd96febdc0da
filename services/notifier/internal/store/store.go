// Package store is the notifier's Postgres state: notifications, the
// delivery log, escalations, digests, conversation stops and deadlines.
// Every state change that others should hear about (support.notify events
// and dead letters) writes its event to the outbox (platform/outbox) in
// the same transaction; the service's outbox.Relay publishes them.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// ErrNotFound is returned when a notification does not exist.
var ErrNotFound = errors.New("not found")

// Status is a delivery's state.
type Status string

// Delivery states.
const (
	StatusPending   Status = "pending"
	StatusSending   Status = "sending"
	StatusDelivered Status = "delivered"
	StatusFailed    Status = "failed"
	StatusCancelled Status = "cancelled"
)

// Store reads and writes the notifier schema. The pool's search_path is
// the notifier schema, so SQL uses unqualified names.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// NewNotification is a notification to record.
type NewNotification struct {
	IdempotencyKey string
	// Origin is "conversation" or "grpc".
	Origin         string
	Urgency        notify.Urgency
	Title          string
	Body           string
	Links          []notify.Link
	ConversationID string
	CreatedAt      time.Time
	// EscalationID and Step are set for the notification of an escalation
	// step.
	EscalationID string
	Step         int
}

// Notification is a recorded notification.
type Notification struct {
	ID string
	NewNotification
	AcknowledgedAt time.Time // zero when not acknowledged
	AcknowledgedBy string
	StoppedAt      time.Time // zero unless the conversation was answered or closed
	StopReason     string
}

// NewDelivery is a delivery to record with its notification.
type NewDelivery struct {
	DedupKey  string
	Step      int
	Recipient notify.Recipient
	Channel   string
	// Failed, when set, records the delivery as failed for good at once
	// (for example: no channel can reach this recipient).
	Failed string
	// After delays the first attempt from the notification's creation (a
	// person's contact rule: email after 5 minutes unacknowledged); an
	// acknowledgement or a stop before then cancels it.
	After time.Duration
	// BurstKey, when set, makes the delivery part of its recipient's
	// burst: it is sent by the burst's message (SendBurst), never alone.
	BurstKey string
}

// Delivery is one row of the delivery log.
type Delivery struct {
	ID             string
	NotificationID string
	DedupKey       string
	Step           int
	Recipient      notify.Recipient
	Channel        string
	Status         Status
	Attempts       int
	LastError      string
	Receipt        string
	NextAttemptAt  time.Time
	CreatedAt      time.Time
	UpdatedAt      time.Time
	DeliveredAt    time.Time // zero until delivered
	// BurstKey is set on a delivery sent by a burst, and BurstID names
	// the burst whose message lists it (empty until it is listed).
	BurstKey string
	BurstID  string
}

// Job is a claimed delivery with its notification, ready to send.
type Job struct {
	Delivery     Delivery
	Notification Notification
	// Resumed is set when the previous attempt was cut short with no
	// outcome recorded (its sender died, its lease ran out): that attempt
	// may have reached the provider.
	Resumed bool
}

const notificationCols = `n.id, n.idempotency_key, n.origin, n.urgency, n.title, n.body, n.links,
	n.conversation_id, n.created_at, n.acknowledged_at, n.acknowledged_by, n.stopped_at, n.stop_reason,
	n.escalation_id, n.step`

const deliveryCols = `d.id, d.notification_id, d.dedup_key, d.step, d.person_id, d.person_name,
	d.person_email, d.person_slack_id, d.slack_channel, d.role_label, d.channel, d.status,
	d.attempts, d.last_error, d.receipt, d.next_attempt_at, d.created_at, d.updated_at, d.delivered_at,
	d.burst_key, COALESCE(d.burst_id, '')`

// CreateNotification records n with its deliveries in one transaction,
// unless a notification with the same idempotency key exists: then it
// returns that one with created false and records nothing.
func (s *Store) CreateNotification(ctx context.Context, n NewNotification, ds []NewDelivery) (Notification, bool, error) {
	var out Notification
	created := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id, ok, err := createNotification(ctx, tx, n, ds)
		if err != nil {
			return err
		}
		created = ok
		out, err = notificationWhere(ctx, tx, "n.id = $1", id)
		return err
	})
	if err != nil {
		return Notification{}, false, fmt.Errorf("create notification %s: %w", n.IdempotencyKey, err)
	}
	return out, created, nil
}

// createNotification inserts n and its deliveries in tx unless its key
// exists, and returns its id either way.
func createNotification(ctx context.Context, tx pgx.Tx, n NewNotification, ds []NewDelivery) (string, bool, error) {
	args, err := notificationArgs(n, ds)
	if err != nil {
		return "", false, err
	}
	var id string
	err = tx.QueryRow(ctx, insertNotificationSQL, args...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		id, err := notificationIDByKey(ctx, tx, n.IdempotencyKey)
		return id, false, err
	}
	if err != nil {
		return "", false, fmt.Errorf("insert notification %s: %w", n.IdempotencyKey, err)
	}
	return id, true, nil
}

// notificationIDByKey is the id of the notification recorded before with
// key (its insert did nothing).
func notificationIDByKey(ctx context.Context, tx pgx.Tx, key string) (string, error) {
	var id string
	if err := tx.QueryRow(ctx, `SELECT id FROM notifications WHERE idempotency_key = $1`, key).Scan(&id); err != nil {
		return "", fmt.Errorf("read notification %s: %w", key, err)
	}
	return id, nil
}

// queueNotification queues in b the insert of n with its deliveries;
// *id is set to its id when b is sent, left empty when its key existed.
func queueNotification(b *pgx.Batch, n NewNotification, ds []NewDelivery, id *string) error {
	args, err := notificationArgs(n, ds)
	if err != nil {
		return err
	}
	b.Queue(insertNotificationSQL, args...).QueryRow(func(row pgx.Row) error {
		err := row.Scan(id)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("insert notification %s: %w", n.IdempotencyKey, err)
		}
		return nil
	})
	return nil
}

// insertNotificationSQL inserts a notification and its deliveries in one
// statement, unless its idempotency key exists (then it inserts nothing
// and returns no row), and returns its id.
const insertNotificationSQL = `
	WITH n AS (
		INSERT INTO notifications (idempotency_key, origin, urgency, title, body, links, conversation_id, created_at, escalation_id, step)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING id
	), d AS (
		INSERT INTO deliveries (notification_id, dedup_key, step, person_id, person_name, person_email,
			person_slack_id, slack_channel, role_label, channel, status, last_error, next_attempt_at, created_at, updated_at, burst_key)
		SELECT n.id, x.dedup_key, x.step, x.person_id, x.person_name, x.person_email, x.person_slack_id, x.slack_channel,
			x.role_label, x.channel, x.status, x.last_error, x.next_attempt_at, $8, $8, x.burst_key
		FROM n, unnest($11::text[], $12::int[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
			$19::text[], $20::text[], $21::text[], $22::timestamptz[], $23::text[])
			AS x(dedup_key, step, person_id, person_name, person_email, person_slack_id, slack_channel, role_label,
			     channel, status, last_error, next_attempt_at, burst_key)
		ON CONFLICT (dedup_key) DO NOTHING
	)
	SELECT id FROM n`

// notificationArgs are insertNotificationSQL's arguments for n and ds.
func notificationArgs(n NewNotification, ds []NewDelivery) ([]any, error) {
	links, err := json.Marshal(nonNil(n.Links))
	if err != nil {
		return nil, fmt.Errorf("encode links: %w", err)
	}
	var escalationID *string
	if n.EscalationID != "" {
		escalationID = &n.EscalationID
	}
	k := len(ds)
	keys, steps := make([]string, k), make([]int32, k)
	pid, name, email, slackID, slackChannel, role := make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	channel, status, lastErr, burst := make([]string, k), make([]string, k), make([]string, k), make([]string, k)
	next := make([]time.Time, k)
	for i, d := range ds {
		st, le := StatusPending, ""
		if d.Failed != "" {
			st, le = StatusFailed, d.Failed
		}
		r := d.Recipient
		keys[i], steps[i] = d.DedupKey, int32(d.Step)
		pid[i], name[i], email[i], slackID[i], slackChannel[i], role[i] = r.PersonID, r.Name, r.Email, r.SlackID, r.SlackChannel, r.Role
		channel[i], status[i], lastErr[i], burst[i] = d.Channel, string(st), le, burstKey(d)
		next[i] = n.CreatedAt.Add(d.After)
	}
	return []any{n.IdempotencyKey, n.Origin, int(n.Urgency), n.Title, n.Body, string(links), n.ConversationID, n.CreatedAt,
		escalationID, n.Step, keys, steps, pid, name, email, slackID, slackChannel, role, channel, status, lastErr, next, burst}, nil
}

// Notification returns the notification with id.
func (s *Store) Notification(ctx context.Context, id string) (Notification, error) {
	return notificationWhere(ctx, s.pool, "n.id = $1", id)
}

// NotificationByKey returns the notification recorded under key.
func (s *Store) NotificationByKey(ctx context.Context, key string) (Notification, error) {
	return notificationWhere(ctx, s.pool, "n.idempotency_key = $1", key)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func notificationWhere(ctx context.Context, q querier, where string, arg any) (Notification, error) {
	n, err := scanNotification(q.QueryRow(ctx, `SELECT `+notificationCols+` FROM notifications n WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, fmt.Errorf("notification %v: %w", arg, ErrNotFound)
	}
	if err != nil {
		return Notification{}, fmt.Errorf("read notification %v: %w", arg, err)
	}
	return n, nil
}

// Deliveries returns the delivery log of a notification, oldest first.
func (s *Store) Deliveries(ctx context.Context, notificationID string) ([]Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deliveryCols+` FROM deliveries d
		WHERE d.notification_id = $1 ORDER BY d.created_at, d.step, d.dedup_key`, notificationID)
	if err != nil {
		return nil, fmt.Errorf("query deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", err)
	}
	return ds, nil
}

// Claim marks deliveries as being sent until leaseUntil and returns them
// with their notifications. It takes deliveries that are pending and due at
// now, and deliveries whose sender's lease expired (a crash mid-send). With
// notificationID set it only looks at that notification's deliveries.
// Concurrent claimers never get the same delivery. Deliveries of a burst
// are left to their burst (ClaimBurst).
func (s *Store) Claim(ctx context.Context, notificationID string, now, leaseUntil time.Time, limit int) ([]Job, error) {
	rows, err := s.pool.Query(ctx, `
		WITH due AS (
			SELECT id, status = 'sending' AS resumed FROM deliveries
			WHERE ($1 = '' OR notification_id = $1) AND burst_key = ''
			  AND ((status = 'pending' AND next_attempt_at <= $2) OR (status = 'sending' AND lease_until <= $2))
			ORDER BY next_attempt_at
			LIMIT $4
			FOR UPDATE SKIP LOCKED
		), d AS (
			UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $3, updated_at = $2
			FROM due WHERE deliveries.id = due.id
			RETURNING deliveries.*, due.resumed
		)
		SELECT `+deliveryCols+`, `+notificationCols+`, d.resumed
		FROM d JOIN notifications n ON n.id = d.notification_id
		ORDER BY d.next_attempt_at`,
		notificationID, now, leaseUntil, limit)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
		var j Job
		var status string
		var delivered *time.Time
		var x notificationScan
		if err := r.Scan(append(append(deliveryDest(&j.Delivery, &status, &delivered), x.dest()...), &j.Resumed)...); err != nil {
			return j, err
		}
		finishDelivery(&j.Delivery, status, delivered)
		var err error
		j.Notification, err = x.finish()
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: read: %w", err)
	}
	return jobs, nil
}

// RenewLeases extends to until the leases of the claimed jobs still being
// sent by their attempt (not re-claimed or finished meanwhile).
func (s *Store) RenewLeases(ctx context.Context, jobs []Job, until time.Time) error {
	if len(jobs) == 0 {
		return nil
	}
	ids, attempts := make([]string, len(jobs)), make([]int32, len(jobs))
	for i, j := range jobs {
		ids[i], attempts[i] = j.Delivery.ID, int32(j.Delivery.Attempts)
	}
	if _, err := s.pool.Exec(ctx, `
		UPDATE deliveries d SET lease_until = $3
		FROM unnest($1::text[], $2::int[]) AS j(id, attempts)
		WHERE d.id = j.id AND d.attempts = j.attempts AND d.status = 'sending'`, ids, attempts, until); err != nil {
		return fmt.Errorf("renew delivery leases: %w", err)
	}
	return nil
}

// MarkDelivered records a successful send of attempt and queues ev. It
// does nothing when the delivery was re-claimed meanwhile (another
// attempt). since is set when the notification was acknowledged, or its
// conversation answered or closed, while the message was on its way: the
// message just sent should be updated to say so.
func (s *Store) MarkDelivered(ctx context.Context, id string, attempt int, receipt string, now time.Time, ev outbox.Event) (since string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The notification's row is locked first: an acknowledgement or a
		// stop committing meanwhile is either seen here (the message just
		// sent is updated by our caller) or sees this delivery as sent
		// (and updates it itself). Without the lock each could miss the
		// other, and the message would never say it was dealt with.
		var acked, stopped bool
		var by, reason string
		err := tx.QueryRow(ctx, `
			SELECT n.acknowledged_at IS NOT NULL, n.acknowledged_by, n.stopped_at IS NOT NULL, n.stop_reason
			FROM notifications n JOIN deliveries d ON n.id = d.notification_id
			WHERE d.id = $1
			FOR SHARE OF n`, id).Scan(&acked, &by, &stopped, &reason)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE deliveries SET status = 'delivered', receipt = $3, delivered_at = $4, updated_at = $4,
				lease_until = NULL, last_error = ''
			WHERE id = $1 AND attempts = $2 AND status = 'sending'`, id, attempt, receipt, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		switch {
		case acked:
			since = "acknowledged by " + by
		case stopped:
			since = reason
		}
		return outbox.Insert(ctx, tx, ev)
	})
	if err != nil {
		return "", fmt.Errorf("mark delivery %s: %w", id, err)
	}
	return since, nil
}

// MarkFailed records a failed attempt and queues events (the
// support.notify.failed event first). With retryAt set the delivery
// becomes pending again, due at retryAt. Otherwise it failed for good, and
// when it was the last hope of its escalation step (no other delivery of
// the notification, webhooks aside, is delivered or still pending) the
// escalation's next step is made due at now: hurried reports that.
func (s *Store) MarkFailed(ctx context.Context, id string, attempt int, cause string, retryAt, now time.Time, events ...outbox.Event) (hurried bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		hurried, err = markFailed(ctx, tx, id, attempt, cause, retryAt, now, events...)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mark delivery %s: %w", id, err)
	}
	return hurried, nil
}

// markFailed is MarkFailed in tx. A delivery of a burst leaves it: it is
// listed again only when it is sent.
func markFailed(ctx context.Context, tx pgx.Tx, id string, attempt int, cause string, retryAt, now time.Time, events ...outbox.Event) (hurried bool, err error) {
	var tag pgconn.CommandTag
	if retryAt.IsZero() {
		tag, err = tx.Exec(ctx, `
			UPDATE deliveries SET status = 'failed', last_error = $3, updated_at = $4, lease_until = NULL, rate_at = NULL, burst_id = NULL
			WHERE id = $1 AND attempts = $2 AND status = 'sending'`, id, attempt, cause, now)
	} else {
		tag, err = tx.Exec(ctx, `
			UPDATE deliveries SET status = 'pending', last_error = $3, updated_at = $4, lease_until = NULL, next_attempt_at = $5, rate_at = NULL, burst_id = NULL
			WHERE id = $1 AND attempts = $2 AND status = 'sending'`, id, attempt, cause, now, retryAt)
	}
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if err := outbox.Insert(ctx, tx, events...); err != nil {
		return false, err
	}
	if !retryAt.IsZero() {
		return false, nil
	}
	tag, err = tx.Exec(ctx, `
		UPDATE escalations e SET due_at = $2, hurried = true, updated_at = $2
		FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.id = $1 AND e.id = n.escalation_id AND e.status = 'active' AND e.next_step = n.step + 1
		  AND (e.due_at IS NULL OR e.due_at > $2)
		  AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.notification_id = n.id AND o.channel <> 'webhook'
		                  AND o.status IN ('pending', 'sending', 'delivered'))`, id, now)
	if err != nil {
		return false, fmt.Errorf("hurry escalation: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Defer puts a claimed delivery back, due at until, without counting the
// attempt (a per-recipient rate limit held it back).
func (s *Store) Defer(ctx context.Context, id string, attempt int, until, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `
		UPDATE deliveries SET status = 'pending', attempts = attempts - 1, next_attempt_at = $3, updated_at = $4, lease_until = NULL
		WHERE id = $1 AND attempts = $2 AND status = 'sending'`, id, attempt, until, now); err != nil {
		return fmt.Errorf("defer delivery %s: %w", id, err)
	}
	return nil
}

// TakeRateSlot gives delivery id a place in its recipient's rate limit
// (limit messages through channel per window) and returns the zero time,
// or, when the window is full, the time the oldest place in it frees up.
// Places are taken one at a time per recipient, across workers and
// replicas, so the limit is exact; a delivery that already holds a place
// in the window (a retry) keeps it. With limit 0 the place is taken
// whatever the window holds (a page: never held back, but counted).
func (s *Store) TakeRateSlot(ctx context.Context, id, channel string, r notify.Recipient, now time.Time, window time.Duration, limit int) (held time.Time, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('notifier.rate|' || $1 || '|' || $2 || '|' || $3))`,
			channel, r.PersonID, r.SlackChannel); err != nil {
			return fmt.Errorf("lock rate limit: %w", err)
		}
		rows, err := tx.Query(ctx, `
			SELECT rate_at FROM deliveries
			WHERE channel = $1 AND person_id = $2 AND slack_channel = $3 AND rate_at > $4 AND id <> $5
			ORDER BY rate_at DESC LIMIT $6`, channel, r.PersonID, r.SlackChannel, now.Add(-window), id, limit)
		if err != nil {
			return fmt.Errorf("read rate limit: %w", err)
		}
		taken, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil {
			return fmt.Errorf("read rate limit: %w", err)
		}
		if limit > 0 && len(taken) >= limit {
			// The oldest of the last limit places leaves the window then.
			held = taken[len(taken)-1].Add(window)
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE deliveries SET rate_at = $2 WHERE id = $1`, id, now); err != nil {
			return fmt.Errorf("take rate limit place: %w", err)
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("rate limit of delivery %s: %w", id, err)
	}
	return held, nil
}

// Ack is an acknowledgement to record.
type Ack struct {
	// NotificationID, or ConversationID to acknowledge all its notifications.
	NotificationID string
	ConversationID string
	Actor          string
	At             time.Time
}

// Acknowledged is a notification acknowledged by Acknowledge, with the
// deliveries already sent (channels may want to update them).
type Acknowledged struct {
	Notification Notification
	Sent         []Delivery
}

// Acknowledge records who acknowledged which notifications that were not
// acknowledged yet, cancels their unsent deliveries, and queues one event
// per notification made by event. A missing notification id is ErrNotFound;
// an already acknowledged one is left alone and not returned.
func (s *Store) Acknowledge(ctx context.Context, a Ack, event func(Notification) (outbox.Event, error)) ([]Acknowledged, error) {
	var out []Acknowledged
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if a.NotificationID != "" {
			if _, err := notificationWhere(ctx, tx, "n.id = $1", a.NotificationID); err != nil {
				return err
			}
		}
		// Acknowledging one step of an escalation acknowledges its other
		// steps too: the escalation stops.
		rows, err := tx.Query(ctx, `
			UPDATE notifications n SET acknowledged_at = $3, acknowledged_by = $4
			WHERE (($1 <> '' AND (n.id = $1 OR n.escalation_id = (SELECT escalation_id FROM notifications WHERE id = $1)))
			       OR ($1 = '' AND $2 <> '' AND n.conversation_id = $2))
			  AND n.acknowledged_at IS NULL
			RETURNING `+notificationCols,
			a.NotificationID, a.ConversationID, a.At, a.Actor)
		if err != nil {
			return fmt.Errorf("update notifications: %w", err)
		}
		ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
		if err != nil {
			return fmt.Errorf("read notifications: %w", err)
		}
		for _, n := range ns {
			if err := cancelPending(ctx, tx, n.ID, a.At, "acknowledged by "+a.Actor); err != nil {
				return err
			}
			sent, err := sentDeliveries(ctx, tx, n.ID)
			if err != nil {
				return err
			}
			ev, err := event(n)
			if err != nil {
				return err
			}
			if err := outbox.Insert(ctx, tx, ev); err != nil {
				return err
			}
			out = append(out, Acknowledged{Notification: n, Sent: sent})
		}
		if _, err := tx.Exec(ctx, `
			UPDATE escalations SET status = 'acked', stop_reason = $4, due_at = NULL, refresh_due_at = NULL, updated_at = $3,
				ack_due_at = CASE WHEN ack_timeout_ms > 0 THEN $3::timestamptz + ack_timeout_ms * interval '1 millisecond' END
			WHERE status IN ('active', 'done')
			  AND (($1 <> '' AND id = (SELECT escalation_id FROM notifications WHERE id = $1))
			       OR ($1 = '' AND $2 <> '' AND conversation_id = $2))`,
			a.NotificationID, a.ConversationID, a.At, "acknowledged by "+a.Actor); err != nil {
			return fmt.Errorf("stop escalations: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("acknowledge: %w", err)
	}
	return out, nil
}

// StopConversation records that a conversation was answered or closed at
// at: its notifications stop and their unsent deliveries are cancelled. It
// returns the notifications stopped with their sent deliveries.
func (s *Store) StopConversation(ctx context.Context, conversationID, reason string, at time.Time) ([]Acknowledged, error) {
	var out []Acknowledged
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO conversation_stops (conversation_id, reason, occurred_at) VALUES ($1, $2, $3)
			ON CONFLICT (conversation_id) DO UPDATE SET reason = excluded.reason, occurred_at = excluded.occurred_at
			WHERE conversation_stops.occurred_at < excluded.occurred_at`,
			conversationID, reason, at); err != nil {
			return fmt.Errorf("record stop: %w", err)
		}
		rows, err := tx.Query(ctx, `
			UPDATE notifications n SET stopped_at = $2, stop_reason = $3
			WHERE n.conversation_id = $1 AND n.stopped_at IS NULL
			RETURNING `+notificationCols, conversationID, at, reason)
		if err != nil {
			return fmt.Errorf("stop notifications: %w", err)
		}
		ns, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Notification, error) { return scanNotification(r) })
		if err != nil {
			return fmt.Errorf("read notifications: %w", err)
		}
		for _, n := range ns {
			if err := cancelPending(ctx, tx, n.ID, at, reason); err != nil {
				return err
			}
			sent, err := sentDeliveries(ctx, tx, n.ID)
			if err != nil {
				return err
			}
			out = append(out, Acknowledged{Notification: n, Sent: sent})
		}
		if _, err := tx.Exec(ctx, `
			UPDATE escalations SET status = 'stopped', stop_reason = $3, due_at = NULL, refresh_due_at = NULL, updated_at = $2
			WHERE conversation_id = $1 AND status IN ('active', 'done', 'acked')`, conversationID, at, reason); err != nil {
			return fmt.Errorf("stop escalations: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stop conversation %s: %w", conversationID, err)
	}
	return out, nil
}

// ResumeConversation forgets a stop older than at (the conversation was
// reopened).
func (s *Store) ResumeConversation(ctx context.Context, conversationID string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM conversation_stops WHERE conversation_id = $1 AND occurred_at <= $2`,
		conversationID, at); err != nil {
		return fmt.Errorf("resume conversation %s: %w", conversationID, err)
	}
	return nil
}

// ConversationStopped reports whether the conversation was answered or
// closed at or after at.
func (s *Store) ConversationStopped(ctx context.Context, conversationID string, at time.Time) (bool, error) {
	var stopped bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM conversation_stops WHERE conversation_id = $1 AND occurred_at >= $2)`,
		conversationID, at).Scan(&stopped)
	if err != nil {
		return false, fmt.Errorf("read conversation stop %s: %w", conversationID, err)
	}
	return stopped, nil
}

func cancelPending(ctx context.Context, tx pgx.Tx, notificationID string, at time.Time, reason string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE deliveries SET status = 'cancelled', last_error = $3, updated_at = $2, lease_until = NULL
		WHERE notification_id = $1 AND status = 'pending'`, notificationID, at, reason); err != nil {
		return fmt.Errorf("cancel deliveries of %s: %w", notificationID, err)
	}
	return nil
}

func sentDeliveries(ctx context.Context, tx pgx.Tx, notificationID string) ([]Delivery, error) {
	rows, err := tx.Query(ctx, `SELECT `+deliveryCols+` FROM deliveries d
		WHERE d.notification_id = $1 AND d.status = 'delivered' ORDER BY d.created_at, d.dedup_key`, notificationID)
	if err != nil {
		return nil, fmt.Errorf("query sent deliveries: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("read sent deliveries: %w", err)
	}
	return ds, nil
}

// notificationScan holds what a notification row scans into before it
// becomes a Notification.
type notificationScan struct {
	n              Notification
	urgency        int
	links          []byte
	acked, stopped *time.Time
	escalationID   *string
}

func (x *notificationScan) dest() []any {
	n := &x.n
	return []any{&n.ID, &n.IdempotencyKey, &n.Origin, &x.urgency, &n.Title, &n.Body, &x.links,
		&n.ConversationID, &n.CreatedAt, &x.acked, &n.AcknowledgedBy, &x.stopped, &n.StopReason,
		&x.escalationID, &n.Step}
}

func (x *notificationScan) finish() (Notification, error) {
	n := x.n
	n.Urgency = notify.Urgency(x.urgency)
	if x.escalationID != nil {
		n.EscalationID = *x.escalationID
	}
	if x.acked != nil {
		n.AcknowledgedAt = *x.acked
	}
	if x.stopped != nil {
		n.StoppedAt = *x.stopped
	}
	if err := json.Unmarshal(x.links, &n.Links); err != nil {
		return n, fmt.Errorf("decode links: %w", err)
	}
	return n, nil
}

func scanNotification(row pgx.Row) (Notification, error) {
	var x notificationScan
	if err := row.Scan(x.dest()...); err != nil {
		return Notification{}, err
	}
	return x.finish()
}

func deliveryDest(d *Delivery, status *string, delivered **time.Time) []any {
	r := &d.Recipient
	return []any{&d.ID, &d.NotificationID, &d.DedupKey, &d.Step, &r.PersonID, &r.Name,
		&r.Email, &r.SlackID, &r.SlackChannel, &r.Role, &d.Channel, status,
		&d.Attempts, &d.LastError, &d.Receipt, &d.NextAttemptAt, &d.CreatedAt, &d.UpdatedAt, delivered,
		&d.BurstKey, &d.BurstID}
}

func finishDelivery(d *Delivery, status string, delivered *time.Time) {
	d.Status = Status(status)
	if delivered != nil {
		d.DeliveredAt = *delivered
	}
}

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	var status string
	var delivered *time.Time
	if err := row.Scan(deliveryDest(&d, &status, &delivered)...); err != nil {
		return d, err
	}
	finishDelivery(&d, status, delivered)
	return d, nil
}

func scanJob(row pgx.Row) (Delivery, Notification, error) {
	var d Delivery
	var status string
	var delivered *time.Time
	var x notificationScan
	if err := row.Scan(append(deliveryDest(&d, &status, &delivered), x.dest()...)...); err != nil {
		return d, Notification{}, err
	}
	finishDelivery(&d, status, delivered)
	n, err := x.finish()
	return d, n, err
}

// burstKey is what a delivery's burst_key column holds.
func burstKey(d NewDelivery) string {
	if d.Failed != "" {
		return ""
	}
	return d.BurstKey
}

func nonNil(l []notify.Link) []notify.Link {
	if l == nil {
		return []notify.Link{}
	}
	return l
}
