package rotation

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const org = `
people:
  - {id: alice, name: Alice, email: alice@example.com, slack: U01, team: platform, timezone: America/New_York, working_hours: "Mon-Fri 09:00-17:30"}
  - {id: bob, name: Bob, email: bob@example.com, slack: U02, team: platform, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30"}
  - {id: carol, name: Carol, email: carol@example.com, slack: U03, team: analytics, timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00"}
rotations:
  - {id: hero, type: weekly, length: 1, start: "2026-01-05 09:00", timezone: Europe/London, participants: [alice, bob, carol]}
  - {id: platform-secondary, type: weekly, length: 1, start: "2026-01-05 09:00", timezone: Europe/London, participants: [bob, alice]}
  - {id: analytics-secondary, type: weekly, length: 1, start: "2026-01-05 09:00", timezone: Europe/London, participants: [carol]}
teams:
  - {id: platform, name: Platform, secondary: platform-secondary}
  - {id: analytics, name: Analytics, secondary: analytics-secondary}
support:
  hero: hero
  hero_is_team_secondary: true
`

// newService migrates a fresh database and returns a service on it.
func newService(t testing.TB, url string, c clock.Clock) *Service {
	t.Helper()
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := New(ctx, Config{ReloadInterval: time.Hour}, Deps{Pool: pool, Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testToken is the bearer token the test gRPC servers require.
const testToken = "test-token"

// serve runs s's gRPC API on a loopback port behind the production server
// (authentication, health, reflection, interceptors) and returns a client
// that sends the token.
func serve(t testing.TB, s *Service) rotationv1.RotationServiceClient {
	t.Helper()
	return rotationv1.NewRotationServiceClient(serveConn(t, s))
}

func serveConn(t testing.TB, s *Service) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs, err := grpcx.NewServer(grpcx.ServerOptions{Logger: logging.Discard(), Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	s.RegisterGRPC(gs)
	go func() { _ = gs.Server.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpcx.Dial(lis.Addr().String(), grpcx.DialOptions{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestApplyConfigAndWhoIsOnCall(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	now := time.Date(2026, 2, 4, 12, 0, 0, 0, time.UTC) // Wednesday of week 5
	s := newService(t, url, clock.NewFake(now))
	c := serve(t, s)

	if _, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("before any configuration: want FailedPrecondition, got %v", err)
	}
	dry, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(org), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.GetApplied() || len(dry.GetChanges()) == 0 || !strings.Contains(strings.Join(dry.GetChanges(), "\n"), "alice") {
		t.Fatalf("dry run: %v", dry)
	}
	if _, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a dry run applied the configuration: %v", err)
	}
	applied, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(org)})
	if err != nil || !applied.GetApplied() {
		t.Fatalf("apply: %v %v", applied, err)
	}
	again, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(org)})
	if err != nil || again.GetApplied() || len(again.GetChanges()) != 0 {
		t.Fatalf("second apply must change nothing: %v %v", again, err)
	}
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte("people: [{id: x, timezone: Mars/Base}]")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("invalid configuration: want InvalidArgument, got %v", err)
	}

	// Week of 2026-02-02 is week 4 counted from 2026-01-05: participant 4 mod 3 = bob.
	hero, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		t.Fatal(err)
	}
	if got := hero.GetOnCall().GetPerson().GetId(); got != "bob" {
		t.Fatalf("hero on %s: got %q, want bob", now, got)
	}
	wantStart := time.Date(2026, 2, 2, 9, 0, 0, 0, time.UTC)
	if !hero.GetOnCall().GetShift().GetStart().AsTime().Equal(wantStart) {
		t.Fatalf("shift start %v, want %v", hero.GetOnCall().GetShift().GetStart().AsTime(), wantStart)
	}
	// The hero is their own team's secondary that week (derived).
	sec, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if sec.GetOnCall().GetPerson().GetId() != "bob" || sec.GetOnCall().GetReason() != rotationv1.Reason_REASON_DERIVED {
		t.Fatalf("platform secondary: %v", sec.GetOnCall())
	}
	teams, err := c.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
	if err != nil || len(teams.GetTeams()) != 2 {
		t.Fatalf("teams %v %v", teams, err)
	}
	people, err := c.ListPeople(ctx, &rotationv1.ListPeopleRequest{Team: "platform"})
	if err != nil || len(people.GetPeople()) != 2 {
		t.Fatalf("people %v %v", people, err)
	}
}

