package schedule

import (
	"strings"
	"testing"
)

// Two heroes in London handing off Mondays 09:00 (hana the week of 1 June
// 2026, ivan the next, and so on), a catcher in Tokyo, and cody, core's own
// secondary, in New York. June 2026: London is UTC+1, Tokyo UTC+9, New York
// UTC-4. ivan keeps England's public holidays.
const availabilityYAML = `
people:
  - {id: hana, team: core, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30",
     time_off: [{start: "2026-06-17", end: "2026-06-17", note: dentist}]}
  - {id: ivan, team: core, timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30", holidays: GB}
  - {id: kenji, timezone: Asia/Tokyo, working_hours: "Mon-Fri 09:00-18:00"}
  - {id: cody, team: core, timezone: America/New_York, working_hours: "Mon-Fri 09:00-17:00"}
rotations:
  - {id: hero, type: weekly, start: "2026-06-01 09:00", timezone: Europe/London, participants: [hana, ivan]}
  - {id: core-sec, type: weekly, start: "2026-06-01 09:00", timezone: America/New_York, participants: [cody]}
teams:
  - {id: core, secondary: core-sec}
support:
  hero: hero
  catcher_pool: [kenji]
`

// chainText is the chain as "id:reason:availability" items.
func chainText(a Answer) string {
	var out []string
	for _, c := range a.Chain {
		out = append(out, personID(c)+":"+c.Reason.String()+":"+c.Status.Availability.String())
	}
	return strings.Join(out, " ")
}

func receiver(a Answer, r Route) string {
	if r.Nobody() {
		return "nobody"
	}
	return personID(a.Chain[r.Receiver])
}

func TestAvailabilityRoutesByUrgency(t *testing.T) {
	s := compileYAML(t, availabilityYAML)
	tests := []struct {
		name, at, chain, high, low, wait string
		gap                              bool
	}{
		{"hana at work", "2026-06-02T11:00:00Z",
			"hana:rotation:available cody:rotation:outside_hours ivan:backup:available", "hana", "hana", "", false},
		{"03:00 in London, kenji at work in Tokyo: the page wakes hana, the ping goes to kenji", "2026-06-02T02:00:00Z",
			"hana:rotation:outside_hours kenji:catcher:available cody:rotation:outside_hours ivan:backup:outside_hours", "hana", "kenji", "2026-06-02T08:00:00Z", false},
		{"23:00 in London, nobody works: the ping waits for hana", "2026-06-02T22:00:00Z",
			"hana:rotation:outside_hours cody:rotation:outside_hours ivan:backup:outside_hours", "hana", "nobody", "2026-06-03T08:00:00Z", false},
		{"hana at the dentist: core's own secondary is paged, ivan at work takes the ping", "2026-06-17T11:00:00Z",
			"hana:rotation:time_off cody:rotation:outside_hours ivan:backup:available", "cody", "ivan", "2026-06-17T13:00:00Z", true},
		{"hana at the dentist, 15:00 in London: cody at work takes both", "2026-06-17T14:00:00Z",
			"hana:rotation:time_off cody:rotation:available ivan:backup:available", "cody", "cody", "", true},
	}
	for _, tc := range tests {
		a := who(t, s, Query{Role: RoleHero, At: utc(t, tc.at)})
		if got := chainText(a); got != tc.chain {
			t.Errorf("%s: chain %q, want %q", tc.name, got, tc.chain)
		}
		if got := receiver(a, a.High); got != tc.high {
			t.Errorf("%s: high-urgency receiver %s (%s), want %s", tc.name, got, a.High.Explanation, tc.high)
		}
		if got := receiver(a, a.Low); got != tc.low {
			t.Errorf("%s: low-urgency receiver %s (%s), want %s", tc.name, got, a.Low.Explanation, tc.low)
		}
		wait := ""
		if !a.Low.WaitUntil.IsZero() {
			wait = a.Low.WaitUntil.UTC().Format("2006-01-02T15:04:05Z")
		}
		if wait != tc.wait {
			t.Errorf("%s: low waits until %q, want %q", tc.name, wait, tc.wait)
		}
		if a.Gap != tc.gap {
			t.Errorf("%s: gap %v (%s), want %v", tc.name, a.Gap, a.GapReason, tc.gap)
		}
	}

	// Why is said, with the time off's note.
	a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-17T11:00:00Z")})
	hana := a.Chain[0].Status
	if hana.Detail != "on time off (2026-06-17..2026-06-17, dentist)" || !hana.AwayUntil.Equal(utc(t, "2026-06-17T23:00:00Z")) ||
		!hana.NextWorking.Equal(utc(t, "2026-06-18T08:00:00Z")) {
		t.Errorf("hana's status: %+v", hana)
	}
	if !strings.Contains(a.High.Explanation, "cody (rotation)") || !strings.Contains(a.High.Explanation, "hana (rotation) is on time off") {
		t.Errorf("high explanation: %q", a.High.Explanation)
	}
	if c := a.Chain[1]; !strings.Contains(c.Explanation, "core's own secondary rotation") {
		t.Errorf("cody's place in the chain: %q", c.Explanation)
	}
	// 11:00 in Tokyo that day: kenji catches, and says why the hero cannot.
	a = who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-17T02:00:00Z")})
	if c := a.Chain[1]; c.Reason != ReasonCatcher || c.Explanation !=
		"kenji catches: the hero is on time off (2026-06-17..2026-06-17, dentist), kenji is inside their working hours (Mon-Fri 09:00-18:00, Asia/Tokyo)" {
		t.Errorf("the catcher while hana is at the dentist: %s (%s)", personID(c), c.Explanation)
	}
	if c := a.Also; len(c) == 0 || c[0].Explanation != a.Chain[1].Explanation {
		t.Errorf("also: %+v", c)
	}
	if ok := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-02T11:00:00Z")}).Chain[0].Status; !ok.WorkingUntil.Equal(utc(t, "2026-06-02T16:30:00Z")) {
		t.Errorf("hana works until 17:30 London: %+v", ok)
	}
}

