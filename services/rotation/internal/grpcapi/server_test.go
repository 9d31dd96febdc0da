package grpcapi

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// fakeBackend compiles the test organisation and keeps added overrides in
// memory; ApplyFn answers Apply.
type fakeBackend struct {
	cfg     *schedule.Config
	sched   *schedule.Schedule
	ApplyFn func(ctx context.Context, yaml []byte, dryRun bool, by string) ([]string, error)
	AddErr  error
	// fileIDs are the ids of the organisation file's overrides.
	fileIDs map[string]bool
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) Schedule() *schedule.Schedule { return f.sched }

func (f *fakeBackend) Apply(ctx context.Context, yaml []byte, dryRun bool, by string) ([]string, error) {
	return f.ApplyFn(ctx, yaml, dryRun, by)
}

func (f *fakeBackend) AddOverrides(_ context.Context, os ...schedule.Override) error {
	if f.AddErr != nil {
		return f.AddErr
	}
	f.cfg.Overrides = append(f.cfg.Overrides, os...)
	s, err := schedule.Compile(f.cfg)
	if err != nil {
		return err
	}
	f.sched = s
	return nil
}

func (f *fakeBackend) DeleteOverride(_ context.Context, id string) ([]schedule.Override, error) {
	var kept, deleted []schedule.Override
	swap := ""
	for _, o := range f.cfg.Overrides {
		if o.ID == id && o.SwapID != "" {
			swap = o.SwapID
		}
	}
	for _, o := range f.cfg.Overrides {
		if !f.FromFile(o.ID) && (o.ID == id || o.SwapID == id || (swap != "" && o.SwapID == swap)) {
			deleted = append(deleted, o)
			continue
		}
		kept = append(kept, o)
	}
	if len(deleted) == 0 {
		return nil, ErrNoOverride
	}
	f.cfg.Overrides = kept
	s, err := schedule.Compile(f.cfg)
	if err != nil {
		return nil, err
	}
	f.sched = s
	return deleted, nil
}

func (f *fakeBackend) FromFile(id string) bool { return f.fileIDs[id] }

func newBackend(t *testing.T) *fakeBackend {
	t.Helper()
	data, err := os.ReadFile("../../testdata/org.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := schedule.ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schedule.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fileIDs := map[string]bool{}
	for _, o := range cfg.Overrides {
		fileIDs[o.ID] = true
	}
	return &fakeBackend{cfg: cfg, sched: s, fileIDs: fileIDs}
}

var (
	london, _ = time.LoadLocation("Europe/London")
	// monday is the start of alice's hero week in the test organisation.
	monday = time.Date(2026, 3, 30, 9, 0, 0, 0, london)
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v, want %v (%v)", what, got, want, err)
	}
}

func TestNoConfigurationYet(t *testing.T) {
	s := New(&fakeBackend{}, time.Now)
	ctx := context.Background()
	calls := map[string]func() error{
		"WhoIsOnCall": func() error { _, err := s.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{}); return err },
		"ListShifts": func() error {
			_, err := s.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: "hero"})
			return err
		},
		"ListTeams":  func() error { _, err := s.ListTeams(ctx, &rotationv1.ListTeamsRequest{}); return err },
		"ListPeople": func() error { _, err := s.ListPeople(ctx, &rotationv1.ListPeopleRequest{}); return err },
		"WorkingWindows": func() error {
			_, err := s.WorkingWindows(ctx, &rotationv1.WorkingWindowsRequest{To: ts(time.Now().Add(time.Hour))})
			return err
		},
		"SwapShifts": func() error {
			_, err := s.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "a", PersonB: "b", ShiftAStart: ts(monday), ShiftBStart: ts(monday.AddDate(0, 0, 7))})
			return err
		},
		"CreateOverride": func() error {
			_, err := s.CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
				RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "bob", Start: ts(monday), End: ts(monday.Add(time.Hour)),
			}})
			return err
		},
	}
	for name, call := range calls {
		wantCode(t, name, call(), codes.FailedPrecondition)
	}
}

