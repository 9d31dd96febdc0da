package timers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// run starts the loop with a clock the test moves and stops it at the end.
func run(t *testing.T, f Firer, start time.Time) (reg *prometheus.Registry, setNow func(time.Time)) {
	t.Helper()
	var now atomic.Int64
	now.Store(start.UnixNano())
	reg = prometheus.NewRegistry()
	l, err := New(f, Config{}, func() time.Time { return time.Unix(0, now.Load()) }, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return reg, func(t time.Time) { now.Store(t.UnixNano()) }
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
			reg, setNow := run(t, &fakeFirer{
				fireDue: stuckAfter(tc.passesFirst, stuck),
				nextDue: func(context.Context) (time.Time, bool, error) { return tc.next, !tc.next.IsZero(), nil },
			}, t0)
			<-stuck // the loop hangs in a pass from here on
			setNow(t0.Add(tc.later))
			if got := overdue(t, reg); got != tc.want {
				t.Errorf("%v after start: %v, want %v", tc.later, got, tc.want)
			}
		})
	}
}
