package timers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// fakeFirer answers the loop from function fields.
type fakeFirer struct {
	fireDue func(ctx context.Context, limit int) (engine.Fired, error)
	nextDue func(ctx context.Context) (time.Time, bool, error)
}

var _ Firer = (*fakeFirer)(nil)

func (f *fakeFirer) FireDue(ctx context.Context, limit int) (engine.Fired, error) {
	return f.fireDue(ctx, limit)
}

func (f *fakeFirer) NextDue(ctx context.Context) (time.Time, bool, error) {
	return f.nextDue(ctx)
}

// stuckAfter returns a FireDue that answers "nothing due" n times, then
// blocks until the loop stops, telling stuck when it starts blocking.
func stuckAfter(n int, stuck chan<- struct{}) func(context.Context, int) (engine.Fired, error) {
	var calls atomic.Int32
	return func(ctx context.Context, _ int) (engine.Fired, error) {
		if int(calls.Add(1)) <= n {
			return engine.Fired{}, nil
		}
		close(stuck)
		<-ctx.Done()
		return engine.Fired{}, ctx.Err()
	}
}

// overdue reads sidekick_triage_timer_overdue_seconds from the registry,
// as Prometheus would scrape it.
func overdue(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "sidekick_triage_timer_overdue_seconds" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no sidekick_triage_timer_overdue_seconds")
	return 0
}

// run starts the loop on a fake clock the test moves and stops it at the
// end.
func run(t *testing.T, f Firer, t0 time.Time) (reg *prometheus.Registry, c *clock.Fake) {
	t.Helper()
	c = clock.NewFake(t0)
	reg = prometheus.NewRegistry()
	l, err := New(f, Config{}, c, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	return reg, c
}

// start runs l until the test ends.
func start(t *testing.T, l *Loop) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// TestOverdueGrowsWhileTheLoopIsStuck: a loop whose pass never returns
// records no lateness at all; the overdue gauge still grows, from the due
// time of the earliest timer the loop last saw pending (or from its start,
// stuck in its first pass), and stays 0 when it saw none pending.
func TestOverdueGrowsWhileTheLoopIsStuck(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		passesFirst int // passes that complete before one hangs
		next        time.Time
		later       time.Duration
		want        float64
	}{
		{"next timer not due yet", 1, t0.Add(time.Minute), 0, 0},
		{"next timer due 5 minutes ago", 1, t0.Add(time.Minute), 6 * time.Minute, 300},
		{"stuck in the first pass", 0, time.Time{}, 3 * time.Minute, 180},
		{"nothing pending", 1, time.Time{}, time.Hour, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stuck := make(chan struct{})
			reg, c := run(t, &fakeFirer{
				fireDue: stuckAfter(tc.passesFirst, stuck),
				nextDue: func(context.Context) (time.Time, bool, error) { return tc.next, !tc.next.IsZero(), nil },
			}, t0)
			for range tc.passesFirst {
				// The loop sleeps on the clock between passes.
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				if err := c.BlockUntilContext(ctx, 1); err != nil {
					t.Fatal(err)
				}
				cancel()
				c.Advance(Config{}.withDefaults().Interval)
			}
			<-stuck // the loop hangs in a pass from here on
			c.Advance(t0.Add(tc.later).Sub(c.Now()))
			if got := overdue(t, reg); got != tc.want {
				t.Errorf("%v after start: %v, want %v", tc.later, got, tc.want)
			}
		})
	}
}

// TestArmedWakesTheLoop: with the clock standing still, a timer armed due
// before the loop's next look makes it look at once; the loop's sleep is
// on its clock, so advancing the clock wakes it too.
func TestArmedWakesTheLoop(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	passes := make(chan struct{}, 10)
	l, err := New(&fakeFirer{
		fireDue: func(context.Context, int) (engine.Fired, error) { passes <- struct{}{}; return engine.Fired{}, nil },
		nextDue: func(context.Context) (time.Time, bool, error) { return time.Time{}, false, nil },
	}, Config{Interval: time.Minute}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start(t, l)
	wait := func(what string) {
		t.Helper()
		select {
		case <-passes:
		case <-time.After(30 * time.Second):
			t.Fatalf("no pass after %s", what)
		}
	}
	wait("the start")
	l.Armed(t0) // due now, before the loop's next look a minute on
	wait("a timer armed due now")
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	if err := c.BlockUntilContext(bctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	wait("the clock moved a minute")
}
