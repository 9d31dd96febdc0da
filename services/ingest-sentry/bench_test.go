package ingestsentry

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/loadgen"
)

// Run side by side with: go test -run x -bench . -benchtime 1x
//
// BenchmarkSentryStorm sends 50,000 signed error.created webhooks over 10
// issues from 32 concurrent senders through real HTTP to the service
// (verify, parse, store in SENTRY_OCCURRENCES, 200) with the coalescer
// running, then stops it (publishing what is pending). It reports
// accepted events per second, the p99 response time, and the messages
// published downstream. BenchmarkBareHTTPStorm sends the same storm to a
// net/http handler that only reads the body; BenchmarkRawJetStreamStorm
// publishes 50,000 messages of the stored size with js.Publish from 32
// goroutines.
//
// BenchmarkSentryStormMemory measures the service's memory through a
// storm as deployed: NATS in a process of its own, the senders in another
// (loadgen.Spawn), the service alone in the benchmark's process.

const (
	stormEvents = 50000
	stormIssues = 10
	stormConc   = 32
)

func BenchmarkSentryStorm(b *testing.B) {
	for i := range b.N {
		f := newFixture(b, Config{CoalesceInterval: time.Minute})
		stop := run(b, f.svc)
		srv := httptest.NewServer(f.mux)
		lat, elapsed, retries := storm(b, srv.URL+"/sentry/webhook", fmt.Sprintf("bench%d", i), stormEvents, stormIssues, stormConc)
		waitFor(b, "the coalescer", func() bool { return testutil.ToFloat64(f.svc.metrics.received) == stormEvents })
		if err := stop(); err != nil {
			b.Fatal(err)
		}
		srv.Close()
		msgs := downstream(b, f.js)
		if got := occurrences(msgs); got != stormEvents {
			b.Fatalf("counts add up to %d", got)
		}
		b.ReportMetric(float64(stormEvents)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(len(msgs)), "msgs-downstream")
		b.ReportMetric(float64(len(msgs))/stormIssues, "msgs/issue")
		b.ReportMetric(float64(retries), "503s")
	}
}

