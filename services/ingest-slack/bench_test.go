package ingestslack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackfake"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacksig"
)

// The benchmarks run side by side in one process (go test -run x -bench .
// ./services/ingest-slack/):
//
//   - BenchmarkEvents: a signed message event over real HTTP through
//     POST /slack/events to the PubAck (verify, parse, normalize, publish);
//   - BenchmarkEventsWithLookups: the same with a bot token, so users.info
//     and chat.getPermalink go through the (warm) cache;
//   - BenchmarkBareHTTP: a net/http handler that reads the same body and
//     answers 200;
//   - BenchmarkRawJetStreamPublish: js.Publish of a payload the size of the
//     InboundMessage the event becomes, with a Nats-Msg-Id;
//   - BenchmarkEventsLatencyAtHalfLoad: finds the saturated rate of
//     BenchmarkEvents, then sends at half of it on an open loop and reports
//     the p50 and p99 latency.
//
// All closed-loop benchmarks use b.RunParallel with benchParallelism
// senders per CPU and the same client, so each keeps many requests in
// flight, as Slack does.

// benchParallelism is RunParallel's goroutines per GOMAXPROCS.
const benchParallelism = 16

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}}
}

// eventBody is message.json with event id n.
func eventBody(tmpl []byte, n int64) []byte {
	return bytes.Replace(tmpl, []byte(`"Ev0PV52K21"`), []byte(`"EvB`+strconv.FormatInt(n, 10)+`"`), 1)
}

func postSigned(c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(slacksig.HeaderTimestamp, ts)
	req.Header.Set(slacksig.HeaderSignature, slacksig.Sign([]byte(secret), ts, body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// benchService starts NATS and the service over real HTTP.
func benchService(b *testing.B, botToken bool) string {
	_, js := bustest.StartJetStream(b)
	cfg := Config{SigningSecret: secret}
	if botToken {
		fake := slackfake.Start(b, "acme")
		fake.AddUser(userGuest)
		cfg.BotToken, cfg.APIURL = "xoxb-bench", fake.APIURL()
	}
	svc, err := New(cfg, Deps{JS: js, Publisher: bus.NewPublisher(js, Source), Registry: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return srv.URL + "/slack/events"
}

func runEvents(b *testing.B, url string) {
	tmpl := payload(b, "message.json")
	c := benchClient()
	var n atomic.Int64
	b.SetBytes(int64(len(tmpl)))
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code, err := postSigned(c, url, eventBody(tmpl, n.Add(1)))
			if err != nil || code != http.StatusOK {
				b.Errorf("status %d: %v", code, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkEvents(b *testing.B) { runEvents(b, benchService(b, false)) }

func BenchmarkEventsWithLookups(b *testing.B) { runEvents(b, benchService(b, true)) }

func BenchmarkBareHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	tmpl := payload(b, "message.json")
	c := benchClient()
	var n atomic.Int64
	b.SetBytes(int64(len(tmpl)))
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			code, err := postSigned(c, srv.URL, eventBody(tmpl, n.Add(1)))
			if err != nil || code != http.StatusOK {
				b.Errorf("status %d: %v", code, err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

func BenchmarkRawJetStreamPublish(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	env, err := slackevent.Parse(payload(b, "message.json"))
	if err != nil {
		b.Fatal(err)
	}
	it, _, err := slackevent.Classify(env, slackevent.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m := slackevent.Build(it, slackevent.Author(it.Sender, nil, "T061EG9R6"), "event", slackevent.Permalink("", it.Team, it.Channel, it.RootTS), time.Now())
	data, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.SetParallelism(benchParallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := js.Publish(ctx, bus.InboundSubject("slack"), data, jetstreamID(n.Add(1))); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}

// BenchmarkEventsLatencyAtHalfLoad ignores b.N: it saturates the service
// for two seconds with 64 senders, then offers half that rate for four
// seconds on an open loop (a request leaves on schedule whether or not
// earlier ones are done; latency counts from the scheduled time).
func BenchmarkEventsLatencyAtHalfLoad(b *testing.B) {
	url := benchService(b, false)
	tmpl := payload(b, "message.json")
	c := benchClient()
	var n atomic.Int64

	// Saturated rate.
	var sent atomic.Int64
	stop := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	start := time.Now()
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if code, err := postSigned(c, url, eventBody(tmpl, n.Add(1))); err != nil || code != http.StatusOK {
					b.Errorf("status %d: %v", code, err)
					return
				}
				sent.Add(1)
			}
		})
	}
	wg.Wait()
	maxRate := float64(sent.Load()) / time.Since(start).Seconds()

	// Half of it, open loop.
	rate := maxRate / 2
	lat := openLoop(b, c, url, tmpl, &n, rate, 4*time.Second)
	b.ReportMetric(maxRate, "max-events/s")
	reportLatency(b, rate, lat)
	b.Logf("saturated %.0f events/s", maxRate)
}

// BenchmarkEventsLatencyAt1000PerSecond ignores b.N: it offers 1,000
// signed events a second for four seconds on an open loop, a rate well
// above a busy support workspace's, and reports the latency percentiles.
func BenchmarkEventsLatencyAt1000PerSecond(b *testing.B) {
	url := benchService(b, false)
	var n atomic.Int64
	reportLatency(b, 1000, openLoop(b, benchClient(), url, payload(b, "message.json"), &n, 1000, 4*time.Second))
}

// openLoop sends at rate for d: a request leaves on schedule whether or not
// earlier ones are done, and its latency counts from the scheduled time.
func openLoop(b *testing.B, c *http.Client, url string, tmpl []byte, n *atomic.Int64, rate float64, d time.Duration) []time.Duration {
	interval := time.Duration(float64(time.Second) / rate)
	total := int(rate * d.Seconds())
	lat := make([]time.Duration, total)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range total {
		at := begin.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(at))
		wg.Go(func() {
			if code, err := postSigned(c, url, eventBody(tmpl, n.Add(1))); err != nil || code != http.StatusOK {
				b.Errorf("status %d: %v", code, err)
			}
			lat[i] = time.Since(at)
		})
	}
	wg.Wait()
	slices.Sort(lat)
	return lat
}

func reportLatency(b *testing.B, rate float64, lat []time.Duration) {
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(rate, "offered-events/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.Logf("at %.0f events/s (%d requests): p50 %.2f ms, p99 %.2f ms, max %.2f ms", rate, len(lat), pct(0.5), pct(0.99), pct(1))
}

func jetstreamID(n int64) jetstream.PublishOpt { return jetstream.WithMsgID(fmt.Sprintf("raw-%d", n)) }
