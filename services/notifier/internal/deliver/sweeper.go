package deliver

import (
	"context"
	"sync"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
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
		d.attemptAll(ctx, jobs)
		total += len(jobs)
		if len(jobs) < d.cfg.Batch || ctx.Err() != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, d.sweepBursts(ctx)
		}
	}
}

// attemptAll attempts claimed jobs one after the other, renewing the
// leases of those not yet done every quarter lease: a live sender keeps
// its deliveries however long the batch takes, so the lease can be short
// and a dead sender's deliveries are resumed within seconds.
func (d *Dispatcher) attemptAll(ctx context.Context, jobs []store.Job) {
	if len(jobs) == 0 {
		return
	}
	hctx, cancel := context.WithCancel(ctx)
	var (
		mu   sync.Mutex
		left = jobs
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		for clock.Wait(hctx, d.clock, d.cfg.Lease/4) {
			mu.Lock()
			pending := left
			mu.Unlock()
			if err := d.store.RenewLeases(hctx, pending, d.clock.Now().Add(d.cfg.Lease)); err != nil && hctx.Err() == nil {
				d.logger.Warn("renew delivery leases; another sender may resume them", "error", err)
			}
		}
	})
	for i, j := range jobs {
		d.attempt(ctx, j)
		mu.Lock()
		left = jobs[i+1:]
		mu.Unlock()
	}
	cancel()
	wg.Wait()
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
