package schedule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sidekickhq/sidekick/services/rotation/internal/holiday"
)

// Config is the part of the organisation file the rotation engine owns.
type Config struct {
	People    []Person
	Rotations []Rotation
	Teams     []Team
	Support   Support
	Overrides []Override
	// Calendars are the organisation's own holiday calendars (the
	// `holidays` section), which people name in Person.Holidays.
	Calendars []Calendar
}

// Calendar is a holiday calendar of the organisation's own: the events of
// an iCalendar file, pasted into the organisation file.
type Calendar struct {
	ID string `yaml:"id"`
	// ICal is the iCalendar (RFC 5545) text; each day an event touches is
	// a holiday.
	ICal string `yaml:"ical"`
	Note string `yaml:"note"`
}

// Person is somebody who can be on call.
type Person struct {
	ID    string `yaml:"id"`
	Name  string `yaml:"name"`
	Email string `yaml:"email"`
	// Emails are more addresses the person writes from (an alias, another
	// domain); with Email they make the person's email identity.
	Emails []string `yaml:"emails"`
	// Slack is the person's Slack member id (U…).
	Slack string `yaml:"slack"`
	// GitHub is the person's GitHub login.
	GitHub string `yaml:"github"`
	Team   string `yaml:"team"`
	// Timezone is an IANA zone name; working hours and time off are read in it.
	Timezone string `yaml:"timezone"`
	// WorkingHours such as "Mon-Fri 09:00-17:30" or
	// "Mon-Thu 09:00-17:00, Fri 09:00-13:00", in Timezone.
	WorkingHours string    `yaml:"working_hours"`
	TimeOff      []TimeOff `yaml:"time_off"`
	// Holidays are the person's public-holiday calendars: country or
	// region codes ("GB", "DE-BY") and ids of calendars in the holidays
	// section. A holiday is a whole day off in the person's zone.
	Holidays Names `yaml:"holidays"`
}

// Names is a list of names written as one ("GB") or as a list ([GB, acme]).
type Names []string

// UnmarshalYAML reads a scalar or a sequence of scalars.
func (n *Names) UnmarshalYAML(node *yaml.Node) error {
	switch node.Kind {
	case yaml.ScalarNode:
		if v := strings.TrimSpace(node.Value); v != "" {
			*n = Names{v}
		}
		return nil
	case yaml.SequenceNode:
		var out []string
		if err := node.Decode(&out); err != nil {
			return err
		}
		*n = out
		return nil
	}
	return fmt.Errorf("line %d: want a name or a list of names", node.Line)
}

// identities are the person's channel identities, each as "kind value"
// in lower case ("email alice@example.com", "slack u0alice", "github
// alice-a").
func (p Person) identities() []string {
	var out []string
	for _, e := range append([]string{p.Email}, p.Emails...) {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, "email "+strings.ToLower(e))
		}
	}
	if s := strings.TrimSpace(p.Slack); s != "" {
		out = append(out, "slack "+strings.ToLower(s))
	}
	if g := strings.TrimSpace(p.GitHub); g != "" {
		out = append(out, "github "+strings.ToLower(g))
	}
	return out
}

// TimeOff is an absence: whole days from Start to End inclusive
// ("2026-03-02"), in the person's time zone.
type TimeOff struct {
	Start string `yaml:"start"`
	End   string `yaml:"end"`
	Note  string `yaml:"note"`
}

// Kind is a rotation's shift unit.
type Kind int

// Rotation kinds. The zero Kind is invalid.
const (
	Hourly Kind = iota + 1
	Daily
	Weekly
	Monthly
)

var kindNames = map[Kind]string{Hourly: "hourly", Daily: "daily", Weekly: "weekly", Monthly: "monthly"}

// String returns the configuration spelling ("weekly").
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses "hourly", "daily", "weekly" or "monthly".
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("rotation type %q is not hourly, daily, weekly or monthly", s)
}

// UnmarshalYAML reads a Kind from its name.
func (k *Kind) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: rotation type must be a name", n.Line)
	}
	v, err := ParseKind(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*k = v
	return nil
}

// Rotation is an ordered list of participants taking shifts in turn.
type Rotation struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	Kind Kind   `yaml:"type"`
	// Length is the shift length in units of Kind (default 1).
	Length int `yaml:"length"`
	// Start is the first handoff, a wall-clock time in Timezone
	// ("2026-01-05 09:00"); participant 0 is on duty from it.
	Start        string   `yaml:"start"`
	Timezone     string   `yaml:"timezone"`
	Participants []string `yaml:"participants"`
}

