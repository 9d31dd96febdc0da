// Package holiday reads public-holiday calendars for the organisation file:
// a country or region code ("GB", "US", "DE-BY", "AU-NSW"), whose days come
// from github.com/rickar/cal/v2, or an iCalendar file's events. A calendar
// is a set of whole days; whose day it is (midnight to midnight in which
// zone) is the caller's business: rotation reads a person's holidays in
// the person's time zone.
package holiday

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/rickar/cal/v2"
)

// Years bounds the days a calendar knows: the same range the rotation
// engine computes shifts in.
const (
	FirstYear = 1970
	LastYear  = 2199
)

// Calendar is a set of holidays by day.
type Calendar struct {
	// Name is the code ("GB") or the calendar's id.
	Name string
	days map[int64]string
}

// Day is a civil date as days since 1970-01-01.
func Day(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

// On returns the holiday's name on day (days since 1970-01-01).
func (c *Calendar) On(day int64) (string, bool) {
	if c == nil {
		return "", false
	}
	name, ok := c.days[day]
	return name, ok
}

// Len is how many holidays the calendar has in FirstYear..LastYear.
func (c *Calendar) Len() int { return len(c.days) }

var codePattern = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)

// IsCode reports whether s is spelt like a country or region code
// ("GB", "DE-BY"); whether it is a known one is Code's answer.
func IsCode(s string) bool { return codePattern.MatchString(s) }

// Codes lists the known country and region codes, sorted.
func Codes() []string {
	out := make([]string, 0, len(countries))
	for c := range countries {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Check reports an error unless code is a known country or region code,
// without computing its days.
func Check(code string) error {
	_, err := lookup(code)
	return err
}

func lookup(code string) ([]*cal.Holiday, error) {
	if !IsCode(code) {
		return nil, fmt.Errorf("%q is not a country or region code (two capital letters, optionally -REGION: GB, US, DE-BY)", code)
	}
	hs, ok := countries[code]
	if !ok {
		country, _, _ := strings.Cut(code, "-")
		var near []string
		for _, c := range Codes() {
			if strings.HasPrefix(c, country) {
				near = append(near, c)
			}
		}
		if len(near) == 0 {
			return nil, fmt.Errorf("unknown country or region %q (known: %s)", code, strings.Join(Codes(), ", "))
		}
		return nil, fmt.Errorf("unknown country or region %q (known for %s: %s)", code, country, strings.Join(near, ", "))
	}
	return hs, nil
}

// Code returns the public holidays of a country or region code. An
// unknown code is an error listing what is known near it.
func Code(code string) (*Calendar, error) {
	hs, err := lookup(code)
	if err != nil {
		return nil, err
	}
	c := &Calendar{Name: code, days: map[int64]string{}}
	for _, h := range hs {
		if h.Type == cal.ObservanceOther {
			continue
		}
		for y := FirstYear; y <= LastYear; y++ {
			_, observed := h.Calc(y)
			if observed.IsZero() {
				continue
			}
			c.add(Day(observed.Year(), observed.Month(), observed.Day()), h.Name)
		}
	}
	return c, nil
}

func (c *Calendar) add(day int64, name string) {
	if prev, ok := c.days[day]; ok && prev != name {
		name = prev + ", " + name
	}
	c.days[day] = name
}

// Union is one calendar with the days of all of cs; nil without any.
func Union(name string, cs ...*Calendar) *Calendar {
	switch len(cs) {
	case 0:
		return nil
	case 1:
		return cs[0]
	}
	out := &Calendar{Name: name, days: map[int64]string{}}
	for _, c := range cs {
		for d, n := range c.days {
			out.add(d, n)
		}
	}
	return out
}
