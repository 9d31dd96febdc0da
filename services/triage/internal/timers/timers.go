// Package timers runs triage's deadline timers: it fires due timers in
// batches and sleeps on its clock until the next one is due (or Interval,
// whichever is sooner, so timers armed by other replicas are seen), or
// until Armed says a timer of this replica is due sooner. Timers live in
// Postgres, so they survive restarts; several replicas run this loop at
// once and share the due timers without firing any twice (the engine
// claims them with FOR UPDATE SKIP LOCKED).
package timers

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"

	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// Firer fires due timers; *engine.Engine satisfies it.
type Firer interface {
	FireDue(ctx context.Context, limit int) (engine.Fired, error)
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// Config tunes a Loop.
type Config struct {
	// Batch is the most timers fired per transaction; default 500.
	Batch int
	// Interval is the longest sleep between looks at the timers table;
	// default 250ms.
	Interval time.Duration
	// RetryDelay is the wait after a failed pass; default 1s.
	RetryDelay time.Duration
	// OnFired, when set, is called with each fired timer's lateness (fire
	// commit minus due time, on the loop's clock); benchmarks use it.
	OnFired func(lag time.Duration)
}

func (c Config) withDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	return c
}

// Loop fires timers until its context ends.
type Loop struct {
	firer  Firer
	cfg    Config
	clock  clock.Clock
	logger *slog.Logger

	// wakeAt is when the loop plans to look next (Unix nanoseconds); wake
	// brings that forward.
	wakeAt atomic.Int64
	wake   chan struct{}

	lag      prometheus.Histogram
	fired    prometheus.Counter
	failures prometheus.Counter

	// oldestDue is the due time (Unix nanoseconds) of the earliest timer
	// still pending after the loop's last completed look, or the loop's
	// start before its first; 0 when nothing is pending. The overdue gauge
	// is computed from it when scraped, so it keeps growing while the loop
	// is stuck, when the lag histogram records nothing.
	oldestDue atomic.Int64
}

// New returns a loop on clock c (nil: the wall clock); its metrics
// register on reg.
func New(f Firer, cfg Config, c clock.Clock, logger *slog.Logger, reg prometheus.Registerer) (*Loop, error) {
	if f == nil {
		return nil, errors.New("timers: firer is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Loop{firer: f, cfg: cfg.withDefaults(), clock: clock.OrReal(c), logger: logger, wake: make(chan struct{}, 1)}
	var err error
	if l.lag, err = promreg.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "sidekick_triage_timer_lag_seconds",
		Help:    "Lateness of fired deadline timers: when the firing committed minus when the timer was due.",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})); err != nil {
		return nil, err
	}
	if l.fired, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_timers_fired_total",
		Help: "Deadline timers fired.",
	})); err != nil {
		return nil, err
	}
	if l.failures, err = promreg.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "sidekick_triage_timer_failures_total",
		Help: "Timer passes that failed (retried).",
	})); err != nil {
		return nil, err
	}
	if _, err = promreg.Register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sidekick_triage_timer_overdue_seconds",
		Help: "How long the oldest deadline timer this replica's loop knows of has been due without firing; 0 when none is due.",
	}, l.Overdue)); err != nil {
		return nil, err
	}
	l.oldestDue.Store(l.clock.Now().UnixNano())
	return l, nil
}

// Armed tells the loop that a timer is due at due; it looks at once when
// that is before it planned to (engine.Config.OnArmed).
func (l *Loop) Armed(due time.Time) {
	if due.UnixNano() < l.wakeAt.Load() {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// Overdue is how long the earliest timer pending after the loop's last
// completed look has been due (since the loop started, before its first
// look), 0 when none is due. A loop that fires on time keeps it under its
// Interval; a stuck one (a pass that never returns, or keeps failing)
// lets it grow.
func (l *Loop) Overdue() float64 {
	due := l.oldestDue.Load()
	if due == 0 {
		return 0
	}
	return max(l.clock.Now().Sub(time.Unix(0, due)).Seconds(), 0)
}

// Pass fires due timers batch by batch until none is left (or only ones
// other transactions hold) and returns how many fired.
func (l *Loop) Pass(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := l.firer.FireDue(ctx, l.cfg.Batch)
		if err != nil {
			return total, err
		}
		at := l.clock.Now()
		for _, due := range res.Due {
			lag := max(at.Sub(due), 0)
			l.lag.Observe(lag.Seconds())
			if l.cfg.OnFired != nil {
				l.cfg.OnFired(lag)
			}
		}
		l.fired.Add(float64(len(res.Due)))
		total += len(res.Due)
		if len(res.Due)+res.Skipped < l.cfg.Batch || len(res.Due) == 0 {
			return total, nil
		}
	}
}

// Run fires timers until ctx is done.
func (l *Loop) Run(ctx context.Context) error {
	for {
		// The next look is planned from before this one, so a clock moved
		// meanwhile (a fake one, in tests) is not slept past.
		start := l.clock.Now()
		next := start.Add(l.cfg.Interval)
		l.wakeAt.Store(next.UnixNano())
		if _, err := l.Pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.failures.Inc()
			l.logger.Warn("deadline timers failed; retrying", "error", err, "retry_in", l.cfg.RetryDelay)
			next = l.clock.Now().Add(l.cfg.RetryDelay)
		} else if due, ok, err := l.firer.NextDue(ctx); err == nil && ok {
			l.oldestDue.Store(due.UnixNano())
			if due.Before(next) {
				// Due already (held by another transaction): look again soon.
				next = maxTime(due, l.clock.Now().Add(5*time.Millisecond))
			}
		} else if err == nil {
			l.oldestDue.Store(0)
		}
		l.wakeAt.Store(next.UnixNano())
		if !clock.WaitUntil(ctx, l.clock, next, l.wake) {
			return nil
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
