package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseConfigFile(t *testing.T) {
	s := compileFile(t, "org.yaml")
	c := s.Config()
	if len(c.People) != 6 || len(c.Rotations) != 4 || len(c.Teams) != 3 || len(c.Overrides) != 1 {
		t.Fatalf("parsed %d people, %d rotations, %d teams, %d overrides", len(c.People), len(c.Rotations), len(c.Teams), len(c.Overrides))
	}
	if c.Rotations[2].Length != 0 || s.rots[2].Length != 1 {
		t.Errorf("length should default to 1")
	}
	o := c.Overrides[0]
	if o.Kind != Replace || o.Person != "alice" || o.With != "bob" || o.Note != "dentist" || !strings.HasPrefix(o.ID, "cfg-") ||
		!o.Start.Equal(utc(t, "2026-02-03T09:00:00Z")) {
		t.Errorf("override: %+v", o)
	}
	if !c.Support.HeroIsTeamSecondary || !c.Support.Catchers || c.Support.Hero != "hero" {
		t.Errorf("support: %+v", c.Support)
	}
	if p, ok := s.Person("alice"); !ok || p.Slack != "U0ALICE" || p.WorkingHours != "Mon-Fri 09:00-17:30" || len(p.TimeOff) != 1 {
		t.Errorf("alice: %+v", p)
	}
	// Parsing is deterministic: the same file gives the same override ids.
	if d := Diff(c, compileFile(t, "org.yaml").Config()); len(d) != 0 {
		t.Errorf("same file diff: %v", d)
	}
}