func TestWhoIsOnCallErrors(t *testing.T) {
	s := New(newBackend(t), func() time.Time { return monday })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *rotationv1.WhoIsOnCallRequest
		want codes.Code
	}{
		{"hero", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO}, codes.OK},
		{"unspecified role means hero", &rotationv1.WhoIsOnCallRequest{}, codes.OK},
		{"secondary without team", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY}, codes.InvalidArgument},
		{"unknown team", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "nope"}, codes.NotFound},
		{"rotation without id", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_ROTATION}, codes.InvalidArgument},
		{"unknown rotation", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_ROTATION, Rotation: "nope"}, codes.NotFound},
		{"known rotation", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_ROTATION, Rotation: "platform-secondary"}, codes.OK},
		{"unknown role", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role(42)}, codes.InvalidArgument},
		{"invalid time", &rotationv1.WhoIsOnCallRequest{At: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}}, codes.InvalidArgument},
	} {
		_, err := s.WhoIsOnCall(ctx, tc.req)
		wantCode(t, tc.name, err, tc.want)
	}

	// An organisation without a hero rotation cannot answer hero queries.
	b := newBackend(t)
	b.cfg.Support.Hero = ""
	var err error
	if b.sched, err = schedule.Compile(b.cfg); err != nil {
		t.Fatal(err)
	}
	_, err = New(b, time.Now).WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	wantCode(t, "no hero rotation", err, codes.FailedPrecondition)
}

func TestListShiftsErrors(t *testing.T) {
	s := New(newBackend(t), func() time.Time { return monday })
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  *rotationv1.ListShiftsRequest
		want codes.Code
	}{
		{"rotation", &rotationv1.ListShiftsRequest{Rotation: "hero"}, codes.OK},
		{"team", &rotationv1.ListShiftsRequest{Team: "platform"}, codes.OK},
		{"neither", &rotationv1.ListShiftsRequest{}, codes.InvalidArgument},
		{"both", &rotationv1.ListShiftsRequest{Rotation: "hero", Team: "platform"}, codes.InvalidArgument},
		{"unknown rotation", &rotationv1.ListShiftsRequest{Rotation: "nope"}, codes.NotFound},
		{"unknown team", &rotationv1.ListShiftsRequest{Team: "nope"}, codes.NotFound},
		{"to before from", &rotationv1.ListShiftsRequest{Rotation: "hero", From: ts(monday), To: ts(monday.Add(-time.Hour))}, codes.InvalidArgument},
		{"longer than a year", &rotationv1.ListShiftsRequest{Rotation: "hero", From: ts(monday), To: ts(monday.AddDate(2, 0, 0))}, codes.InvalidArgument},
		{"invalid from", &rotationv1.ListShiftsRequest{Rotation: "hero", From: &timestamppb.Timestamp{Seconds: -1e13}}, codes.InvalidArgument},
	} {
		_, err := s.ListShifts(ctx, tc.req)
		wantCode(t, tc.name, err, tc.want)
	}
	resp, err := s.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: "hero"})
	if err != nil {
		t.Fatal(err)
	}
	// Default range: four weeks from now, so four weekly shifts.
	var got []string
	for _, sh := range resp.GetShifts() {
		got = append(got, sh.GetPersonId())
	}
	if strings.Join(got, " ") != "alice bob carol eve" {
		t.Errorf("hero shifts from %s: %v", monday, got)
	}
}

