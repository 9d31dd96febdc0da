package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/outbox"
)

// Burst is one message that lists the pings of many conversations to one
// recipient (migrations/00007_bursts.sql).
type Burst struct {
	ID      string
	Key     string
	Channel string
	// Open bursts take new members until OpenedAt + the burst window.
	Open     bool
	OpenedAt time.Time
	// Receipt is the message's, empty until it is posted.
	Receipt string
	// SentAt is when the message was last posted or rewritten.
	SentAt time.Time
	Dirty  bool
}

// BurstPace is how a burst's sender goes.
type BurstPace struct {
	// Window: members join a burst until its message is this old.
	Window time.Duration
	// Every is the least time between two rewrites of one message.
	Every time.Duration
	// Limit bounds the deliveries one round adds, Latest the members it
	// reads to show in full.
	Limit, Latest int
}

// BurstRound is one turn of a burst's sender: what ClaimBurst took.
type BurstRound struct {
	Burst Burst
	// Resumed is set when the previous sender's lease ran out with no
	// outcome recorded: its post may have reached the provider.
	Resumed bool
	// Added are the members this round lists for the first time (claimed:
	// sending), with their notifications.
	Added []Job
	// Total is how many members the burst lists with Added, Done how many
	// of them were acknowledged, answered or closed.
	Total, Done int
	// Latest are the newest members, Added included, newest first.
	Latest []Job
}

const burstCols = `b.id, b.burst_key, b.channel, b.status = 'open', b.opened_at, b.receipt, b.sent_at, b.dirty, b.lease_until`

type burstRow struct {
	Burst
	leaseUntil *time.Time
}

func scanBurst(row pgx.Row) (burstRow, error) {
	var b burstRow
	var sent *time.Time
	err := row.Scan(&b.ID, &b.Key, &b.Channel, &b.Open, &b.OpenedAt, &b.Receipt, &sent, &b.Dirty, &b.leaseUntil)
	if sent != nil {
		b.SentAt = *sent
	}
	return b, err
}

