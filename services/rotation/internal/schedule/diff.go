package schedule

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
)

// Diff describes what changes from old to new, one line per change:
// "+ person alice", "- rotation x", "~ rotation hero: participants [a b] -> [b a]".
// Lines are sorted; the result is empty when nothing changed. A nil
// config is empty.
func Diff(old, new *Config) []string {
	if old == nil {
		old = &Config{}
	}
	if new == nil {
		new = &Config{}
	}
	var out []string
	out = diffItems(out, "person", old.People, new.People, func(p Person) string { return p.ID }, func(a, b Person) []field {
		return []field{
			{"name", a.Name, b.Name}, {"email", a.Email, b.Email}, {"emails", fmt.Sprint(a.Emails), fmt.Sprint(b.Emails)},
			{"slack", a.Slack, b.Slack}, {"github", a.GitHub, b.GitHub},
			{"team", a.Team, b.Team}, {"timezone", a.Timezone, b.Timezone},
			{"working_hours", a.WorkingHours, b.WorkingHours},
			{"time_off", timeOffText(a.TimeOff), timeOffText(b.TimeOff)},
			{"holidays", namesText(a.Holidays), namesText(b.Holidays)},
		}
	}, nil)
	out = diffItems(out, "holidays", old.Calendars, new.Calendars, func(c Calendar) string { return c.ID }, func(a, b Calendar) []field {
		return []field{{"note", a.Note, b.Note}, {"ical", calendarText(a.ICal), calendarText(b.ICal)}}
	}, nil)
	out = diffItems(out, "rotation", old.Rotations, new.Rotations, func(r Rotation) string { return r.ID }, func(a, b Rotation) []field {
		return []field{
			{"name", a.Name, b.Name}, {"type", a.Kind.String(), b.Kind.String()},
			{"length", fmt.Sprint(lengthOrOne(a.Length)), fmt.Sprint(lengthOrOne(b.Length))},
			{"start", a.Start, b.Start}, {"timezone", a.Timezone, b.Timezone},
			{"participants", fmt.Sprint(a.Participants), fmt.Sprint(b.Participants)},
		}
	}, nil)
	out = diffItems(out, "team", old.Teams, new.Teams, func(t Team) string { return t.ID }, func(a, b Team) []field {
		return []field{{"name", a.Name, b.Name}, {"secondary", a.Secondary, b.Secondary}}
	}, nil)
	out = diffItems(out, "override", old.Overrides, new.Overrides, func(o Override) string { return o.ID }, func(a, b Override) []field {
		return []field{{"", a.describe(), b.describe()}, {"note", a.Note, b.Note}}
	}, func(o Override) string { return " (" + o.describe() + ")" })
	for _, f := range []field{
		{"hero", old.Support.Hero, new.Support.Hero},
		{"hero_is_team_secondary", fmt.Sprint(old.Support.HeroIsTeamSecondary), fmt.Sprint(new.Support.HeroIsTeamSecondary)},
		{"catchers", fmt.Sprint(old.Support.Catchers), fmt.Sprint(new.Support.Catchers)},
		{"catcher_pool", fmt.Sprint(old.Support.CatcherPool), fmt.Sprint(new.Support.CatcherPool)},
		{"pings_follow_working_hours", fmt.Sprint(old.Support.PingsFollowWorkingHours), fmt.Sprint(new.Support.PingsFollowWorkingHours)},
	} {
		if f.old != f.new {
			out = append(out, "~ support: "+f.name+" "+show(f.old)+" -> "+show(f.new))
		}
	}
	sort.Strings(out)
	return out
}

type field struct{ name, old, new string }

func diffItems[T any](out []string, kind string, old, new []T, id func(T) string, fields func(a, b T) []field, detail func(T) string) []string {
	if detail == nil {
		detail = func(T) string { return "" }
	}
	before := map[string]T{}
	for _, x := range old {
		before[id(x)] = x
	}
	after := map[string]bool{}
	for _, x := range new {
		key := id(x)
		after[key] = true
		prev, ok := before[key]
		if !ok {
			out = append(out, "+ "+kind+" "+key+detail(x))
			continue
		}
		for _, f := range fields(prev, x) {
			if f.old == f.new {
				continue
			}
			line := "~ " + kind + " " + key + ": "
			if f.name != "" {
				line += f.name + " "
			}
			out = append(out, line+show(f.old)+" -> "+show(f.new))
		}
	}
	for _, x := range old {
		if !after[id(x)] {
			out = append(out, "- "+kind+" "+id(x)+detail(x))
		}
	}
	return out
}

func show(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func lengthOrOne(n int) int {
	if n == 0 {
		return 1
	}
	return n
}

func timeOffText(offs []TimeOff) string {
	parts := make([]string, 0, len(offs))
	for _, o := range offs {
		parts = append(parts, o.Start+".."+o.End)
	}
	if len(parts) == 0 {
		return ""
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func namesText(names Names) string {
	if len(names) == 0 {
		return ""
	}
	return "[" + strings.Join(names, " ") + "]"
}

// calendarText stands for an iCalendar text in a diff line: its size and
// digest, not the text itself.
func calendarText(ical string) string {
	if ical == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(ical))
	return fmt.Sprintf("%d bytes, sha256 %x", len(ical), sum[:6])
}