func TestListPeopleAndTeams(t *testing.T) {
	s := New(newBackend(t), time.Now)
	ctx := context.Background()
	people, err := s.ListPeople(ctx, &rotationv1.ListPeopleRequest{Team: "platform"})
	if err != nil || len(people.GetPeople()) != 3 {
		t.Fatalf("platform people: %v %v", people, err)
	}
	// Every identity triage maps a staff author by is served.
	alice := people.GetPeople()[0]
	if alice.GetId() != "alice" || alice.GetSlackId() != "U0ALICE" || alice.GetGithub() != "alice-anders" ||
		alice.GetEmail() != "alice@example.com" || strings.Join(alice.GetEmails(), ",") != "alice@acme.example" {
		t.Errorf("alice's identities: %v", alice)
	}
	_, err = s.ListPeople(ctx, &rotationv1.ListPeopleRequest{Team: "nope"})
	wantCode(t, "people of an unknown team", err, codes.NotFound)
	teams, err := s.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
	if err != nil || len(teams.GetTeams()) != 3 || teams.GetTeams()[0].GetSecondaryRotation() != "platform-secondary" {
		t.Fatalf("teams: %v %v", teams, err)
	}
}

func override(kind rotationv1.OverrideKind, person, with string, start, end time.Time) *rotationv1.CreateOverrideRequest {
	return &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
		RotationId: "hero", Kind: kind, PersonId: person, WithPersonId: with, Start: ts(start), End: ts(end),
	}}
}

func TestCreateOverrideValidation(t *testing.T) {
	s := New(newBackend(t), func() time.Time { return monday })
	ctx := context.Background()
	replace, add, remove := rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, rotationv1.OverrideKind_OVERRIDE_KIND_ADD, rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE
	tue := monday.AddDate(0, 0, 1)
	with := func(req *rotationv1.CreateOverrideRequest, f func(o *rotationv1.Override)) *rotationv1.CreateOverrideRequest {
		f(req.GetOverride())
		return req
	}
	for _, tc := range []struct {
		name string
		req  *rotationv1.CreateOverrideRequest
		want codes.Code
	}{
		{"no override", &rotationv1.CreateOverrideRequest{}, codes.InvalidArgument},
		{"no kind", override(0, "alice", "bob", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"replace without with", override(replace, "alice", "", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"replace without person", override(replace, "", "bob", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"replace with themselves", override(replace, "alice", "alice", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"add with a person", override(add, "alice", "bob", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"remove with a with", override(remove, "alice", "bob", tue, tue.Add(time.Hour)), codes.InvalidArgument},
		{"no start", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.Start = nil }), codes.InvalidArgument},
		{"no end", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.End = nil }), codes.InvalidArgument},
		{"end before start", override(add, "", "bob", tue, tue.Add(-time.Hour)), codes.InvalidArgument},
		{"empty range", override(add, "", "bob", tue, tue), codes.InvalidArgument},
		{"no rotation", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.RotationId = "" }), codes.InvalidArgument},
		{"bad id", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.Id = "has space" }), codes.InvalidArgument},
		{"swap id", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.SwapId = "x" }), codes.InvalidArgument},
		{"long note", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.Note = strings.Repeat("x", MaxNote+1) }), codes.InvalidArgument},
		{"unknown rotation", with(override(add, "", "bob", tue, tue.Add(time.Hour)), func(o *rotationv1.Override) { o.RotationId = "nope" }), codes.NotFound},
		{"unknown person", override(replace, "alice", "zed", tue, tue.Add(time.Hour)), codes.NotFound},
		{"unknown person removed", override(remove, "zed", "", tue, tue.Add(time.Hour)), codes.NotFound},
		{"not on duty", override(replace, "bob", "carol", tue, tue.Add(time.Hour)), codes.FailedPrecondition},
		{"on duty for part of the range", override(replace, "alice", "bob", tue, tue.AddDate(0, 0, 7)), codes.FailedPrecondition},
	} {
		_, err := s.CreateOverride(ctx, tc.req)
		wantCode(t, tc.name, err, tc.want)
	}
	_, err := s.CreateOverride(ctx, override(replace, "bob", "carol", tue, tue.Add(time.Hour)))
	if want := "override new: bob is not on duty in hero at 2026-03-31T08:00:00Z (alice is)"; status.Convert(err).Message() != want {
		t.Errorf("message %q, want %q", status.Convert(err).Message(), want)
	}

	// Valid: alice hands Tuesday to bob; the id is generated.
	resp, err := s.CreateOverride(ctx, override(replace, "alice", "bob", tue, tue.AddDate(0, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.GetOverride().GetId(), "ovr-") {
		t.Errorf("generated id %q", resp.GetOverride().GetId())
	}
	who, err := s.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{At: ts(tue.Add(3 * time.Hour))})
	if err != nil || who.GetOnCall().GetPerson().GetId() != "bob" || who.GetOnCall().GetReason() != rotationv1.Reason_REASON_OVERRIDE {
		t.Fatalf("after the override: %v %v", who, err)
	}

	// A client-chosen id makes a retry idempotent; the same id for
	// something else is refused.
	thu := monday.AddDate(0, 0, 3)
	req := with(override(add, "", "gus", thu, thu.Add(2*time.Hour)), func(o *rotationv1.Override) { o.Id = "cover-thu"; o.Note = "training" })
	for range 2 {
		resp, err := s.CreateOverride(ctx, req)
		if err != nil || resp.GetOverride().GetId() != "cover-thu" {
			t.Fatalf("create cover-thu: %v %v", resp, err)
		}
	}
	other := with(override(add, "", "dmitri", thu, thu.Add(2*time.Hour)), func(o *rotationv1.Override) { o.Id = "cover-thu" })
	_, err = s.CreateOverride(ctx, other)
	wantCode(t, "same id, different override", err, codes.AlreadyExists)

	// A storage failure is Internal.
	b := newBackend(t)
	b.AddErr = errors.New("connection refused")
	_, err = New(b, time.Now).CreateOverride(ctx, override(add, "", "gus", thu, thu.Add(time.Hour)))
	wantCode(t, "storage failure", err, codes.Internal)
}

