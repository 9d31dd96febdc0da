package deliver

import (
	"context"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
)

// Sweep sends every due delivery: retries whose time has come, deliveries
// recorded but never sent, and deliveries whose sender died mid-send. It
// returns how many it attempted.
func (d *Dispatcher) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		now := d.clock.Now()
		jobs, err := d.store.Claim(ctx, "", now, now.Add(d.cfg.Lease), d.cfg.Batch)
		if err != nil {
			return total, err
		}
		for _, j := range jobs {
			d.attempt(ctx, j)
		}
		total += len(jobs)
		if len(jobs) < d.cfg.Batch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// RunSweeper resumes what a previous process left (at once) and then sends
// due deliveries every interval of the dispatcher's clock, until ctx is
// done.
func (d *Dispatcher) RunSweeper(ctx context.Context, interval time.Duration) error {
	for {
		if n, err := d.Sweep(ctx); err != nil && ctx.Err() == nil {
			d.logger.Error("sweep deliveries", "error", err)
		} else if n > 0 {
			d.logger.Debug("swept deliveries", "attempted", n)
		}
		if !clock.Wait(ctx, d.clock, interval) {
			return nil
		}
	}
}