func TestHolidayGoesDownTheBackupChain(t *testing.T) {
	s := compileYAML(t, availabilityYAML)
	// ivan is hero the week of 24 August; Monday 31 August is England's
	// Summer Bank Holiday (his shift runs from 09:00 that day), and so is
	// Christmas Day, Friday 25 December, in his week of 21 December.
	for _, at := range []string{"2026-08-31T11:00:00Z", "2026-12-25T12:00:00Z"} {
		a := who(t, s, Query{Role: RoleHero, At: utc(t, at)})
		if personID(a.OnCall) != "ivan" || !a.Gap || !strings.Contains(a.GapReason, "public holiday") {
			t.Fatalf("%s: %+v", at, a)
		}
		if got := a.Chain[0].Status.Availability; got != OnHoliday {
			t.Errorf("%s: ivan is %v", at, got)
		}
		if got := receiver(a, a.High); got == "ivan" || got == "nobody" {
			t.Errorf("%s: a page reaches %s (%s)", at, got, a.High.Explanation)
		}
	}
	a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-12-25T12:00:00Z")})
	// 25 and 28 December (Boxing Day is observed on Monday) are holidays,
	// the weekend between them is not a working day anyway: ivan is back
	// at midnight on the 26th, at work on Tuesday the 29th.
	st := a.Chain[0].Status
	if !strings.Contains(st.Detail, "Christmas Day, GB") || !st.AwayUntil.Equal(utc(t, "2026-12-26T00:00:00Z")) ||
		!st.NextWorking.Equal(utc(t, "2026-12-29T09:00:00Z")) {
		t.Errorf("ivan on Christmas Day: %+v", st)
	}
	// The next day is no holiday for ivan: he is the hero again (outside
	// working hours on a Saturday, but a page reaches him).
	a = who(t, s, Query{Role: RoleHero, At: utc(t, "2026-12-26T12:00:00Z")})
	if a.Gap || receiver(a, a.High) != "ivan" {
		t.Errorf("26 December: %+v", a)
	}
	// Working windows leave his holidays out: on Christmas Day only hana
	// (no holidays of her own) and kenji count.
	for _, w := range s.WorkingWindows(utc(t, "2026-12-25T00:00:00Z"), utc(t, "2026-12-26T00:00:00Z")) {
		if w.Start.Before(utc(t, "2026-12-25T09:00:00Z")) && w.End.After(utc(t, "2026-12-25T17:30:00Z")) {
			t.Errorf("a window spans the London day: %+v", w)
		}
	}
}

func TestNobodyIsSaidLoudly(t *testing.T) {
	s := compileYAML(t, `
people:
  - {id: solo, timezone: UTC, working_hours: always, time_off: [{start: "2026-06-01", end: "2026-06-30"}]}
rotations:
  - {id: r, type: weekly, start: "2026-01-05 09:00", timezone: UTC, participants: [solo]}
support: {hero: r, catchers: false}
`)
	a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-10T12:00:00Z")})
	if !a.Gap || !a.High.Nobody() || !a.Low.Nobody() || !strings.Contains(a.High.Explanation, "nobody can receive: solo (rotation) is on time off") {
		t.Errorf("nobody: gap %v high %+v low %+v", a.Gap, a.High, a.Low)
	}
	a = who(t, s, Query{Role: RoleRotation, Rotation: "r", At: utc(t, "2026-01-01T12:00:00Z")})
	if !a.Gap || receiver(a, a.High) != "solo" || a.Chain[0].Reason != ReasonBackup {
		t.Errorf("before the rotation starts, solo is next in order: %+v", a)
	}
}

