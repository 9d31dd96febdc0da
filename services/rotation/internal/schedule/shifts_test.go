package schedule

import (
	"strings"
	"testing"
	"time"
)

// A daily rotation in UTC, a, b, c from Monday 5 January 2026 09:00.
const dailyYAML = `
people:
  - {id: a, name: Ann, timezone: UTC}
  - {id: b, name: Bo, timezone: UTC}
  - {id: c, name: "Cé, the third", timezone: UTC}
rotations:
  - {id: r, name: Daily, type: daily, start: "2026-01-05 09:00", timezone: UTC, participants: [a, b, c]}
overrides:
  # Two adjacent replacements of a by c: one stretch for c.
  - {id: o1, rotation: r, start: "2026-01-05T12:00:00Z", end: "2026-01-05T14:00:00Z", replace: a, with: c}
  - {id: o2, rotation: r, start: "2026-01-05T14:00:00Z", end: "2026-01-05T16:00:00Z", replace: a, with: c}
  # b gets company on Tuesday afternoon, across the handoff to c.
  - {id: o3, rotation: r, start: "2026-01-06T15:00:00Z", end: "2026-01-07T11:00:00Z", add: a}
  # c is away an hour on Wednesday: nobody is on duty.
  - {id: o4, rotation: r, start: "2026-01-07T10:00:00Z", end: "2026-01-07T11:00:00Z", remove: c}
`

