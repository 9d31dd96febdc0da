package worktime

import (
	"math/rand/v2"
	"testing"
	"time"
	_ "time/tzdata" // tests must not depend on the host's zoneinfo

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

// hours is one person's working hours: weekdays, from start to end local
// time (hours and minutes), in a time zone. An end before the start runs
// overnight into the next day.
type hours struct {
	loc                        *time.Location
	startH, startM, endH, endM int
	days                       []time.Weekday
}

func weekdays(loc *time.Location, startH, endH int) hours {
	return hours{loc: loc, startH: startH, endH: endH,
		days: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}}
}

// build returns the person's working intervals for the local dates
// [first, first+days), resolved in their zone the way rotation does: each
// end is a wall-clock time of its own day.
func (h hours) build(year int, month time.Month, day, days int) []Interval {
	var out []Interval
	for i := range days {
		start := time.Date(year, month, day+i, h.startH, h.startM, 0, 0, h.loc)
		if !containsDay(h.days, start.Weekday()) {
			continue
		}
		endDay := day + i
		if h.endH*60+h.endM <= h.startH*60+h.startM {
			endDay++
		}
		end := time.Date(year, month, endDay, h.endH, h.endM, 0, 0, h.loc)
		out = append(out, Interval{Start: start, End: end})
	}
	return out
}

