package schedule

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	old := compileFile(t, "org.yaml").Config()
	if d := Diff(old, old); len(d) != 0 {
		t.Fatalf("equal configs: %v", d)
	}
	next := clone(old)
	next.People = append(next.People[:2], next.People[3:]...) // carol leaves
	next.People = append(next.People, Person{ID: "zoe", Timezone: "UTC", Team: "core-analytics"})
	next.People[0].Timezone = "Europe/Lisbon"
	next.People[0].TimeOff = nil
	next.People[1].Holidays = Names{"GB"}
	next.Calendars = []Calendar{{ID: "office", ICal: "BEGIN:VCALENDAR\nEND:VCALENDAR\n"}}
	next.Rotations[0].Participants = []string{"bob", "alice", "eve"}
	next.Rotations[3].Participants = []string{"zoe"}
	next.Rotations[1].Kind = Daily
	next.Rotations[1].Length = 2
	next.Teams[2].Name = "Analytics"
	next.Support.Catchers = false
	next.Overrides = nil
	next.Overrides = append(next.Overrides, Override{ID: "o2", Rotation: "hero", Kind: Add, With: "zoe",
		Start: utc(t, "2026-05-01T00:00:00Z"), End: utc(t, "2026-05-02T00:00:00Z")})
	want := []string{
		"+ holidays office",
		"+ override o2 (hero add zoe 2026-05-01T00:00:00Z..2026-05-02T00:00:00Z)",
		"+ person zoe",
		"- override " + old.Overrides[0].ID + " (hero replace alice with bob 2026-02-03T09:00:00Z..2026-02-04T09:00:00Z)",
		"- person carol",
		"~ person alice: time_off [2026-03-02..2026-03-06] -> \"\"",
		"~ person alice: timezone America/New_York -> Europe/Lisbon",
		"~ person bob: holidays \"\" -> [GB]",
		"~ rotation core-analytics-secondary: participants [carol] -> [zoe]",
		"~ rotation hero: participants [alice bob carol eve] -> [bob alice eve]",
		"~ rotation platform-secondary: length 1 -> 2",
		"~ rotation platform-secondary: type weekly -> daily",
		"~ support: catchers true -> false",
		"~ team core-analytics: name Core Analytics -> Analytics",
	}
	got := Diff(old, next)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// From nothing, everything is an addition.
	for _, line := range Diff(nil, old) {
		if !strings.HasPrefix(line, "+ ") && !strings.HasPrefix(line, "~ support: ") {
			t.Errorf("from nothing: %q", line)
		}
	}
	if n := len(Diff(nil, old)); n != 6+4+3+1+4 { // people, rotations, teams, override, support hero and its three flags
		t.Errorf("from nothing: %d lines: %v", n, Diff(nil, old))
	}
}
