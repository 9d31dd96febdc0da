package escalate

import (
	"context"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Update records text as the latest state of an alert group; the messages
// already sent for it are rewritten now, or when RefreshInterval since the
// last rewrite has passed (by Tick). It reports whether the group has an
// open escalation.
func (r *Runner) Update(ctx context.Context, group, text string, at time.Time) (bool, error) {
	now := r.clock.Now()
	id, due, err := r.store.QueueRefresh(ctx, group, text, at, now, func(pending, refreshed time.Time) time.Time {
		return refreshDue(pending, refreshed, now, r.cfg.RefreshInterval)
	})
	if err != nil || id == "" {
		return false, err
	}
	if !due.After(now) {
		if _, err := r.fireRefresh(ctx, id); err != nil {
			return true, err
		}
	}
	return true, nil
}

// fireRefresh rewrites the sent messages of one escalation whose refresh
// is due (id; any when empty). One that has no message delivered yet but
// some on their way tries again RefreshInterval later.
func (r *Runner) fireRefresh(ctx context.Context, id string) (bool, error) {
	now := r.clock.Now()
	return r.store.FireRefresh(ctx, id, now, now.Add(r.cfg.RefreshInterval), r.refresh)
}

// refreshDue is when a group's latest update rewrites the messages already
// sent: when the update already waiting was due (pending), else now,
// unless the messages were rewritten (refreshed) less than interval ago:
// then when the interval ends. A storm of updates thus rewrites each
// message at most once per interval, the first update at once.
func refreshDue(pending, refreshed, now time.Time, interval time.Duration) time.Time {
	if !pending.IsZero() {
		return pending
	}
	if next := refreshed.Add(interval); !refreshed.IsZero() && next.After(now) {
		return next
	}
	return now
}

// refresh is the store.RefreshFunc: it rewrites the sent messages with
// the group's latest update.
func (r *Runner) refresh(ctx context.Context, esc store.Escalation, sent []store.Sent) error {
	r.dispatch.Refresh(ctx, sent, esc.RefreshText)
	return nil
}
