package triage

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// BenchmarkInbound measures inbound messages per second through triage:
// published on support.inbound.slack, consumed, committed (inbox,
// conversation, message, audit, outbox) and relayed as an OPENED event
// acknowledged by JetStream. Every message opens its own thread.
func BenchmarkInbound(b *testing.B) {
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			h := newHarness(b)
			h.deps.Logger = slog.New(slog.DiscardHandler)
			cfg := testConfig()
			cfg.Concurrency = conc
			h.startConfig(b, cfg, h.deps)
			ctx := context.Background()
			stream, err := h.js.Stream(ctx, bus.StreamConversations)
			if err != nil {
				b.Fatal(err)
			}
			pub := bus.NewPublisher(h.js, "bench/ingest")
			b.ResetTimer()
			for i := range b.N {
				m := triagetest.Slack(fmt.Sprint(i)).Customer("U0CUST", "Dashboards are slow since this morning, can you check?")
				if _, err := pub.Publish(ctx, bus.Event{Subject: bus.InboundSubject("slack"), ID: m.GetId(), Message: m}); err != nil {
					b.Fatal(err)
				}
			}
			triagetest.Eventually(b, "every event published", func() bool {
				info, err := stream.Info(ctx)
				return err == nil && info.State.Msgs >= uint64(b.N)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkHandleInbound measures the Postgres transaction alone (inbox,
// find-or-create, message, audit, outbox) without NATS.
func BenchmarkHandleInbound(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Postgres")
	}
	pool := triagetest.Database(b, Schema, Migrations())
	eng, err := engine.New(pool, engine.Config{Rules: tier.Rules{}}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		th := triagetest.Slack(fmt.Sprint(i / 4)) // a question and three follow-ups per thread
		m := th.Customer("U0CUST", "Dashboards are slow")
		m.Id = fmt.Sprintf("bench-%d", i)
		if _, err := eng.HandleInbound(ctx, m, "support.inbound.slack"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
