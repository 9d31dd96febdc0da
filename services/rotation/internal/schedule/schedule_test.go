package schedule

import (
	"os"
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