// Team is an engineering team with its secondary on-call rotation.
type Team struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Secondary is the id of the team's secondary on-call rotation.
	Secondary string `yaml:"secondary"`
}

// Support configures the Support Hero.
type Support struct {
	// Hero is the id of the Support Hero rotation.
	Hero string
	// HeroIsTeamSecondary makes the hero their own team's secondary while
	// they are hero (ParseConfig defaults it to true).
	HeroIsTeamSecondary bool
	// Catchers turns follow-the-sun catchers on (ParseConfig defaults it to
	// true).
	Catchers bool
	// CatcherPool limits who may catch; empty means everybody.
	CatcherPool []string
	// PingsFollowWorkingHours makes the low route (who a ping reaches)
	// respect working hours: a catcher at work, or a wait for the next
	// working hour (ParseConfig defaults it to true). Off, a ping reaches
	// whoever a page reaches. The notifier follows the route, so this one
	// setting decides for `sidekick oncall` and for the pings alike.
	PingsFollowWorkingHours bool
}

// OverrideKind says what an override does.
type OverrideKind int

// Override kinds. The zero OverrideKind is invalid.
const (
	// Replace puts With on duty instead of Person.
	Replace OverrideKind = iota + 1
	// Add puts With on duty alongside whoever is.
	Add
	// Remove takes Person off duty.
	Remove
)

// String returns "replace", "add" or "remove".
func (k OverrideKind) String() string {
	switch k {
	case Replace:
		return "replace"
	case Add:
		return "add"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("OverrideKind(%d)", int(k))
}

// ParseOverrideKind parses "replace", "add" or "remove".
func ParseOverrideKind(s string) (OverrideKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "replace":
		return Replace, nil
	case "add":
		return Add, nil
	case "remove":
		return Remove, nil
	}
	return 0, fmt.Errorf("override kind %q is not replace, add or remove", s)
}

// Override changes who is on duty in a rotation during [Start, End):
// Replace Person with With, Add With, or Remove Person. The rotation order
// itself never changes.
type Override struct {
	ID       string
	Rotation string
	Kind     OverrideKind
	Person   string
	With     string
	Start    time.Time
	End      time.Time
	// SwapID is set on both sides of a swap.
	SwapID string
	Note   string
}

// describe is a one-line summary used by Diff and errors.
func (o Override) describe() string {
	var what string
	switch o.Kind {
	case Replace:
		what = "replace " + o.Person + " with " + o.With
	case Add:
		what = "add " + o.With
	case Remove:
		what = "remove " + o.Person
	default:
		what = o.Kind.String()
	}
	s := fmt.Sprintf("%s %s %s..%s", o.Rotation, what, o.Start.UTC().Format(time.RFC3339), o.End.UTC().Format(time.RFC3339))
	if o.SwapID != "" {
		s += " swap " + o.SwapID
	}
	return s
}

// ConfigError is one problem in a configuration, naming the item.
type ConfigError struct {
	// Line in the YAML, 0 when unknown (a Config built in code).
	Line int
	// Item is e.g. "rotation hero" or "overrides[3]".
	Item string
	Msg  string
}

// Error formats the problem as "line N: item: message".
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Item, e.Msg)
	}
	return e.Item + ": " + e.Msg
}

// The YAML shapes of the sections whose Go form differs.
type (
	fileYAML struct {
		People    []Person       `yaml:"people"`
		Rotations []Rotation     `yaml:"rotations"`
		Teams     []Team         `yaml:"teams"`
		Support   supportYAML    `yaml:"support"`
		Overrides []overrideYAML `yaml:"overrides"`
		Holidays  []Calendar     `yaml:"holidays"`
		// Other services' sections (policies, intake, customers, …).
		Rest map[string]yaml.Node `yaml:",inline"`
	}
	supportYAML struct {
		Hero                string   `yaml:"hero"`
		HeroIsTeamSecondary *bool    `yaml:"hero_is_team_secondary"`
		Catchers            *bool    `yaml:"catchers"`
		CatcherPool         []string `yaml:"catcher_pool"`
		PingsByHours        *bool    `yaml:"pings_follow_working_hours"`
	}
	overrideYAML struct {
		ID       string `yaml:"id"`
		Rotation string `yaml:"rotation"`
		Start    string `yaml:"start"`
		End      string `yaml:"end"`
		Replace  string `yaml:"replace"`
		With     string `yaml:"with"`
		Add      string `yaml:"add"`
		Remove   string `yaml:"remove"`
		Swap     string `yaml:"swap"`
		Note     string `yaml:"note"`
	}
)

