package schedule

import (
	"strings"
	"testing"
	"time"
)

// A hero in New York, catchers in Tokyo and Berlin, and olga, who is on a
// team rotation but not in the catcher pool. June 2026: New York is UTC-4,
// Berlin UTC+2, Tokyo UTC+9; Monday is 1 June.
const catchersYAML = `
people:
  - {id: ana, team: t1, timezone: America/New_York, working_hours: "Mon-Fri 09:00-17:00",
     time_off: [{start: "2026-06-10", end: "2026-06-10"}]}
  - {id: kenji, team: t1, timezone: Asia/Tokyo, working_hours: "Mon-Fri 09:00-18:00"}
  - {id: lars, team: t2, timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00"}
  - {id: olga, team: t2, timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00",
     time_off: [{start: "2026-06-01", end: "2026-06-30", note: sabbatical}]}
rotations:
  - {id: hero, type: weekly, start: "2026-06-01 09:00", timezone: America/New_York, participants: [ana]}
  - {id: t1-sec, type: weekly, start: "2026-06-01 09:00", timezone: America/New_York, participants: [kenji]}
  - {id: t2-sec, type: weekly, start: "2026-06-01 09:00", timezone: America/New_York, participants: [olga]}
teams:
  - {id: t1, secondary: t1-sec}
  - {id: t2, secondary: t2-sec}
support:
  hero: hero
  catcher_pool: [kenji, lars]
`

func alsoIDs(a Answer) string {
	var ids []string
	for _, o := range a.Also {
		ids = append(ids, personID(o)+":"+o.Reason.String())
	}
	return strings.Join(ids, " ")
}

