package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Timer statuses.
const (
	// TimerArmed: due at due_at.
	TimerArmed = 1
	// TimerIdle: nothing to fire (the clock stopped or breached).
	TimerIdle = 2
)

// DueTimer is a claimed timer.
type DueTimer struct {
	ConversationID string
	Due            time.Time
}

// ClaimDueTimers locks up to limit armed timers due at or before now, the
// most overdue first, skipping those another transaction holds.
func ClaimDueTimers(ctx context.Context, q Querier, now time.Time, limit int) ([]DueTimer, error) {
	rows, err := q.Query(ctx, `SELECT conversation_id, due_at FROM timers WHERE status = 1 AND due_at <= $1
		ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("claim due timers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DueTimer, error) {
		var t DueTimer
		return t, r.Scan(&t.ConversationID, &t.Due)
	})
	if err != nil {
		return nil, fmt.Errorf("claim due timers: %w", err)
	}
	return out, nil
}

// NextDue returns the due time of the earliest armed timer; ok is false
// when none is armed.
func NextDue(ctx context.Context, q Querier) (due time.Time, ok bool, err error) {
	var t *time.Time
	if err := q.QueryRow(ctx, `SELECT min(due_at) FROM timers WHERE status = 1`).Scan(&t); err != nil {
		return time.Time{}, false, fmt.Errorf("next due timer: %w", err)
	}
	if t == nil {
		return time.Time{}, false, nil
	}
	return *t, true, nil
}

// RecheckTimers makes armed timers due at or after from due now, so that
// their deadlines are computed again (coverage changed).
func RecheckTimers(ctx context.Context, q Querier, from, now time.Time) (int64, error) {
	tag, err := q.Exec(ctx, `UPDATE timers SET due_at = $2 WHERE status = 1 AND due_at >= $1 AND due_at > $2`, from, now)
	if err != nil {
		return 0, fmt.Errorf("recheck timers: %w", err)
	}
	return tag.RowsAffected(), nil
}

// RecheckTimer makes a conversation's armed timer due now.
func RecheckTimer(ctx context.Context, q Querier, conversationID string, now time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE timers SET due_at = $2 WHERE conversation_id = $1 AND status = 1`, conversationID, now); err != nil {
		return fmt.Errorf("recheck timer of %s: %w", conversationID, err)
	}
	return nil
}
