package holiday

import (
	"strings"
	"testing"
	"time"
)

func TestCode(t *testing.T) {
	gb, err := Code("GB")
	if err != nil {
		t.Fatal(err)
	}
	// 25 December 2027 is a Saturday: England observes Christmas on Monday
	// the 27th and Boxing Day on Tuesday the 28th.
	for _, tc := range []struct {
		day  int64
		name string
	}{
		{Day(2026, time.December, 25), "Christmas Day"},
		{Day(2026, time.December, 28), "Boxing Day"},
		{Day(2027, time.December, 27), "Christmas Day"},
		{Day(2027, time.December, 28), "Boxing Day"},
		{Day(2026, time.April, 3), "Good Friday"},
	} {
		if name, ok := gb.On(tc.day); !ok || name != tc.name {
			t.Errorf("GB on %s: %q %v, want %q", time.Unix(tc.day*86400, 0).UTC().Format("2006-01-02"), name, ok, tc.name)
		}
	}
	if name, ok := gb.On(Day(2027, time.December, 25)); ok {
		t.Errorf("Saturday 25 December 2027 is not the observed day: %q", name)
	}
	by, err := Code("DE-BY")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := by.On(Day(2026, time.January, 6)); !ok {
		t.Error("Bavaria keeps Epiphany")
	}
	if de, _ := Code("DE"); de == nil || de.Len() == 0 {
		t.Error("Germany has national holidays")
	} else if _, ok := de.On(Day(2026, time.January, 6)); ok {
		t.Error("Epiphany is not a national holiday in Germany")
	}
}

func TestCodeErrors(t *testing.T) {
	for code, want := range map[string]string{
		"XX":    `unknown country or region "XX" (known: AR,`,
		"DE-XX": `unknown country or region "DE-XX" (known for DE: DE, DE-BB,`,
		"gb":    `"gb" is not a country or region code`,
		"AU":    `known for AU: AU-ACT,`,
	} {
		_, err := Code(code)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", code, err, want)
		}
	}
}

const acme = `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Acme//Holidays//EN
BEGIN:VEVENT
UID:founders@acme
DTSTART;VALUE=DATE:20260601
DTEND;VALUE=DATE:20260603
SUMMARY:Founders\, days
RRULE:FREQ=YEARLY;COUNT=3
END:VEVENT
BEGIN:VEVENT
UID:offsite@acme
DTSTART:20261015T090000Z
SUMMARY:Off
 site
END:VEVENT
END:VCALENDAR
`

func TestParseICal(t *testing.T) {
	c, err := ParseICal("acme", acme)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		day  int64
		name string
		ok   bool
	}{
		{Day(2026, time.June, 1), "Founders, days", true},
		{Day(2026, time.June, 2), "Founders, days", true},
		{Day(2026, time.June, 3), "", false}, // DTEND is exclusive
		{Day(2028, time.June, 2), "Founders, days", true},
		{Day(2029, time.June, 1), "", false}, // COUNT=3
		{Day(2026, time.October, 15), "Offsite", true},
		{Day(2027, time.October, 15), "", false},
	} {
		name, ok := c.On(tc.day)
		if ok != tc.ok || name != tc.name {
			t.Errorf("day %s: %q %v, want %q %v", time.Unix(tc.day*86400, 0).UTC().Format("2006-01-02"), name, ok, tc.name, tc.ok)
		}
	}
}

func TestParseICalErrors(t *testing.T) {
	for name, tc := range map[string]struct{ data, want string }{
		"not a calendar": {"hello\n", "line 1: not an iCalendar file"},
		"bad date":       {"BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2026-12-25\nEND:VEVENT\nEND:VCALENDAR\n", `line 3: DTSTART: "2026-12-25" is not a date`},
		"weekly":         {"BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\nRRULE:FREQ=WEEKLY\nEND:VEVENT\nEND:VCALENDAR\n", "line 4: RRULE: FREQ=WEEKLY"},
		"cut short":      {"BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n", "event on line 2 has no END:VEVENT"},
		"no start":       {"BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n", "event on line 2: no DTSTART"},
		"empty":          {"BEGIN:VCALENDAR\nEND:VCALENDAR\n", "no events"},
	} {
		_, err := ParseICal("c", tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