func TestSwapShiftsErrors(t *testing.T) {
	s := New(newBackend(t), func() time.Time { return monday })
	ctx := context.Background()
	wed, nextWed := monday.AddDate(0, 0, 2), monday.AddDate(0, 0, 9)
	swap := func(rot, a, b string, aStart, bStart time.Time) *rotationv1.SwapShiftsRequest {
		return &rotationv1.SwapShiftsRequest{Rotation: rot, PersonA: a, PersonB: b, ShiftAStart: ts(aStart), ShiftAEnd: ts(aStart.AddDate(0, 0, 1)), ShiftBStart: ts(bStart), ShiftBEnd: ts(bStart.AddDate(0, 0, 1))}
	}
	for _, tc := range []struct {
		name string
		req  *rotationv1.SwapShiftsRequest
		want codes.Code
	}{
		{"no rotation", swap("", "alice", "bob", wed, nextWed), codes.InvalidArgument},
		{"no person", swap("hero", "alice", "", wed, nextWed), codes.InvalidArgument},
		{"with themselves", swap("hero", "alice", "alice", wed, nextWed), codes.InvalidArgument},
		{"no start", &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "alice", PersonB: "bob", ShiftBStart: ts(nextWed)}, codes.InvalidArgument},
		{"overlapping sides", swap("hero", "alice", "bob", wed, wed.Add(time.Hour)), codes.InvalidArgument},
		{"unknown rotation", swap("nope", "alice", "bob", wed, nextWed), codes.NotFound},
		{"unknown person", swap("hero", "alice", "zed", wed, nextWed), codes.NotFound},
		{"wrong side", swap("hero", "bob", "alice", wed, nextWed), codes.FailedPrecondition},
		{"before the rotation starts", &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "alice", PersonB: "bob", ShiftAStart: ts(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)), ShiftBStart: ts(nextWed)}, codes.FailedPrecondition},
	} {
		_, err := s.SwapShifts(ctx, tc.req)
		wantCode(t, tc.name, err, tc.want)
	}
	// Without ends, each side gives up the rest of the base shift it starts in.
	resp, err := s.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "alice", PersonB: "bob", ShiftAStart: ts(wed), ShiftBStart: ts(nextWed)})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetOverrides()[0].GetEnd().AsTime(); !got.Equal(monday.AddDate(0, 0, 7)) {
		t.Errorf("alice's side ends %s, want the handoff %s", got, monday.AddDate(0, 0, 7))
	}
}