func TestOrgConfigAppliedAtStart(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if err := pg.Migrate(ctx, url, Schema, Migrations(), logging.Discard()); err != nil {
		t.Fatal(err)
	}
	pool, err := pg.Connect(ctx, url, Schema)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	file, err := orgfile.Parse([]byte(org))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a restart with the same file applies nothing new
		s, err := New(ctx, Config{ReloadInterval: time.Hour}, Deps{Pool: pool, Org: file})
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Schedule().People()) != 3 {
			t.Fatalf("people %d", len(s.Schedule().People()))
		}
	}
	var versions int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM config_versions`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if versions != 1 {
		t.Fatalf("applying the same file twice stored %d versions", versions)
	}
}

// TestOverrideIDsAcrossReplicas: a client-chosen override id means one
// override everywhere, even on a replica that has not reloaded since
// another stored it.
func TestOverrideIDsAcrossReplicas(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	london, _ := time.LoadLocation("Europe/London")
	now := clock.NewFake(time.Date(2026, 3, 23, 10, 0, 0, 0, london))
	a := newService(t, url, now)
	if _, err := a.Apply(ctx, handbookOrg(t), false, "test"); err != nil {
		t.Fatal(err)
	}
	b := newService(t, url, now)
	ca, cb := serve(t, a), serve(t, b)
	thu := time.Date(2026, 4, 2, 9, 0, 0, 0, london)
	req := func(with string) *rotationv1.CreateOverrideRequest {
		return &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
			Id: "launch-day", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: with,
			Start: timestamppb.New(thu), End: timestamppb.New(thu.Add(4 * time.Hour)),
		}}
	}
	if _, err := ca.CreateOverride(ctx, req("gus")); err != nil {
		t.Fatal(err)
	}
	// b has not reloaded: its schedule does not show launch-day yet.
	if _, err := cb.CreateOverride(ctx, req("gus")); err != nil {
		t.Errorf("the same override again through b: %v", err)
	}
	if _, err := cb.CreateOverride(ctx, req("dmitri")); status.Code(err) != codes.AlreadyExists {
		t.Errorf("another override with the same id through b: %v, want AlreadyExists", err)
	}
	if _, err := ca.CreateOverride(ctx, req("dmitri")); status.Code(err) != codes.AlreadyExists {
		t.Errorf("another override with the same id through a: %v, want AlreadyExists", err)
	}
	var with string
	if err := a.deps.Pool.QueryRow(ctx, `SELECT with_person FROM overrides WHERE id = 'launch-day'`).Scan(&with); err != nil || with != "gus" {
		t.Errorf("stored launch-day adds %q (%v), want gus", with, err)
	}
}

// A person's public holidays come through the organisation file: shown in
// the dry-run diff, refused with the line when malformed (nothing
// applied), and a page on the holiday goes down the backup chain.
func TestHolidaysThroughApply(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	// Friday 25 December 2026, 12:00 in London: carol is the hero that
	// week (week 50 from 5 January; 50 mod 3 = 2).
	now := time.Date(2026, 12, 25, 12, 0, 0, 0, time.UTC)
	s := newService(t, url, clock.NewFake(now))
	c := serve(t, s)
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(org)}); err != nil {
		t.Fatal(err)
	}
	withHolidays := strings.Replace(org, "timezone: Europe/Berlin,", "timezone: Europe/Berlin, holidays: DE-BY,", 1)
	dry, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(withHolidays), DryRun: true})
	if err != nil || strings.Join(dry.GetChanges(), "\n") != `~ person carol: holidays "" -> [DE-BY]` {
		t.Fatalf("dry run: %v %v", dry, err)
	}
	bad := strings.Replace(org, "timezone: Europe/Berlin,", "timezone: Europe/Berlin, holidays: DE-XX,", 1)
	_, err = c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(bad)})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `line 5: person carol: holidays: unknown country or region "DE-XX"`) {
		t.Fatalf("a malformed holiday code: %v", err)
	}
	before, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil || before.GetGap() || before.GetHigh().GetReceiver().GetPerson().GetId() != "carol" {
		t.Fatalf("before the holidays are applied (nothing applied by the bad file): %v %v", before, err)
	}
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(withHolidays)}); err != nil {
		t.Fatal(err)
	}
	hero, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		t.Fatal(err)
	}
	first := hero.GetChain()[0]
	if !hero.GetGap() || first.GetPerson().GetId() != "carol" || first.GetAvailability() != rotationv1.Availability_AVAILABILITY_HOLIDAY ||
		!strings.Contains(first.GetAvailabilityDetail(), "Weihnachtstag, DE-BY") {
		t.Fatalf("carol on Christmas Day: %v", hero)
	}
	if r := hero.GetHigh().GetReceiver().GetPerson().GetId(); r == "" || r == "carol" {
		t.Fatalf("a page on carol's holiday reaches %q: %v", r, hero.GetHigh())
	}
}

// A public holiday moves first-response deadlines: triage counts them only
// inside WorkingWindows, which leave the holiday out. With one person on
// the roster, Good Friday has no window; the deadline clock runs again on
// the Tuesday after Easter Monday.
func TestHolidayLeavesTheWorkingWindows(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	s := newService(t, url, clock.NewFake(time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)))
	c := serve(t, s)
	solo := `
people:
  - {id: ivan, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:00", holidays: GB}
rotations:
  - {id: hero, type: weekly, start: "2026-01-05 09:00", timezone: Europe/London, participants: [ivan]}
support: {hero: hero, catchers: false}
`
	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(solo)}); err != nil {
		t.Fatal(err)
	}
	// Thursday 2 April to Wednesday 8 April 2026 (London is UTC+1).
	resp, err := c.WorkingWindows(ctx, &rotationv1.WorkingWindowsRequest{
		From: timestamppb.New(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)), To: timestamppb.New(time.Date(2026, 4, 9, 0, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range resp.GetWindows() {
		got = append(got, w.GetStart().AsTime().Format("Mon 02 15:04")+"-"+w.GetEnd().AsTime().Format("15:04"))
	}
	want := []string{"Thu 02 08:00-16:00", "Tue 07 08:00-16:00", "Wed 08 08:00-16:00"}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("windows %v, want %v (Good Friday and Easter Monday left out)", got, want)
	}
	// Asked for the hero on duty (ivan, alone): the same days.
	resp, err = c.WorkingWindows(ctx, &rotationv1.WorkingWindowsRequest{Role: rotationv1.Role_ROLE_HERO,
		From: timestamppb.New(time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)), To: timestamppb.New(time.Date(2026, 4, 9, 0, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(resp.GetWindows()); n != len(want) {
		t.Errorf("the hero's windows: %d, want %d", n, len(want))
	}
	if _, err := c.WorkingWindows(ctx, &rotationv1.WorkingWindowsRequest{Role: rotationv1.Role_ROLE_SECONDARY,
		To: timestamppb.New(time.Date(2026, 4, 9, 0, 0, 0, 0, time.UTC))}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("windows of a secondary: %v, want InvalidArgument", err)
	}
}