func TestParseConfigDefaultsAndForms(t *testing.T) {
	c, err := ParseConfig([]byte(`
people:
  - {id: a, timezone: Europe/London}
  - {id: b, timezone: Europe/London}
rotations:
  - {id: r, type: Daily, start: "2026-01-05T09:00", timezone: Europe/London, participants: [a, b]}
overrides:
  - {id: o1, rotation: r, start: "2026-07-01 09:00", end: "2026-07-02 09:00", add: b}
  - {rotation: r, start: "2026-07-03T08:00:00Z", end: "2026-07-03T09:00:00Z", remove: a, swap: s1}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Support.Catchers || !c.Support.HeroIsTeamSecondary || c.Support.Hero != "" {
		t.Errorf("defaults: %+v", c.Support)
	}
	if o := c.Overrides[0]; o.Kind != Add || o.With != "b" || !o.Start.Equal(utc(t, "2026-07-01T08:00:00Z")) {
		t.Errorf("local-time override (BST): %+v", o)
	}
	if o := c.Overrides[1]; o.Kind != Remove || o.Person != "a" || o.SwapID != "s1" {
		t.Errorf("remove override: %+v", o)
	}
	// An empty document is an empty configuration, which compiles.
	empty, err := ParseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := mustCompile(t, empty)
	if _, err := s.WhoIsOnCall(Query{Role: RoleHero, At: time.Now()}); err == nil {
		t.Error("hero query without a hero rotation should fail")
	}
	if _, err := s.WhoIsOnCall(Query{Role: RoleSecondary, Team: "x", At: time.Now()}); err == nil || !strings.Contains(err.Error(), `unknown team "x"`) {
		t.Errorf("unknown team: %v", err)
	}
	if _, err := s.WhoIsOnCall(Query{Role: RoleRotation, Rotation: "x", At: time.Now()}); err == nil || !strings.Contains(err.Error(), `unknown rotation "x"`) {
		t.Errorf("unknown rotation: %v", err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	const people = `people:
  - {id: a, team: t, timezone: UTC, working_hours: "Mon-Fri 09:00-17:00"}
  - {id: b, team: t, timezone: UTC}
`
	const good = people + `rotations:
  - {id: r, type: weekly, start: "2026-01-05 09:00", timezone: UTC, participants: [a, b]}
teams:
  - {id: t, secondary: r}
`
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field in a person", `people:
  - {id: a, timezone: UTC, tz: UTC}
`, []string{"line 2", "field tz not found"}},
		{"unknown field in support", good + "support: {hero: r, heroes: [a]}\n", []string{"line 8", "field heroes not found"}},
		{"unknown field in an override", good + `overrides:
  - {rotation: r, start: "2026-01-06T00:00:00Z", end: "2026-01-07T00:00:00Z", replace: a, by: b}
`, []string{"line 9", "field by not found"}},
		{"unknown participant", people + `rotations:
  - {id: r, type: weekly, start: "2026-01-05 09:00", timezone: UTC, participants: [a, zed]}
`, []string{"line 5: rotation r: unknown participant \"zed\"", "line 2: person a: unknown team \"t\""}},
		{"bad person time zone", `people:
  - {id: a, timezone: Mars/Olympus_Mons}
`, []string{"line 2: person a: bad timezone \"Mars/Olympus_Mons\""}},
		{"missing time zone", `people:
  - {id: a}
`, []string{"person a: timezone is required"}},
		{"bad rotation time zone", people + `rotations:
  - {id: r, type: weekly, start: "2026-01-05 09:00", timezone: Europe/Lundun, participants: [a]}
`, []string{"line 5: rotation r: bad timezone"}},
		{"team secondary missing", people + `teams:
  - {id: t, secondary: t-secondary}
`, []string{"line 5: team t: secondary rotation \"t-secondary\" is not defined"}},
		{"team without secondary", people + `teams:
  - {id: t}
`, []string{"team t: secondary rotation is required"}},
		{"bad rotation type", people + `rotations:
  - {id: r, type: fortnightly, start: "2026-01-05 09:00", timezone: UTC, participants: [a]}
`, []string{"line 5", "rotation type \"fortnightly\""}},
		{"missing type", people + `rotations:
  - {id: r2, start: "2026-01-05 09:00", timezone: UTC, participants: [a]}
`, []string{"line 5: rotation r2: type must be"}},
		{"start with a zone", people + `rotations:
  - {id: r, type: daily, start: "2026-01-05T09:00:00Z", timezone: UTC, participants: [a]}
`, []string{"rotation r: start:"}},
		{"duplicate participant", people + `rotations:
  - {id: r, type: daily, start: "2026-01-05 09:00", timezone: UTC, participants: [a, b, a]}
`, []string{"participant \"a\" listed twice"}},
		{"no participants", people + `rotations:
  - {id: r, type: daily, start: "2026-01-05 09:00", timezone: UTC, participants: []}
`, []string{"rotation r: no participants"}},
		{"duplicate person", people + `  - {id: a, timezone: UTC}
`, []string{"line 4: person a: defined twice"}},
		{"an address of two people", `people:
  - {id: a, timezone: UTC, email: a@example.com}
  - {id: b, timezone: UTC, emails: [b@example.com, A@Example.com]}
`, []string{"line 3: person b: email a@example.com is also a's"}},
		{"a GitHub login of two people", `people:
  - {id: a, timezone: UTC, github: Octo}
  - {id: b, timezone: UTC, github: octo}
`, []string{"line 3: person b: github octo is also a's"}},
		{"bad working hours", `people:
  - {id: a, timezone: UTC, working_hours: "Mon-Fir 09:00-17:00"}
`, []string{"line 2: person a: working hours", "\"fir\" is not a day"}},
		{"time off backwards", `people:
  - {id: a, timezone: UTC, time_off: [{start: "2026-03-06", end: "2026-03-02"}]}
`, []string{"line 2: person a: time_off[0] ends (2026-03-02) before it starts (2026-03-06)"}},
		{"hero rotation missing", good + "support: {hero: hero}\n", []string{"line 8: support: hero rotation \"hero\" is not defined"}},
		{"unknown catcher", good + "support: {hero: r, catcher_pool: [zed]}\n", []string{"support: unknown catcher \"zed\""}},
		{"override with two actions", good + `overrides:
  - {rotation: r, start: "2026-01-06T00:00:00Z", end: "2026-01-07T00:00:00Z", replace: a, with: b, remove: b}
`, []string{"line 9: overrides[0]: exactly one of"}},
		{"override unknown person", good + `overrides:
  - {rotation: r, start: "2026-01-06T00:00:00Z", end: "2026-01-07T00:00:00Z", replace: a, with: zed}
`, []string{"line 9", "unknown person \"zed\""}},
		{"override unknown rotation", good + `overrides:
  - {rotation: nope, start: "2026-01-06T00:00:00Z", end: "2026-01-07T00:00:00Z", add: a}
`, []string{"line 9", "unknown rotation \"nope\""}},
		{"override backwards", good + `overrides:
  - {rotation: r, start: "2026-01-07T00:00:00Z", end: "2026-01-06T00:00:00Z", add: a}
`, []string{"line 9", "ends (2026-01-06T00:00:00Z) before it starts"}},
		{"overlapping overrides", good + `overrides:
  - {id: x, rotation: r, start: "2026-01-06T00:00:00Z", end: "2026-01-08T00:00:00Z", replace: a, with: b}
  - {id: y, rotation: r, start: "2026-01-07T00:00:00Z", end: "2026-01-09T00:00:00Z", remove: a}
`, []string{"line 10: override y: overlaps override x, which also takes a off r"}},
		{"override id reused", good + `overrides:
  - {id: x, rotation: r, start: "2026-01-06T00:00:00Z", end: "2026-01-08T00:00:00Z", add: b}
  - {id: x, rotation: r, start: "2026-01-07T00:00:00Z", end: "2026-01-09T00:00:00Z", add: a}
`, []string{"line 10: override x: id used by a different override"}},
		{"not yaml", "people: [\n", []string{"parse configuration"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tc.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Other services' sections are not ours to judge.
	if _, err := ParseConfig([]byte(good + "policies: {whatever: [1, 2]}\nintake: 3\nescalation: {x: y}\n")); err != nil {
		t.Errorf("unknown top-level keys: %v", err)
	}
}

func TestParseHours(t *testing.T) {
	tests := []struct {
		spec string
		in   []string // "Mon 09:00" style wall readings inside
		out  []string
	}{
		{"Mon-Fri 09:00-17:30", []string{"Mon 09:00", "Fri 17:29"}, []string{"Mon 08:59", "Fri 17:30", "Sat 12:00"}},
		{"Mon-Thu 09:00-17:00, Fri 09:00-13:00", []string{"Thu 16:59", "Fri 12:59"}, []string{"Fri 13:00", "Thu 17:00"}},
		{"Sun-Thu 22:00-06:00", []string{"Sun 22:00", "Mon 05:59", "Fri 05:59"}, []string{"Fri 22:00", "Sun 06:00", "Sat 03:00"}},
		{"Fri-Mon 10:00-24:00", []string{"Sat 23:59", "Mon 10:00"}, []string{"Tue 12:00", "Thu 12:00"}},
		{"Mon, Wed 09:00-12:00; Sat+Sun 10:00-11:00", []string{"Mon 09:00", "Wed 11:59", "Sun 10:30"}, []string{"Tue 10:00", "Sat 11:00"}},
		{"weekdays 08:00-16:00", []string{"Tue 08:00"}, []string{"Sat 08:00"}},
		{"always", []string{"Sun 00:00", "Wed 23:59"}, nil},
		{"", nil, []string{"Mon 12:00"}},
	}
	days := map[string]int64{"Sun": 3, "Mon": 4, "Tue": 5, "Wed": 6, "Thu": 7, "Fri": 8, "Sat": 9} // 4-10 January 1970
	wall := func(s string) int64 {
		var hh, mm int64
		d, hm, _ := strings.Cut(s, " ")
		hh = int64(hm[0]-'0')*10 + int64(hm[1]-'0')
		mm = int64(hm[3]-'0')*10 + int64(hm[4]-'0')
		return days[d]*secondsPerDay + hh*3600 + mm*60
	}
	for _, tc := range tests {
		h, err := parseHours(tc.spec)
		if err != nil {
			t.Fatalf("%q: %v", tc.spec, err)
		}
		for _, s := range tc.in {
			if !h.at(wall(s)) {
				t.Errorf("%q: %s should be inside", tc.spec, s)
			}
		}
		for _, s := range tc.out {
			if h.at(wall(s)) {
				t.Errorf("%q: %s should be outside", tc.spec, s)
			}
		}
	}
	for _, bad := range []string{"Mon-Fri", "Mon-Fri 09:00", "Funday 09:00-10:00", "Mon 09:00-09:00", "Mon 25:00-26:00", "Mon 24:00-02:00", "09:00-17:00"} {
		if _, err := parseHours(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
