package triage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// benchMessage is the inbound message of the benchmarks: each opens its
// own thread, sent now (so its response clock has just started).
func benchMessage(i int) *supportv1.InboundMessage {
	m := triagetest.Slack(fmt.Sprint(i)).Customer("U0CUST", "Dashboards are slow since this morning, can you check?")
	m.SentAt = timestamppb.Now()
	return m
}

// eventsPerOpening is what one opening message publishes: OPENED and
// TRIAGED.
const eventsPerOpening = 2

// BenchmarkInbound measures, in one run, inbound messages per second
// through triage beside the two things it is made of:
//
//   - raw-jetstream-consume: the same messages pulled from
//     SUPPORT_INBOUND and acked, nothing else;
//   - pgx-copyfrom: the rows triage writes for them (inbox, conversation,
//     message, two audit lines, two outbox events, the deadline timer)
//     written with one CopyFrom per table in one transaction;
//   - triage: the same backlog consumed and committed (inbox, conversation
//     with its category and deadline, message, audit, outbox, timer) in
//     ordered batches: msgs/s until the consumer's ack floor reaches the
//     end of the stream; relayed-msgs/s until both events of every message
//     (OPENED, TRIAGED) are published to JetStream by the outbox relay.
//     concurrency=4 is the unordered, unbatched mode for comparison.
func BenchmarkInbound(b *testing.B) {
	b.Run("raw-jetstream-consume", benchRawConsume)
	b.Run("pgx-copyfrom", benchCopyFrom)
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("triage/concurrency=%d", conc), func(b *testing.B) { benchTriage(b, conc) })
	}
}

func benchRawConsume(b *testing.B) {
	if testing.Short() {
		b.Skip("needs NATS")
	}
	_, js := bustest.StartJetStream(b)
	ctx := context.Background()
	pub := bus.NewPublisher(js, "bench/ingest")
	for i := range b.N {
		m := benchMessage(i)
		msg, err := pub.Msg(bus.Event{Subject: bus.InboundSubject("slack"), ID: m.GetId(), Message: m})
		if err != nil {
			b.Fatal(err)
		}
		publishBacklog(b, js, msg)
	}
	<-js.PublishAsyncComplete()
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.StreamInbound, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: bus.DefaultMaxAckPending,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * bus.DefaultMaxAckPending / 10))
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		msg, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		if err := msg.Ack(); err != nil {
			b.Fatal(err)
		}
	}
	it.Stop()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func benchCopyFrom(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Postgres")
	}
	pool := triagetest.Database(b, Schema, Migrations())
	ctx := context.Background()
	now := time.Now()
	type rows [][]any
	var inbox, convs, msgs, audit, outbox, timers rows
	for i := range b.N {
		m := benchMessage(i)
		body, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		id := engine.NewID()
		inbox = append(inbox, []any{m.GetId(), "support.inbound.slack", now})
		convs = append(convs, []any{id, int16(1), m.GetThreadKey(), int16(1), int16(3), "unknown customer", []string{"performance"},
			m.GetText(), []byte(`{"id":"U0CUST"}`), now, now, now.Add(15 * time.Minute), int16(1), int32(1), now,
			[]byte(`{"spans":[{"start":"2026-03-02T09:00:00Z"}]}`), []string{"performance"}})
		msgs = append(msgs, []any{m.GetId(), id, int16(1), m.GetThreadKey(), m.GetSourceId(), int16(1), int16(1), body, now})
		audit = append(audit, []any{id, "U0CUST", "opened", "CHANNEL_SLACK", now}, []any{id, "system", "categorised", "suggested performance", now})
		outbox = append(outbox, []any{engine.NewID(), "support.conversation.opened", "sidekick.support.v1.ConversationEvent", body, now},
			[]any{engine.NewID(), "support.conversation.triaged", "sidekick.support.v1.ConversationEvent", body, now})
		timers = append(timers, []any{id, int16(1), now.Add(15 * time.Minute), now})
	}
	b.ResetTimer()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, c := range []struct {
			table string
			cols  []string
			rows  rows
		}{
			{"inbox", []string{"message_id", "subject", "handled_at"}, inbox},
			{"conversations", []string{"id", "channel", "thread_key", "status", "tier", "tier_reason", "categories", "subject", "author",
				"opened_at", "last_customer_message_at", "next_deadline_at", "deadline_level", "message_count", "updated_at",
				"clock", "suggested_categories"}, convs},
			{"messages", []string{"id", "conversation_id", "channel", "thread_key", "source_id", "kind", "author_role", "body", "received_at"}, msgs},
			{"audit", []string{"conversation_id", "actor", "action", "detail", "at"}, audit},
			{"outbox", []string{"id", "subject", "type", "payload", "created_at"}, outbox},
			{"timers", []string{"conversation_id", "status", "due_at", "armed_at"}, timers},
		} {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
				return fmt.Errorf("copy %s: %w", c.table, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// publishBacklog publishes msg asynchronously. When too many publishes
// wait for their acks (a loaded machine: the server acks slower than the
// stall wait), it waits for them all and tries again, rather than giving
// up the benchmark.
func publishBacklog(b *testing.B, js jetstream.JetStream, msg *nats.Msg) {
	for {
		_, err := js.PublishMsgAsync(msg)
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			<-js.PublishAsyncComplete()
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return
	}
}

func benchTriage(b *testing.B, conc int) {
	h := newHarness(b)
	h.deps.Logger = slog.New(slog.DiscardHandler)
	h.deps.Clock = clock.Real()
	ctx := context.Background()
	// The backlog is published first, as for the raw consumer.
	pub := bus.NewPublisher(h.js, "bench/ingest")
	for i := range b.N {
		m := benchMessage(i)
		msg, err := pub.Msg(bus.Event{Subject: bus.InboundSubject("slack"), ID: m.GetId(), Message: m})
		if err != nil {
			b.Fatal(err)
		}
		publishBacklog(b, h.js, msg)
	}
	<-h.js.PublishAsyncComplete()
	stream, err := h.js.Stream(ctx, bus.StreamConversations)
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.Concurrency = conc
	if conc > 1 {
		cfg.InboundBatch = 1 // the unordered mode takes messages one at a time
	}
	cfg.TimerInterval = 250 * time.Millisecond
	cfg.RelayInterval = time.Second
	b.ResetTimer()
	h.startConfig(b, cfg, h.deps)
	waitLong(b, "inbound consumed", func() bool { return ackFloor(b, h) >= uint64(b.N) })
	consumed := b.Elapsed()
	waitLong(b, "every event published", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs >= uint64(eventsPerOpening*b.N)
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/consumed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "relayed-msgs/s")
}

// waitLong polls cond for up to ten minutes (benchmarks run long).
func waitLong(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ackFloor is the stream sequence the inbound consumer has acked up to.
func ackFloor(b *testing.B, h *harness) uint64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := h.js.Consumer(ctx, bus.StreamInbound, DurableInbound)
	if err != nil {
		return 0
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

// BenchmarkHandleInbound measures the Postgres transaction alone (inbox,
// find-or-create, classification, deadline, message, audit, outbox)
// without NATS.
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
		if _, err := eng.HandleInbound(ctx, []engine.Inbound{{Message: m, Subject: "support.inbound.slack"}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
