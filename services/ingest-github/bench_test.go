package ingestgithub

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/loadgen"
	"github.com/sidekickhq/sidekick/services/ingest-github/internal/ghwebhook"
)

// The three benchmarks run side by side (go test -run x -bench . ):
// BenchmarkWebhook is the whole path for a signed issue_comment delivery
// over real HTTP (verify, parse, publish, PubAck); BenchmarkBareHTTP is a
// net/http handler that only reads the same body; BenchmarkRawJetStreamPublish
// is js.Publish of a payload of the size the webhook publishes. All run
// with b.RunParallel over the same client settings.

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
}

func post(b *testing.B, c *http.Client, url string, body []byte, hdr http.Header) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	req.Header = hdr
	resp, err := c.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
	}
}

func BenchmarkWebhook(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	svc, err := New(Config{WebhookSecret: secret, Repositories: "acme/main:high"}, Deps{
		Publisher: bus.NewPublisher(js, Source),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("github"), data, hdr, cause)
		},
		Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	body := payload(b, "issue_comment-created.json")
	sig := ghwebhook.Sign([]byte(secret), body)
	c := benchClient()
	var n atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hdr := http.Header{}
			hdr.Set("Content-Type", "application/json")
			hdr.Set("X-GitHub-Event", "issue_comment")
			hdr.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", n.Add(1)))
			hdr.Set("X-Hub-Signature-256", sig)
			post(b, c, srv.URL+"/github/webhook", body, hdr)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func BenchmarkBareHTTP(b *testing.B) {
	url := loadgen.BareHTTP(b)
	body := payload(b, "issue_comment-created.json")
	c := benchClient()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		hdr := http.Header{}
		for pb.Next() {
			post(b, c, url, body, hdr)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}

func BenchmarkRawJetStreamPublish(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	data := bytes.Repeat([]byte("x"), 700) // about the size of the published InboundMessage
	var n atomic.Int64
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := js.Publish(ctx, bus.InboundSubject("github"), data, jetstreamID(n.Add(1))); err != nil {
				b.Error(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "publishes/s")
}

func jetstreamID(n int64) jetstream.PublishOpt { return jetstream.WithMsgID(fmt.Sprintf("raw-%d", n)) }