// lineIndex remembers where each item of each section starts in the YAML.
type lineIndex map[string][]int

func (l lineIndex) line(section string, i int) int {
	if l == nil || i < 0 || i >= len(l[section]) {
		return 0
	}
	return l[section][i]
}

func linesOf(data []byte) lineIndex {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	out := lineIndex{}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i].Value, doc.Content[i+1]
		if val.Kind == yaml.SequenceNode {
			for _, item := range val.Content {
				out[key] = append(out[key], item.Line)
			}
		} else {
			out[key] = []int{val.Line}
		}
	}
	return out
}

// ParseConfig decodes the organisation YAML and validates the sections the
// rotation engine owns (people, rotations, teams, support, overrides).
// Unknown top-level keys belong to other services and are ignored; an
// unknown field inside an owned section is an error naming its line.
// Override times are RFC 3339, or a local "2026-02-02 09:00" read in the
// rotation's time zone; an override without an id gets one derived from its
// content.
func ParseConfig(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f fileYAML
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parse configuration: %w", err)
	}
	lines := linesOf(data)
	c := &Config{People: f.People, Rotations: f.Rotations, Teams: f.Teams, Calendars: f.Holidays}
	c.Support = Support{
		Hero: f.Support.Hero, HeroIsTeamSecondary: true, Catchers: true,
		CatcherPool: f.Support.CatcherPool, PingsFollowWorkingHours: true,
	}
	if f.Support.PingsByHours != nil {
		c.Support.PingsFollowWorkingHours = *f.Support.PingsByHours
	}
	if f.Support.HeroIsTeamSecondary != nil {
		c.Support.HeroIsTeamSecondary = *f.Support.HeroIsTeamSecondary
	}
	if f.Support.Catchers != nil {
		c.Support.Catchers = *f.Support.Catchers
	}
	var errs []error
	for i, oy := range f.Overrides {
		o, err := oy.toOverride(c)
		if err != nil {
			errs = append(errs, &ConfigError{Line: lines.line("overrides", i), Item: fmt.Sprintf("overrides[%d]", i), Msg: err.Error()})
			continue
		}
		c.Overrides = append(c.Overrides, o)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := c.validate(lines); err != nil {
		return nil, err
	}
	return c, nil
}

func (oy overrideYAML) toOverride(c *Config) (Override, error) {
	o := Override{ID: oy.ID, Rotation: oy.Rotation, SwapID: oy.Swap, Note: oy.Note}
	n := 0
	if oy.Replace != "" {
		n++
		o.Kind, o.Person, o.With = Replace, oy.Replace, oy.With
		if oy.With == "" {
			return o, errors.New("replace needs with")
		}
	}
	if oy.Add != "" {
		n++
		o.Kind, o.With = Add, oy.Add
	}
	if oy.Remove != "" {
		n++
		o.Kind, o.Person = Remove, oy.Remove
	}
	if n != 1 {
		return o, errors.New("exactly one of replace (with with), add or remove is required")
	}
	if oy.With != "" && o.Kind != Replace {
		return o, errors.New("with goes only with replace")
	}
	var loc *time.Location
	for _, r := range c.Rotations {
		if r.ID == oy.Rotation {
			loc, _ = time.LoadLocation(r.Timezone)
		}
	}
	var err error
	if o.Start, err = parseInstant(oy.Start, loc); err != nil {
		return o, fmt.Errorf("start: %w", err)
	}
	if o.End, err = parseInstant(oy.End, loc); err != nil {
		return o, fmt.Errorf("end: %w", err)
	}
	if o.ID == "" {
		sum := sha256.Sum256([]byte(o.describe()))
		o.ID = "cfg-" + hex.EncodeToString(sum[:6])
	}
	return o, nil
}

func parseInstant(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	l, err := ParseLocalTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a local time", s)
	}
	if loc == nil {
		return time.Time{}, fmt.Errorf("%q has no zone and the rotation's timezone is unknown", s)
	}
	return l.In(loc), nil
}

// Validate checks references and values and returns every problem found,
// each naming the offending item.
func (c *Config) Validate() error { return c.validate(nil) }

