package holiday

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseICal reads the events of an iCalendar file (RFC 5545) as holidays:
// every day an event touches is a holiday named by its SUMMARY. DTSTART
// is a date (VALUE=DATE, the usual form for holidays) or a date-time,
// whose date is taken; DTEND, when given, is exclusive; an event repeats
// with RRULE:FREQ=YEARLY (COUNT and UNTIL honoured). Anything else that
// would change which days are holidays (another frequency, RDATE, EXDATE)
// is an error rather than a silently wrong calendar. Errors name the line
// of data they are on.
func ParseICal(name, data string) (*Calendar, error) {
	c := &Calendar{Name: name, days: map[int64]string{}}
	lines := unfold(data)
	if len(lines) == 0 || !strings.EqualFold(lines[0].text, "BEGIN:VCALENDAR") {
		return nil, errors.New("ical: line 1: not an iCalendar file (want BEGIN:VCALENDAR)")
	}
	var (
		ev     *event
		errs   []error
		events int
		ended  bool
	)
	for _, l := range lines[1:] {
		prop, params, value := splitProp(l.text)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("ical: line %d: "+format, append([]any{l.n}, args...)...))
		}
		switch {
		case prop == "END" && strings.EqualFold(value, "VCALENDAR"):
			ended = true
		case prop == "BEGIN" && strings.EqualFold(value, "VEVENT"):
			if ev != nil {
				bad("BEGIN:VEVENT inside an event")
			}
			ev = &event{line: l.n}
		case prop == "END" && strings.EqualFold(value, "VEVENT"):
			if ev == nil {
				bad("END:VEVENT without BEGIN:VEVENT")
				continue
			}
			if err := ev.addTo(c); err != nil {
				errs = append(errs, fmt.Errorf("ical: event on line %d: %w", ev.line, err))
			}
			events++
			ev = nil
		case ev == nil:
			// Calendar properties (PRODID, VERSION, X-WR-CALNAME) and other
			// components (VTIMEZONE) say nothing about which days are off.
		case prop == "DTSTART":
			d, err := icalDate(value)
			if err != nil {
				bad("DTSTART: %v", err)
			}
			ev.start, ev.hasStart = d, err == nil
			ev.dateOnly = strings.Contains(strings.ToUpper(params), "VALUE=DATE") && !strings.Contains(strings.ToUpper(params), "VALUE=DATE-TIME")
		case prop == "DTEND":
			d, err := icalDate(value)
			if err != nil {
				bad("DTEND: %v", err)
			}
			ev.end, ev.hasEnd = d, err == nil
			ev.endHasTime = strings.Contains(value, "T")
		case prop == "SUMMARY":
			ev.summary = strings.NewReplacer(`\,`, ",", `\;`, ";", `\n`, " ", `\\`, `\`).Replace(value)
		case prop == "RRULE":
			if err := ev.rrule(value); err != nil {
				bad("RRULE: %v", err)
			}
		case prop == "RDATE" || prop == "EXDATE":
			bad("%s is not supported: list each holiday as an event of its own", prop)
		}
	}
	switch {
	case ev != nil:
		errs = append(errs, fmt.Errorf("ical: event on line %d has no END:VEVENT", ev.line))
	case !ended:
		errs = append(errs, errors.New("ical: no END:VCALENDAR: the file is cut short"))
	case events == 0 && len(errs) == 0:
		errs = append(errs, errors.New("ical: no events: a holiday calendar lists its days as VEVENTs"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

type line struct {
	n    int
	text string
}

// unfold joins continuation lines (those starting with a space or a tab)
// and drops empty ones, keeping each logical line's first line number.
func unfold(data string) []line {
	var out []line
	for i, raw := range strings.Split(strings.ReplaceAll(data, "\r\n", "\n"), "\n") {
		if (strings.HasPrefix(raw, " ") || strings.HasPrefix(raw, "\t")) && len(out) > 0 {
			out[len(out)-1].text += raw[1:]
			continue
		}
		if raw = strings.TrimSpace(raw); raw != "" {
			out = append(out, line{n: i + 1, text: raw})
		}
	}
	return out
}

// splitProp splits "DTSTART;VALUE=DATE:20261225" into the upper-case
// property name, its parameters and its value.
func splitProp(s string) (prop, params, value string) {
	head, value, _ := strings.Cut(s, ":")
	prop, params, _ = strings.Cut(head, ";")
	return strings.ToUpper(strings.TrimSpace(prop)), params, strings.TrimSpace(value)
}

// icalDate reads the date of a DATE ("20261225") or DATE-TIME
// ("20261225T000000", "…Z") value as days since 1970-01-01.
func icalDate(value string) (int64, error) {
	date, _, _ := strings.Cut(value, "T")
	if len(date) != 8 {
		return 0, fmt.Errorf("%q is not a date (YYYYMMDD)", value)
	}
	t, err := time.Parse("20060102", date)
	if err != nil {
		return 0, fmt.Errorf("%q is not a date (YYYYMMDD)", value)
	}
	return t.Unix() / 86400, nil
}

type event struct {
	line                 int
	start, end           int64
	hasStart, hasEnd     bool
	dateOnly, endHasTime bool
	summary              string
	yearly               bool
	count                int
	until                int64
	hasUntil             bool
}

func (e *event) rrule(v string) error {
	for _, part := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(part, "=")
		switch strings.ToUpper(k) {
		case "FREQ":
			if !strings.EqualFold(val, "YEARLY") {
				return fmt.Errorf("FREQ=%s: holidays repeat yearly (FREQ=YEARLY); list other days as events of their own", val)
			}
			e.yearly = true
		case "COUNT":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 {
				return fmt.Errorf("COUNT=%s is not a positive number", val)
			}
			e.count = n
		case "UNTIL":
			d, err := icalDate(val)
			if err != nil {
				return fmt.Errorf("UNTIL: %w", err)
			}
			e.until, e.hasUntil = d, true
		case "INTERVAL":
			if val != "1" {
				return fmt.Errorf("INTERVAL=%s is not supported", val)
			}
		case "BYMONTH", "BYMONTHDAY", "WKST":
			// The start date already says them for a yearly rule.
		default:
			return fmt.Errorf("%s is not supported (FREQ=YEARLY with COUNT or UNTIL is)", k)
		}
	}
	if !e.yearly {
		return errors.New("FREQ is required (FREQ=YEARLY)")
	}
	return nil
}

// addTo adds the event's days, repeated yearly when it says so.
func (e *event) addTo(c *Calendar) error {
	if !e.hasStart {
		return errors.New("no DTSTART")
	}
	days := int64(1)
	if e.hasEnd {
		days = e.end - e.start
		if e.endHasTime || !e.dateOnly {
			days++ // a date-time end falls on its own day, which is off too
		}
		if days < 1 {
			return errors.New("DTEND is before DTSTART")
		}
		if days > 366 {
			return errors.New("lasts more than a year: that is not a holiday")
		}
	}
	name := e.summary
	if name == "" {
		name = "holiday"
	}
	first := time.Unix(e.start*86400, 0).UTC()
	for n := 0; ; n++ {
		y := first.Year() + n
		if y > LastYear || (e.count > 0 && n >= e.count) || (n > 0 && !e.yearly) {
			break
		}
		// Yearly on the start's month and day; 29 February only in leap years.
		t := time.Date(y, first.Month(), first.Day(), 0, 0, 0, 0, time.UTC)
		if t.Day() != first.Day() {
			continue
		}
		d := t.Unix() / 86400
		if e.hasUntil && d > e.until {
			break
		}
		for i := range days {
			c.add(d+i, name)
		}
	}
	return nil
}
