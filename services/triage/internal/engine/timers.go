package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

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
		convIDs := make([]string, len(locked))
		for i, l := range locked {
			convIDs[i] = l.Conversation.GetId()
		}
		if err := e.preloadMirrors(ctx, w, convIDs); err != nil {
			return err
		}
		for _, l := range locked {
			if err := e.fire(ctx, w, l.Conversation, l.State, now); err != nil {
				return err
			}
			res.Due = append(res.Due, dueOf[l.Conversation.GetId()])
		}
		return w.flush(ctx)
	})
	if err != nil {
		return Fired{}, fmt.Errorf("fire due timers: %w", err)
	}
	return res, nil
}

// fire evaluates c's clock when its timer fired at now, writing through p.
func (e *Engine) fire(ctx context.Context, p *pipe, c *supportv1.Conversation, st *store.State, now time.Time) error {
	var out conv.Outcome
	running := st.Clock.Running()
	e.schedule(ctx, p, c, st, now, &out)
	p.firedTimer(c.GetId(), now)
	if out.Changed {
		c.UpdatedAt = timestamppb.New(now)
	}
	var keep *store.State
	if !running {
		keep = st // a stopped clock was settled: keep that
	}
	return e.save(ctx, p, c, keep, out, now)
}

// NextDue returns when the earliest armed timer is due; ok is false when
// none is armed.
func (e *Engine) NextDue(ctx context.Context) (time.Time, bool, error) {
	return store.NextDue(ctx, e.pool)
}

// Recheck makes every armed deadline due at or after from be computed
// again at once (coverage changed from then on) and returns how many.
func (e *Engine) Recheck(ctx context.Context, from time.Time) (int64, error) {
	now := e.now()
	n, err := store.RecheckTimers(ctx, e.pool, from, now)
	if err == nil && n > 0 {
		e.armed(nil, now)
	}
	return n, err
}