func (c *Config) validate(lines lineIndex) error {
	var errs []error
	bad := func(section string, i int, item, format string, args ...any) {
		errs = append(errs, &ConfigError{Line: lines.line(section, i), Item: item, Msg: fmt.Sprintf(format, args...)})
	}
	people := map[string]bool{}
	teams := map[string]bool{}
	for _, t := range c.Teams {
		teams[t.ID] = true
	}
	calendars := map[string]bool{}
	for i, cal := range c.Calendars {
		item := "holidays " + cal.ID
		switch {
		case cal.ID == "":
			bad("holidays", i, fmt.Sprintf("holidays[%d]", i), "id is required")
			continue
		case holiday.IsCode(cal.ID):
			bad("holidays", i, item, "id %q looks like a country code; give the calendar a name of its own", cal.ID)
		case calendars[cal.ID]:
			bad("holidays", i, item, "defined twice")
		}
		calendars[cal.ID] = true
		if strings.TrimSpace(cal.ICal) == "" {
			bad("holidays", i, item, "ical is required: the iCalendar file's text")
		} else if _, err := holiday.ParseICal(cal.ID, cal.ICal); err != nil {
			bad("holidays", i, item, "%v", err)
		}
	}
	// Each channel identity names one person: triage maps a staff
	// author's Slack id, address or GitHub login to the person by it.
	identities := map[string]string{}
	for i, p := range c.People {
		item := "person " + p.ID
		switch {
		case p.ID == "":
			bad("people", i, fmt.Sprintf("people[%d]", i), "id is required")
			continue
		case people[p.ID]:
			bad("people", i, item, "defined twice")
		}
		people[p.ID] = true
		for _, id := range p.identities() {
			if other, ok := identities[id]; ok && other != p.ID {
				bad("people", i, item, "%s is also %s's", id, other)
			}
			identities[id] = p.ID
		}
		if p.Team != "" && !teams[p.Team] {
			bad("people", i, item, "unknown team %q", p.Team)
		}
		if _, err := loadZone(p.Timezone); err != nil {
			bad("people", i, item, "%v", err)
		}
		if _, err := parseHours(p.WorkingHours); err != nil {
			bad("people", i, item, "%v", err)
		}
		for _, h := range p.Holidays {
			switch {
			case holiday.IsCode(h):
				if err := holiday.Check(h); err != nil {
					bad("people", i, item, "holidays: %v", err)
				}
			case !calendars[h]:
				bad("people", i, item, "holidays: %q is neither a country or region code (GB, US, DE-BY) nor a calendar of the holidays section", h)
			}
		}
		for j, off := range p.TimeOff {
			a, err1 := parseDate(off.Start)
			b, err2 := parseDate(off.End)
			switch {
			case err1 != nil:
				bad("people", i, item, "time_off[%d] start: %v", j, err1)
			case err2 != nil:
				bad("people", i, item, "time_off[%d] end: %v", j, err2)
			case b < a:
				bad("people", i, item, "time_off[%d] ends (%s) before it starts (%s)", j, off.End, off.Start)
			}
		}
	}
	rotations := map[string]bool{}
	for i, r := range c.Rotations {
		item := "rotation " + r.ID
		switch {
		case r.ID == "":
			bad("rotations", i, fmt.Sprintf("rotations[%d]", i), "id is required")
			continue
		case rotations[r.ID]:
			bad("rotations", i, item, "defined twice")
		}
		rotations[r.ID] = true
		if _, ok := kindNames[r.Kind]; !ok {
			bad("rotations", i, item, "type must be hourly, daily, weekly or monthly")
		}
		if r.Length < 0 {
			bad("rotations", i, item, "length %d is negative", r.Length)
		}
		if _, err := ParseLocalTime(r.Start); err != nil {
			bad("rotations", i, item, "start: %v", err)
		}
		if _, err := loadZone(r.Timezone); err != nil {
			bad("rotations", i, item, "%v", err)
		}
		if len(r.Participants) == 0 {
			bad("rotations", i, item, "no participants")
		}
		seen := map[string]bool{}
		for _, id := range r.Participants {
			if !people[id] {
				bad("rotations", i, item, "unknown participant %q", id)
			}
			if seen[id] {
				bad("rotations", i, item, "participant %q listed twice", id)
			}
			seen[id] = true
		}
	}
	seenTeams := map[string]bool{}
	for i, t := range c.Teams {
		item := "team " + t.ID
		if t.ID == "" {
			bad("teams", i, fmt.Sprintf("teams[%d]", i), "id is required")
			continue
		}
		if seenTeams[t.ID] {
			bad("teams", i, item, "defined twice")
		}
		seenTeams[t.ID] = true
		switch {
		case t.Secondary == "":
			bad("teams", i, item, "secondary rotation is required")
		case !rotations[t.Secondary]:
			bad("teams", i, item, "secondary rotation %q is not defined", t.Secondary)
		}
	}
	if h := c.Support.Hero; h != "" && !rotations[h] {
		bad("support", 0, "support", "hero rotation %q is not defined", h)
	}
	for _, id := range c.Support.CatcherPool {
		if !people[id] {
			bad("support", 0, "support", "unknown catcher %q", id)
		}
	}
	byID := map[string]Override{}
	for i, o := range c.Overrides {
		item := fmt.Sprintf("override %s", o.ID)
		if o.ID == "" {
			item = fmt.Sprintf("overrides[%d]", i)
		}
		if prev, ok := byID[o.ID]; ok && o.ID != "" && !sameOverride(prev, o) {
			bad("overrides", i, item, "id used by a different override")
		}
		byID[o.ID] = o
		if err := checkOverrideShape(o, rotations, people); err != nil {
			bad("overrides", i, item, "%v", err)
		}
	}
	// Two overrides taking the same person off the same rotation at the
	// same time contradict each other (unless they say the same thing, as
	// a swap applied twice does).
	var takers []int
	for i, o := range c.Overrides {
		if o.Kind == Replace || o.Kind == Remove {
			takers = append(takers, i)
		}
	}
	sort.SliceStable(takers, func(x, y int) bool {
		a, b := c.Overrides[takers[x]], c.Overrides[takers[y]]
		if a.Rotation != b.Rotation {
			return a.Rotation < b.Rotation
		}
		if a.Person != b.Person {
			return a.Person < b.Person
		}
		return a.Start.Before(b.Start)
	})
	for x, i := range takers {
		a := c.Overrides[i]
		for _, j := range takers[x+1:] {
			b := c.Overrides[j]
			if b.Rotation != a.Rotation || b.Person != a.Person || !b.Start.Before(a.End) {
				break
			}
			if a.ID != b.ID && (a.Kind != b.Kind || a.With != b.With) {
				first, second := a, b
				line := j
				if j < i {
					first, second, line = b, a, i
				}
				bad("overrides", line, "override "+second.ID, "overlaps override %s, which also takes %s off %s", first.ID, a.Person, a.Rotation)
			}
		}
	}
	return errors.Join(errs...)
}

