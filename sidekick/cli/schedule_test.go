package cli

import (
	"strings"
	"testing"
	_ "time/tzdata" // TZ=Asia/Tokyo below, on machines without zoneinfo too

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

func sampleShifts() *rotationv1.ListShiftsResponse {
	return &rotationv1.ListShiftsResponse{Shifts: []*rotationv1.Shift{
		{RotationId: "platform-secondary", PersonId: "carol", Start: ts("2026-03-02T08:00:00Z"), End: ts("2026-03-09T08:00:00Z"), Reason: rotationv1.Reason_REASON_ROTATION},
		{RotationId: "platform-secondary", PersonId: "dave", Start: ts("2026-03-09T08:00:00Z"), End: ts("2026-03-10T08:00:00Z"),
			Reason: rotationv1.Reason_REASON_SWAP, ScheduledPersonId: "erin"},
	}}
}

func TestShifts(t *testing.T) {
	h := newHarness(t)
	h.respond("ListShifts", sampleShifts())
	out, err := h.run(t, "shifts", "--team", "platform", "--from", "2026-03-01", "--to", "2026-03-15 12:00")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListShifts", &rotationv1.ListShiftsRequest{Team: "platform", From: ts("2026-03-01T00:00:00Z"), To: ts("2026-03-15T12:00:00Z")})
	want := `ROTATION            START                 END                   PERSON  WHY
platform-secondary  2026-03-02 08:00 UTC  2026-03-09 08:00 UTC  carol   rotation
platform-secondary  2026-03-09 08:00 UTC  2026-03-10 08:00 UTC  dave    swap (instead of erin)
`
	if out != want {
		t.Fatalf("shifts:\n%s\nwant:\n%s", out, want)
	}

	// The display zone follows TZ.
	env := append(without(h.env, "TZ"), "TZ=Asia/Tokyo")
	if out, err = runEnv(t, env, "", "shifts", "--rotation", "platform-secondary"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "2026-03-02 17:00 JST") {
		t.Fatalf("TZ=Asia/Tokyo:\n%s", out)
	}
	h.want(t, "ListShifts", &rotationv1.ListShiftsRequest{Rotation: "platform-secondary"})

	out, err = h.run(t, "shifts", "--rotation", "platform-secondary", "--json")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("--json: want one line per shift:\n%s", out)
	}
	for i, l := range lines {
		var s rotationv1.Shift
		if err := protojson.Unmarshal([]byte(l), &s); err != nil || !proto.Equal(&s, sampleShifts().GetShifts()[i]) {
			t.Fatalf("line %d: %v %s", i, err, l)
		}
	}

	if _, err := h.run(t, "shifts", "--team", "a", "--rotation", "b"); err == nil {
		t.Fatal("--team with --rotation accepted")
	}
}

// Without --rotation or --team, shifts lists the Support Hero rotation,
// whose id it learns from whoever holds it now.
func TestShiftsDefaultsToTheHeroRotation(t *testing.T) {
	h := newHarness(t)
	h.respond("WhoIsOnCall", &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{
		Person: &rotationv1.Person{Id: "alice"}, Shift: &rotationv1.Shift{RotationId: "support-hero", PersonId: "alice"},
	}})
	h.respond("ListShifts", &rotationv1.ListShiftsResponse{})
	out, err := h.run(t, "shifts")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "WhoIsOnCall", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	h.want(t, "ListShifts", &rotationv1.ListShiftsRequest{Rotation: "support-hero"})
	if out != "no shifts in that range\n" {
		t.Fatalf("printed %q", out)
	}

	h.respond("WhoIsOnCall", &rotationv1.WhoIsOnCallResponse{Gap: true, GapReason: "nobody in working hours"})
	if _, err := h.run(t, "shifts"); err == nil || !strings.Contains(err.Error(), "--rotation") {
		t.Fatalf("during a gap: %v", err)
	}
}

