// Package loadgen measures a service the way its callers load it: requests
// offered at a fixed rate (an open loop), each one leaving on schedule
// whether or not earlier ones have answered, with its latency counted from
// its scheduled send time. A late tick, a stalled client or a slow server
// is charged to the latency instead of hidden, so the percentiles carry no
// coordinated omission.
//
// The benchmarks of the services use it, most of them from a separate
// process (Spawn), so the load generator's goroutines do not queue behind
// the server's on the same Go scheduler, as Slack, a mail relay or another
// service calling ours would not.
package loadgen

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Call sends request i and returns when it is answered.
type Call func(ctx context.Context, i int) error

// Result is what an open-loop run measured, per request in send order.
type Result struct {
	// Latency runs from the scheduled send time to the answer, Wire from
	// the actual send, Lag from the scheduled to the actual send.
	Latency, Wire, Lag []time.Duration
	// Errors counts failed requests; FirstErr is the first of them.
	Errors   int
	FirstErr error
	// Elapsed is how long the run took, from the first scheduled send to
	// the last answer.
	Elapsed time.Duration
}

// Rate is the requests a second the run achieved.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(len(r.Latency)) / r.Elapsed.Seconds()
}

// minTick is the shortest tick: above 10,000 requests a second several
// requests leave on each tick instead of waking up for every one.
const minTick = 100 * time.Microsecond

// OpenLoop offers n requests at rate a second, numbered first to
// first+n-1, each in its own goroutine, and waits for all of them.
func OpenLoop(ctx context.Context, rate float64, n, first int, call Call) *Result {
	res := &Result{Latency: make([]time.Duration, n), Wire: make([]time.Duration, n), Lag: make([]time.Duration, n)}
	if n == 0 || rate <= 0 {
		return res
	}
	period := time.Duration(float64(time.Second) / rate)
	tick, err := NewTicker(max(period, minTick))
	if err != nil {
		res.Errors, res.FirstErr = n, err
		return res
	}
	defer tick.Close()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  atomic.Int64
		start = tick.Start()
	)
	for next := 0; next < n; {
		if err := tick.Wait(); err != nil {
			res.Errors, res.FirstErr = n-next, err
			break
		}
		now := time.Now()
		// Every request due by now leaves, late ones included.
		for ; next < n; next++ {
			due := start.Add(time.Duration(next+1) * period)
			if due.After(now) {
				break
			}
			k := next
			wg.Go(func() {
				sent := time.Now()
				err := call(ctx, first+k)
				done := time.Now()
				res.Latency[k], res.Wire[k], res.Lag[k] = done.Sub(due), done.Sub(sent), sent.Sub(due)
				if err != nil && errs.Add(1) == 1 {
					mu.Lock()
					res.FirstErr = err
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Errors += int(errs.Load())
	return res
}

// ClosedLoop runs workers goroutines, each sending its next request as
// soon as the previous one is answered, for d, and returns the rate they
// achieved (the capacity an open loop is then offered a share of) and how
// many request numbers it used, from 0. It stops at the first error and
// returns it.
func ClosedLoop(ctx context.Context, workers int, d time.Duration, call Call) (rate float64, used int, err error) {
	var (
		n        atomic.Int64
		done     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stop := start.Add(d)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) && ctx.Err() == nil {
				if err := call(ctx, int(n.Add(1))-1); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, int(n.Load()), firstErr
	}
	return float64(done.Load()) / time.Since(start).Seconds(), int(n.Load()), nil
}

// Summary is a distribution's percentiles (nearest rank).
type Summary struct {
	P50, P90, P99, P999, Max time.Duration
}

// Percentiles summarises d (which it does not modify).
func Percentiles(d []time.Duration) Summary {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration {
		if len(s) == 0 {
			return 0
		}
		i := int(p*float64(len(s))+0.999999) - 1 // nearest rank
		return s[max(0, min(i, len(s)-1))]
	}
	return Summary{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: at(1)}
}

// Millis is d in milliseconds, for b.ReportMetric.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Micros is d in microseconds, for b.ReportMetric.
func Micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// String formats the summary in milliseconds.
func (s Summary) String() string {
	return fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms",
		Millis(s.P50), Millis(s.P90), Millis(s.P99), Millis(s.P999), Millis(s.Max))
}

// CPUTime is the CPU time (user and system) this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadAverage is the machine's 1-minute load average, or "?" where
// unknown: figures taken on a busy machine should say so.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.SplitN(string(data), " ", 2)[0]
}