func sameOverride(a, b Override) bool {
	return a.Rotation == b.Rotation && a.Kind == b.Kind && a.Person == b.Person && a.With == b.With &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.SwapID == b.SwapID
}

func checkOverrideShape(o Override, rotations, people map[string]bool) error {
	if !rotations[o.Rotation] {
		return fmt.Errorf("unknown rotation %q", o.Rotation)
	}
	switch o.Kind {
	case Replace:
		if o.Person == "" || o.With == "" {
			return errors.New("replace needs a person and a replacement")
		}
		if o.Person == o.With {
			return fmt.Errorf("replaces %s with themselves", o.Person)
		}
	case Add:
		if o.With == "" {
			return errors.New("add needs a person")
		}
	case Remove:
		if o.Person == "" {
			return errors.New("remove needs a person")
		}
	default:
		return errors.New("kind must be replace, add or remove")
	}
	for _, id := range []string{o.Person, o.With} {
		if id != "" && !people[id] {
			return fmt.Errorf("unknown person %q", id)
		}
	}
	if o.Start.IsZero() || o.End.IsZero() {
		return errors.New("start and end are required")
	}
	if !o.End.After(o.Start) {
		return fmt.Errorf("ends (%s) before it starts (%s)", o.End.Format(time.RFC3339), o.Start.Format(time.RFC3339))
	}
	return nil
}

func loadZone(name string) (*time.Location, error) {
	if strings.TrimSpace(name) == "" {
		return nil, errors.New("timezone is required")
	}
	if name == "Local" {
		return nil, errors.New(`timezone "Local" depends on the machine; name a zone`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("bad timezone %q: %w", name, err)
	}
	return loc, nil
}
