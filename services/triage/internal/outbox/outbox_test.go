package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/outbox"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// flaky publishes through a real publisher and fails once ok events went
// through. With lostAcks, the failing call still stores its events and
// only loses the acknowledgements: the process died between JetStream's
// ack and marking the rows.
type flaky struct {
	real     *bus.Publisher
	ok       int
	lostAcks bool
}

var _ outbox.Publisher = (*flaky)(nil)

func (f *flaky) PublishAll(ctx context.Context, events []bus.Event) ([]*jetstream.PubAck, error) {
	acks := make([]*jetstream.PubAck, len(events))
	for i, e := range events {
		if f.ok == 0 {
			if f.lostAcks {
				for _, rest := range events[i:] {
					if _, err := f.real.Publish(ctx, rest); err != nil {
						return acks, err
					}
				}
			}
			return acks, errors.New("nats: connection lost")
		}
		ack, err := f.real.Publish(ctx, e)
		if err != nil {
			return acks, err
		}
		acks[i] = ack
		f.ok--
	}
	return acks, nil
}

func TestKillBetweenPublishAndMarkLosesNothingDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	pool := triagetest.Database(t, triage.Schema, triage.Migrations())
	clock := triagetest.NewClock()
	ctx := context.Background()
	var ids []string
	for i := range 10 {
		id := engine.NewID()
		payload, _ := proto.Marshal(&supportv1.ConversationEvent{Id: id, Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE, Reason: fmt.Sprint(i)})
		if err := store.InsertOutbox(ctx, pool, store.OutboxEvent{
			ID: id, Subject: bus.ConversationSubject("message"), Type: "sidekick.support.v1.ConversationEvent",
			Payload: payload, CreatedAt: clock.Now(),
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	real := bus.NewPublisher(js, "sidekick/triage")
	cfg := outbox.Config{Batch: 6}

	// First relay: 2 events acknowledged, then the connection drops with 4
	// more of the batch stored by JetStream but never acknowledged.
	reg := prometheus.NewRegistry()
	first, err := outbox.New(pool, &flaky{real: real, ok: 2, lostAcks: true}, cfg, nil, clock.Now, reg)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(90 * time.Second)
	if _, err := first.Drain(ctx); err == nil {
		t.Fatal("first relay: want the publish error")
	}
	if n := triagetest.Count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL`); n != 2 {
		t.Fatalf("first relay marked %d rows, want the 2 acknowledged", n)
	}
	if age := testutil.ToFloat64(mustGauge(t, reg)); age != 90 {
		t.Fatalf("oldest pending event age %v, want 90", age)
	}

	// Second relay dies after publishing a whole batch, before marking.
	second, err := outbox.New(pool, &flaky{real: real, ok: 0, lostAcks: true}, cfg, nil, clock.Now, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Drain(ctx); err == nil {
		t.Fatal("second relay: want the publish error")
	}

	// A new relay finishes the job.
	third, err := outbox.New(pool, real, cfg, nil, clock.Now, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Drain(ctx); err != nil {
		t.Fatalf("third relay: %v", err)
	}
	if n := triagetest.Count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Fatalf("%d events still pending", n)
	}
	if age := testutil.ToFloat64(mustGauge(t, reg)); age != 0 {
		t.Fatalf("oldest pending event age %v after draining, want 0", age)
	}
	events, msgIDs := triagetest.ConversationEvents(t, js)
	if !slices.Equal(msgIDs, ids) {
		t.Fatalf("stream holds\n %v\nwant each event once, in order:\n %v", msgIDs, ids)
	}
	for i, ev := range events {
		if ev.GetId() != ids[i] || ev.GetReason() != fmt.Sprint(i) {
			t.Fatalf("event %d is %v", i, ev)
		}
	}
}

func mustGauge(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	return gaugeCollector{reg: reg, name: "sidekick_triage_outbox_oldest_seconds"}
}

// gaugeCollector exposes one metric family of a registry to testutil.
type gaugeCollector struct {
	reg  *prometheus.Registry
	name string
}

func (g gaugeCollector) Describe(chan<- *prometheus.Desc) {}

func (g gaugeCollector) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := g.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == g.name {
			for _, m := range mf.GetMetric() {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(g.name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
			}
		}
	}
}

func TestConcurrentRelaysPublishOnceInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	pool := triagetest.Database(t, triage.Schema, triage.Migrations())
	clock := triagetest.NewClock()
	ctx := context.Background()
	var ids []string
	for range 200 {
		id := engine.NewID()
		payload, _ := proto.Marshal(&supportv1.ConversationEvent{Id: id, Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE})
		if err := store.InsertOutbox(ctx, pool, store.OutboxEvent{
			ID: id, Subject: bus.ConversationSubject("message"), Type: "sidekick.support.v1.ConversationEvent",
			Payload: payload, CreatedAt: clock.Now(),
		}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	for range 3 {
		r, err := outbox.New(pool, bus.NewPublisher(js, "sidekick/triage"), outbox.Config{Batch: 7}, nil, clock.Now, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for triagetest.Count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`) > 0 {
				if _, err := r.Drain(ctx); err != nil {
					t.Errorf("drain: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	_, msgIDs := triagetest.ConversationEvents(t, js)
	if !slices.Equal(msgIDs, ids) {
		t.Fatalf("stream holds %d events, want the %d in order, each once", len(msgIDs), len(ids))
	}
}