// ClaimBurst takes the next round of the burst of key (a channel and a
// recipient) for one sender until leaseUntil: the burst whose sender died
// (Resumed), else one whose member was acknowledged or answered since its
// message was written, else the open burst with the deliveries due now,
// opening a burst when none is open within the window. found is false when
// there is nothing to do now, or another sender holds the key; next, when
// set, is when there will be (a rewrite waits pace.Every after the last).
//
// Claims of one key are taken one at a time (an advisory lock), and a
// burst is sent by one sender at a time (its lease), so two senders never
// write one message with different lists.
func (s *Store) ClaimBurst(ctx context.Context, key string, now, leaseUntil time.Time, pace BurstPace) (round BurstRound, found bool, next time.Time, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('notifier.burst|' || $1))`, key); err != nil {
			return fmt.Errorf("lock burst: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT `+burstCols+` FROM bursts b
			WHERE b.burst_key = $1 AND (b.status = 'open' OR b.dirty OR b.lease_until IS NOT NULL)
			ORDER BY b.opened_at`, key)
		if err != nil {
			return fmt.Errorf("read bursts: %w", err)
		}
		bursts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (burstRow, error) { return scanBurst(r) })
		if err != nil {
			return fmt.Errorf("read bursts: %w", err)
		}
		var pick, open *burstRow
		resumed := false
		for i := range bursts {
			b := &bursts[i]
			switch {
			case b.leaseUntil != nil && b.leaseUntil.After(now):
				return nil // another sender has the key
			case b.leaseUntil != nil && pick == nil:
				pick, resumed = b, true
			}
			if b.Open {
				open = b
			}
		}
		if pick == nil {
			for i := range bursts {
				if b := &bursts[i]; b.Dirty && b.Receipt != "" {
					pick = b
					break
				}
			}
		}
		if open != nil && !open.OpenedAt.Add(pace.Window).After(now) {
			if _, err := tx.Exec(ctx, `UPDATE bursts SET status = 'closed', updated_at = $2 WHERE id = $1`, open.ID, now); err != nil {
				return fmt.Errorf("close burst: %w", err)
			}
			open.Open, open = false, nil
		}
		var due bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM deliveries
			WHERE burst_key = $1 AND status = 'pending' AND next_attempt_at <= $2)`, key, now).Scan(&due); err != nil {
			return fmt.Errorf("look for due deliveries: %w", err)
		}
		created := false
		if pick == nil {
			switch {
			case open != nil:
				pick = open
			case !due:
				return nil
			default:
				b, err := scanBurst(tx.QueryRow(ctx, `INSERT INTO bursts AS b (burst_key, channel, opened_at, updated_at)
					SELECT $1, d.channel, $2, $2 FROM deliveries d WHERE d.burst_key = $1 LIMIT 1
					RETURNING `+burstCols, key, now))
				if err != nil {
					return fmt.Errorf("open burst: %w", err)
				}
				pick, open, created = &b, &b, true
			}
		}
		takes := pick == open && due
		if pick.Receipt != "" && !resumed && pick.SentAt.Add(pace.Every).After(now) {
			if takes || pick.Dirty {
				next = pick.SentAt.Add(pace.Every)
			}
			return nil
		}
		if takes {
			if _, err := tx.Exec(ctx, `
				WITH due AS (
					SELECT id FROM deliveries
					WHERE burst_key = $1 AND status = 'pending' AND next_attempt_at <= $2
					ORDER BY next_attempt_at, created_at LIMIT $3
					FOR UPDATE SKIP LOCKED
				)
				UPDATE deliveries d SET status = 'sending', attempts = d.attempts + 1, lease_until = $4, updated_at = $2, burst_id = $5
				FROM due WHERE d.id = due.id`, key, now, pace.Limit, leaseUntil, pick.ID); err != nil {
				return fmt.Errorf("claim burst members: %w", err)
			}
		}
		if resumed {
			if _, err := tx.Exec(ctx, `UPDATE deliveries SET attempts = attempts + 1, lease_until = $2, updated_at = $3
				WHERE burst_id = $1 AND status = 'sending'`, pick.ID, leaseUntil, now); err != nil {
				return fmt.Errorf("resume burst members: %w", err)
			}
		}
		added, err := burstJobs(ctx, tx, `d.burst_id = $1 AND d.status = 'sending' ORDER BY d.created_at, d.id`, pick.ID)
		if err != nil {
			return err
		}
		if len(added) == 0 && !resumed && !pick.Dirty {
			if created {
				_, err := tx.Exec(ctx, `DELETE FROM bursts WHERE id = $1`, pick.ID)
				return err
			}
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE bursts SET lease_until = $2, dirty = false, updated_at = $3 WHERE id = $1`,
			pick.ID, leaseUntil, now); err != nil {
			return fmt.Errorf("lease burst: %w", err)
		}
		round = BurstRound{Burst: pick.Burst, Resumed: resumed, Added: added}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE n.acknowledged_at IS NOT NULL OR n.stopped_at IS NOT NULL)
			FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.burst_id = $1`, pick.ID).Scan(&round.Total, &round.Done); err != nil {
			return fmt.Errorf("count burst members: %w", err)
		}
		round.Latest, err = burstJobs(ctx, tx, `d.burst_id = $1 ORDER BY d.created_at DESC, d.id DESC LIMIT $2`, pick.ID, pace.Latest)
		if err != nil {
			return err
		}
		found = true
		return nil
	})
	if err != nil {
		return BurstRound{}, false, time.Time{}, fmt.Errorf("claim burst %s: %w", key, err)
	}
	return round, found, next, nil
}

func burstJobs(ctx context.Context, tx pgx.Tx, where string, args ...any) ([]Job, error) {
	rows, err := tx.Query(ctx, `SELECT `+deliveryCols+`, `+notificationCols+`
		FROM deliveries d JOIN notifications n ON n.id = d.notification_id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read burst members: %w", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Job, error) {
		var j Job
		var err error
		j.Delivery, j.Notification, err = scanJob(r)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("read burst members: %w", err)
	}
	return jobs, nil
}