func TestApplyConfigErrors(t *testing.T) {
	b := newBackend(t)
	s := New(b, time.Now)
	ctx := context.Background()
	_, err := s.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte(" \n")})
	wantCode(t, "empty", err, codes.InvalidArgument)
	b.ApplyFn = func(context.Context, []byte, bool, string) ([]string, error) {
		return nil, errors.Join(ErrInvalidConfig, errors.New("line 3: person x: bad timezone"))
	}
	_, err = s.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte("people: []")})
	wantCode(t, "invalid", err, codes.InvalidArgument)
	b.ApplyFn = func(context.Context, []byte, bool, string) ([]string, error) {
		return nil, errors.New("save config: connection refused")
	}
	_, err = s.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte("people: []")})
	wantCode(t, "storage", err, codes.Internal)
	b.ApplyFn = func(_ context.Context, _ []byte, dryRun bool, _ string) ([]string, error) {
		return []string{"+ person x"}, nil
	}
	resp, err := s.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: []byte("people: []"), DryRun: true})
	if err != nil || resp.GetApplied() || len(resp.GetChanges()) != 1 {
		t.Fatalf("dry run: %v %v", resp, err)
	}
}

// TestListShiftsByTeam: a team's list is its secondary rotation's shifts
// plus the hero's DERIVED stretches, and agrees with WhoIsOnCall at every
// instant: the primary at t is the DERIVED shift covering t if any, else
// the rotation's own.
func TestListShiftsByTeam(t *testing.T) {
	b := newBackend(t)
	s := New(b, time.Now)
	ctx := context.Background()
	wed, nextWed := monday.AddDate(0, 0, 2), monday.AddDate(0, 0, 9)
	if _, err := s.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "alice", PersonB: "bob",
		ShiftAStart: ts(wed), ShiftAEnd: ts(wed.AddDate(0, 0, 1)), ShiftBStart: ts(nextWed), ShiftBEnd: ts(nextWed.AddDate(0, 0, 1))}); err != nil {
		t.Fatal(err)
	}
	resp, err := s.ListShifts(ctx, &rotationv1.ListShiftsRequest{Team: "platform", From: ts(monday), To: ts(monday.AddDate(0, 0, 14))})
	if err != nil {
		t.Fatal(err)
	}
	var derived []string
	for _, sh := range resp.GetShifts() {
		if sh.GetReason() == rotationv1.Reason_REASON_DERIVED {
			if sh.GetRotationId() != "hero" {
				t.Errorf("derived shift in %s", sh.GetRotationId())
			}
			derived = append(derived, sh.GetPersonId()+"@"+sh.GetStart().AsTime().In(london).Format("01-02T15")+".."+sh.GetEnd().AsTime().In(london).Format("01-02T15"))
		}
	}
	// Alice's hero week, less the Wednesday she swapped away, plus the
	// Wednesday she took from bob.
	want := "alice@03-30T09..04-01T09 alice@04-02T09..04-06T09 alice@04-08T09..04-09T09"
	if strings.Join(derived, " ") != want {
		t.Errorf("derived platform shifts:\n got %s\nwant %s", strings.Join(derived, " "), want)
	}

	// Over the whole first half of 2026 (alice's time off on 2-4 March
	// falls in her hero week, the hero handoff is in London and the
	// platform one in New York), the list agrees with WhoIsOnCall.
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	sc := b.Schedule()
	rng := rand.New(rand.NewSource(1))
	for _, team := range []string{"platform", "core-experience", "core-analytics"} {
		resp, err := s.ListShifts(ctx, &rotationv1.ListShiftsRequest{Team: team, From: ts(from), To: ts(to)})
		if err != nil {
			t.Fatal(err)
		}
		for range 2000 {
			at := from.Add(time.Duration(rng.Int63n(int64(to.Sub(from)))))
			ans, err := sc.WhoIsOnCall(schedule.Query{Role: schedule.RoleSecondary, Team: team, At: at})
			if err != nil {
				t.Fatal(err)
			}
			want := ""
			if !ans.Gap && ans.OnCall.Person != nil {
				want = ans.OnCall.Person.ID + "/" + ans.OnCall.Reason.String()
			}
			if got := primaryAt(resp.GetShifts(), at); got != want {
				t.Fatalf("%s at %s: list says %q, WhoIsOnCall %q (%s)", team, at, got, want, ans.GapReason)
			}
		}
	}
}