func TestOverride(t *testing.T) {
	base := []string{"override", "--rotation", "hero", "--start", "2026-03-04 08:00", "--end", "2026-03-05T08:00:00Z"}
	tests := []struct {
		name string
		args []string
		want *rotationv1.Override
		out  string
	}{
		{
			name: "replace", args: []string{"--replace", "alice", "--with", "bob", "--note", "dentist"},
			want: &rotationv1.Override{Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "alice", WithPersonId: "bob", Note: "dentist"},
			out:  "override ovr-1 on hero: bob replaces alice from 2026-03-04 08:00 UTC to 2026-03-05 08:00 UTC (dentist)\n",
		},
		{
			name: "add", args: []string{"--add", "carol"},
			want: &rotationv1.Override{Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "carol"},
			out:  "override ovr-1 on hero: carol is added to whoever is on duty from 2026-03-04 08:00 UTC to 2026-03-05 08:00 UTC\n",
		},
		{
			name: "remove", args: []string{"--remove", "alice"},
			want: &rotationv1.Override{Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE, PersonId: "alice"},
			out:  "override ovr-1 on hero: alice is off duty from 2026-03-04 08:00 UTC to 2026-03-05 08:00 UTC\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.respond("ListRotations", &rotationv1.ListRotationsResponse{Rotations: []*rotationv1.Rotation{{Id: "hero", Timezone: "UTC"}}})
			tc.want.RotationId, tc.want.Start, tc.want.End = "hero", ts("2026-03-04T08:00:00Z"), ts("2026-03-05T08:00:00Z")
			created := proto.Clone(tc.want).(*rotationv1.Override)
			created.Id = "ovr-1"
			h.respond("CreateOverride", &rotationv1.CreateOverrideResponse{Override: created})
			out, err := h.run(t, append(base, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			h.want(t, "CreateOverride", &rotationv1.CreateOverrideRequest{Override: tc.want})
			if out != tc.out {
				t.Fatalf("printed %q\nwant    %q", out, tc.out)
			}
			out, err = h.run(t, append(append(base, tc.args...), "--json")...)
			if err != nil {
				t.Fatal(err)
			}
			var got rotationv1.Override
			if err := protojson.Unmarshal([]byte(out), &got); err != nil || !proto.Equal(&got, created) {
				t.Fatalf("--json: %v\n%s", err, out)
			}
		})
	}
}

func TestOverrideArgumentErrors(t *testing.T) {
	base := []string{"override", "--rotation", "hero", "--start", "2026-03-04", "--end", "2026-03-05"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no kind", base, "at least one of the flags in the group [replace add remove] is required"},
		{"two kinds", append(base[:len(base):len(base)], "--add", "a", "--remove", "b"), "none of the others can be"},
		{"replace without with", append(base[:len(base):len(base)], "--replace", "a"), "--replace needs --with"},
		{"with without replace", append(base[:len(base):len(base)], "--add", "a", "--with", "b"), "--with goes with --replace"},
		{"end before start", []string{"override", "--rotation", "hero", "--start", "2026-03-05T00:00:00Z", "--end", "2026-03-04T00:00:00Z", "--add", "a"}, "--end must be after --start"},
		{"bad time", []string{"override", "--rotation", "hero", "--start", "tomorrow", "--end", "2026-03-04", "--add", "a"}, "--start: cannot read time"},
		{"no rotation", []string{"override", "--start", "2026-03-04", "--end", "2026-03-05", "--add", "a"}, `required flag(s) "rotation" not set`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			_, err := h.run(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if h.total() != 0 {
				t.Fatal("a bad command line was sent")
			}
		})
	}
}

func TestSwap(t *testing.T) {
	h := newHarness(t)
	h.respond("ListRotations", &rotationv1.ListRotationsResponse{Rotations: []*rotationv1.Rotation{{Id: "hero", Timezone: "UTC"}}})
	h.respond("SwapShifts", &rotationv1.SwapShiftsResponse{SwapId: "swap-9", Overrides: []*rotationv1.Override{
		{Id: "swap-9-a", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "bob", WithPersonId: "alice",
			Start: ts("2026-03-11T00:00:00Z"), End: ts("2026-03-12T00:00:00Z"), SwapId: "swap-9"},
		{Id: "swap-9-b", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "alice", WithPersonId: "bob",
			Start: ts("2026-03-16T09:00:00Z"), End: ts("2026-03-23T09:00:00Z"), SwapId: "swap-9"},
	}})
	out, err := h.run(t, "swap", "--rotation", "hero", "--a", "bob", "--a-start", "2026-03-11", "--a-end", "2026-03-12",
		"--b", "alice", "--b-start", "2026-03-16 09:00", "--note", "school play")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "SwapShifts", &rotationv1.SwapShiftsRequest{
		Rotation: "hero", PersonA: "bob", ShiftAStart: ts("2026-03-11T00:00:00Z"), ShiftAEnd: ts("2026-03-12T00:00:00Z"),
		PersonB: "alice", ShiftBStart: ts("2026-03-16T09:00:00Z"), Note: "school play",
	})
	want := `swap swap-9 on hero:
  override swap-9-a on hero: alice replaces bob from 2026-03-11 00:00 UTC to 2026-03-12 00:00 UTC
  override swap-9-b on hero: bob replaces alice from 2026-03-16 09:00 UTC to 2026-03-23 09:00 UTC
`
	if out != want {
		t.Fatalf("swap:\n%s\nwant:\n%s", out, want)
	}

	if _, err := h.run(t, "swap", "--rotation", "hero", "--a", "bob", "--a-start", "2026-03-11", "--b", "bob", "--b-start", "2026-03-16"); err == nil {
		t.Fatal("a swap with oneself was accepted")
	}
	if _, err := h.run(t, "swap", "--rotation", "hero", "--a", "bob", "--b", "alice", "--b-start", "2026-03-16"); err == nil ||
		!strings.Contains(err.Error(), "a-start") {
		t.Fatalf("missing --a-start: %v", err)
	}
	if n := h.calls("SwapShifts"); n != 1 {
		t.Fatalf("SwapShifts called %d times", n)
	}
}

