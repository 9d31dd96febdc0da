package schedule

import (
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// rotationYAML is a one-rotation organisation with participants p0, p1, p2.
func rotationYAML(kind string, length int, start, tz string) string {
	return fmt.Sprintf(`
people:
  - {id: p0, timezone: UTC}
  - {id: p1, timezone: UTC}
  - {id: p2, timezone: UTC}
rotations:
  - {id: r, type: %s, length: %d, start: %q, timezone: %s, participants: [p0, p1, p2]}
`, kind, length, start, tz)
}

func TestShiftArithmeticAcrossDST(t *testing.T) {
	tests := []struct {
		name               string
		kind               string
		length             int
		start, tz          string
		at                 string
		wantStart, wantEnd string
		wantHours          float64
		wantPerson         string // optional
	}{
		// America/Chicago: CST -6 / CDT -5; 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00.
		{"chicago daily spring 23h", "daily", 1, "2026-03-01 09:00", "America/Chicago", "2026-03-08T12:00:00Z", "2026-03-07T15:00:00Z", "2026-03-08T14:00:00Z", 23, "p0"},
		{"chicago daily after spring 24h", "daily", 1, "2026-03-01 09:00", "America/Chicago", "2026-03-08T15:00:00Z", "2026-03-08T14:00:00Z", "2026-03-09T14:00:00Z", 24, "p1"},
		{"chicago daily fall 25h", "daily", 1, "2026-03-01 09:00", "America/Chicago", "2026-11-01T12:00:00Z", "2026-10-31T14:00:00Z", "2026-11-01T15:00:00Z", 25, "p1"},
		{"chicago weekly spring 167h", "weekly", 1, "2026-01-05 09:00", "America/Chicago", "2026-03-05T00:00:00Z", "2026-03-02T15:00:00Z", "2026-03-09T14:00:00Z", 167, "p2"},
		{"chicago weekly fall 169h", "weekly", 1, "2026-01-05 09:00", "America/Chicago", "2026-10-30T00:00:00Z", "2026-10-26T14:00:00Z", "2026-11-02T15:00:00Z", 169, "p0"},
		{"chicago 4-hourly spans spring", "hourly", 4, "2026-03-01 00:00", "America/Chicago", "2026-03-08T07:30:00Z", "2026-03-08T06:00:00Z", "2026-03-08T09:00:00Z", 3, ""},
		{"chicago 4-hourly spans fall", "hourly", 4, "2026-03-01 00:00", "America/Chicago", "2026-11-01T07:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T10:00:00Z", 5, ""},
		{"chicago hourly before gap", "hourly", 1, "2026-03-01 00:00", "America/Chicago", "2026-03-08T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", 1, ""},
		// 02:00 does not exist: that shift is empty and 03:00's follows.
		{"chicago hourly after gap", "hourly", 1, "2026-03-01 00:00", "America/Chicago", "2026-03-08T08:00:00Z", "2026-03-08T08:00:00Z", "2026-03-08T09:00:00Z", 1, "p0"},
		{"chicago hourly 01:00 fall first pass", "hourly", 1, "2026-03-01 00:00", "America/Chicago", "2026-11-01T06:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T08:00:00Z", 2, ""},
		{"chicago hourly 01:00 fall second pass", "hourly", 1, "2026-03-01 00:00", "America/Chicago", "2026-11-01T07:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T08:00:00Z", 2, ""},
		{"chicago daily 02:30 before gap day", "daily", 1, "2026-03-01 02:30", "America/Chicago", "2026-03-08T07:59:59Z", "2026-03-07T08:30:00Z", "2026-03-08T08:00:00Z", 23.5, ""},
		{"chicago daily 02:30 moves to 03:00", "daily", 1, "2026-03-01 02:30", "America/Chicago", "2026-03-08T08:00:00Z", "2026-03-08T08:00:00Z", "2026-03-09T07:30:00Z", 23.5, ""},
		{"chicago daily 01:30 before ambiguous", "daily", 1, "2026-10-25 01:30", "America/Chicago", "2026-11-01T06:29:00Z", "2026-10-31T06:30:00Z", "2026-11-01T06:30:00Z", 24, ""},
		{"chicago daily 01:30 first occurrence", "daily", 1, "2026-10-25 01:30", "America/Chicago", "2026-11-01T07:00:00Z", "2026-11-01T06:30:00Z", "2026-11-02T07:30:00Z", 25, ""},
		{"chicago monthly 31st into february", "monthly", 1, "2026-01-31 09:00", "America/Chicago", "2026-02-15T00:00:00Z", "2026-01-31T15:00:00Z", "2026-02-28T15:00:00Z", 28 * 24, "p0"},
		{"chicago monthly last of feb back to 31st", "monthly", 1, "2026-01-31 09:00", "America/Chicago", "2026-03-15T00:00:00Z", "2026-02-28T15:00:00Z", "2026-03-31T14:00:00Z", 31*24 - 1, "p1"},
		{"chicago monthly april 30th", "monthly", 1, "2026-01-31 09:00", "America/Chicago", "2026-05-01T00:00:00Z", "2026-04-30T14:00:00Z", "2026-05-31T14:00:00Z", 31 * 24, "p0"},
		{"chicago monthly leap february", "monthly", 1, "2027-12-31 09:00", "America/Chicago", "2028-02-29T16:00:00Z", "2028-02-29T15:00:00Z", "2028-03-31T14:00:00Z", 31*24 - 1, ""},
		{"chicago quarterly from 31st", "monthly", 3, "2026-01-31 09:00", "America/Chicago", "2026-06-01T00:00:00Z", "2026-04-30T14:00:00Z", "2026-07-31T14:00:00Z", 92 * 24, "p1"},

		// Europe/London: GMT / BST; 2026-03-29 01:00 -> 02:00, 2026-10-25 02:00 -> 01:00.
		{"london daily spring 23h", "daily", 1, "2026-03-01 09:00", "Europe/London", "2026-03-29T05:00:00Z", "2026-03-28T09:00:00Z", "2026-03-29T08:00:00Z", 23, ""},
		{"london daily fall 25h", "daily", 1, "2026-03-01 09:00", "Europe/London", "2026-10-25T05:00:00Z", "2026-10-24T08:00:00Z", "2026-10-25T09:00:00Z", 25, ""},
		{"london weekly spring 167h", "weekly", 1, "2026-01-05 09:00", "Europe/London", "2026-03-26T00:00:00Z", "2026-03-23T09:00:00Z", "2026-03-30T08:00:00Z", 167, ""},
		{"london weekly fall 169h", "weekly", 1, "2026-01-05 09:00", "Europe/London", "2026-10-22T00:00:00Z", "2026-10-19T08:00:00Z", "2026-10-26T09:00:00Z", 169, ""},
		{"london fortnightly", "weekly", 2, "2026-01-05 09:00", "Europe/London", "2026-03-26T00:00:00Z", "2026-03-16T09:00:00Z", "2026-03-30T08:00:00Z", 335, "p2"},
		{"london 2-hourly spans spring", "hourly", 2, "2026-03-01 00:00", "Europe/London", "2026-03-29T00:30:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", 1, ""},
		{"london 2-hourly spans fall", "hourly", 2, "2026-03-01 00:00", "Europe/London", "2026-10-25T00:30:00Z", "2026-10-24T23:00:00Z", "2026-10-25T02:00:00Z", 3, ""},
		{"london daily 01:30 before gap", "daily", 1, "2026-03-01 01:30", "Europe/London", "2026-03-29T00:59:59Z", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", 23.5, ""},
		{"london daily 01:30 moves to 02:00", "daily", 1, "2026-03-01 01:30", "Europe/London", "2026-03-29T01:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", 23.5, ""},
		{"london daily 01:30 first occurrence", "daily", 1, "2026-03-01 01:30", "Europe/London", "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", 25, ""},
		{"london daily 01:30 second pass same shift", "daily", 1, "2026-03-01 01:30", "Europe/London", "2026-10-25T01:29:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", 25, ""},

		// Australia/Lord_Howe: +10:30 / +11 (a half-hour change);
		// 2026-04-05 02:00 -> 01:30, 2026-10-04 02:00 -> 02:30.
		{"lord howe daily autumn 24.5h", "daily", 1, "2026-03-01 09:00", "Australia/Lord_Howe", "2026-04-04T12:00:00Z", "2026-04-03T22:00:00Z", "2026-04-04T22:30:00Z", 24.5, ""},
		{"lord howe daily spring 23.5h", "daily", 1, "2026-03-01 09:00", "Australia/Lord_Howe", "2026-10-03T12:00:00Z", "2026-10-02T22:30:00Z", "2026-10-03T22:00:00Z", 23.5, ""},
		{"lord howe weekly autumn 168.5h", "weekly", 1, "2026-01-05 09:00", "Australia/Lord_Howe", "2026-04-02T00:00:00Z", "2026-03-29T22:00:00Z", "2026-04-05T22:30:00Z", 168.5, ""},
		{"lord howe weekly spring 167.5h", "weekly", 1, "2026-01-05 09:00", "Australia/Lord_Howe", "2026-10-01T00:00:00Z", "2026-09-27T22:30:00Z", "2026-10-04T22:00:00Z", 167.5, ""},
		{"lord howe daily 02:15 before gap", "daily", 1, "2026-09-01 02:15", "Australia/Lord_Howe", "2026-10-03T15:29:59Z", "2026-10-02T15:45:00Z", "2026-10-03T15:30:00Z", 23.75, ""},
		{"lord howe daily 02:15 moves to 02:30", "daily", 1, "2026-09-01 02:15", "Australia/Lord_Howe", "2026-10-03T15:30:00Z", "2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z", 23.75, ""},
		{"lord howe daily 01:45 first occurrence", "daily", 1, "2026-03-01 01:45", "Australia/Lord_Howe", "2026-04-04T15:00:00Z", "2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z", 24.5, ""},
		{"lord howe hourly spans autumn", "hourly", 1, "2026-03-01 00:00", "Australia/Lord_Howe", "2026-04-04T14:30:00Z", "2026-04-04T14:00:00Z", "2026-04-04T15:30:00Z", 1.5, ""},
		{"lord howe hourly before spring gap", "hourly", 1, "2026-03-01 00:00", "Australia/Lord_Howe", "2026-10-03T15:00:00Z", "2026-10-03T14:30:00Z", "2026-10-03T15:30:00Z", 1, ""},
		{"lord howe hourly shortened by gap", "hourly", 1, "2026-03-01 00:00", "Australia/Lord_Howe", "2026-10-03T15:40:00Z", "2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z", 0.5, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := compileYAML(t, rotationYAML(tc.kind, tc.length, tc.start, tc.tz))
			sh, err := s.BaseShiftAt("r", utc(t, tc.at))
			if err != nil {
				t.Fatal(err)
			}
			if !sh.Start.Equal(utc(t, tc.wantStart)) || !sh.End.Equal(utc(t, tc.wantEnd)) {
				t.Fatalf("shift at %s = %s .. %s, want %s .. %s", tc.at, sh.Start.UTC().Format(time.RFC3339), sh.End.UTC().Format(time.RFC3339), tc.wantStart, tc.wantEnd)
			}
			if h := sh.End.Sub(sh.Start).Hours(); h != tc.wantHours {
				t.Errorf("shift lasts %vh, want %vh", h, tc.wantHours)
			}
			if tc.wantPerson != "" && sh.Person != tc.wantPerson {
				t.Errorf("person %s, want %s", sh.Person, tc.wantPerson)
			}
			// The answer through WhoIsOnCall agrees with the base shift.
			a := who(t, s, Query{Role: RoleRotation, Rotation: "r", At: utc(t, tc.at)})
			if personID(a.OnCall) != sh.Person || !a.OnCall.Shift.Start.Equal(sh.Start) || !a.OnCall.Shift.End.Equal(sh.End) {
				t.Errorf("WhoIsOnCall = %+v, want %+v", a.OnCall.Shift, sh)
			}
		})
	}
}

func TestHandoffsKeepLocalTime(t *testing.T) {
	// A year of daily and weekly handoffs: every one at 09:00 local, whatever
	// the offset.
	for _, tz := range []string{"America/Chicago", "Europe/London", "Australia/Lord_Howe"} {
		for _, kind := range []string{"daily", "weekly"} {
			s := compileYAML(t, rotationYAML(kind, 1, "2026-01-05 09:00", tz))
			shifts, err := s.Shifts("r", utc(t, "2026-01-06T00:00:00Z"), utc(t, "2027-01-06T00:00:00Z"))
			if err != nil {
				t.Fatal(err)
			}
			loc, _ := time.LoadLocation(tz)
			for i, sh := range shifts {
				if h, m, _ := sh.Start.In(loc).Clock(); h != 9 || m != 0 {
					t.Fatalf("%s %s: shift %d starts %s", tz, kind, i, sh.Start.In(loc))
				}
				if i > 0 && !shifts[i-1].End.Equal(sh.Start) {
					t.Fatalf("%s %s: shift %d does not follow the previous one", tz, kind, i)
				}
				if want := fmt.Sprintf("p%d", i%3); i > 0 && sh.Person == shifts[i-1].Person {
					t.Fatalf("%s %s: %s twice in a row (want %s)", tz, kind, sh.Person, want)
				}
			}
		}
	}
}

func TestLocalTimeIn(t *testing.T) {
	tests := []struct{ local, tz, want string }{
		{"2026-03-08 02:30", "America/Chicago", "2026-03-08T08:00:00Z"},     // skipped: end of the gap
		{"2026-11-01 01:30", "America/Chicago", "2026-11-01T06:30:00Z"},     // repeated: first (CDT)
		{"2026-03-29 01:00", "Europe/London", "2026-03-29T01:00:00Z"},       // skipped
		{"2026-10-25 01:59", "Europe/London", "2026-10-25T00:59:00Z"},       // repeated: first (BST)
		{"2026-10-04 02:00", "Australia/Lord_Howe", "2026-10-03T15:30:00Z"}, // skipped half hour
		{"2026-04-05 01:30", "Australia/Lord_Howe", "2026-04-04T14:30:00Z"}, // repeated half hour: first (+11)
		{"2011-12-30 12:00", "Pacific/Apia", "2011-12-30T10:00:00Z"},        // a skipped day
		{"2026-07-01 12:00", "UTC", "2026-07-01T12:00:00Z"},
	}
	for _, tc := range tests {
		l, err := ParseLocalTime(tc.local)
		if err != nil {
			t.Fatal(err)
		}
		loc, err := time.LoadLocation(tc.tz)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.In(loc); !got.Equal(utc(t, tc.want)) {
			t.Errorf("%s in %s = %s, want %s", tc.local, tc.tz, got.UTC().Format(time.RFC3339), tc.want)
		}
	}
}

// oracleResolve is resolve by brute force: the first instant whose wall
// reading is at or after w. That is the first occurrence of a repeated
// reading and the end of the gap for a skipped one.
func oracleResolve(loc *time.Location, w int64) int64 {
	for u := w - 30*3600; ; u += 60 {
		if wallAt(loc, u) >= w {
			return u
		}
	}
}

func TestResolveMatchesBruteForce(t *testing.T) {
	zones := []string{"America/Chicago", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Tehran", "Pacific/Apia", "Europe/Dublin", "Africa/Casablanca"}
	rng := rand.New(rand.NewSource(1))
	for _, name := range zones {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		// Every transition 2010-2030, probed at minutes around it, plus
		// random readings.
		var walls []int64
		tr := time.Date(2010, 1, 1, 0, 0, 0, 0, loc)
		for tr.Year() < 2030 {
			_, end := tr.ZoneBounds()
			if end.IsZero() {
				break
			}
			w := wallAt(loc, end.Unix())
			for d := int64(-150); d <= 150; d += 15 {
				walls = append(walls, w+d*60)
			}
			tr = end
		}
		for range 500 {
			walls = append(walls, wallSeconds(2010+int64(rng.Intn(20)), 1+rng.Intn(12), 1+rng.Intn(28), rng.Intn(1440)*60))
		}
		z := newZone(loc)
		for _, w := range walls {
			want := oracleResolve(loc, w)
			if got := resolve(loc, w); got != want {
				t.Fatalf("%s: resolve(%s) = %s, brute force %s", name, time.Unix(w, 0).UTC().Format("2006-01-02 15:04"),
					time.Unix(got, 0).UTC(), time.Unix(want, 0).UTC())
			}
			if got := z.resolve(w); got != want {
				t.Fatalf("%s: table resolve(%s) = %s, brute force %s", name, time.Unix(w, 0).UTC().Format("2006-01-02 15:04"),
					time.Unix(got, 0).UTC(), time.Unix(want, 0).UTC())
			}
			if got, want := z.offset(w), offsetAt(loc, w); got != want {
				t.Fatalf("%s: table offset at %d = %d, time package %d", name, w, got, want)
			}
		}
	}
}