// FinishBurst records that the round's message went out with receipt:
// its added members are delivered (with events, one per member), and the
// burst is free again. Members acknowledged or answered while the message
// was on its way (open in it) leave the burst dirty, to be rewritten.
func (s *Store) FinishBurst(ctx context.Context, round BurstRound, receipt string, now time.Time, events []outbox.Event) error {
	ids, attempts := jobIDs(round.Added)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// As in MarkDelivered: an acknowledgement committing meanwhile
		// either is seen here or sees these members as delivered.
		var dealt bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM (SELECT n.acknowledged_at, n.stopped_at FROM notifications n
			WHERE n.id = ANY($1) ORDER BY n.id FOR SHARE) x WHERE x.acknowledged_at IS NOT NULL OR x.stopped_at IS NOT NULL)`,
			openNotifications(round)).Scan(&dealt); err != nil {
			return fmt.Errorf("lock notifications: %w", err)
		}
		tag, err := tx.Exec(ctx, `
			UPDATE deliveries d SET status = 'delivered', receipt = $4, delivered_at = $5, updated_at = $5, lease_until = NULL, last_error = ''
			FROM unnest($1::text[], $2::int[]) AS j(id, attempts)
			WHERE d.id = j.id AND d.attempts = j.attempts AND d.status = 'sending' AND d.burst_id = $3`,
			ids, attempts, round.Burst.ID, receipt, now)
		if err != nil {
			return fmt.Errorf("mark members delivered: %w", err)
		}
		if int(tag.RowsAffected()) != len(ids) {
			// Another sender took the burst over (this one's lease ran
			// out): it records what it sends.
			return fmt.Errorf("%d of %d members were taken over", len(ids)-int(tag.RowsAffected()), len(ids))
		}
		if err := outbox.Insert(ctx, tx, events...); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bursts SET receipt = $2, sent_at = $3, listed = $4, lease_until = NULL, updated_at = $3,
			dirty = dirty OR $5 WHERE id = $1`, round.Burst.ID, receipt, now, round.Total, dealt); err != nil {
			return fmt.Errorf("record burst sent: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish burst %s: %w", round.Burst.ID, err)
	}
	return nil
}

// openNotifications are the notifications of the round's members that its
// message showed as open.
func openNotifications(round BurstRound) []string {
	var ids []string
	for _, jobs := range [][]Job{round.Added, round.Latest} {
		for _, j := range jobs {
			if j.Notification.AcknowledgedAt.IsZero() && j.Notification.StoppedAt.IsZero() {
				ids = append(ids, j.Notification.ID)
			}
		}
	}
	return ids
}

func jobIDs(jobs []Job) ([]string, []int32) {
	ids, attempts := make([]string, len(jobs)), make([]int32, len(jobs))
	for i, j := range jobs {
		ids[i], attempts[i] = j.Delivery.ID, int32(j.Delivery.Attempts)
	}
	return ids, attempts
}

