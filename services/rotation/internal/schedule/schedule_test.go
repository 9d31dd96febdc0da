package schedule

import (
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// utc parses an RFC 3339 instant or fails the test.
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// compileFile parses and compiles a testdata configuration.
func compileFile(t testing.TB, name string) *Schedule {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return compileYAML(t, string(data))
}

func compileYAML(t testing.TB, yaml string) *Schedule {
	t.Helper()
	c, err := ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	s, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

func who(t testing.TB, s *Schedule, q Query) Answer {
	t.Helper()
	a, err := s.WhoIsOnCall(q)
	if err != nil {
		t.Fatalf("WhoIsOnCall(%+v): %v", q, err)
	}
	return a
}

func personID(o OnCall) string {
	if o.Person == nil {
		return ""
	}
	return o.Person.ID
}

func TestWhoIsOnCallHeroAndSecondary(t *testing.T) {
	s := compileFile(t, "org.yaml")
	tests := []struct {
		at     string
		role   Role
		team   string
		want   string
		reason Reason
		also   []string
		gap    bool
	}{
		// Week 1: alice is hero (London Monday 09:00 handoff).
		{"2026-01-05T09:00:00Z", RoleHero, "", "alice", ReasonRotation, []string{"bob", "carol", "gus"}, false},
		{"2026-01-05T15:00:00Z", RoleHero, "", "alice", ReasonRotation, nil, false},
		{"2026-01-12T08:59:59Z", RoleHero, "", "alice", ReasonRotation, nil, false},
		// alice is platform's secondary through the derived rule.
		{"2026-01-05T15:00:00Z", RoleSecondary, "platform", "alice", ReasonDerived, []string{"gus"}, false},
		{"2026-01-05T15:00:00Z", RoleSecondary, "core-experience", "eve", ReasonRotation, nil, false},
		// Week 2: bob.
		{"2026-01-12T09:00:00Z", RoleHero, "", "bob", ReasonRotation, nil, false},
		{"2026-01-12T15:00:00Z", RoleSecondary, "core-experience", "bob", ReasonDerived, nil, false},
		{"2026-01-12T15:00:00Z", RoleSecondary, "platform", "dmitri", ReasonRotation, nil, false},
		// The override in the file: bob replaces alice for a day.
		{"2026-02-03T12:00:00Z", RoleHero, "", "bob", ReasonOverride, nil, false},
		{"2026-02-03T12:00:00Z", RoleSecondary, "core-experience", "bob", ReasonDerived, []string{"eve"}, false},
		// alice's time off during her hero week is a gap, not filled silently.
		{"2026-03-03T15:00:00Z", RoleHero, "", "alice", ReasonRotation, []string{"bob", "carol", "gus"}, true},
	}
	for _, tc := range tests {
		a := who(t, s, Query{Role: tc.role, Team: tc.team, At: utc(t, tc.at)})
		if personID(a.OnCall) != tc.want || a.OnCall.Reason != tc.reason || a.Gap != tc.gap {
			t.Errorf("%s %v %s: got %s (%v) gap=%v %q, want %s (%v) gap=%v", tc.at, tc.role, tc.team,
				personID(a.OnCall), a.OnCall.Reason, a.Gap, a.GapReason, tc.want, tc.reason, tc.gap)
		}
		if tc.also != nil {
			var got []string
			for _, o := range a.Also {
				got = append(got, personID(o))
			}
			if len(got) != len(tc.also) {
				t.Errorf("%s %v %s: also %v, want %v", tc.at, tc.role, tc.team, got, tc.also)
				continue
			}
			for i := range got {
				if got[i] != tc.also[i] {
					t.Errorf("%s %v %s: also %v, want %v", tc.at, tc.role, tc.team, got, tc.also)
					break
				}
			}
		}
	}
}

func TestEnumsRoundTrip(t *testing.T) {
	for _, k := range []OverrideKind{Replace, Add, Remove} {
		got, err := ParseOverrideKind(k.String())
		if err != nil || got != k {
			t.Errorf("%v: %v %v", k, got, err)
		}
	}
	if _, err := ParseOverrideKind("swap"); err == nil {
		t.Error("ParseOverrideKind(swap) accepted")
	}
	for _, k := range []Kind{Hourly, Daily, Weekly, Monthly} {
		got, err := ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("%v: %v %v", k, got, err)
		}
	}
	want := "rotation override swap derived catcher"
	var got []string
	for _, r := range []Reason{ReasonRotation, ReasonOverride, ReasonSwap, ReasonDerived, ReasonCatcher} {
		got = append(got, r.String())
	}
	if strings.Join(got, " ") != want {
		t.Errorf("reasons %v", got)
	}
	if RoleHero.String() != "hero" || RoleSecondary.String() != "secondary" || RoleRotation.String() != "rotation" {
		t.Error("role names")
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	s := compileFile(t, "org.yaml")
	people, teams, rots := s.People(), s.Teams(), s.Rotations()
	if len(people) != 6 || len(teams) != 3 || len(rots) != 4 || teams[0].Secondary != "platform-secondary" || rots[0].ID != "hero" {
		t.Fatalf("accessors: %d %d %d", len(people), len(teams), len(rots))
	}
	people[0].ID, people[0].TimeOff[0].Start, teams[0].ID, rots[0].Participants[0] = "x", "x", "x", "x"
	if s.People()[0].ID != "alice" || s.People()[0].TimeOff[0].Start != "2026-03-02" || s.Teams()[0].ID != "platform" || s.Rotations()[0].Participants[0] != "alice" {
		t.Error("accessors leak the schedule's state")
	}
	if a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-01-05T12:00:00Z")}); personID(a.OnCall) != "alice" {
		t.Error("mutating a copy changed the schedule")
	}
}

// The schedule is shared by every gRPC handler: run it from many
// goroutines (meaningful under -race).
func TestConcurrentUse(t *testing.T) {
	s := compileFile(t, "org.yaml")
	from := utc(t, "2026-01-05T09:00:00Z")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				at := from.Add(time.Duration(g*200+i) * 37 * time.Minute)
				if _, err := s.WhoIsOnCall(Query{Role: RoleSecondary, Team: "platform", At: at}); err != nil {
					t.Error(err)
					return
				}
				s.WorkingWindows(at, at.Add(6*time.Hour))
			}
		}()
	}
	wg.Wait()
}
