package schedule

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Wall-clock arithmetic. A wall-clock reading (a date and a time of day in
// some zone) is held as "wall seconds": the seconds from 1970-01-01 00:00 to
// that reading on a clock that never changes offset, as if it were UTC.
// Adding hours, days or weeks to a wall reading is then plain addition, and
// resolve turns a reading back into an instant in a zone, deciding what
// happens to readings that a DST change skips or repeats.

const (
	secondsPerDay = 86400
	// zoneMargin is how far from a zone transition a candidate instant must
	// be for resolve to take the fast path: no UTC offset, and no offset
	// jump (Samoa skipped a whole day), is larger than this.
	zoneMargin = 2 * secondsPerDay
)

// daysFromCivil returns the day number of a proleptic Gregorian date,
// 1970-01-01 being day 0 (Howard Hinnant's algorithm).
func daysFromCivil(y int64, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int64) (y int64, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

func daysIn(y int64, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// wallSeconds builds a wall reading from its parts.
func wallSeconds(y int64, m, d, sec int) int64 {
	return daysFromCivil(y, m, d)*secondsPerDay + int64(sec)
}

// weekday of a wall reading, Sunday = 0 (1970-01-01 was a Thursday).
func wallWeekday(w int64) int { return int(floorMod(floorDiv(w, secondsPerDay)+4, 7)) }

// offsetAt returns loc's UTC offset in seconds at instant u.
func offsetAt(loc *time.Location, u int64) int64 {
	_, off := time.Unix(u, 0).In(loc).Zone()
	return int64(off)
}

// wallAt returns the wall reading of instant u in loc.
func wallAt(loc *time.Location, u int64) int64 { return u + offsetAt(loc, u) }

// resolve returns the instant (Unix seconds) that wall reading w names in
// loc. A reading repeated by a backward change takes its first occurrence;
// a reading skipped by a forward change moves to the first instant after
// the gap (the transition itself).
func resolve(loc *time.Location, w int64) int64 {
	c := w - offsetAt(loc, w)
	t := time.Unix(c, 0).In(loc)
	if _, off := t.Zone(); w-int64(off) == c {
		start, end := t.ZoneBounds()
		if (start.IsZero() || c-start.Unix() >= zoneMargin) && (end.IsZero() || end.Unix()-c > zoneMargin) {
			return c
		}
	}
	return resolveNearTransition(loc, w)
}

// resolveNearTransition is resolve's careful path: it lists the zones in
// force within a few days of w and checks each candidate offset.
func resolveNearTransition(loc *time.Location, w int64) int64 {
	type zone struct {
		start, end, off int64
	}
	var buf [8]zone
	zones := buf[:0]
	hi := w + 3*secondsPerDay
	t := time.Unix(w-3*secondsPerDay, 0).In(loc)
	for {
		_, off := t.Zone()
		s, e := t.ZoneBounds()
		z := zone{start: math.MinInt64, end: math.MaxInt64, off: int64(off)}
		if !s.IsZero() {
			z.start = s.Unix()
		}
		if !e.IsZero() {
			z.end = e.Unix()
		}
		zones = append(zones, z)
		if z.end >= hi || len(zones) == cap(buf) {
			break
		}
		t = time.Unix(z.end, 0).In(loc)
	}
	// Zones are in time order, so the first valid candidate is the first
	// occurrence.
	for _, z := range zones {
		if c := w - z.off; c >= z.start && c < z.end {
			return c
		}
	}
	for i := 0; i+1 < len(zones); i++ {
		tr := zones[i].end
		if w-zones[i].off >= tr && w-zones[i+1].off < tr {
			return tr // w lies in the gap this transition opens
		}
	}
	return w - zones[0].off
}

// LocalTime is a wall-clock reading without a zone, as written in the
// configuration: "2026-01-05 09:00".
type LocalTime struct {
	Year                int
	Month               time.Month
	Day, Hour, Min, Sec int
}

// ParseLocalTime parses "YYYY-MM-DD HH:MM[:SS]" (a "T" may separate date
// and time; a bare date means midnight). A zone or offset is refused: the
// rotation's time zone gives the reading its meaning.
func ParseLocalTime(s string) (LocalTime, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return LocalTime{Year: t.Year(), Month: t.Month(), Day: t.Day(), Hour: t.Hour(), Min: t.Minute(), Sec: t.Second()}, nil
		}
	}
	return LocalTime{}, fmt.Errorf("%q is not a local time like \"2026-01-05 09:00\" (no zone: the rotation's timezone applies)", s)
}

// String formats l as "YYYY-MM-DD HH:MM" (with seconds when not zero).
func (l LocalTime) String() string {
	s := fmt.Sprintf("%04d-%02d-%02d %02d:%02d", l.Year, int(l.Month), l.Day, l.Hour, l.Min)
	if l.Sec != 0 {
		s += fmt.Sprintf(":%02d", l.Sec)
	}
	return s
}

func (l LocalTime) wall() int64 {
	return wallSeconds(int64(l.Year), int(l.Month), l.Day, l.Hour*3600+l.Min*60+l.Sec)
}

// In returns the instant l names in loc, with the same rules as rotation
// handoffs: a skipped reading moves to the end of the gap, a repeated one
// takes its first occurrence.
func (l LocalTime) In(loc *time.Location) time.Time {
	return time.Unix(resolve(loc, l.wall()), 0).In(loc)
}

// parseDate parses "YYYY-MM-DD" into a day number.
func parseDate(s string) (int64, error) {
	t, err := time.Parse("2006-01-02", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a date like 2026-03-02", s)
	}
	return daysFromCivil(int64(t.Year()), int(t.Month()), t.Day()), nil
}
