package schedule

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

const minutesPerWeek = 7 * 24 * 60

// hoursRange is one working stretch: a weekday (Sunday = 0) and minutes
// from that day's midnight; end may pass 24:00 for a stretch running
// overnight.
type hoursRange struct {
	day        int
	start, end int
}

// weekHours is a parsed working-hours specification: the ranges, and a
// bit per minute of the week for O(1) "is this person working" checks.
type weekHours struct {
	ranges []hoursRange
	bits   [(minutesPerWeek + 63) / 64]uint64
}

func (h *weekHours) set(minute int) {
	minute %= minutesPerWeek
	h.bits[minute/64] |= 1 << (minute % 64)
}

// at reports whether wall reading w (in the person's zone) is inside working
// hours.
func (h *weekHours) at(w int64) bool {
	minute := wallWeekday(w)*1440 + int(floorMod(w, secondsPerDay)/60)
	return h.bits[minute/64]&(1<<(minute%64)) != 0
}

var (
	dayNames = map[string]int{
		"sun": 0, "sunday": 0, "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2,
		"wed": 3, "wednesday": 3, "thu": 4, "thur": 4, "thurs": 4, "thursday": 4,
		"fri": 5, "friday": 5, "sat": 6, "saturday": 6,
	}
	timeRangeRE = regexp.MustCompile(`^(.*?)\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$`)
)

// parseHours parses working hours such as "Mon-Fri 09:00-17:30" or
// "Mon-Thu 09:00-17:00, Fri 09:00-13:00". Items are separated by commas or
// semicolons; days are a name, a range (which may wrap: "Sun-Thu",
// "Fri-Mon"), several joined by "+", or "daily", "weekdays", "weekends";
// an item without a time takes the next item's ("Mon, Wed 09:00-12:00").
// An end at or before the start runs past midnight ("22:00-06:00"); "24:00"
// is the end of the day; "always" is every minute. Empty means never.
func parseHours(spec string) (*weekHours, error) {
	h := &weekHours{}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return h, nil
	}
	if strings.EqualFold(spec, "always") || spec == "24/7" || strings.EqualFold(spec, "24x7") {
		for d := range 7 {
			h.ranges = append(h.ranges, hoursRange{day: d, start: 0, end: 1440})
		}
		h.fill()
		return h, nil
	}
	var pending []int
	items := strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ';' })
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		m := timeRangeRE.FindStringSubmatch(item)
		if m == nil {
			days, err := parseDays(item)
			if err != nil {
				return nil, fmt.Errorf("working hours %q: %w", spec, err)
			}
			pending = append(pending, days...)
			continue
		}
		days := pending
		pending = nil
		if strings.TrimSpace(m[1]) != "" {
			d, err := parseDays(m[1])
			if err != nil {
				return nil, fmt.Errorf("working hours %q: %w", spec, err)
			}
			days = append(days, d...)
		}
		if len(days) == 0 {
			return nil, fmt.Errorf("working hours %q: %q names no days", spec, item)
		}
		start, err := clockMinutes(m[2], m[3])
		if err != nil {
			return nil, fmt.Errorf("working hours %q: %w", spec, err)
		}
		end, err := clockMinutes(m[4], m[5])
		if err != nil {
			return nil, fmt.Errorf("working hours %q: %w", spec, err)
		}
		if start == 1440 {
			return nil, fmt.Errorf("working hours %q: a range cannot start at 24:00", spec)
		}
		if end == start {
			return nil, fmt.Errorf("working hours %q: %q is empty", spec, item)
		}
		if end < start {
			end += 1440
		}
		for _, d := range days {
			h.ranges = append(h.ranges, hoursRange{day: d, start: start, end: end})
		}
	}
	if len(pending) > 0 {
		return nil, fmt.Errorf("working hours %q: days without a time range at the end", spec)
	}
	h.fill()
	return h, nil
}

func (h *weekHours) fill() {
	for _, r := range h.ranges {
		for m := r.start; m < r.end; m++ {
			h.set(r.day*1440 + m)
		}
	}
}

func clockMinutes(hh, mm string) (int, error) {
	hv, _ := strconv.Atoi(hh)
	mv, _ := strconv.Atoi(mm)
	if hv > 24 || mv > 59 || (hv == 24 && mv != 0) {
		return 0, fmt.Errorf("%s:%s is not a time of day", hh, mm)
	}
	return hv*60 + mv, nil
}

func parseDays(s string) ([]int, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "daily", "everyday", "every day":
		return []int{0, 1, 2, 3, 4, 5, 6}, nil
	case "weekdays":
		return []int{1, 2, 3, 4, 5}, nil
	case "weekends", "weekend":
		return []int{6, 0}, nil
	}
	var out []int
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '+' || r == '/' || r == ' ' }) {
		from, to, isRange := strings.Cut(part, "-")
		a, ok := dayNames[strings.TrimSpace(from)]
		if !ok {
			return nil, fmt.Errorf("%q is not a day of the week", from)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, ok := dayNames[strings.TrimSpace(to)]
		if !ok {
			return nil, fmt.Errorf("%q is not a day of the week", to)
		}
		for d := a; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == b {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names no days", s)
	}
	return out, nil
}