// DeferBurst puts the round's added members back, due at until, without
// counting the attempt, and frees the burst: the channel's pace had no
// room, or (closing it) its message can no longer be rewritten, so they
// go into the next burst.
func (s *Store) DeferBurst(ctx context.Context, round BurstRound, until, now time.Time, closing bool) error {
	ids, attempts := jobIDs(round.Added)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			UPDATE deliveries d SET status = 'pending', attempts = d.attempts - 1, next_attempt_at = $3, updated_at = $4,
				lease_until = NULL, burst_id = NULL
			FROM unnest($1::text[], $2::int[]) AS j(id, attempts)
			WHERE d.id = j.id AND d.attempts = j.attempts AND d.status = 'sending'`, ids, attempts, until, now); err != nil {
			return fmt.Errorf("put members back: %w", err)
		}
		return releaseBurst(ctx, tx, round.Burst.ID, now, closing)
	})
	if err != nil {
		return fmt.Errorf("defer burst %s: %w", round.Burst.ID, err)
	}
	return nil
}

// MemberFailure is the outcome of a failed attempt at one member: retried
// at RetryAt, or failed for good when it is zero.
type MemberFailure struct {
	Job     Job
	Cause   string
	RetryAt time.Time
	Events  []outbox.Event
}

// FailBurst records a failed attempt at the round's message for each of
// its added members (as MarkFailed does, in one transaction) and frees the
// burst. hurried reports an escalation whose next step became due.
func (s *Store) FailBurst(ctx context.Context, round BurstRound, failures []MemberFailure, now time.Time) (hurried bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, f := range failures {
			h, err := markFailed(ctx, tx, f.Job.Delivery.ID, f.Job.Delivery.Attempts, f.Cause, f.RetryAt, now, f.Events...)
			if err != nil {
				return err
			}
			hurried = hurried || h
		}
		return releaseBurst(ctx, tx, round.Burst.ID, now, false)
	})
	if err != nil {
		return false, fmt.Errorf("fail burst %s: %w", round.Burst.ID, err)
	}
	return hurried, nil
}

// ReleaseBurst frees a burst whose round sent nothing and changed nothing
// (a rewrite that failed and is tried again).
func (s *Store) ReleaseBurst(ctx context.Context, round BurstRound, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if round.Burst.Dirty || round.Resumed {
			if _, err := tx.Exec(ctx, `UPDATE bursts SET dirty = true WHERE id = $1`, round.Burst.ID); err != nil {
				return err
			}
		}
		return releaseBurst(ctx, tx, round.Burst.ID, now, false)
	})
	if err != nil {
		return fmt.Errorf("release burst %s: %w", round.Burst.ID, err)
	}
	return nil
}

func releaseBurst(ctx context.Context, tx pgx.Tx, id string, now time.Time, closing bool) error {
	if _, err := tx.Exec(ctx, `UPDATE bursts SET lease_until = NULL, updated_at = $2,
		status = CASE WHEN $3 THEN 'closed' ELSE status END WHERE id = $1`, id, now, closing); err != nil {
		return fmt.Errorf("release burst: %w", err)
	}
	return nil
}

// RenewBurstLease extends a held burst's lease to until.
func (s *Store) RenewBurstLease(ctx context.Context, id string, until time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE bursts SET lease_until = $2 WHERE id = $1 AND lease_until IS NOT NULL`, id, until); err != nil {
		return fmt.Errorf("renew burst lease %s: %w", id, err)
	}
	return nil
}

// MarkBurstDirty records that a member of the burst was acknowledged or
// answered: its message is rewritten to say so.
func (s *Store) MarkBurstDirty(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE bursts SET dirty = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("mark burst %s dirty: %w", id, err)
	}
	return nil
}

// BurstKeys returns the burst keys with work due at now: deliveries
// pending, a burst whose sender died, a burst to rewrite. With
// notificationID set, the keys of that notification's pending or
// abandoned deliveries, "" for those sent on their own (Claim).
func (s *Store) BurstKeys(ctx context.Context, notificationID string, now time.Time, limit int) ([]string, error) {
	var rows pgx.Rows
	var err error
	if notificationID != "" {
		rows, err = s.pool.Query(ctx, `SELECT DISTINCT burst_key FROM deliveries
			WHERE notification_id = $1 AND (status = 'pending' OR (status = 'sending' AND lease_until <= $2))`, notificationID, now)
	} else {
		rows, err = s.pool.Query(ctx, `
			SELECT burst_key FROM deliveries WHERE burst_key <> '' AND status = 'pending' AND next_attempt_at <= $1
			UNION
			SELECT burst_key FROM bursts WHERE lease_until <= $1 OR (dirty AND lease_until IS NULL)
			LIMIT $2`, now, limit)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("query burst keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read burst keys: %w", err)
	}
	return keys, nil
}
