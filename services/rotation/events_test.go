package rotation

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// rotationEvents are the schedule events published so far; config_applied
// events (configTest's) are left out.
func rotationEvents(t *testing.T, js jetstream.JetStream) []*supportv1.RotationEvent {
	t.Helper()
	var out []*supportv1.RotationEvent
	for _, ev := range allRotationEvents(t, js) {
		if ev.GetType() != supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED {
			out = append(out, ev)
		}
	}
	return out
}

func allRotationEvents(t *testing.T, js jetstream.JetStream) []*supportv1.RotationEvent {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, bus.StreamRotation)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*supportv1.RotationEvent
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ev := &supportv1.RotationEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestScheduleEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres and NATS")
	}
	url := pgtest.NewDatabase(t)
	_, js := bustest.StartJetStream(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)) // Sunday
	a, b := eventReplica(t, url, js, clk, time.Hour), eventReplica(t, url, js, clk, time.Hour)
	if _, err := a.Apply(ctx, []byte(org), false, "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.reload(ctx); err != nil {
		t.Fatal(err)
	}
	// The events go to the outbox; the relay publishes them.
	relay := func() {
		t.Helper()
		if _, err := a.relay.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a.emit(ctx) // first tick only sets the cursor
	relay()
	if n := len(rotationEvents(t, js)); n != 0 {
		t.Fatalf("first tick published %d events", n)
	}

	// Monday 10:00 London: the 09:00 handoff has happened. Both replicas
	// tick at once; the events are published once.
	clk.Advance(time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC).Sub(clk.Now()))
	var wg sync.WaitGroup
	for _, s := range []*Service{a, b, a, b} {
		wg.Go(func() { s.emit(ctx) })
	}
	wg.Wait()
	relay()
	evs := rotationEvents(t, js)
	got := map[string]*supportv1.RotationEvent{}
	for _, ev := range evs {
		if got[ev.GetId()] != nil {
			t.Fatalf("event %s published twice", ev.GetId())
		}
		got[ev.GetId()] = ev
	}
	handoff := time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC).Unix()
	started := got["rotation:shift_started:hero:bob:"+itoa(handoff)]
	if started == nil || !started.GetHero() || started.GetPreviousPersonId() != "alice" {
		t.Fatalf("hero handoff alice -> bob missing or wrong; events: %v", evs)
	}
	if got["rotation:shift_ended:hero:alice:"+itoa(handoff)] == nil {
		t.Fatalf("hero shift_ended for alice missing; events: %v", evs)
	}
	if ev := got["rotation:shift_started:platform-secondary:bob:"+itoa(handoff)]; ev == nil || ev.GetTeamId() != "platform" {
		t.Fatalf("platform secondary handoff missing or without team; events: %v", evs)
	}

	// A swap recorded now is announced once, with the overrides.
	thu := time.Date(2026, 2, 5, 9, 0, 0, 0, time.UTC)
	if _, err := a.api.SwapShifts(ctx, swapRequest(thu)); err != nil {
		t.Fatal(err)
	}
	// Written with the overrides, before any tick.
	var written int
	if err := a.deps.Pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE subject = $1`,
		bus.RotationSubject("override_created")).Scan(&written); err != nil || written != 2 {
		t.Fatalf("%d override_created events in the outbox after the swap (%v), want 2", written, err)
	}
	// An override recorded before overrides were announced through the
	// outbox (announced = false) is announced by the next tick.
	if _, err := a.deps.Pool.Exec(ctx, `INSERT INTO overrides (id, rotation_id, kind, person_id, with_person, starts_at, ends_at, announced)
		VALUES ('recorded-before', 'hero', 'replace', 'bob', 'alice', $1, $2, false)`, thu.Add(7*24*time.Hour), thu.Add(8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := len(evs)
	clk.Advance(time.Minute)
	a.emit(ctx)
	b.emit(ctx)
	relay()
	after := rotationEvents(t, js)
	overrides := 0
	for _, ev := range after[before:] {
		if ev.GetType() == supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED {
			overrides++
		}
	}
	if overrides != 3 {
		t.Fatalf("want the swap's 2 overrides and the one recorded before announced once each, got %d in %v", overrides, after[before:])
	}
}

// eventStack skips under -short, else returns a migrated database and
// JetStream for eventReplica.
func eventStack(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Postgres and NATS")
	}
	url := pgtest.NewDatabase(t)
	_, js := bustest.StartJetStream(t)
	if err := pg.Migrate(context.Background(), url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	return url, js
}

// eventReplica is one replica of rotation on the migrated database url,
// publishing its events to js, with the given gap look-ahead.
func eventReplica(t *testing.T, url string, js jetstream.JetStream, clk clock.Clock, lookahead time.Duration) *Service {
	t.Helper()
	ctx := context.Background()
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := New(ctx, Config{ReloadInterval: time.Hour, GapLookahead: lookahead}, Deps{Pool: pool, Clock: clk, Publisher: bus.NewPublisher(js, "sidekick/rotation")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func swapRequest(thu time.Time) *rotationv1.SwapShiftsRequest {
	aliceDay := time.Date(2026, 2, 17, 9, 0, 0, 0, time.UTC)
	return &rotationv1.SwapShiftsRequest{
		Rotation: "hero",
		PersonA:  "bob", ShiftAStart: timestamppb.New(thu), ShiftAEnd: timestamppb.New(thu.Add(24 * time.Hour)),
		PersonB: "alice", ShiftBStart: timestamppb.New(aliceDay), ShiftBEnd: timestamppb.New(aliceDay.Add(24 * time.Hour)),
	}
}

func TestFromKit(t *testing.T) {
	url := pgtest.NewDatabase(t)
	_, js := bustest.StartJetStream(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	kit := func(environ ...string) *app.Kit {
		return &app.Kit{Name: "rotation", Environ: environ, Logger: logging.Discard(), Registry: prometheus.NewRegistry(), JS: js, Pool: pool}
	}
	if _, err := FromKit(ctx, kit("SIDEKICK_ROTATION_RELOAD_INTERVAL=soon")); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("a bad variable: %v", err)
	}
	k := kit()
	if k.Org, err = orgfile.Read("testdata/org.yaml"); err != nil {
		t.Fatal(err)
	}
	svc, err := FromKit(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	s := svc.(*Service)
	if s.Schedule() == nil || len(s.Schedule().People()) != 6 || s.emitter == nil {
		t.Fatalf("FromKit did not apply the organisation file or wire the events")
	}
}

// A swap sent twice is recorded once; deleting one side deletes both, in
// the transaction that writes an override_deleted event for each, and
// another replica's schedule loses them at its next reload.
func TestSwapOnceAndDeleteBothSides(t *testing.T) {
	url, js := eventStack(t)
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 2, 2, 12, 0, 0, 0, time.UTC))
	a, b := eventReplica(t, url, js, clk, 0), eventReplica(t, url, js, clk, 0)
	if _, err := a.Apply(ctx, []byte(org), false, "test"); err != nil {
		t.Fatal(err)
	}
	if err := b.reload(ctx); err != nil {
		t.Fatal(err)
	}
	thu := time.Date(2026, 2, 5, 9, 0, 0, 0, time.UTC)
	first, err := a.api.SwapShifts(ctx, swapRequest(thu))
	if err != nil {
		t.Fatal(err)
	}
	// The same request through the other replica, whose schedule has not
	// reloaded yet: the same swap, stored once.
	again, err := b.api.SwapShifts(ctx, swapRequest(thu))
	if err != nil || again.GetSwapId() != first.GetSwapId() {
		t.Fatalf("the same swap again: %v %v, want %s", again, err, first.GetSwapId())
	}
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := a.deps.Pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM overrides`); n != 2 {
		t.Fatalf("%d overrides stored, want one swap's two sides", n)
	}
	if err := b.reload(ctx); err != nil {
		t.Fatal(err)
	}
	del, err := b.api.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: first.GetOverrides()[0].GetId()})
	if err != nil || len(del.GetDeleted()) != 2 {
		t.Fatalf("delete one side: %v %v", del, err)
	}
	if n := count(`SELECT count(*) FROM overrides`); n != 0 {
		t.Fatalf("%d overrides left", n)
	}
	if n := count(`SELECT count(*) FROM outbox WHERE subject = $1`, bus.RotationSubject("override_deleted")); n != 2 {
		t.Fatalf("%d override_deleted events in the outbox, want 2", n)
	}
	if err := a.reload(ctx); err != nil {
		t.Fatal(err)
	}
	hero, err := a.api.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{At: timestamppb.New(thu.Add(time.Hour))})
	if err != nil || hero.GetOnCall().GetReason() == rotationv1.Reason_REASON_SWAP {
		t.Fatalf("the swap still applies on the other replica: %v %v", hero, err)
	}
	if _, err := a.api.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: first.GetSwapId()}); status.Code(err) != codes.NotFound {
		t.Fatalf("delete it again: %v", err)
	}
}