func TestPeopleAndTeams(t *testing.T) {
	h := newHarness(t)
	h.respond("ListPeople", &rotationv1.ListPeopleResponse{People: []*rotationv1.Person{
		{Id: "alice", Name: "Alice Liddell", Email: "alice@sidekick.dev", SlackId: "U01", Team: "platform", Timezone: "Europe/London", WorkingHours: "Mon-Fri 09:00-17:30"},
		{Id: "kenji", Name: "Kenji Sato", Team: "platform", Timezone: "Asia/Tokyo"},
	}})
	out, err := h.run(t, "people", "--team", "platform")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListPeople", &rotationv1.ListPeopleRequest{Team: "platform"})
	want := `ID     NAME           TEAM      TIMEZONE       WORKING HOURS        EMAIL               SLACK
alice  Alice Liddell  platform  Europe/London  Mon-Fri 09:00-17:30  alice@sidekick.dev  U01
kenji  Kenji Sato     platform  Asia/Tokyo     -                    -                   -
`
	if out != want {
		t.Fatalf("people:\n%s\nwant:\n%s", out, want)
	}
	out, err = h.run(t, "people", "--json")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListPeople", &rotationv1.ListPeopleRequest{})
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], `{"id":"alice","name":"Alice Liddell"`) {
		t.Fatalf("people --json:\n%s", out)
	}

	h.respond("ListTeams", &rotationv1.ListTeamsResponse{Teams: []*rotationv1.Team{
		{Id: "platform", Name: "Platform", SecondaryRotation: "platform-secondary"},
		{Id: "core-analytics", Name: "Core Analytics", SecondaryRotation: "analytics-secondary"},
	}})
	out, err = h.run(t, "teams")
	if err != nil {
		t.Fatal(err)
	}
	want = `ID              NAME            SECONDARY ROTATION
platform        Platform        platform-secondary
core-analytics  Core Analytics  analytics-secondary
`
	if out != want {
		t.Fatalf("teams:\n%s\nwant:\n%s", out, want)
	}
	out, err = h.run(t, "teams", "--json")
	if err != nil || out != `{"id":"platform","name":"Platform","secondary_rotation":"platform-secondary"}`+"\n"+
		`{"id":"core-analytics","name":"Core Analytics","secondary_rotation":"analytics-secondary"}`+"\n" {
		t.Fatalf("teams --json: %v\n%s", err, out)
	}
}
