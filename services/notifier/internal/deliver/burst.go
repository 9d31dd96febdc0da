package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Bursts: the pings about conversations that reach one person (or Slack
// channel) through a channel that can rewrite its messages (notify.Coalescer:
// Slack) are coalesced. The first is posted at once; those that follow
// within BurstWindow of that post are added to the same message, which is
// rewritten with the list at most once per BurstEvery, so a hundred new
// conversations in ten seconds are one message that grows, not a hundred
// DMs, and a sender never waits on Slack's pace of a post a second.
//
// A member is delivered when a post or rewrite that lists it succeeded; a
// rewrite renders every member from the delivery log, so repeating it
// after a crash changes nothing, and a post cut short by a crash is looked
// for (notify.Finder, by the burst's id) before it is posted again. The
// per-person rate limit does not apply to members: a burst is one message.
//
// One sender works on a key (channel and recipient) at a time: ClaimBurst
// leases the burst. In this process one goroutine per key with work runs
// while RunBursts runs (see runBurst); without it (tests) rounds are made
// at once and the sweeper makes the rest.

// burstWorkers runs one sender goroutine per burst key with work.
type burstWorkers struct {
	mu sync.Mutex
	// ctx is RunBursts's while it runs; nil otherwise.
	ctx     context.Context
	running map[string]bool
	// again marks keys that got work while their sender was busy.
	again map[string]bool
	wg    sync.WaitGroup
}

// RunBursts lets senders of bursts run in the background until ctx is
// done, then waits for them.
func (d *Dispatcher) RunBursts(ctx context.Context) error {
	w := &d.bursts
	w.mu.Lock()
	w.ctx = ctx
	w.mu.Unlock()
	<-ctx.Done()
	w.mu.Lock()
	w.ctx = nil
	w.mu.Unlock()
	w.wg.Wait()
	return nil
}

// runBurst has the burst of key sent. While RunBursts runs, the caller
// makes the first round itself when no sender of the key is running here
// (so a lone ping is posted in its event's context and trace), and a
// sender goroutine makes the rest at the burst's pace; a key whose sender
// runs is only marked for it. Without RunBursts, rounds are made now
// until one must wait.
func (d *Dispatcher) runBurst(ctx context.Context, key string) {
	w := &d.bursts
	w.mu.Lock()
	if w.ctx == nil {
		w.mu.Unlock()
		for range 100 {
			next, err := d.sendBurst(ctx, key)
			if err != nil {
				d.logger.Warn("send burst; the sweeper retries", "burst_key", key, "error", err)
				return
			}
			if next.IsZero() || next.After(d.clock.Now()) {
				return
			}
		}
		return
	}
	if w.running[key] {
		w.again[key] = true
		w.mu.Unlock()
		return
	}
	if w.running == nil {
		w.running, w.again = map[string]bool{}, map[string]bool{}
	}
	w.running[key] = true
	wctx := w.ctx
	w.wg.Add(1)
	w.mu.Unlock()
	next, err := d.sendBurst(ctx, key)
	if err != nil {
		d.logger.Warn("send burst; the sweeper retries", "burst_key", key, "error", err)
	}
	go d.burstWorker(wctx, key, next, err)
}

// burstWorker sends the burst of key, round after round at its pace,
// until nothing is left to do; next and err are the outcome of the round
// made before it started.
func (d *Dispatcher) burstWorker(ctx context.Context, key string, next time.Time, err error) {
	w := &d.bursts
	defer w.wg.Done()
	done := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.again[key] && ctx.Err() == nil {
			w.again[key] = false
			return false
		}
		delete(w.running, key)
		delete(w.again, key)
		return true
	}
	for {
		if err != nil || next.IsZero() || ctx.Err() != nil {
			// After an error the sweeper starts a sender again.
			if done() {
				return
			}
		} else {
			w.mu.Lock()
			w.again[key] = false
			w.mu.Unlock()
			if wait := next.Sub(d.clock.Now()); wait > 0 && !clock.Wait(ctx, d.clock, wait) {
				done()
				return
			}
		}
		next, err = d.sendBurst(ctx, key)
		if err != nil && ctx.Err() == nil {
			d.logger.Warn("send burst; the sweeper retries", "burst_key", key, "error", err)
		}
	}
}

