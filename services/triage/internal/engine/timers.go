package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// pipe queues writes (Exec) into a pgx.Batch and sends them in one round
// trip before the next read or at flush; reads see every earlier write.
// Exec's command tag is empty: writes whose result matters go through
// Query.
type pipe struct {
	tx pgx.Tx
	b  *pgx.Batch
	// notified is set once the relay's notification is queued.
	notified bool
}

func newPipe(tx pgx.Tx) *pipe { return &pipe{tx: tx, b: &pgx.Batch{}} }

func (p *pipe) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	p.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.tx.Query(ctx, sql, args...)
}

func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := p.flush(ctx); err != nil {
		return errRow{err}
	}
	return p.tx.QueryRow(ctx, sql, args...)
}

// flush sends the queued writes.
func (p *pipe) flush(ctx context.Context) error {
	if p.b.Len() == 0 {
		return nil
	}
	b := p.b
	p.b = &pgx.Batch{}
	if err := p.tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write %d queued statements: %w", b.Len(), err)
	}
	return nil
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

var _ store.Querier = (*pipe)(nil)

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
		w := newPipe(tx)
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
			var keep *store.State
			if !running {
				keep = st // a stopped clock was settled: keep that
			}
			if err := e.save(ctx, w, c, keep, out, now); err != nil {
				return err
			}
			res.Due = append(res.Due, dueOf[c.GetId()])
		}
		return w.flush(ctx)
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