func BenchmarkBareHTTPStorm(b *testing.B) {
	url := loadgen.BareHTTP(b)
	for i := range b.N {
		lat, elapsed, _ := storm(b, url, fmt.Sprintf("bare%d", i), stormEvents, stormIssues, stormConc)
		b.ReportMetric(float64(stormEvents)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
	}
}

func BenchmarkRawJetStreamStorm(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	data := bytes.Repeat([]byte("x"), 1200) // about a stored occurrence
	ctx := context.Background()
	for range b.N {
		lat := make([]time.Duration, stormEvents)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range stormConc {
			wg.Go(func() {
				for {
					n := int(next.Add(1)) - 1
					if n >= stormEvents {
						return
					}
					t0 := time.Now()
					if _, err := js.Publish(ctx, "support.inbound.sentry", data); err != nil {
						b.Error(err)
						return
					}
					lat[n] = time.Since(t0)
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.ReportMetric(float64(stormEvents)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(p99(lat).Microseconds())/1000, "p99-ms")
	}
}

var (
	memEvents = flag.Int("sentry.mem-events", stormEvents, "BenchmarkSentryStormMemory: events in the storm")
	memAfter  = flag.Duration("sentry.mem-after", time.Minute, "BenchmarkSentryStormMemory: how long memory is watched after the storm")
)

// BenchmarkSentryStormMemory ignores b.N (run it with -benchtime 1x). With
// NATS in its own process and the default one-minute coalescing interval,
// a child process sends -sentry.mem-events signed error.created webhooks
// over 10 issues from 32 senders; all but the first of each issue stay
// pending in the coalescer until the interval has passed. It reports the
// process's resident memory (RSS) before the storm, its peak during it,
// and 10, 30 and -sentry.mem-after seconds after the last answer, with the
// live heap's peak, and the storm's rate and p99 as the senders saw them.
// Issue 19's target: under 100 MB during a storm of 50,000, returned
// within a minute after.
func BenchmarkSentryStormMemory(b *testing.B) {
	if _, err := rss(); err != nil {
		b.Skip("no /proc/self/statm:", err)
	}
	js := bustest.StartProcess(b)
	svc := newService(b, js, Config{CoalesceInterval: time.Minute})
	stop := run(b, svc)
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	runtime.GC()
	time.Sleep(time.Second)
	base, _ := rss()
	var peakRSS, peakHeap atomic.Uint64
	sample := func() uint64 {
		r, _ := rss()
		peakRSS.Store(max(peakRSS.Load(), r))
		peakHeap.Store(max(peakHeap.Load(), liveHeap()))
		return r
	}
	samplerDone := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sample()
			}
		}
	}()
	var res stormResult
	err := loadgen.Spawn(context.Background(), generatorStorm, stormLoad{URL: srv.URL + "/sentry/webhook", Events: *memEvents, Issues: stormIssues, Senders: stormConc}, &res)
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	stormEnd := time.Now()
	duringPeak := peakRSS.Load()
	waitFor(b, "the coalescer to take every occurrence", func() bool { return testutil.ToFloat64(svc.metrics.received) == float64(*memEvents) })
	after := map[time.Duration]uint64{}
	for _, d := range []time.Duration{10 * time.Second, 30 * time.Second, *memAfter} {
		time.Sleep(time.Until(stormEnd.Add(d)))
		after[d] = sample()
	}
	cancel()
	<-samplerDone
	if err := stop(); err != nil {
		b.Fatal(err)
	}
	mb := func(v uint64) float64 { return float64(v) / (1 << 20) }
	b.ReportMetric(float64(*memEvents)/res.Seconds, "events/s")
	b.ReportMetric(res.P99Millis, "p99-ms")
	b.ReportMetric(float64(res.Retries), "503s")
	b.ReportMetric(mb(base), "rss-before-MB")
	b.ReportMetric(mb(duringPeak), "rss-peak-MB")
	b.ReportMetric(mb(peakHeap.Load()), "heap-peak-MB")
	b.ReportMetric(mb(after[10*time.Second]), "rss-10s-after-MB")
	b.ReportMetric(mb(after[30*time.Second]), "rss-30s-after-MB")
	b.ReportMetric(mb(after[*memAfter]), "rss-"+strconv.Itoa(int(memAfter.Seconds()))+"s-after-MB")
	b.Logf("load average %s; pending at the end %v", loadgen.LoadAverage(), testutil.ToFloat64(svc.metrics.pending))
}

// rss is this process's resident memory.
func rss() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("statm %q", b)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * uint64(os.Getpagesize()), nil
}

// liveHeap is the bytes of heap objects, live and not yet swept.
func liveHeap() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// generatorStorm sends a storm from a child process.
const generatorStorm = "sentry-storm"

type stormLoad struct {
	URL                     string
	Events, Issues, Senders int
}

type stormResult struct {
	// StartUnixNano is when the first request left.
	StartUnixNano      int64
	Seconds, P99Millis float64
	Retries            int
}

func generateStorm(_ context.Context, in stormLoad) (any, error) {
	base, err := os.ReadFile("internal/sentryhook/testdata/error-created.json")
	if err != nil {
		return nil, err
	}
	lat, elapsed, retries, failed := sendStorm(in.URL, in.Events, in.Senders, sentryWebhooks(base, "mem", 900000, in.Issues))
	if failed > 0 {
		return nil, fmt.Errorf("%d of %d webhooks were not accepted", failed, in.Events)
	}
	return stormResult{Seconds: elapsed.Seconds(), P99Millis: float64(p99(lat).Microseconds()) / 1000, Retries: retries}, nil
}

// TestMain lets the benchmarks run NATS (bustest.StartProcess) and the
// senders (loadgen.Spawn) in processes of their own.
func TestMain(m *testing.M) {
	bustest.ServeChild()
	loadgen.Register(generatorStorm, generateStorm)
	loadgen.Register(generatorCompare, generateCompare)
	loadgen.RunChild()
	os.Exit(m.Run())
}
