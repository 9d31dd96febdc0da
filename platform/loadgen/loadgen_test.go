package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Register("echo", func(_ context.Context, in struct{ N int }) (any, error) {
		if in.N < 0 {
			return nil, errors.New("negative")
		}
		return map[string]int{"twice": 2 * in.N, "pid": os.Getpid()}, nil
	})
	RunChild()
	os.Exit(m.Run())
}

func TestOpenLoopSendsEveryRequestOnce(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[int]int{}
	)
	boom := errors.New("boom")
	res := OpenLoop(context.Background(), 2000, 200, 1000, func(_ context.Context, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		if i%50 == 0 {
			return boom
		}
		return nil
	})
	if len(seen) != 200 {
		t.Fatalf("%d distinct requests, want 200", len(seen))
	}
	for i := 1000; i < 1200; i++ {
		if seen[i] != 1 {
			t.Fatalf("request %d sent %d times", i, seen[i])
		}
	}
	if res.Errors != 4 || !errors.Is(res.FirstErr, boom) {
		t.Fatalf("errors %d (%v), want 4 boom", res.Errors, res.FirstErr)
	}
	for i := range res.Latency {
		// Every call sleeps a millisecond; latency includes the lag, which
		// is never negative: no request leaves before its scheduled time.
		if res.Wire[i] < time.Millisecond || res.Latency[i] < res.Wire[i] || res.Lag[i] < 0 {
			t.Fatalf("request %d: latency %v, wire %v, lag %v", i, res.Latency[i], res.Wire[i], res.Lag[i])
		}
		if d := res.Latency[i] - res.Wire[i] - res.Lag[i]; d < -time.Microsecond || d > time.Microsecond {
			t.Fatalf("request %d: latency %v is not lag %v plus wire %v", i, res.Latency[i], res.Lag[i], res.Wire[i])
		}
	}
}

func TestOpenLoopDoesNotWaitForSlowAnswers(t *testing.T) {
	// Closed, a loop of 20 requests of 50 ms each would take a second; open,
	// they all leave within 20 ms and overlap.
	var (
		mu        sync.Mutex
		inflight  int
		maxFlight int
	)
	OpenLoop(context.Background(), 1000, 20, 0, func(context.Context, int) error {
		mu.Lock()
		inflight++
		maxFlight = max(maxFlight, inflight)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		inflight--
		mu.Unlock()
		return nil
	})
	if maxFlight < 2 {
		t.Fatalf("at most %d request in flight: the loop waited for answers", maxFlight)
	}
}

func TestClosedLoopStopsAtTheFirstError(t *testing.T) {
	boom := errors.New("boom")
	var mu sync.Mutex
	calls := 0
	_, _, err := ClosedLoop(context.Background(), 4, time.Minute, func(_ context.Context, i int) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	rate, used, err := ClosedLoop(context.Background(), 2, 20*time.Millisecond, func(context.Context, int) error { return nil })
	if err != nil || rate <= 0 || used <= 0 {
		t.Fatalf("rate %v, used %d, err %v", rate, used, err)
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	d := make([]time.Duration, 1000)
	for i := range d {
		d[len(d)-1-i] = time.Duration(i+1) * time.Millisecond // 1000..1 ms, unsorted
	}
	s := Percentiles(d)
	want := Summary{P50: 500 * time.Millisecond, P90: 900 * time.Millisecond, P99: 990 * time.Millisecond, P999: 999 * time.Millisecond, Max: time.Second}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if d[0] != time.Second {
		t.Fatal("Percentiles sorted its input")
	}
	if (Percentiles(nil) != Summary{}) {
		t.Fatal("empty input")
	}
}

func TestSpawnRunsTheGeneratorInAnotherProcess(t *testing.T) {
	var out struct{ Twice, Pid int }
	if err := Spawn(context.Background(), "echo", map[string]int{"n": 21}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Twice != 42 || out.Pid == os.Getpid() || out.Pid == 0 {
		t.Fatalf("got %+v from the child (we are %d)", out, os.Getpid())
	}
	if err := Spawn(context.Background(), "echo", map[string]int{"n": -1}, &out); err == nil {
		t.Fatal("a failing generator reported no error")
	}
	if err := Spawn(context.Background(), "nope", nil, &out); err == nil {
		t.Fatal("an unknown generator reported no error")
	}
}

func TestProfileNumbersEveryRequestOnce(t *testing.T) {
	var (
		mu   sync.Mutex
		seen = map[int]int{}
	)
	rep, err := Profile{Workers: 4, Saturate: 20 * time.Millisecond, Share: 0.001, Warmup: 50 * time.Millisecond, Measure: 100 * time.Millisecond}.Run(context.Background(),
		func(_ context.Context, i int) error {
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("request number %d used %d times", i, n)
		}
	}
	if rep.Saturated <= 0 || rep.Offered != rep.Saturated*0.001 || rep.Requests != int(rep.Offered*0.1) || rep.Errors != 0 {
		t.Fatalf("report %+v", rep)
	}
	if _, err := (Profile{Measure: time.Second}).Run(context.Background(), nil); err == nil {
		t.Fatal("a profile without a rate ran")
	}
}

type recorder struct {
	metrics map[string]float64
	logs    []string
}

func (r *recorder) ReportMetric(n float64, unit string) { r.metrics[unit] = n }
func (r *recorder) Helper()                             {}
func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

// check wants exactly one log line containing log, and the metrics in want
// (others may be there too).
func (r *recorder) check(t *testing.T, want map[string]float64, log string) {
	t.Helper()
	for k, v := range want {
		if r.metrics[k] != v {
			t.Errorf("%s = %v, want %v", k, r.metrics[k], v)
		}
	}
	if len(r.logs) != 1 || !strings.Contains(r.logs[0], log) {
		t.Errorf("logged %q, want one line with %q", r.logs, log)
	}
}

func TestReportMetrics(t *testing.T) {
	r := &recorder{metrics: map[string]float64{}}
	Report{Saturated: 2000, Offered: 1000, Latency: Summary{P50: time.Millisecond, P99: 12 * time.Millisecond, Max: 20 * time.Millisecond}}.ReportMetrics(r, "emails")
	r.check(t, map[string]float64{"max-emails/s": 2000, "offered-emails/s": 1000, "p50-ms": 1, "p99-ms": 12, "max-ms": 20}, "p99 12.00 ms")
}
