package ingestsentry

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
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
