package rotation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// withoutBob is the handbook organisation after bob left: out of the
// people, the hero rotation and Core Experience's secondary rotation.
func withoutBob(t testing.TB) []byte {
	t.Helper()
	data := string(handbookOrg(t))
	for _, r := range [][2]string{
		{"  - {id: bob, name: Bob Brown, email: bob@example.com, slack: U0BOB, team: core-experience,\n     timezone: Europe/London, working_hours: \"Mon-Fri 09:00-17:30\"}\n", ""},
		{"participants: [alice, bob, carol, eve]", "participants: [alice, carol, eve]"},
		{"participants: [eve, bob]", "participants: [eve]"},
	} {
		if !strings.Contains(data, r[0]) {
			t.Fatalf("testdata/org.yaml no longer has %q", r[0])
		}
		data = strings.Replace(data, r[0], r[1], 1)
	}
	if strings.Contains(data, "bob") {
		t.Fatalf("bob is still in the organisation:\n%s", data)
	}
	return []byte(data)
}

func TestCompileWithLeavesOutStaleOverrides(t *testing.T) {
	cfg, err := schedule.ParseConfig(withoutBob(t))
	if err != nil {
		t.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	day := func(d int) time.Time { return time.Date(2026, 4, d, 9, 0, 0, 0, london) }
	stored := []schedule.Override{
		{ID: "swap-1-a", Rotation: "hero", Kind: schedule.Replace, Person: "alice", With: "bob", Start: day(1), End: day(2), SwapID: "swap-1"},
		{ID: "swap-1-b", Rotation: "hero", Kind: schedule.Replace, Person: "bob", With: "alice", Start: day(8), End: day(9), SwapID: "swap-1"},
		{ID: "gone-rotation", Rotation: "bob-secondary", Kind: schedule.Add, With: "alice", Start: day(1), End: day(2)},
		{ID: "fine", Rotation: "hero", Kind: schedule.Add, With: "gus", Start: day(3), End: day(4)},
	}
	sched, ign, err := compileWith(cfg, stored)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, i := range ign {
		got = append(got, i.Override.ID+": "+i.Reason)
	}
	want := []string{
		`swap-1-a: person "bob" is not in the configuration`,
		`swap-1-b: person "bob" is not in the configuration`,
		`gone-rotation: rotation "bob-secondary" is not in the configuration`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ignored:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	ans, err := sched.WhoIsOnCall(schedule.Query{Role: schedule.RoleHero, At: day(3).Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(ans.Also) == 0 || ans.Also[0].Person.ID != "gus" {
		t.Errorf("the stored override that still fits is in force: %+v", ans)
	}

	// A stored override that contradicts one the file now has: the file's
	// wins, the stored one is left out, naming the conflict.
	cfg.Overrides = append(cfg.Overrides, schedule.Override{ID: "file-1", Rotation: "hero", Kind: schedule.Replace, Person: "alice", With: "carol", Start: day(1), End: day(2)})
	stored = []schedule.Override{
		{ID: "api-1", Rotation: "hero", Kind: schedule.Replace, Person: "alice", With: "eve", Start: day(1).Add(time.Hour), End: day(2)},
		{ID: "fine", Rotation: "hero", Kind: schedule.Add, With: "gus", Start: day(3), End: day(4)},
	}
	if _, ign, err = compileWith(cfg, stored); err != nil {
		t.Fatal(err)
	}
	if len(ign) != 1 || ign[0].Override.ID != "api-1" || !strings.Contains(ign[0].Reason, "overlaps override") {
		t.Errorf("contradicting stored override: %+v", ign)
	}

	// A configuration that does not compile by itself is still an error.
	cfg.Teams = append(cfg.Teams, schedule.Team{ID: "x", Secondary: "nope"})
	if _, _, err := compileWith(cfg, nil); err == nil {
		t.Error("a broken configuration compiled")
	}
}

func TestIgnoredChanges(t *testing.T) {
	o := func(id string) ignored {
		return ignored{Override: schedule.Override{ID: id, Rotation: "hero", Kind: schedule.Remove, Person: "bob",
			Start: time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 4, 2, 8, 0, 0, 0, time.UTC)}, Reason: `person "bob" is not in the configuration`}
	}
	got := ignoredChanges([]ignored{o("a"), o("b")}, []ignored{o("b"), o("c")})
	want := []string{
		`+ stored override a (hero remove bob 2026-04-01T08:00:00Z..2026-04-02T08:00:00Z): in force again`,
		`- stored override c (hero remove bob 2026-04-01T08:00:00Z..2026-04-02T08:00:00Z): dropped, person "bob" is not in the configuration`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStaleOverridesAfterSomebodyLeaves: bob made a swap through the API,
// then left and the organisation file no longer has him. Applying that
// file says which stored overrides it drops, succeeds, and every replica
// (a new one too) keeps answering; the overrides stay stored and count
// again if bob comes back.
func TestStaleOverridesAfterSomebodyLeaves(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	london, _ := time.LoadLocation("Europe/London")
	at := func(d, h int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 4, d, h, 0, 0, 0, london))
	}
	now := clock.NewFake(time.Date(2026, 3, 23, 10, 0, 0, 0, london))
	reg := prometheus.NewRegistry()
	start := func(reg prometheus.Registerer) *Service {
		pool, err := pg.Connect(ctx, url, Schema)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s, err := New(ctx, Config{ReloadInterval: time.Hour}, Deps{Pool: pool, Clock: now, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	svc := start(reg)
	c := serve(t, svc)
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: handbookOrg(t)}); err != nil {
		t.Fatal(err)
	}
	swap, err := c.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{
		Rotation: "hero", PersonA: "alice", ShiftAStart: at(1, 9), ShiftAEnd: at(2, 9),
		PersonB: "bob", ShiftBStart: at(8, 9), ShiftBEnd: at(9, 9),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
		Id: "gus-helps", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "gus", Start: at(3, 9), End: at(3, 17),
	}}); err != nil {
		t.Fatal(err)
	}

	// The dry run names the two sides of bob's swap, and nothing else.
	dry, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: withoutBob(t), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	var dropped []string
	for _, line := range dry.GetChanges() {
		if strings.Contains(line, "stored override") {
			dropped = append(dropped, line)
		}
	}
	id := swap.GetSwapId()
	want := []string{
		"- stored override " + id + "-a (hero replace alice with bob 2026-04-01T08:00:00Z..2026-04-02T08:00:00Z swap " + id + `): dropped, person "bob" is not in the configuration`,
		"- stored override " + id + "-b (hero replace bob with alice 2026-04-08T08:00:00Z..2026-04-09T08:00:00Z swap " + id + `): dropped, person "bob" is not in the configuration`,
	}
	if strings.Join(dropped, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry run:\n%s\nwant the lines:\n%s", strings.Join(dry.GetChanges(), "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(strings.Join(dry.GetChanges(), "\n"), "- person bob") {
		t.Errorf("dry run does not remove bob: %v", dry.GetChanges())
	}

	applied, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: withoutBob(t)})
	if err != nil || !applied.GetApplied() {
		t.Fatalf("apply without bob: %v %v", applied, err)
	}
	if got := testutil.ToFloat64(svc.metrics.ignored); got != 2 {
		t.Errorf("sidekick_rotation_overrides_ignored = %v, want 2", got)
	}
	if n := len(svc.Ignored()); n != 2 {
		t.Errorf("Ignored: %v", svc.Ignored())
	}
	// A replica started now loads the schedule (before, the stale
	// overrides made every reload, and so every start, fail).
	replica := start(nil)
	for _, s := range []*Service{svc, replica} {
		hero, err := s.api.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{At: at(3, 12)})
		if err != nil {
			t.Fatal(err)
		}
		// Hero order alice, carol, eve now: week 12 is alice's; gus's
		// override still applies.
		if hero.GetOnCall().GetPerson().GetId() != "alice" || len(hero.GetAlso()) == 0 || hero.GetAlso()[0].GetPerson().GetId() != "gus" {
			t.Errorf("hero on 3 April without bob: %v", hero)
		}
	}

	// bob comes back: his swap is in force again.
	back, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: handbookOrg(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(strings.Join(back.GetChanges(), "\n"), ": in force again"); n != 2 {
		t.Errorf("re-apply with bob: %v", back.GetChanges())
	}
	hero, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{At: at(1, 12)})
	if err != nil || hero.GetOnCall().GetPerson().GetId() != "bob" || hero.GetOnCall().GetReason() != rotationv1.Reason_REASON_SWAP {
		t.Errorf("hero on 1 April with bob back: %v %v", hero, err)
	}
	if got := testutil.ToFloat64(svc.metrics.ignored); got != 0 {
		t.Errorf("sidekick_rotation_overrides_ignored = %v, want 0", got)
	}
}
