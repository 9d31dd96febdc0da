package outbox_test

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

//go:embed testdata/*.sql
var migrations embed.FS

var start = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// database returns a pool of schema in url, with the outbox shape
// migrated.
func database(t *testing.T, url, schema string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	fsys, err := fs.Sub(migrations, "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(ctx, url, schema, fsys, nil); err != nil {
		t.Fatalf("migrate %s: %v", schema, err)
	}
	pool, err := pg.Connect(ctx, url, schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// queue writes n events on subject, one transaction each, and returns
// their ids in order.
func queue(t *testing.T, pool *pgxpool.Pool, subject string, n int, c clock.Clock) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s-%03d", subject, i)
		ev, err := outbox.Message(subject, id, c.Now(), wrapperspb.String(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := outbox.Insert(context.Background(), pool, ev); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// stored returns the Nats-Msg-Ids of the messages on subject in stream
// order, checking each carries the CloudEvents headers of its row.
func stored(t *testing.T, js jetstream.JetStream, subject string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range info.NumPending {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s: %v (have %d)", subject, err, len(ids))
		}
		h := msg.Headers()
		id := h.Get(nats.MsgIdHdr)
		if h.Get(bus.HeaderID) != id || h.Get(bus.HeaderType) != "google.protobuf.StringValue" ||
			h.Get(bus.HeaderContentType) != bus.ContentTypeProtobuf || h.Get(bus.HeaderTime) != start.Format(time.RFC3339Nano) {
			t.Errorf("message %s has headers %v", id, h)
		}
		ids = append(ids, id)
	}
	return ids
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

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

// A publish that fails mid-batch marks the acknowledged prefix only; a
// relay that dies after JetStream stored a batch but before marking it
// leaves it pending; the next relay publishes the rest, and the stream
// holds every event once, in order.
func TestPublishFailureMidBatchLosesNothingDuplicatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	pool := database(t, pgtest.NewDatabase(t), "svc")
	c := clock.NewFake(start)
	subject := bus.ConversationSubject("message")
	ids := queue(t, pool, subject, 10, c)
	real := bus.NewPublisher(js, "sidekick/test")
	cfg := outbox.Config{Batch: 6}
	ctx := context.Background()

	// First relay: 2 events acknowledged, then the connection drops with 4
	// more of the batch stored by JetStream but never acknowledged.
	reg := prometheus.NewRegistry()
	first, err := outbox.New(pool, &flaky{real: real, ok: 2, lostAcks: true}, cfg, c, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(90 * time.Second)
	if _, err := first.Drain(ctx); err == nil {
		t.Fatal("first relay: want the publish error")
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL`); n != 2 {
		t.Fatalf("first relay marked %d rows, want the 2 acknowledged", n)
	}
	if age := value(t, reg, "sidekick_outbox_oldest_seconds"); age != 90 {
		t.Fatalf("oldest pending event age %v, want 90", age)
	}

	// Second relay dies after publishing a whole batch, before marking.
	second, err := outbox.New(pool, &flaky{real: real, ok: 0, lostAcks: true}, cfg, c, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Drain(ctx); err == nil {
		t.Fatal("second relay: want the publish error")
	}

	// A new relay finishes the job.
	third, err := outbox.New(pool, real, cfg, c, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Drain(ctx); err != nil {
		t.Fatalf("third relay: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 0 {
		t.Fatalf("%d events still pending", n)
	}
	if age := value(t, reg, "sidekick_outbox_oldest_seconds"); age != 0 {
		t.Fatalf("oldest pending event age %v after draining, want 0", age)
	}
	if n := value(t, reg, "sidekick_outbox_failures_total"); n != 1 {
		t.Fatalf("failures counted %v, want 1 (the first relay's)", n)
	}
	if got := stored(t, js, subject); !slices.Equal(got, ids) {
		t.Fatalf("stream holds\n %v\nwant each event once, in order:\n %v", got, ids)
	}
}

// Two relays of one schema running at once publish every event once, in
// order; a relay of another schema in the same database is not held up by
// them.
func TestRelaysAtOncePublishOnceInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	srv, js := bustest.StartJetStream(t)
	url := pgtest.NewDatabase(t)
	pool := database(t, url, "svc")
	other := database(t, url, "other")
	c := clock.NewFake(start)
	convs, rots := bus.ConversationSubject("message"), bus.RotationSubject("shift_started")
	ids := queue(t, pool, convs, 300, c)
	otherIDs := queue(t, other, rots, 20, c)

	// The other schema's relay publishes while a transaction of this one
	// holds its lock.
	held, err := pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := held.Exec(context.Background(), `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, int32(0x6f757462)); err != nil {
		t.Fatal(err)
	}
	otherRelay, err := outbox.New(other, bus.NewPublisher(js, "sidekick/other"), outbox.Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := otherRelay.Drain(context.Background()); err != nil || n != len(otherIDs) {
		t.Fatalf("other schema's relay published %d (%v), want %d while this schema's lock is held", n, err, len(otherIDs))
	}
	blocked, err := outbox.New(pool, bus.NewPublisher(js, "sidekick/test"), outbox.Config{}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, busy, err := blocked.Flush(context.Background()); err != nil || !busy || n != 0 {
		t.Fatalf("flush under another holder's lock: %d sent, busy %t, %v; want busy", n, busy, err)
	}
	if err := held.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Two relays run at once, each on its own connection to NATS, woken by
	// the notifications of the commits below.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		_, js := srv.Connect(t)
		r, err := outbox.New(pool, bus.NewPublisher(js, "sidekick/test"), outbox.Config{Batch: 7}, c, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := r.Run(ctx); err != nil {
				t.Errorf("relay %d: %v", i, err)
			}
		})
	}
	for i := range 50 {
		id := fmt.Sprintf("late-%02d", i)
		ev, err := outbox.Message(convs, id, c.Now(), wrapperspb.String(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error { return outbox.Insert(context.Background(), tx, ev) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	deadline := time.Now().Add(time.Minute)
	for count(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the relays did not publish everything, with the clock standing still: notifications did not wake them")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if got := stored(t, js, convs); !slices.Equal(got, ids) {
		t.Fatalf("stream holds %d events, want the %d in order, each once", len(got), len(ids))
	}
	if got := stored(t, js, rots); !slices.Equal(got, otherIDs) {
		t.Fatalf("other schema's events: %v, want %v", got, otherIDs)
	}
}

// Headers written with an event ride on its NATS message; the CloudEvents
// headers and Nats-Msg-Id stay the relay's. Insert, InsertRows and
// CopyRows write the same rows, and Insert keeps the first copy of an id.
func TestWritersAndHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	pool := database(t, pgtest.NewDatabase(t), "svc")
	ctx := context.Background()
	subject := bus.DeadLetterSubject("test")
	mk := func(id string, h map[string]string) outbox.Event {
		ev, err := outbox.Message(subject, id, start, wrapperspb.String(id))
		if err != nil {
			t.Fatal(err)
		}
		ev.Header = h
		return ev
	}
	dead := mk("a", map[string]string{bus.HeaderErrorLocation: "test/deliver", bus.HeaderError: "refused", bus.HeaderID: "forged"})
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := outbox.Insert(ctx, tx, dead, mk("b", nil)); err != nil {
			return err
		}
		if err := outbox.InsertRows(ctx, tx, []outbox.Event{mk("a", map[string]string{"x": "the second copy"}), mk("c", nil)}); err != nil {
			return err
		}
		if err := outbox.CopyRows(ctx, tx, []outbox.Event{mk("d", map[string]string{"traceparent": "00-1-2-01"}), mk("e", nil)}); err != nil {
			return err
		}
		return outbox.Notify(ctx, tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := outbox.New(pool, bus.NewPublisher(js, "sidekick/test"), outbox.Config{}, clock.NewFake(start), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Drain(ctx); err != nil || n != 5 {
		t.Fatalf("drained %d (%v), want 5", n, err)
	}
	cons, err := js.OrderedConsumer(ctx, bus.StreamDeadLetter, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ id, location, cause, trace string }{
		{"a", "test/deliver", "refused", ""}, {"b", "", "", ""}, {"c", "", "", ""}, {"d", "", "", "00-1-2-01"}, {"e", "", "", ""},
	}
	for _, w := range want {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Headers()
		if h.Get(nats.MsgIdHdr) != w.id || h.Get(bus.HeaderID) != w.id || h.Get(bus.HeaderErrorLocation) != w.location ||
			h.Get(bus.HeaderError) != w.cause || h.Get("traceparent") != w.trace || h.Get("x") != "" {
			t.Errorf("message %s: headers %v", w.id, h)
		}
	}
}

// The prune rule deletes sent rows older than keep and never an unsent
// one.
func TestPruneRule(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	pool := database(t, pgtest.NewDatabase(t), "svc")
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (id, subject, type, payload, created_at, sent_at) VALUES
		('sent-old', 's', 't', '', $1, $1), ('sent-lately', 's', 't', '', $2, $2), ('unsent-old', 's', 't', '', $1, NULL)`,
		start.Add(-72*time.Hour), start.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	p, err := prune.New(pool, prune.Config{Service: "svc"}, []prune.Rule{outbox.PruneRule(24 * time.Hour)}, nil,
		func() time.Time { return start }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := p.Prune(ctx); err != nil || n["outbox"] != 1 {
		t.Fatalf("pruned %v (%v), want 1 outbox row", n, err)
	}
	var left string
	if err := pool.QueryRow(ctx, `SELECT string_agg(id, ' ' ORDER BY id) FROM outbox`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "sent-lately unsent-old" {
		t.Fatalf("left %q", left)
	}
}

// value is the value of the metric name in reg (a gauge or a counter).
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
