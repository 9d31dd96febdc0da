package schedule

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ICalRotation renders the rotation's shifts overlapping [from, to) as an
// RFC 5545 calendar (times in UTC). now is the DTSTAMP.
func (s *Schedule) ICalRotation(rotation string, from, to time.Time, now time.Time) ([]byte, error) {
	r, err := s.rotation(rotation)
	if err != nil {
		return nil, err
	}
	shifts, err := s.Shifts(rotation, from, to)
	if err != nil {
		return nil, err
	}
	name := r.Name
	if name == "" {
		name = r.ID
	}
	return s.ical("Sidekick: "+name, shifts, now), nil
}

// ICalPerson renders every shift the person holds in any rotation
// overlapping [from, to) as an RFC 5545 calendar. now is the DTSTAMP.
func (s *Schedule) ICalPerson(person string, from, to time.Time, now time.Time) ([]byte, error) {
	p, ok := s.Person(person)
	if !ok {
		return nil, fmt.Errorf("unknown person %q", person)
	}
	var mine []Shift
	for _, r := range s.rots {
		shifts, err := s.Shifts(r.ID, from, to)
		if err != nil {
			return nil, err
		}
		for _, sh := range shifts {
			if sh.Person == person {
				mine = append(mine, sh)
			}
		}
	}
	sort.SliceStable(mine, func(i, j int) bool { return mine[i].Start.Before(mine[j].Start) })
	name := p.Name
	if name == "" {
		name = p.ID
	}
	return s.ical("Sidekick: "+name+" on call", mine, now), nil
}

func (s *Schedule) ical(calName string, shifts []Shift, now time.Time) []byte {
	var b bytes.Buffer
	line := func(l string) {
		// Fold at 75 octets without splitting a UTF-8 sequence (RFC 5545 3.1).
		for len(l) > 75 {
			cut := 75
			for cut > 0 && l[cut]&0xC0 == 0x80 {
				cut--
			}
			b.WriteString(l[:cut])
			b.WriteString("\r\n ")
			l = l[cut:]
		}
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	stamp := now.UTC().Format("20060102T150405Z")
	line("BEGIN:VCALENDAR")
	line("VERSION:2.0")
	line("PRODID:-//Sidekick//rotation//EN")
	line("CALSCALE:GREGORIAN")
	line("METHOD:PUBLISH")
	line("X-WR-CALNAME:" + icalText(calName))
	for _, sh := range shifts {
		if sh.Start.IsZero() || sh.End.IsZero() {
			continue
		}
		who := sh.Person
		if p, ok := s.Person(sh.Person); ok && p.Name != "" {
			who = p.Name
		}
		summary := who + " on call: " + sh.Rotation
		desc := "Reason: " + sh.Reason.String()
		if sh.Scheduled != "" {
			summary += " (for " + sh.Scheduled + ")"
			desc += "; scheduled: " + sh.Scheduled
		}
		line("BEGIN:VEVENT")
		line(fmt.Sprintf("UID:%s-%s-%d@sidekick", sh.Rotation, sh.Person, sh.Start.Unix()))
		line("DTSTAMP:" + stamp)
		line("DTSTART:" + sh.Start.UTC().Format("20060102T150405Z"))
		line("DTEND:" + sh.End.UTC().Format("20060102T150405Z"))
		line("SUMMARY:" + icalText(summary))
		line("DESCRIPTION:" + icalText(desc))
		line("TRANSP:TRANSPARENT")
		line("END:VEVENT")
	}
	line("END:VCALENDAR")
	return b.Bytes()
}

var icalEscaper = strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\n", `\n`, "\r", "")

func icalText(s string) string { return icalEscaper.Replace(s) }
