package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DigestItem is a conversation collected for a digest.
type DigestItem struct {
	// Key names the event that added it; adding the same key twice adds
	// it once.
	Key      string
	PolicyID string
	// Target is whom the digest goes to, in policy spelling ("hero").
	Target         string
	DueAt          time.Time
	ConversationID string
	Title          string
	Link           string
	AddedAt        time.Time
}

// AddDigestItem records it unless its key was recorded before.
func (s *Store) AddDigestItem(ctx context.Context, it DigestItem) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO digest_items (key, policy_id, target, due_at, conversation_id, title, link, added_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (key) DO NOTHING`,
		it.Key, it.PolicyID, it.Target, it.DueAt, it.ConversationID, it.Title, it.Link, it.AddedAt)
	if err != nil {
		return false, fmt.Errorf("add digest item %s: %w", it.Key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// DigestPart is one notification of a digest and the keys of the items
// it lists.
type DigestPart struct {
	FiredStep
	Keys []string
}

// DigestFunc makes the notifications of one digest from its items: one
// part, or several when the items are too many for one message; every
// item is listed by exactly one part.
type DigestFunc func(ctx context.Context, policyID, target string, due time.Time, items []DigestItem) ([]DigestPart, error)

// NextDigestFunc returns the time of the digest of policyID that follows
// the one due at due.
type NextDigestFunc func(policyID string, due time.Time) time.Time

// FireDigest sends one digest due at now: it takes the (policy, target,
// due time) of the earliest unsent items, drops those whose conversation
// was answered or closed since they were added, records the notifications
// fire makes of the rest, and marks each item with the one that lists it,
// in one transaction. found is false when no digest is due (or another
// replica is firing it); notificationIDs is empty when nothing was sent.
//
// A digest holds exactly the items it was built with. Items that reach a
// slot whose digest already went out (their event was handled late: the
// notifier was down, or the event raced the digest) move to the next slot
// of their policy (next), so they go out in the next digest instead of
// being marked sent by one that never listed them.
func (s *Store) FireDigest(ctx context.Context, now time.Time, next NextDigestFunc, fire DigestFunc) (found bool, notificationIDs []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// No row lock here: the advisory lock below decides which replica
		// fires a digest. A row locked here would be skipped by (or held
		// from) the firing replica's read of the slot's items.
		var policyID, target string
		var due time.Time
		err := tx.QueryRow(ctx, `SELECT policy_id, target, due_at FROM digest_items
			WHERE notification_id IS NULL AND NOT dropped AND due_at <= $1
			ORDER BY due_at, policy_id, target LIMIT 1`, now).Scan(&policyID, &target, &due)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find due digest: %w", err)
		}
		// One replica per digest: the others skip it.
		var mine bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock(hashtext('notifier.digest|' || $1 || '|' || $2 || '|' || extract(epoch from $3::timestamptz)::text))`,
			policyID, target, due).Scan(&mine); err != nil {
			return fmt.Errorf("lock digest: %w", err)
		}
		if !mine {
			return nil
		}
		found = true
		// Under the lock every statement sees what an earlier firing of
		// this slot committed.
		var sent bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM digest_items
			WHERE policy_id = $1 AND target = $2 AND due_at = $3 AND notification_id IS NOT NULL)`,
			policyID, target, due).Scan(&sent); err != nil {
			return fmt.Errorf("check digest sent: %w", err)
		}
		if sent {
			return moveToNextDigest(ctx, tx, policyID, target, due, next)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE digest_items i SET dropped = true
			WHERE i.policy_id = $1 AND i.target = $2 AND i.due_at = $3 AND i.notification_id IS NULL AND NOT i.dropped
			  AND EXISTS (SELECT 1 FROM conversation_stops s WHERE s.conversation_id = i.conversation_id AND s.occurred_at >= i.added_at)`,
			policyID, target, due); err != nil {
			return fmt.Errorf("drop answered digest items: %w", err)
		}
		// FOR UPDATE waits for a row another transaction holds instead of
		// skipping it: a skipped item would miss its digest.
		rows, err := tx.Query(ctx, `
			SELECT key, policy_id, target, due_at, conversation_id, title, link, added_at FROM digest_items
			WHERE policy_id = $1 AND target = $2 AND due_at = $3 AND notification_id IS NULL AND NOT dropped
			ORDER BY added_at, key FOR UPDATE`, policyID, target, due)
		if err != nil {
			return fmt.Errorf("lock digest items: %w", err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DigestItem, error) {
			var it DigestItem
			err := r.Scan(&it.Key, &it.PolicyID, &it.Target, &it.DueAt, &it.ConversationID, &it.Title, &it.Link, &it.AddedAt)
			return it, err
		})
		if err != nil {
			return fmt.Errorf("read digest items: %w", err)
		}
		if len(items) == 0 {
			return nil
		}
		parts, err := fire(ctx, policyID, target, due, items)
		if err != nil {
			return err
		}
		listed := 0
		for i, part := range parts {
			id, created, err := createNotification(ctx, tx, part.Notification, part.Deliveries)
			if err != nil {
				return err
			}
			if !created && i == 0 {
				// The slot's digest went out and its items were pruned
				// since: these items were never in it.
				return moveToNextDigest(ctx, tx, policyID, target, due, next)
			}
			tag, err := tx.Exec(ctx, `UPDATE digest_items SET notification_id = $2 WHERE key = ANY($1) AND notification_id IS NULL`, part.Keys, id)
			if err != nil {
				return fmt.Errorf("mark digest items sent: %w", err)
			}
			listed += int(tag.RowsAffected())
			notificationIDs = append(notificationIDs, id)
		}
		if listed != len(items) {
			return fmt.Errorf("digest %s of %s lists %d of its %d items", policyID, due, listed, len(items))
		}
		return nil
	})
	if err != nil {
		return found, nil, fmt.Errorf("fire digest: %w", err)
	}
	return found, notificationIDs, nil
}

// moveToNextDigest moves the unsent items of a digest that already went
// out to the policy's next digest after it.
func moveToNextDigest(ctx context.Context, tx pgx.Tx, policyID, target string, due time.Time, next NextDigestFunc) error {
	later := next(policyID, due)
	if !later.After(due) {
		return fmt.Errorf("next digest of %s after %s is %s, not later", policyID, due, later)
	}
	if _, err := tx.Exec(ctx, `UPDATE digest_items SET due_at = $4
		WHERE policy_id = $1 AND target = $2 AND due_at = $3 AND notification_id IS NULL AND NOT dropped`,
		policyID, target, due, later); err != nil {
		return fmt.Errorf("move late digest items to %s: %w", later, err)
	}
	return nil
}
