package schedule

import (
	"strings"
	"testing"
)

// dutyYAML: bob in London and dmitri in Tokyo take turns as hero, a week
// each from Monday 2 March 2026 09:00 London (UTC in March until the 29th;
// Tokyo is UTC+9, so dmitri works 01:00-09:00 UTC). alice in New York
// (UTC-5 until 8 March, UTC-4 after) is on no hero rotation.
const dutyYAML = `
people:
  - {id: bob, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30",
     time_off: [{start: "2026-03-05", end: "2026-03-05"}]}
  - {id: dmitri, timezone: Asia/Tokyo, working_hours: "Mon-Fri 10:00-18:00"}
  - {id: alice, timezone: America/New_York, working_hours: "Mon-Fri 09:00-17:30"}
rotations:
  - {id: hero, type: weekly, start: "2026-03-02 09:00", timezone: Europe/London, participants: [bob, dmitri]}
overrides:
  - {rotation: hero, start: "2026-03-04 00:00", end: "2026-03-05 00:00", replace: bob, with: dmitri}
support: {hero: hero, catchers: false}
`

func windowsText(ivs []Interval) string {
	var got []string
	for _, iv := range ivs {
		got = append(got, iv.Start.Format("01-02T15:04")+"/"+iv.End.Format("01-02T15:04"))
	}
	return strings.Join(got, " ")
}

// TestDutyWindowsFollowThePersonOnDuty: the on-duty hero's working hours
// only, not the roster's: dmitri's Tokyo day does not count in bob's
// week, a swap day counts the replacement's hours, time off counts
// nothing, and the handoff Monday has nobody on duty within their hours.
func TestDutyWindowsFollowThePersonOnDuty(t *testing.T) {
	s := compileYAML(t, dutyYAML)
	tests := []struct {
		name, from, to, duty, roster string
	}{
		{"bob's Tuesday", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z",
			"03-03T09:00/03-03T17:30", "03-03T01:00/03-03T17:30"},
		{"dmitri replaces bob on Wednesday", "2026-03-04T00:00:00Z", "2026-03-05T00:00:00Z",
			"03-04T01:00/03-04T09:00", "03-04T01:00/03-04T17:30"},
		{"bob's day off", "2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z",
			"", "03-05T01:00/03-05T09:00"},
		{"the handoff Monday: bob off duty at 09:00, dmitri's day over", "2026-03-09T00:00:00Z", "2026-03-10T00:00:00Z",
			"", "03-09T01:00/03-09T17:30"},
		{"dmitri's Tuesday", "2026-03-10T00:00:00Z", "2026-03-11T00:00:00Z",
			"03-10T01:00/03-10T09:00", "03-10T01:00/03-10T17:30"},
		{"a weekend and clipping", "2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z",
			"03-06T12:00/03-06T17:30", "03-06T12:00/03-06T17:30 03-09T01:00/03-09T12:00"},
	}
	for _, tc := range tests {
		from, to := utc(t, tc.from), utc(t, tc.to)
		if got := windowsText(s.DutyWindows(from, to)); got != tc.duty {
			t.Errorf("%s: duty windows %q, want %q", tc.name, got, tc.duty)
		}
		if got := windowsText(s.WorkingWindows(from, to)); got != tc.roster {
			t.Errorf("%s: roster windows %q, want %q", tc.name, got, tc.roster)
		}
	}

	// With catchers, a catcher's hours count too: alice (14:00-22:30 UTC)
	// catches after bob's day.
	s = compileYAML(t, strings.Replace(dutyYAML, "support: {hero: hero, catchers: false}", "support: {hero: hero, catchers: true, catcher_pool: [alice]}", 1))
	if got, want := windowsText(s.DutyWindows(utc(t, "2026-03-03T00:00:00Z"), utc(t, "2026-03-04T00:00:00Z"))), "03-03T09:00/03-03T22:30"; got != want {
		t.Errorf("with a catcher: %q, want %q", got, want)
	}
	if got, want := windowsText(s.DutyWindows(utc(t, "2026-03-05T00:00:00Z"), utc(t, "2026-03-06T00:00:00Z"))), "03-05T14:00/03-05T22:30"; got != want {
		t.Errorf("bob's day off with a catcher: %q, want %q", got, want)
	}
}