// sweepBursts has every burst with work due sent.
func (d *Dispatcher) sweepBursts(ctx context.Context) error {
	keys, err := d.store.BurstKeys(ctx, "", d.clock.Now(), 100)
	if err != nil {
		return err
	}
	for _, k := range keys {
		d.runBurst(ctx, k)
	}
	return nil
}

// sendBurst makes one round of the burst of key: claims it, posts or
// rewrites its message, records the outcome. next is when there is more
// to do (now: at once), zero when nothing is left or another sender has
// it.
func (d *Dispatcher) sendBurst(ctx context.Context, key string) (time.Time, error) {
	name, _, _ := strings.Cut(key, "|")
	ch, _ := d.byName[name].(notify.Coalescer)
	lines := 1
	if ch != nil {
		lines = ch.BurstLines()
	}
	now := d.clock.Now()
	round, found, next, err := d.store.ClaimBurst(ctx, key, now, now.Add(d.cfg.Lease), store.BurstPace{
		Window: d.cfg.BurstWindow, Every: d.cfg.BurstEvery, Limit: d.cfg.BurstLimit, Latest: lines,
	})
	if err != nil || !found {
		return next, err
	}
	logger := d.logger.With("burst", round.Burst.ID, "burst_key", key, "added", len(round.Added), "listed", round.Total)
	if ch == nil {
		err := notify.Permanent(fmt.Errorf("channel %q cannot send bursts in this process", name))
		return d.burstFailed(ctx, round, err, logger)
	}
	b := burstMessage(round)
	receipt, err := d.burstCall(ctx, ch, round, b, logger)
	if after, ok := notify.Later(err); ok {
		now := d.clock.Now()
		if err := d.store.DeferBurst(ctx, round, now.Add(after), now, false); err != nil {
			return time.Time{}, err
		}
		d.metrics.deliveries.WithLabelValues(round.Burst.Channel, "paced").Add(float64(len(round.Added)))
		return now.Add(after), nil
	}
	if err != nil && ctx.Err() != nil {
		// Shutting down: the lease runs out and the next sender resumes.
		logger.Info("burst send interrupted by shutdown; will resume", "error", err)
		return time.Time{}, nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		if notify.IsPermanent(err) && round.Burst.Receipt != "" {
			// The message can no longer be rewritten: its new members go
			// into a new burst.
			logger.Warn("burst message can no longer be rewritten; closing it", "error", err)
			now := d.clock.Now()
			return now, d.store.DeferBurst(ctx, round, now, now, true)
		}
		return d.burstFailed(ctx, round, err, logger)
	}
	now = d.clock.Now()
	events := make([]outbox.Event, 0, len(round.Added))
	for _, j := range round.Added {
		del := j.Delivery
		del.Receipt = receipt
		ev, err := deliveryEvent(del, j.Notification, supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, "", now)
		if err != nil {
			return time.Time{}, err
		}
		events = append(events, ev)
	}
	if err := d.store.FinishBurst(ctx, round, receipt, now, events); err != nil {
		logger.Error("burst sent but could not record it; the lease will expire and its message is looked up and rewritten", "error", err)
		return time.Time{}, err
	}
	d.metrics.deliveries.WithLabelValues(round.Burst.Channel, "delivered").Add(float64(len(round.Added)))
	d.metrics.bursts.WithLabelValues(burstKind(round)).Inc()
	logger.Debug("burst sent")
	return now, nil
}

// burstKind labels a round in sidekick_notifier_burst_messages_total.
func burstKind(round store.BurstRound) string {
	if round.Burst.Receipt == "" {
		return "post"
	}
	return "update"
}

