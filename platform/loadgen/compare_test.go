package loadgen

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestInterleaveTakesTurnsAndNumbersOn(t *testing.T) {
	type call struct {
		name string
		i    int
	}
	var (
		mu  sync.Mutex
		log []call
	)
	subject := func(name string) Subject {
		return Subject{Name: name, Call: func(_ context.Context, i int) error {
			mu.Lock()
			log = append(log, call{name, i})
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			return nil
		}}
	}
	r, err := Interleave(context.Background(), 3, 4, 20*time.Millisecond, subject("a"), subject("b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rates) != 3 || !slices.Equal(r.Names, []string{"a", "b"}) {
		t.Fatalf("rounds %d, names %v", len(r.Rates), r.Names)
	}
	var turns []string
	seen := map[string][]int{}
	for _, c := range log {
		if len(turns) == 0 || turns[len(turns)-1] != c.name {
			turns = append(turns, c.name)
		}
		seen[c.name] = append(seen[c.name], c.i)
	}
	if want := []string{"a", "b", "a", "b", "a", "b"}; !slices.Equal(turns, want) {
		t.Errorf("turns %v, want %v", turns, want)
	}
	for name, ids := range seen {
		slices.Sort(ids)
		for k, i := range ids {
			if i != k {
				t.Fatalf("%s: request numbers %v, want 0..%d each once", name, ids, len(ids)-1)
			}
		}
	}
	for i, row := range r.Rates {
		if row[0] <= 0 || row[1] <= 0 {
			t.Errorf("round %d: rates %v", i+1, row)
		}
	}
}

func TestInterleaveStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	// The failing subject counts its turns by seeing the other one's
	// calls grow in between.
	var okCalls, lastSeen, turns atomic.Int64
	ok := Subject{Name: "ok", Call: func(context.Context, int) error {
		okCalls.Add(1)
		return nil
	}}
	failing := Subject{Name: "failing", Call: func(context.Context, int) error {
		if n := okCalls.Load(); n != lastSeen.Load() {
			lastSeen.Store(n)
			turns.Add(1)
		}
		if turns.Load() == 2 {
			return boom
		}
		return nil
	}}
	_, err := Interleave(context.Background(), 3, 1, 5*time.Millisecond, ok, failing)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing, round 2") {
		t.Fatalf("error %v, want boom in failing, round 2", err)
	}
}

func TestRatiosPairEachRound(t *testing.T) {
	r := &Rounds{Names: []string{"ours", "bare"}, Rates: [][]float64{{50, 100}, {30, 100}, {80, 100}, {20, 40}}}
	if got, want := r.Ratios("ours", "bare"), []float64{0.3, 0.5, 0.5, 0.8}; !slices.Equal(got, want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	if got := r.Rate("ours"); got != 40 {
		t.Errorf("median rate %v, want 40", got)
	}
	rec := &recorder{metrics: map[string]float64{}}
	r.ReportRatio(rec, "ours", "bare")
	r.ReportRates(rec)
	rec.check(t, map[string]float64{"ours/bare": 0.5, "ours/bare-min": 0.3, "ours/bare-max": 0.8, "ours/s": 40, "bare/s": 100}, "0.300 0.500 0.500 0.800")
}