func TestSecondaryChainKeepsTheDerivedRule(t *testing.T) {
	s := compileYAML(t, availabilityYAML)
	a := who(t, s, Query{Role: RoleSecondary, Team: "core", At: utc(t, "2026-06-02T11:00:00Z")})
	if got := chainText(a); got != "hana:derived:available cody:rotation:outside_hours" || receiver(a, a.High) != "hana" {
		t.Errorf("derived: chain %q, high %s", got, receiver(a, a.High))
	}
	// The hero away, the derived rule lapses: cody's turn, and he is the
	// only one in core-sec's order.
	a = who(t, s, Query{Role: RoleSecondary, Team: "core", At: utc(t, "2026-06-17T14:00:00Z")})
	if got := chainText(a); got != "cody:rotation:available" || a.Gap {
		t.Errorf("hero away: chain %q gap %v", got, a.Gap)
	}
}

func TestHolidayConfigErrors(t *testing.T) {
	base := "people:\n  - {id: a, timezone: UTC, holidays: %s}\n"
	for hol, want := range map[string]string{
		"XX":     `line 2: person a: holidays: unknown country or region "XX"`,
		"GB-XYZ": `line 2: person a: holidays: unknown country or region "GB-XYZ" (known for GB: GB)`,
		"office": `line 2: person a: holidays: "office" is neither a country or region code`,
	} {
		_, err := ParseConfig([]byte(strings.Replace(base, "%s", hol, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("holidays %s: %v, want %q", hol, err, want)
		}
	}
	_, err := ParseConfig([]byte(`holidays:
  - {id: office, ical: "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-12-24\nEND:VEVENT\nEND:VCALENDAR\n"}
people:
  - {id: a, timezone: UTC, holidays: [office, GB]}
`))
	if err == nil || !strings.Contains(err.Error(), `line 2: holidays office: ical: line 3: DTSTART`) {
		t.Errorf("a malformed calendar: %v", err)
	}
	s := compileYAML(t, `holidays:
  - id: office
    ical: |
      BEGIN:VCALENDAR
      BEGIN:VEVENT
      DTSTART;VALUE=DATE:20261224
      SUMMARY:Office closed
      END:VEVENT
      END:VCALENDAR
people:
  - {id: a, timezone: Europe/Paris, working_hours: always, holidays: [office, GB]}
`)
	for at, want := range map[string]string{
		"2026-12-24T12:00:00Z": "Office closed",
		"2026-12-25T12:00:00Z": "Christmas Day",
		"2026-12-23T22:59:00Z": "",
		"2026-12-23T23:00:00Z": "Office closed", // midnight in Paris
	} {
		st, err := s.StatusOf("a", utc(t, at))
		if err != nil {
			t.Fatal(err)
		}
		if (want == "") != (st.Availability == Available) || !strings.Contains(st.Detail, want) {
			t.Errorf("%s: %+v, want %q", at, st, want)
		}
	}
}

// support.pings_follow_working_hours: false makes the low route the high
// one: at 03:00 in London a ping wakes hana as a page would, not kenji;
// the diff of a dry run says so.
func TestPingsGoWherePagesGoWhenTheFileSaysSo(t *testing.T) {
	off := strings.Replace(availabilityYAML, "  catcher_pool: [kenji]\n", "  catcher_pool: [kenji]\n  pings_follow_working_hours: false\n", 1)
	if off == availabilityYAML {
		t.Fatal("support section not found")
	}
	s := compileYAML(t, off)
	a := who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-02T02:00:00Z")})
	if got := receiver(a, a.Low); got != "hana" || !a.Low.WaitUntil.IsZero() ||
		!strings.Contains(a.Low.Explanation, "a ping goes where a page goes: support.pings_follow_working_hours is false") {
		t.Errorf("low route %s (%s, wait %s), want hana as the page", got, a.Low.Explanation, a.Low.WaitUntil)
	}
	a = who(t, s, Query{Role: RoleHero, At: utc(t, "2026-06-17T11:00:00Z")})
	if receiver(a, a.Low) != "cody" || receiver(a, a.High) != "cody" {
		t.Errorf("hana at the dentist: ping %s, page %s; want cody for both", receiver(a, a.Low), receiver(a, a.High))
	}
	oldCfg, err := ParseConfig([]byte(availabilityYAML))
	if err != nil {
		t.Fatal(err)
	}
	newCfg, err := ParseConfig([]byte(off))
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(oldCfg, newCfg); len(d) != 1 || d[0] != "~ support: pings_follow_working_hours true -> false" {
		t.Errorf("diff = %q", d)
	}
}