// primaryAt reads the list as a client would: a DERIVED shift covering at
// wins, then the first shift covering at of a person not on time off.
func primaryAt(shifts []*rotationv1.Shift, at time.Time) string {
	covers := func(sh *rotationv1.Shift) bool {
		return !sh.GetStart().AsTime().After(at) && sh.GetEnd().AsTime().After(at)
	}
	for _, sh := range shifts {
		if covers(sh) && sh.GetReason() == rotationv1.Reason_REASON_DERIVED {
			return sh.GetPersonId() + "/derived"
		}
	}
	for _, sh := range shifts {
		if covers(sh) && !onTimeOff(sh.GetPersonId(), at) {
			return sh.GetPersonId() + "/" + strings.ToLower(strings.TrimPrefix(sh.GetReason().String(), "REASON_"))
		}
	}
	return ""
}

// onTimeOff knows the test organisation's only time off: alice, 2-4 March
// 2026 in New York.
func onTimeOff(person string, at time.Time) bool {
	ny, _ := time.LoadLocation("America/New_York")
	return person == "alice" && !at.Before(time.Date(2026, 3, 2, 0, 0, 0, 0, ny)) && at.Before(time.Date(2026, 3, 5, 0, 0, 0, 0, ny))
}

func TestWhoIsOnCallSaysWhoReceivesAndWhy(t *testing.T) {
	s := New(newBackend(t), time.Now)
	ctx := context.Background()
	// Alice is hero the week of 2 March 2026 and at a conference until
	// the 4th: a gap, said as such, and the chain says who gets what.
	at := time.Date(2026, 3, 3, 12, 0, 0, 0, london)
	resp, err := s.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: ts(at)})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetGap() || resp.GetOnCall().GetPerson().GetId() != "alice" {
		t.Fatalf("gap with alice scheduled: %v", resp)
	}
	first := resp.GetChain()[0]
	if first.GetAvailability() != rotationv1.Availability_AVAILABILITY_TIME_OFF || first.GetAvailabilityDetail() != "on time off (2026-03-02..2026-03-04, conference)" ||
		!first.GetAwayUntil().AsTime().Equal(time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC).Add(5*time.Hour)) {
		t.Errorf("alice in the chain: %v", first)
	}
	high, low := resp.GetHigh(), resp.GetLow()
	if high.GetNobody() || high.GetReceiver().GetPerson().GetId() != "bob" || high.GetReceiver().GetReason() != rotationv1.Reason_REASON_CATCHER ||
		high.GetReceiverIndex() != 1 || !strings.Contains(high.GetExplanation(), "alice (rotation) is on time off") {
		t.Errorf("high: %v", high)
	}
	if low.GetReceiver().GetPerson().GetId() != "bob" || low.GetWaitUntil() != nil {
		t.Errorf("low: %v", low)
	}
	// At 03:00 the next night alice is still away; nobody in London works:
	// the page goes down the chain to someone who is not away, the ping to
	// whoever works (dmitri in Tokyo, a catcher).
	at = time.Date(2026, 3, 4, 3, 0, 0, 0, london)
	resp, err = s.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: ts(at)})
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetHigh().GetReceiver(); r == nil || r.GetPerson().GetId() == "alice" {
		t.Errorf("high at night: %v", resp.GetHigh())
	}
	if r := resp.GetLow().GetReceiver(); r.GetPerson().GetId() != "dmitri" || r.GetAvailability() != rotationv1.Availability_AVAILABILITY_AVAILABLE {
		t.Errorf("low at night: %v", resp.GetLow())
	}
}