func containsDay(days []time.Weekday, d time.Weekday) bool {
	for _, x := range days {
		if x == d {
			return true
		}
	}
	return false
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestNormalize(t *testing.T) {
	london := time.FixedZone("BST", 3600)
	in := []Interval{
		{utc("2026-03-02T12:00:00Z"), utc("2026-03-02T14:00:00Z")},
		{utc("2026-03-02T09:00:00Z"), utc("2026-03-02T10:00:00Z")},
		{utc("2026-03-02T10:00:00Z"), utc("2026-03-02T11:00:00Z")},                                // touches the one before
		{utc("2026-03-02T13:00:00Z"), utc("2026-03-02T13:30:00Z")},                                // inside another
		{utc("2026-03-02T15:00:00Z"), utc("2026-03-02T15:00:00Z")},                                // empty
		{utc("2026-03-02T17:00:00Z"), utc("2026-03-02T16:00:00Z")},                                // inverted
		{time.Date(2026, 3, 2, 14, 30, 0, 0, london), time.Date(2026, 3, 2, 16, 0, 0, 0, london)}, // 13:30-15:00 UTC
	}
	orig := append([]Interval(nil), in...)
	got := Normalize(in)
	want := Windows{
		{utc("2026-03-02T09:00:00Z"), utc("2026-03-02T11:00:00Z")},
		{utc("2026-03-02T12:00:00Z"), utc("2026-03-02T15:00:00Z")},
	}
	if len(got) != len(want) {
		t.Fatalf("Normalize = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Start.Equal(want[i].Start) || !got[i].End.Equal(want[i].End) {
			t.Errorf("window %d = %v, want %v", i, got[i], want[i])
		}
		if got[i].Start.Location() != time.UTC || got[i].End.Location() != time.UTC {
			t.Errorf("window %d not in UTC: %v", i, got[i])
		}
	}
	for i := range in {
		if in[i] != orig[i] {
			t.Fatalf("Normalize modified its input at %d", i)
		}
	}
	if got.Total() != 5*time.Hour {
		t.Errorf("Total = %s, want 5h", got.Total())
	}
	if Normalize(nil) == nil || len(Normalize(nil)) != 0 {
		t.Errorf("Normalize(nil) should be empty, non-nil windows")
	}
}

func TestElapsedAndDeadlineBasics(t *testing.T) {
	w := Normalize([]Interval{
		{utc("2026-03-02T09:00:00Z"), utc("2026-03-02T12:00:00Z")},
		{utc("2026-03-02T13:00:00Z"), utc("2026-03-02T17:00:00Z")},
	})
	tests := []struct {
		name     string
		from, to string
		want     time.Duration
	}{
		{"before all", "2026-03-02T07:00:00Z", "2026-03-02T08:00:00Z", 0},
		{"into first", "2026-03-02T08:00:00Z", "2026-03-02T09:30:00Z", 30 * time.Minute},
		{"inside first", "2026-03-02T10:00:00Z", "2026-03-02T10:05:00Z", 5 * time.Minute},
		{"across lunch", "2026-03-02T11:30:00Z", "2026-03-02T13:30:00Z", time.Hour},
		{"inside the gap", "2026-03-02T12:10:00Z", "2026-03-02T12:50:00Z", 0},
		{"whole day", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", 7 * time.Hour},
		{"inverted", "2026-03-02T11:00:00Z", "2026-03-02T10:00:00Z", 0},
		{"at a window end", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Elapsed(w, utc(tt.from), utc(tt.to)); got != tt.want {
				t.Errorf("Elapsed = %s, want %s", got, tt.want)
			}
		})
	}

	deadlines := []struct {
		name   string
		start  string
		d      time.Duration
		want   string
		wantOK bool
	}{
		{"zero is reached at start, even outside windows", "2026-03-02T12:30:00Z", 0, "2026-03-02T12:30:00Z", true},
		{"waits for the first window", "2026-03-02T06:00:00Z", 15 * time.Minute, "2026-03-02T09:15:00Z", true},
		{"skips lunch", "2026-03-02T11:30:00Z", time.Hour, "2026-03-02T13:30:00Z", true},
		{"lands exactly on a window end", "2026-03-02T11:00:00Z", time.Hour, "2026-03-02T12:00:00Z", true},
		{"started in the gap", "2026-03-02T12:20:00Z", 15 * time.Minute, "2026-03-02T13:15:00Z", true},
		{"uses up everything", "2026-03-02T09:00:00Z", 7 * time.Hour, "2026-03-02T17:00:00Z", true},
		{"windows end first", "2026-03-02T09:00:00Z", 7*time.Hour + time.Second, "", false},
		{"after the last window", "2026-03-02T18:00:00Z", time.Minute, "", false},
	}
	for _, tt := range deadlines {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Deadline(w, utc(tt.start), tt.d)
			if ok != tt.wantOK {
				t.Fatalf("Deadline ok = %v, want %v (at %v)", ok, tt.wantOK, got)
			}
			if ok && !got.Equal(utc(tt.want)) {
				t.Errorf("Deadline = %v, want %s", got, tt.want)
			}
			if !ok && !got.IsZero() {
				t.Errorf("Deadline returned %v with false", got)
			}
		})
	}
	if got, ok := Deadline(nil, utc("2026-03-02T09:00:00Z"), time.Minute); ok {
		t.Errorf("Deadline on no windows = %v, true", got)
	}
}

