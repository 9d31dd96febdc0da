package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// errBatchRead: a batched writer cannot read.
var errBatchRead = errors.New("engine: read through a batched writer")

// batchWriter queues writes into one pgx.Batch, sent in one round trip;
// reads are refused.
type batchWriter struct{ b *pgx.Batch }

func (w batchWriter) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	w.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (w batchWriter) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errBatchRead
}

func (w batchWriter) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }

type errRow struct{}

func (errRow) Scan(...any) error { return errBatchRead }

var _ store.Querier = batchWriter{}

// Fired is what one FireDue pass did.
type Fired struct {
	// Due are the due times of the timers that fired (their transaction
	// committed).
	Due []time.Time
	// Skipped counts due timers whose conversation another transaction
	// held; they fire on a later pass.
	Skipped int
}

// FireDue fires up to limit due timers in one transaction: it claims them
// (FOR UPDATE SKIP LOCKED, so replicas share the work and never fire one
// twice), evaluates each conversation's clock, and writes the new level,
// next deadline, DEADLINE events and re-armed timers in one batch that
// commits with the claim.
func (e *Engine) FireDue(ctx context.Context, limit int) (Fired, error) {
	var res Fired
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		res = Fired{}
		now := e.now()
		due, err := store.ClaimDueTimers(ctx, tx, now, limit)
		if err != nil || len(due) == 0 {
			return err
		}
		ids := make([]string, len(due))
		dueOf := make(map[string]time.Time, len(due))
		for i, t := range due {
			ids[i] = t.ConversationID
			dueOf[t.ConversationID] = t.Due
		}
		locked, err := store.LockConversations(ctx, tx, ids)
		if err != nil {
			return err
		}
		res.Skipped = len(due) - len(locked)
		b := &pgx.Batch{}
		w := batchWriter{b}
		for _, l := range locked {
			c, st := l.Conversation, l.State
			var out conv.Outcome
			running := st.Clock.Running()
			if err := e.schedule(ctx, w, c, st, now, &out); err != nil {
				return fmt.Errorf("evaluate deadline of %s: %w", c.GetId(), err)
			}
			if err := store.FiredTimer(ctx, w, c.GetId(), now); err != nil {
				return err
			}
			if out.Changed {
				c.UpdatedAt = timestamppb.New(now)
			}
			if err := e.save(ctx, w, c, out, now); err != nil {
				return err
			}
			if !running {
				// A stopped clock was settled: keep that.
				if err := store.SaveState(ctx, w, c.GetId(), st); err != nil {
					return err
				}
			}
			res.Due = append(res.Due, dueOf[c.GetId()])
		}
		if b.Len() == 0 {
			return nil
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("write %d fired timers: %w", len(locked), err)
		}
		return nil
	})
	if err != nil {
		return Fired{}, fmt.Errorf("fire due timers: %w", err)
	}
	return res, nil
}

// NextDue returns when the earliest armed timer is due; ok is false when
// none is armed.
func (e *Engine) NextDue(ctx context.Context) (time.Time, bool, error) {
	return store.NextDue(ctx, e.pool)
}

// Recheck makes every armed deadline due at or after from be computed
// again at once (coverage changed from then on) and returns how many.
func (e *Engine) Recheck(ctx context.Context, from time.Time) (int64, error) {
	return store.RecheckTimers(ctx, e.pool, from, e.now())
}