func shiftLines(shifts []Shift) string {
	var out []string
	for _, sh := range shifts {
		l := sh.Person + " " + sh.Start.UTC().Format("02T15") + "-" + sh.End.UTC().Format("02T15") + " " + sh.Reason.String()
		if sh.Scheduled != "" {
			l += " for " + sh.Scheduled
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func TestShiftsWithOverrides(t *testing.T) {
	s := compileYAML(t, dailyYAML)
	shifts, err := s.Shifts("r", utc(t, "2026-01-01T00:00:00Z"), utc(t, "2026-01-08T10:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"a 05T09-05T12 rotation",
		"c 05T12-05T16 override for a",
		"a 05T16-06T09 rotation",
		"b 06T09-07T09 rotation",
		"a 06T15-07T09 override",
		"c 07T09-07T10 rotation",
		"a 07T09-07T11 override",
		"c 07T11-08T09 rotation",
		"a 08T09-09T09 rotation",
	}, "\n")
	if got := shiftLines(shifts); got != want {
		t.Errorf("shifts:\n%s\nwant:\n%s", got, want)
	}

	tests := []struct {
		at, who, also, start, end string
		reason                    Reason
		gap                       bool
	}{
		{"2026-01-05T13:00:00Z", "c", "", "2026-01-05T12:00:00Z", "2026-01-05T16:00:00Z", ReasonOverride, false},
		{"2026-01-05T10:00:00Z", "a", "", "2026-01-05T09:00:00Z", "2026-01-05T12:00:00Z", ReasonRotation, false},
		{"2026-01-06T16:00:00Z", "b", "a:override", "2026-01-06T09:00:00Z", "2026-01-07T09:00:00Z", ReasonRotation, false},
		{"2026-01-07T10:30:00Z", "a", "", "2026-01-07T09:00:00Z", "2026-01-07T11:00:00Z", ReasonOverride, false},
		{"2026-01-07T12:00:00Z", "c", "", "2026-01-07T11:00:00Z", "2026-01-08T09:00:00Z", ReasonRotation, false},
		{"2026-01-05T08:00:00Z", "", "", "", "", ReasonRotation, true},
	}
	for _, tc := range tests {
		a := who(t, s, Query{Role: RoleRotation, Rotation: "r", At: utc(t, tc.at)})
		if personID(a.OnCall) != tc.who || alsoIDs(a) != tc.also || a.Gap != tc.gap || a.OnCall.Reason != tc.reason {
			t.Errorf("%s: %s also %q gap %v reason %v", tc.at, personID(a.OnCall), alsoIDs(a), a.Gap, a.OnCall.Reason)
			continue
		}
		if tc.start != "" && (!a.OnCall.Shift.Start.Equal(utc(t, tc.start)) || !a.OnCall.Shift.End.Equal(utc(t, tc.end))) {
			t.Errorf("%s: shift %s..%s, want %s..%s", tc.at, a.OnCall.Shift.Start.UTC(), a.OnCall.Shift.End.UTC(), tc.start, tc.end)
		}
	}
	// Removing c leaves only the added a on Wednesday 10:00-11:00; without
	// the add it would be a gap.
	c := clone(s.Config())
	c.Overrides = c.Overrides[:2]
	c.Overrides = append(c.Overrides, Override{ID: "o5", Rotation: "r", Kind: Remove, Person: "c", Start: utc(t, "2026-01-07T10:00:00Z"), End: utc(t, "2026-01-07T11:00:00Z")})
	a := who(t, mustCompile(t, c), Query{Role: RoleRotation, Rotation: "r", At: utc(t, "2026-01-07T10:30:00Z")})
	if !a.Gap || a.OnCall.Person != nil || a.GapReason != "nobody is on duty in r" {
		t.Errorf("removed: %+v", a)
	}

	if _, err := s.Shifts("nope", time.Now(), time.Now().Add(time.Hour)); err == nil {
		t.Error("unknown rotation accepted")
	}
	if _, err := s.BaseShiftAt("r", utc(t, "2026-01-01T00:00:00Z")); err == nil || !strings.Contains(err.Error(), "starts at") {
		t.Errorf("base shift before the start: %v", err)
	}
}

func TestCheckOverrides(t *testing.T) {
	s := compileYAML(t, dailyYAML)
	ok := Override{ID: "n1", Rotation: "r", Kind: Replace, Person: "b", With: "a", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-06T12:00:00Z")}
	if err := s.CheckOverrides(ok); err != nil {
		t.Errorf("valid override: %v", err)
	}
	tests := []struct {
		o    Override
		want string
	}{
		{Override{ID: "n2", Rotation: "r", Kind: Replace, Person: "a", With: "b", Start: utc(t, "2026-01-05T10:00:00Z"), End: utc(t, "2026-01-05T13:00:00Z")},
			"a is not on duty in r at 2026-01-05T12:00:00Z (c is)"},
		{Override{ID: "n3", Rotation: "r", Kind: Remove, Person: "b", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-07T10:00:00Z")},
			"b is not on duty in r at 2026-01-07T09:00:00Z"},
		{Override{ID: "o1", Rotation: "r", Kind: Add, With: "b", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-06T12:00:00Z")},
			"id already used"},
		{Override{ID: "n4", Rotation: "x", Kind: Add, With: "b", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-06T12:00:00Z")},
			"unknown rotation"},
		{Override{ID: "n5", Rotation: "r", Kind: Add, With: "b", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-06T10:00:00Z")},
			"before it starts"},
		{Override{ID: "n6", Rotation: "r", Kind: Replace, Person: "b", With: "b", Start: utc(t, "2026-01-06T10:00:00Z"), End: utc(t, "2026-01-06T11:00:00Z")},
			"with themselves"},
	}
	for _, tc := range tests {
		if err := s.CheckOverrides(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	// The swap helper checks its arguments.
	t0 := utc(t, "2026-01-06T10:00:00Z")
	for _, bad := range [][2]string{{"a", "a"}, {"", "b"}} {
		if _, err := Swap("s", "r", bad[0], t0, t0.Add(time.Hour), bad[1], t0.Add(48*time.Hour), t0.Add(49*time.Hour)); err == nil {
			t.Errorf("swap %v accepted", bad)
		}
	}
	if _, err := Swap("s", "r", "a", t0, t0.Add(2*time.Hour), "b", t0.Add(time.Hour), t0.Add(3*time.Hour)); err == nil {
		t.Error("overlapping swap accepted")
	}
}

func TestICal(t *testing.T) {
	s := compileYAML(t, dailyYAML)
	now := utc(t, "2026-01-01T00:00:00Z")
	cal, err := s.ICalRotation("r", utc(t, "2026-01-05T00:00:00Z"), utc(t, "2026-01-06T00:00:00Z"), now)
	if err != nil {
		t.Fatal(err)
	}
	text := string(cal)
	for _, want := range []string{
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sidekick//rotation//EN\r\n",
		"X-WR-CALNAME:Sidekick: Daily\r\n",
		"BEGIN:VEVENT\r\nUID:r-a-1767603600@sidekick\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20260105T090000Z\r\nDTEND:20260105T120000Z\r\nSUMMARY:Ann on call: r\r\n",
		"SUMMARY:Cé\\, the third on call: r (for a)\r\n",
		"END:VCALENDAR\r\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("calendar lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "BEGIN:VEVENT"); n != 3 {
		t.Errorf("%d events, want 3 (a, c, a)", n)
	}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("line longer than 75 octets: %q", line)
		}
	}
	cal, err = s.ICalPerson("a", utc(t, "2026-01-05T00:00:00Z"), utc(t, "2026-01-09T00:00:00Z"), now)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(cal), "BEGIN:VEVENT"); n != 5 {
		t.Errorf("a's calendar has %d events, want 5:\n%s", n, cal)
	}
	if _, err := s.ICalPerson("zed", now, now.Add(time.Hour), now); err == nil {
		t.Error("unknown person accepted")
	}
	if _, err := s.ICalRotation("zed", now, now.Add(time.Hour), now); err == nil {
		t.Error("unknown rotation accepted")
	}
}
