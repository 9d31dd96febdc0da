package coverage

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// office returns 09:00-17:00 UTC every day.
func office(from, to time.Time) worktime.Windows {
	var ivs []worktime.Interval
	for d := from.Truncate(24 * time.Hour).Add(-24 * time.Hour); d.Before(to); d = d.Add(24 * time.Hour) {
		ivs = append(ivs, worktime.Interval{Start: d.Add(9 * time.Hour), End: d.Add(17 * time.Hour)})
	}
	return worktime.Normalize(ivs).Clip(from, to)
}

type fakeSource struct {
	mu    sync.Mutex
	calls [][2]time.Time
	fail  error
}

func (f *fakeSource) Windows(_ context.Context, from, to time.Time) (worktime.Windows, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, [2]time.Time{from, to})
	if f.fail != nil {
		return nil, f.fail
	}
	return office(from, to), nil
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestCacheFetchesAlignedChunksOnce(t *testing.T) {
	src := &fakeSource{}
	clk := clock.NewFake(time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC))
	c, err := NewCache(src, CacheConfig{Chunk: 24 * time.Hour, TTL: time.Minute}, clk, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	from, to := time.Date(2026, 3, 4, 16, 0, 0, 0, time.UTC), time.Date(2026, 3, 6, 10, 0, 0, 0, time.UTC)
	w, err := c.Windows(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := office(from, to)
	if len(w) != len(want) || w.Total() != want.Total() || w.Total() != 10*time.Hour {
		t.Fatalf("windows %v, want %v", w, want)
	}
	if src.count() != 3 {
		t.Fatalf("%d fetches for three days, want 3", src.count())
	}
	for _, call := range src.calls {
		if call[0].Hour() != 0 || call[1].Sub(call[0]) != 24*time.Hour {
			t.Fatalf("fetch %v is not a whole aligned chunk", call)
		}
	}
	// Inside the TTL, nothing is fetched again.
	if _, err := c.Windows(ctx, from.Add(time.Hour), to); err != nil || src.count() != 3 {
		t.Fatalf("cached: %d fetches, %v", src.count(), err)
	}
	// After the TTL every chunk is fetched again; when rotation is down
	// the stale chunks answer.
	clk.Advance(2 * time.Minute)
	src.fail = errors.New("rotation unavailable")
	w, err = c.Windows(ctx, from, to)
	if err != nil || w.Total() != 10*time.Hour {
		t.Fatalf("stale: %v %v", w, err)
	}
	// A chunk never fetched cannot be served.
	if _, err := c.Windows(ctx, to.Add(48*time.Hour), to.Add(50*time.Hour)); err == nil {
		t.Fatal("an unknown chunk was served while rotation is down")
	}
	// Invalidate forces fetches even within the TTL.
	src.fail = nil
	clk.Advance(2 * time.Minute)
	if _, err := c.Windows(ctx, from, to); err != nil {
		t.Fatal(err)
	}
	n := src.count()
	c.Invalidate()
	if _, err := c.Windows(ctx, from, to); err != nil || src.count() != n+3 {
		t.Fatalf("after Invalidate: %d fetches (was %d), %v", src.count(), n, err)
	}
}

func TestCacheWindowSpanningChunksIsMerged(t *testing.T) {
	always := Func(func(_ context.Context, from, to time.Time) (worktime.Windows, error) {
		return Always{}.Windows(context.Background(), from, to)
	})
	c, err := NewCache(always, CacheConfig{Chunk: time.Hour, MaxChunks: 2}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)
	w, err := c.Windows(context.Background(), from, from.Add(3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !w[0].Start.Equal(from) || w[0].Duration() != 3*time.Hour {
		t.Fatalf("windows %v: chunks not merged", w)
	}
	if len(c.chunks) > 2 {
		t.Fatalf("%d chunks kept, MaxChunks 2", len(c.chunks))
	}
	if at, ok := worktime.Deadline(w, from, 2*time.Hour); !ok || !at.Equal(from.Add(2*time.Hour)) {
		t.Fatalf("deadline %v %v", at, ok)
	}
}