func TestWindowsHelpers(t *testing.T) {
	w := Normalize([]Interval{
		{utc("2026-03-02T09:00:00Z"), utc("2026-03-02T12:00:00Z")},
		{utc("2026-03-02T13:00:00Z"), utc("2026-03-02T17:00:00Z")},
	})
	for _, tt := range []struct {
		at   string
		want bool
	}{
		{"2026-03-02T08:59:59Z", false},
		{"2026-03-02T09:00:00Z", true},
		{"2026-03-02T11:59:59Z", true},
		{"2026-03-02T12:00:00Z", false},
		{"2026-03-02T16:00:00Z", true},
		{"2026-03-02T17:00:00Z", false},
	} {
		if got := w.Covers(utc(tt.at)); got != tt.want {
			t.Errorf("Covers(%s) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if !w.End().Equal(utc("2026-03-02T17:00:00Z")) || !Windows(nil).End().IsZero() {
		t.Errorf("End = %v", w.End())
	}
	c := w.Clip(utc("2026-03-02T11:00:00Z"), utc("2026-03-02T14:00:00Z"))
	if len(c) != 2 || c.Total() != 2*time.Hour || !c[0].Start.Equal(utc("2026-03-02T11:00:00Z")) || !c[1].End.Equal(utc("2026-03-02T14:00:00Z")) {
		t.Errorf("Clip = %v", c)
	}
	if c := w.Clip(utc("2026-03-02T14:00:00Z"), utc("2026-03-02T11:00:00Z")); c != nil {
		t.Errorf("inverted Clip = %v", c)
	}
}

func TestFromProto(t *testing.T) {
	got := FromProto([]*rotationv1.Interval{
		{Start: timestamppb.New(utc("2026-03-02T13:00:00Z")), End: timestamppb.New(utc("2026-03-02T17:00:00Z"))},
		{Start: timestamppb.New(utc("2026-03-02T09:00:00Z")), End: timestamppb.New(utc("2026-03-02T13:00:00Z"))},
		{Start: timestamppb.New(utc("2026-03-02T18:00:00Z"))}, // no end: skipped
		nil,
	})
	if len(got) != 1 || got.Total() != 8*time.Hour {
		t.Errorf("FromProto = %v", got)
	}
}

// A message on Friday at 17:00 London time, when the only person on the
// roster has just stopped working, gets its deadlines on Monday.
func TestDeadlineAcrossWeekend(t *testing.T) {
	london := zone(t, "Europe/London")
	// Mon 2 Mar to Sun 15 Mar 2026 (GMT, before the clocks change).
	w := Normalize(weekdays(london, 9, 17).build(2026, time.March, 2, 14))
	start := time.Date(2026, time.March, 6, 17, 0, 0, 0, london) // Friday
	th := DefaultThresholds()
	for _, tt := range []struct {
		d    time.Duration
		want time.Time
	}{
		{th.Great, time.Date(2026, time.March, 9, 9, 15, 0, 0, london)},
		{th.Okay, time.Date(2026, time.March, 9, 10, 0, 0, 0, london)},
		{th.TooLate, time.Date(2026, time.March, 9, 17, 0, 0, 0, london)},
		{th.TooLate + time.Minute, time.Date(2026, time.March, 10, 9, 1, 0, 0, london)},
	} {
		got, ok := Deadline(w, start, tt.d)
		if !ok || !got.Equal(tt.want) {
			t.Errorf("Deadline(Fri 17:00, %s) = %v, %v; want %v", tt.d, got.In(london), ok, tt.want)
		}
	}
	// From half past four on Friday, half an hour is left that day.
	start = time.Date(2026, time.March, 6, 16, 30, 0, 0, london)
	got, ok := Deadline(w, start, time.Hour)
	if want := time.Date(2026, time.March, 9, 9, 30, 0, 0, london); !ok || !got.Equal(want) {
		t.Errorf("Deadline(Fri 16:30, 1h) = %v, %v; want %v", got.In(london), ok, want)
	}
	// Over the whole weekend only Friday's last half hour counts.
	if e := Elapsed(w, start, time.Date(2026, time.March, 9, 8, 59, 0, 0, london)); e != 30*time.Minute {
		t.Errorf("Elapsed over the weekend = %s, want 30m", e)
	}
}

// Two people, one in London and one in New York, each 09:00-17:00 local:
// the clock runs while either works, which is the union of their windows.
func TestWindowsUnionAcrossTimeZones(t *testing.T) {
	london, newYork := zone(t, "Europe/London"), zone(t, "America/New_York")
	ldn := weekdays(london, 9, 17).build(2026, time.February, 23, 14)
	nyc := weekdays(newYork, 9, 17).build(2026, time.February, 23, 14)
	w := Union(Normalize(ldn), Normalize(nyc))

	// In February London is UTC+0 and New York UTC-5: covered 09:00-22:00 UTC.
	day := Elapsed(w, utc("2026-02-24T00:00:00Z"), utc("2026-02-25T00:00:00Z"))
	if day != 13*time.Hour {
		t.Errorf("covered time on a Tuesday = %s, want 13h", day)
	}
	for _, tt := range []struct {
		name  string
		start string
		d     time.Duration
		want  string
	}{
		{"London evening is New York afternoon", "2026-02-24T17:30:00Z", time.Hour, "2026-02-24T18:30:00Z"},
		{"late New York message rolls to the London morning", "2026-02-24T21:45:00Z", time.Hour, "2026-02-25T09:45:00Z"},
		{"a working day from Thursday night", "2026-02-26T21:45:00Z", 8 * time.Hour, "2026-02-27T16:45:00Z"},
		{"Friday night in New York, Monday morning in London", "2026-02-27T21:30:00Z", time.Hour, "2026-03-02T09:30:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Deadline(w, utc(tt.start), tt.d)
			if !ok || !got.Equal(utc(tt.want)) {
				t.Errorf("Deadline = %v, %v; want %s", got, ok, tt.want)
			}
		})
	}

	// Between the US change (8 March) and the UK one (29 March) New York is
	// UTC-4 while London is still UTC+0: covered 09:00-21:00 UTC.
	ldn = weekdays(london, 9, 17).build(2026, time.March, 9, 5)
	nyc = weekdays(newYork, 9, 17).build(2026, time.March, 9, 5)
	w = Union(Normalize(ldn), Normalize(nyc))
	if got := Elapsed(w, utc("2026-03-10T00:00:00Z"), utc("2026-03-11T00:00:00Z")); got != 12*time.Hour {
		t.Errorf("covered time on a Tuesday between the changes = %s, want 12h", got)
	}
	got, ok := Deadline(w, utc("2026-03-10T20:30:00Z"), time.Hour)
	if want := utc("2026-03-11T09:30:00Z"); !ok || !got.Equal(want) {
		t.Errorf("Deadline = %v, %v; want %v", got, ok, want)
	}
}

// Windows built in Europe/London across the change to summer time on Sunday
// 29 March 2026 (01:00 GMT becomes 02:00 BST): durations are real elapsed
// time, not differences of wall clocks.
func TestDSTChange(t *testing.T) {
	london := zone(t, "Europe/London")

	// A night catcher works 22:00-06:00 local; the night of the change is
	// seven real hours long, not eight.
	night := hours{loc: london, startH: 22, endH: 6, days: []time.Weekday{time.Saturday}}
	w := Normalize(night.build(2026, time.March, 28, 1))
	if len(w) != 1 || w.Total() != 7*time.Hour {
		t.Fatalf("night of the change = %v (total %s), want 7h", w, w.Total())
	}
	start := time.Date(2026, time.March, 28, 22, 0, 0, 0, london)
	got, ok := Deadline(w, start, 7*time.Hour)
	if want := time.Date(2026, time.March, 29, 6, 0, 0, 0, london); !ok || !got.Equal(want) {
		t.Errorf("Deadline(7h) = %v, %v; want 06:00 BST (%v)", got.In(london), ok, want)
	}
	if _, ok := Deadline(w, start, 8*time.Hour); ok {
		t.Errorf("eight hours fit into a seven-hour night")
	}
	// Half an hour before the change to half an hour after it is one hour.
	a := time.Date(2026, time.March, 29, 0, 30, 0, 0, london)
	b := time.Date(2026, time.March, 29, 2, 30, 0, 0, london)
	if e := Elapsed(w, a, b); e != time.Hour {
		t.Errorf("Elapsed(00:30 GMT, 02:30 BST) = %s, want 1h", e)
	}

	// Office hours across the change: Friday 27 March 09:00-17:00 GMT is
	// 09:00-17:00 UTC, Monday 30 March 09:00-17:00 BST is 08:00-16:00 UTC.
	w = Normalize(weekdays(london, 9, 17).build(2026, time.March, 23, 14))
	start = time.Date(2026, time.March, 27, 16, 0, 0, 0, london)
	got, ok = Deadline(w, start, 8*time.Hour)
	if want := utc("2026-03-30T15:00:00Z"); !ok || !got.Equal(want) {
		t.Errorf("working day from Friday 16:00 GMT = %v, %v; want %v (16:00 BST)", got, ok, want)
	}
	if got.In(london).Hour() != 16 {
		t.Errorf("deadline in London wall time = %v, want 16:00", got.In(london))
	}
	// The covered time of that week is five full days.
	if e := Elapsed(w, time.Date(2026, time.March, 30, 0, 0, 0, 0, london), time.Date(2026, time.April, 4, 0, 0, 0, 0, london)); e != 40*time.Hour {
		t.Errorf("week after the change covered %s, want 40h", e)
	}
}

// Deadline and Elapsed are inverse to each other on random windows.
func TestDeadlineElapsedProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := utc("2026-01-05T00:00:00Z")
	randTime := func(span time.Duration) time.Time {
		return base.Add(time.Duration(rng.Int64N(int64(span))))
	}
	for round := range 300 {
		var ivs []Interval
		for range rng.IntN(12) {
			s := randTime(14 * 24 * time.Hour)
			ivs = append(ivs, Interval{Start: s, End: s.Add(time.Duration(rng.Int64N(int64(10 * time.Hour))))})
		}
		w := Normalize(ivs)
		for range 20 {
			s := randTime(15 * 24 * time.Hour)
			tt := s.Add(time.Duration(rng.Int64N(int64(5 * 24 * time.Hour))))
			e := Elapsed(w, s, tt)
			if e < 0 || e > tt.Sub(s) {
				t.Fatalf("round %d: Elapsed(%v, %v) = %s out of range", round, s, tt, e)
			}
			dl, ok := Deadline(w, s, e)
			if !ok {
				t.Fatalf("round %d: Deadline(%v, Elapsed=%s) not found although reached by %v", round, s, e, tt)
			}
			if dl.After(tt) {
				t.Fatalf("round %d: Deadline(s, Elapsed(s, t)) = %v after t = %v", round, dl, tt)
			}
			if got := Elapsed(w, s, dl); got != e {
				t.Fatalf("round %d: Elapsed(s, Deadline(s, %s)) = %s", round, e, got)
			}
			d := time.Duration(rng.Int64N(int64(20 * time.Hour)))
			if dl, ok := Deadline(w, s, d); ok {
				if got := Elapsed(w, s, dl); got != d {
					t.Fatalf("round %d: Elapsed(s, Deadline(s, %s)) = %s", round, d, got)
				}
				if d > 0 && !w.Covers(dl.Add(-time.Nanosecond)) {
					t.Fatalf("round %d: deadline %v does not end covered time", round, dl)
				}
			} else if total := Elapsed(w, s, w.End()); total >= d {
				t.Fatalf("round %d: Deadline(%s) false although %s remain", round, d, total)
			}
		}
	}
}