// burstCall posts the burst's message, or rewrites it once posted. A post
// whose sender died may have reached the provider: it is looked for
// first, and rewritten when found.
func (d *Dispatcher) burstCall(ctx context.Context, ch notify.Coalescer, round store.BurstRound, b notify.Burst, logger *slog.Logger) (string, error) {
	stop := d.renewBurst(ctx, round.Burst.ID)
	defer stop()
	receipt := round.Burst.Receipt
	if receipt == "" && round.Resumed {
		if r, found := d.find(ctx, ch.(notify.Channel), notify.Message{DeliveryID: round.Burst.ID, Recipient: b.Recipient}, d.logger); found {
			logger.Info("the cut-short post of the burst had reached the provider; rewriting it, not posting again", "receipt", r.Ref)
			receipt = r.Ref
		}
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		d.metrics.sendSeconds.WithLabelValues(round.Burst.Channel).Observe(time.Since(start).Seconds())
	}()
	if receipt == "" {
		r, err := ch.SendBurst(sctx, b)
		return r.Ref, err
	}
	return receipt, ch.UpdateBurst(sctx, notify.Receipt{Ref: receipt}, b)
}

// renewBurst renews the burst's lease every quarter lease until stop is
// called.
func (d *Dispatcher) renewBurst(ctx context.Context, id string) (stop func()) {
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for clock.Wait(hctx, d.clock, d.cfg.Lease/4) {
			if err := d.store.RenewBurstLease(hctx, id, d.clock.Now().Add(d.cfg.Lease)); err != nil && hctx.Err() == nil {
				d.logger.Warn("renew burst lease; another sender may resume it", "burst", id, "error", err)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// burstFailed records a failed post or rewrite: each added member is
// retried with backoff, or fails for good (permanent, or out of attempts)
// and is dead-lettered. A round that added no one (a rewrite after an
// acknowledgement) is tried again later.
func (d *Dispatcher) burstFailed(ctx context.Context, round store.BurstRound, cause error, logger *slog.Logger) (time.Time, error) {
	now := d.clock.Now()
	if len(round.Added) == 0 {
		logger.Warn("could not rewrite burst message; will retry", "error", cause)
		return now.Add(d.retryDelay(1, cause)), d.store.ReleaseBurst(ctx, round, now)
	}
	var failures []store.MemberFailure
	var next time.Time
	for _, j := range round.Added {
		f := store.MemberFailure{Job: j, Cause: cause.Error()}
		if !notify.IsPermanent(cause) && j.Delivery.Attempts < d.cfg.MaxAttempts {
			f.RetryAt = now.Add(d.retryDelay(j.Delivery.Attempts, cause))
			if next.IsZero() || f.RetryAt.Before(next) {
				next = f.RetryAt
			}
		}
		ev, err := deliveryEvent(j.Delivery, j.Notification, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, cause.Error(), now)
		if err != nil {
			return time.Time{}, err
		}
		f.Events = append(f.Events, ev)
		if f.RetryAt.IsZero() {
			dl, err := deadLetter(j.Delivery, j.Notification, cause, now)
			if err != nil {
				return time.Time{}, err
			}
			f.Events = append(f.Events, dl)
		}
		failures = append(failures, f)
		result := "retry"
		if f.RetryAt.IsZero() {
			result = "failed"
		}
		d.metrics.deliveries.WithLabelValues(round.Burst.Channel, result).Inc()
	}
	hurried, err := d.store.FailBurst(ctx, round, failures, now)
	if err != nil {
		return time.Time{}, err
	}
	logger.Warn("burst send failed", "error", cause, "retry_at", next)
	if hurried {
		d.hurried()
	}
	return next, nil
}

// burstMessage is what the round's message shows.
func burstMessage(round store.BurstRound) notify.Burst {
	b := notify.Burst{ID: round.Burst.ID, Total: round.Total, Done: round.Done}
	for _, j := range round.Latest {
		b.Latest = append(b.Latest, notify.BurstItem{Message: message(j.Notification, j.Delivery), Status: memberStatus(j.Notification)})
	}
	switch {
	case len(round.Latest) > 0:
		b.Recipient = round.Latest[0].Delivery.Recipient
	case len(round.Added) > 0:
		b.Recipient = round.Added[0].Delivery.Recipient
	}
	return b
}

// memberStatus is how a member reads once dealt with; empty while open.
func memberStatus(n store.Notification) string {
	switch {
	case !n.AcknowledgedAt.IsZero():
		return "acknowledged by " + n.AcknowledgedBy
	case !n.StoppedAt.IsZero():
		return n.StopReason
	}
	return ""
}
