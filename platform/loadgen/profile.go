package loadgen

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Profile is a latency measurement at a share of capacity: saturate the
// target with a closed loop to find its capacity, offer a share of it on an
// open loop for a warm-up (discarded: new connections, cold caches), then
// measure at that rate.
type Profile struct {
	// Workers is the closed loop's concurrency.
	Workers int
	// Saturate is how long the closed loop runs; 0 skips it, and Rate is
	// then required.
	Saturate time.Duration
	// Share of the saturated rate to offer (0.5: half load), when Rate is 0.
	Share float64
	// Rate, when set, is offered instead of a share of the saturated rate.
	Rate float64
	// Warmup and Measure are how long the open loop runs before and while
	// measuring.
	Warmup, Measure time.Duration
}

// Report is what a Profile measured.
type Report struct {
	// Saturated is the closed loop's rate (0 when not measured), Offered
	// the open loop's, Achieved what was sent and answered a second.
	Saturated, Offered, Achieved float64
	Requests, Errors             int
	FirstErr                     string `json:",omitempty"`
	// Latency from the scheduled send time; Wire from the actual send; Lag
	// how late requests left.
	Latency, Wire, Lag Summary
	// CPUPerRequest is the generator process's CPU time per measured
	// request.
	CPUPerRequest time.Duration
}

func (r Report) String() string {
	return fmt.Sprintf("saturated %.0f/s, offered %.0f/s, achieved %.0f/s, %d requests, %d errors; latency %s; on the wire p99 %.2f ms; send lag p99 %.2f ms",
		r.Saturated, r.Offered, r.Achieved, r.Requests, r.Errors, r.Latency, Millis(r.Wire.P99), Millis(r.Lag.P99))
}

// Run measures call under the profile. Requests are numbered from 0
// across the phases, so no two share a number.
func (p Profile) Run(ctx context.Context, call Call) (Report, error) {
	var rep Report
	next := 0
	if p.Saturate > 0 {
		rate, used, err := ClosedLoop(ctx, max(1, p.Workers), p.Saturate, call)
		if err != nil {
			return rep, fmt.Errorf("saturate: %w", err)
		}
		rep.Saturated, next = rate, used
	}
	rep.Offered = p.Rate
	if rep.Offered == 0 {
		rep.Offered = rep.Saturated * p.Share
	}
	if rep.Offered <= 0 {
		return rep, fmt.Errorf("no rate to offer: set Rate, or Saturate and Share")
	}
	warm := int(rep.Offered * p.Warmup.Seconds())
	if w := OpenLoop(ctx, rep.Offered, warm, next, call); w.Errors > 0 {
		return rep, fmt.Errorf("warm-up: %d errors, first: %w", w.Errors, w.FirstErr)
	}
	next += warm
	cpu0 := CPUTime()
	res := OpenLoop(ctx, rep.Offered, int(rep.Offered*p.Measure.Seconds()), next, call)
	cpu := CPUTime() - cpu0
	rep.Requests, rep.Errors, rep.Achieved = len(res.Latency), res.Errors, res.Rate()
	if res.FirstErr != nil {
		rep.FirstErr = res.FirstErr.Error()
	}
	rep.Latency, rep.Wire, rep.Lag = Percentiles(res.Latency), Percentiles(res.Wire), Percentiles(res.Lag)
	if rep.Requests > 0 {
		rep.CPUPerRequest = cpu / time.Duration(rep.Requests)
	}
	return rep, nil
}

// Reporter is what ReportMetrics writes to: a *testing.B.
type Reporter interface {
	ReportMetric(n float64, unit string)
	Logf(format string, args ...any)
	Helper()
}

// ReportMetrics puts the report on the benchmark's line (max-UNIT/s,
// offered-UNIT/s, p50-ms, p99-ms, max-ms, which benchstat reads) and logs
// it whole.
func (r Report) ReportMetrics(b Reporter, unit string) {
	b.Helper()
	if r.Saturated > 0 {
		b.ReportMetric(r.Saturated, "max-"+unit+"/s")
	}
	b.ReportMetric(r.Offered, "offered-"+unit+"/s")
	b.ReportMetric(Millis(r.Latency.P50), "p50-ms")
	b.ReportMetric(Millis(r.Latency.P99), "p99-ms")
	b.ReportMetric(Millis(r.Latency.Max), "max-ms")
	b.Logf("%s", r)
}

// MeasureInChild runs generator name, which returns a Report, in a child
// process (Spawn) as benchmark b's measurement: it fails b on an error or
// failed requests, puts the report on b's line under unit (ReportMetrics)
// and logs this process's CPU time and the load average around it.
func MeasureInChild(b *testing.B, name string, args any, unit string) {
	b.Helper()
	load0, cpu0 := LoadAverage(), CPUTime()
	b.ResetTimer()
	var rep Report
	if err := Spawn(context.Background(), name, args, &rep); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if rep.Errors > 0 {
		b.Errorf("%d of %d requests failed, first: %s", rep.Errors, rep.Requests, rep.FirstErr)
	}
	rep.ReportMetrics(b, unit)
	b.Logf("server process CPU %s over the whole run; load average before %s, after %s", (CPUTime() - cpu0).Round(time.Millisecond), load0, LoadAverage())
}