// yearOfWindows is a year of weekday office hours in London and New York.
func yearOfWindows(b testing.TB) Windows {
	london, newYork := zone(b, "Europe/London"), zone(b, "America/New_York")
	ivs := weekdays(london, 9, 17).build(2026, time.January, 1, 365)
	ivs = append(ivs, weekdays(newYork, 9, 17).build(2026, time.January, 1, 365)...)
	return Normalize(ivs)
}

func BenchmarkDeadline(b *testing.B) {
	w := yearOfWindows(b)
	starts := make([]time.Time, 1024)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range starts {
		starts[i] = utc("2026-01-01T00:00:00Z").Add(time.Duration(rng.Int64N(int64(360 * 24 * time.Hour))))
	}
	for _, bc := range []struct {
		name string
		d    time.Duration
	}{{"15m", 15 * time.Minute}, {"8h", 8 * time.Hour}, {"40h", 40 * time.Hour}} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				Deadline(w, starts[i%len(starts)], bc.d)
				i++
			}
			b.ReportMetric(float64(len(w)), "windows")
		})
	}
}

func BenchmarkElapsedWeek(b *testing.B) {
	w := yearOfWindows(b)
	from := utc("2026-06-01T00:00:00Z")
	to := from.Add(7 * 24 * time.Hour)
	for b.Loop() {
		Elapsed(w, from, to)
	}
}