func TestCatchers(t *testing.T) {
	s := compileYAML(t, catchersYAML)
	tests := []struct {
		at, also string
		gap      bool
	}{
		{"2026-06-02T14:00:00Z", "", false},                           // 10:00 in New York: the hero is working
		{"2026-06-02T07:30:00Z", "kenji:catcher lars:catcher", false}, // 03:30 NY, 16:30 Tokyo, 09:30 Berlin
		{"2026-06-02T22:30:00Z", "", false},                           // nobody works: not a gap, ana is on call
		{"2026-06-06T12:00:00Z", "", false},                           // Saturday
		{"2026-06-10T14:00:00Z", "lars:catcher", true},                // ana on time off: a gap, catchers listed
		{"2026-06-10T08:00:00Z", "kenji:catcher lars:catcher", true},  // still her day off in New York
		{"2026-06-11T04:00:00Z", "kenji:catcher", false},              // back: 00:00 in New York, 13:00 in Tokyo
		{"2026-06-01T12:00:00Z", "lars:catcher", true},                // before the rotation starts
		{"2026-06-05T20:59:59Z", "", false},                           // Friday 16:59 in New York
		{"2026-06-08T00:30:00Z", "kenji:catcher", false},              // Monday 09:30 in Tokyo, Sunday evening in New York
	}
	for _, tc := range tests {
		a := who(t, s, Query{Role: RoleHero, At: utc(t, tc.at)})
		if alsoIDs(a) != tc.also || a.Gap != tc.gap {
			t.Errorf("%s: also %q gap %v (%s), want %q gap %v", tc.at, alsoIDs(a), a.Gap, a.GapReason, tc.also, tc.gap)
		}
	}
	a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-02T07:30:00Z")})
	if k := a.Also[0]; !k.Shift.Start.Equal(utc(t, "2026-06-02T00:00:00Z")) || !k.Shift.End.Equal(utc(t, "2026-06-02T09:00:00Z")) || k.Explanation == "" {
		t.Errorf("kenji's catcher shift: %+v", k)
	}
	a = who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-10T14:00:00Z")})
	if personID(a.OnCall) != "ana" || !strings.Contains(a.GapReason, "time off") || !strings.Contains(a.GapReason, "2026-06-10") {
		t.Errorf("time-off gap: %+v", a)
	}

	// Catchers off: nobody else is offered.
	c, err := ParseConfig([]byte(catchersYAML + "  catchers: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	off := mustCompile(t, c)
	if a := who(t, off, Query{Role: RoleHero, At: utc(t, "2026-06-02T07:30:00Z")}); len(a.Also) != 0 {
		t.Errorf("catchers off: %+v", a.Also)
	}
}

func TestGaps(t *testing.T) {
	s := compileYAML(t, catchersYAML)
	got := s.Gaps(utc(t, "2026-06-01T00:00:00Z"), utc(t, "2026-06-15T00:00:00Z"))
	type g struct {
		role             Role
		team, start, end string
		reason           string
	}
	want := []g{
		{RoleHero, "", "2026-06-01T00:00:00Z", "2026-06-01T13:00:00Z", "starts at 2026-06-01 09:00 EDT"},
		{RoleHero, "", "2026-06-10T04:00:00Z", "2026-06-11T04:00:00Z", "ana is on duty in hero but on time off (2026-06-10..2026-06-10)"},
		{RoleSecondary, "t1", "2026-06-01T00:00:00Z", "2026-06-01T13:00:00Z", "starts at"},
		// t1 has no gap on ana's day off: the derived rule lapses and kenji,
		// t1-sec's own, covers.
		{RoleSecondary, "t2", "2026-06-01T00:00:00Z", "2026-06-01T13:00:00Z", "starts at"},
		{RoleSecondary, "t2", "2026-06-01T13:00:00Z", "2026-06-15T00:00:00Z", "olga is on duty in t2-sec but on time off (2026-06-01..2026-06-30, sabbatical)"},
	}
	if len(got) != len(want) {
		t.Fatalf("gaps: %+v", got)
	}
	for i, w := range want {
		x := got[i]
		if x.Role != w.role || x.Team != w.team || !x.Start.Equal(utc(t, w.start)) || !x.End.Equal(utc(t, w.end)) || !strings.Contains(x.Reason, w.reason) {
			t.Errorf("gap %d: %+v, want %+v", i, x, w)
		}
	}
	a := who(t, s, Query{Role: RoleSecondary, Team: "t1", At: utc(t, "2026-06-10T14:00:00Z")})
	if personID(a.OnCall) != "kenji" || a.OnCall.Reason != ReasonRotation || a.Gap {
		t.Errorf("t1 secondary on ana's day off: %+v", a)
	}
	a = who(t, s, Query{Role: RoleSecondary, Team: "t1", At: utc(t, "2026-06-09T14:00:00Z")})
	if personID(a.OnCall) != "ana" || a.OnCall.Reason != ReasonDerived || alsoIDs(a) != "kenji:rotation" {
		t.Errorf("t1 secondary: %+v", a)
	}

	// A swap covering the day off closes the hero gap; removing the hero
	// opens one that says so.
	c, _ := ParseConfig([]byte(catchersYAML))
	c.Overrides = append(c.Overrides,
		Override{ID: "cover", Rotation: "hero", Kind: Replace, Person: "ana", With: "kenji", Start: utc(t, "2026-06-10T04:00:00Z"), End: utc(t, "2026-06-11T04:00:00Z")},
		Override{ID: "off", Rotation: "hero", Kind: Remove, Person: "ana", Start: utc(t, "2026-06-12T12:00:00Z"), End: utc(t, "2026-06-12T13:00:00Z")},
	)
	s = mustCompile(t, c)
	var heroGaps []Gap
	for _, x := range s.Gaps(utc(t, "2026-06-02T00:00:00Z"), utc(t, "2026-06-15T00:00:00Z")) {
		if x.Role == RoleHero {
			heroGaps = append(heroGaps, x)
		}
	}
	if len(heroGaps) != 1 || !heroGaps[0].Start.Equal(utc(t, "2026-06-12T12:00:00Z")) || !heroGaps[0].End.Equal(utc(t, "2026-06-12T13:00:00Z")) ||
		heroGaps[0].Reason != "nobody is on duty in hero" {
		t.Errorf("hero gaps with the cover: %+v", heroGaps)
	}
	a = who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-10T14:00:00Z")})
	if personID(a.OnCall) != "kenji" || a.OnCall.Reason != ReasonOverride || a.Gap {
		t.Errorf("covered day off: %+v", a)
	}
	// kenji, of t1, is hero that day: he is t1's secondary by derivation.
	a = who(t, s, Query{Role: RoleSecondary, Team: "t1", At: utc(t, "2026-06-10T14:00:00Z")})
	if personID(a.OnCall) != "kenji" || a.OnCall.Reason != ReasonDerived || len(a.Also) != 0 {
		t.Errorf("t1 secondary while kenji covers: %+v", a)
	}
}

func TestWorkingWindows(t *testing.T) {
	s := compileYAML(t, catchersYAML)
	tests := []struct {
		from, to string
		want     []string // start/end pairs
	}{
		// kenji 00:00-09:00, lars 07:00-15:00, ana 13:00-21:00 (olga is not on the roster).
		{"2026-06-02T00:00:00Z", "2026-06-03T00:00:00Z", []string{"2026-06-02T00:00:00Z", "2026-06-02T21:00:00Z"}},
		// ana's day off.
		{"2026-06-10T00:00:00Z", "2026-06-11T00:00:00Z", []string{"2026-06-10T00:00:00Z", "2026-06-10T15:00:00Z"}},
		// A weekend, clipped to the range.
		{"2026-06-05T12:00:00Z", "2026-06-08T03:00:00Z", []string{"2026-06-05T12:00:00Z", "2026-06-05T21:00:00Z", "2026-06-08T00:00:00Z", "2026-06-08T03:00:00Z"}},
	}
	for _, tc := range tests {
		var got []string
		for _, iv := range s.WorkingWindows(utc(t, tc.from), utc(t, tc.to)) {
			got = append(got, iv.Start.Format(time.RFC3339), iv.End.Format(time.RFC3339))
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s..%s: %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}

	// Across the US spring change: 09:00-17:00 New York is 14:00-22:00 UTC
	// on Friday and 13:00-21:00 on Monday; several ranges a day, and an
	// overnight range, each read on the local clock.
	s = compileYAML(t, `
people:
  - {id: ana, timezone: America/New_York, working_hours: "Mon-Thu 09:00-17:00, Fri 09:00-13:00"}
  - {id: nils, timezone: Europe/London, working_hours: "Sun 22:00-02:00"}
rotations:
  - {id: hero, type: weekly, start: "2026-01-05 09:00", timezone: America/New_York, participants: [ana, nils]}
support: {hero: hero, catchers: false}
`)
	var got []string
	for _, iv := range s.WorkingWindows(utc(t, "2026-03-05T00:00:00Z"), utc(t, "2026-03-10T00:00:00Z")) {
		got = append(got, iv.Start.Format(time.RFC3339)+"/"+iv.End.Format(time.RFC3339))
	}
	want := "2026-03-05T14:00:00Z/2026-03-05T22:00:00Z 2026-03-06T14:00:00Z/2026-03-06T18:00:00Z " +
		"2026-03-08T22:00:00Z/2026-03-09T02:00:00Z 2026-03-09T13:00:00Z/2026-03-09T21:00:00Z"
	if strings.Join(got, " ") != want {
		t.Errorf("windows:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}
