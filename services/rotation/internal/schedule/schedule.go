package schedule

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/rotation/internal/holiday"
)

// Role is what a WhoIsOnCall query asks for.
type Role int

// Roles.
const (
	// RoleHero is the Support Hero.
	RoleHero Role = iota
	// RoleSecondary is a team's secondary on-call (Query.Team).
	RoleSecondary
	// RoleRotation is whoever is on duty in a rotation (Query.Rotation).
	RoleRotation
)

// String returns "hero", "secondary" or "rotation".
func (r Role) String() string {
	switch r {
	case RoleHero:
		return "hero"
	case RoleSecondary:
		return "secondary"
	case RoleRotation:
		return "rotation"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Reason says why somebody is on call.
type Reason int

// Reasons.
const (
	// ReasonRotation: their turn in the rotation order.
	ReasonRotation Reason = iota
	// ReasonOverride: an override replaced or added them.
	ReasonOverride
	// ReasonSwap: one side of a swap.
	ReasonSwap
	// ReasonDerived: the hero is their own team's secondary.
	ReasonDerived
	// ReasonCatcher: a follow-the-sun catcher within their working hours
	// while the hero is not.
	ReasonCatcher
	// ReasonBackup: next in the rotation order after the person on duty,
	// in the backup chain only.
	ReasonBackup
)

// String returns "rotation", "override", "swap", "derived", "catcher" or
// "backup".
func (r Reason) String() string {
	switch r {
	case ReasonRotation:
		return "rotation"
	case ReasonOverride:
		return "override"
	case ReasonSwap:
		return "swap"
	case ReasonDerived:
		return "derived"
	case ReasonCatcher:
		return "catcher"
	case ReasonBackup:
		return "backup"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Shift is a stretch of duty in a rotation.
type Shift struct {
	Rotation string
	Person   string
	Start    time.Time
	End      time.Time
	Reason   Reason
	// Scheduled is the participant the rotation order put here, when an
	// override or swap changed it.
	Scheduled string
}

// Query asks who is on call.
type Query struct {
	Role     Role
	Team     string // RoleSecondary
	Rotation string // RoleRotation
	At       time.Time
}

// OnCall is one person on call and why.
type OnCall struct {
	// Person points into the Schedule; do not modify it.
	Person      *Person
	Shift       Shift
	Reason      Reason
	Explanation string
	// Status is whether the person can receive at the instant asked about
	// (filled in by WhoIsOnCall).
	Status Status
}

// Answer is the result of WhoIsOnCall.
type Answer struct {
	// OnCall is the primary answer. In a gap it may still name the person
	// scheduled (e.g. the hero on time off), or have a nil Person.
	OnCall OnCall
	// Also lists backups: the rotation's own secondary while the hero is
	// the derived secondary, people added by overrides, and follow-the-sun
	// catchers.
	Also []OnCall
	// Gap is true when nobody on duty covers the role: nobody is on duty,
	// or everybody on duty is away (time off, a holiday) and no swap or
	// override covers them. High and Low then come from the backup chain.
	Gap       bool
	GapReason string
	// Chain is who a message may reach, in order, each with their status:
	// the people on duty (the scheduled one first, then those overrides
	// add), follow-the-sun catchers (hero only), the team's own secondary
	// rotation, and the next people in the rotation order.
	Chain []OnCall
	// High is who a high-urgency message (a page) reaches now: the first
	// in Chain who is not away. Low is who a low-urgency one (a ping)
	// reaches: High's receiver while within working hours; else, if they
	// are on duty, a working catcher; if they are a backup (everybody on
	// duty is away), whoever after them in Chain is working; else nobody
	// until Low.WaitUntil.
	High, Low Route
	// onDuty is how many of Chain are on duty in the role asked about.
	onDuty int
}

// Route is who receives a message of one urgency now.
type Route struct {
	// Receiver indexes Answer.Chain; -1 when nobody can receive now.
	Receiver int
	// Explanation says why this receiver, naming who was passed over.
	Explanation string
	// WaitUntil (low urgency) is when High's receiver is next within
	// working hours: a policy that waits for them rather than pinging a
	// catcher sends then. Zero when they are working now or never are.
	WaitUntil time.Time
}

// Nobody reports that nobody can receive: an ops alert, never silence.
func (r Route) Nobody() bool { return r.Receiver < 0 }

// Interval is a half-open time range [Start, End).
type Interval struct {
	Start, End time.Time
}

// Schedule is a compiled configuration. It is immutable and safe for
// concurrent use.
type Schedule struct {
	cfg       Config
	people    []Person
	info      []personInfo
	personIdx map[string]int32
	rots      []*rotation
	rotIdx    map[string]int
	teams     []Team
	teamIdx   map[string]int
	teamRot   []*rotation // secondary rotation per team
	hero      *rotation
	support   Support
	catchers  []int32 // catcher pool, config order
	roster    []int32 // hero participants + catchers
}

type personInfo struct {
	z     *zone
	loc   *time.Location
	hours *weekHours
	off   []span // time off, unix nanos, sorted and merged
	// offNote is the note of each span of off ("conference"), joined when
	// entries merged.
	offNote []string
	// hol are the person's public holidays (nil without any), and holName
	// the calendars' names ("GB").
	hol     *holiday.Calendar
	holName string
	// catchExpl explains this person as a catcher, after why the hero
	// cannot take it (see catchWhy).
	catchExpl string
}

type span struct{ start, end int64 }

const (
	minNano = math.MinInt64
	maxNano = math.MaxInt64
)

// Compile validates c and builds the schedule.
func Compile(c *Config) (*Schedule, error) {
	if c == nil {
		c = &Config{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &Schedule{
		cfg:       cloneConfig(c),
		personIdx: map[string]int32{},
		rotIdx:    map[string]int{},
		teamIdx:   map[string]int{},
		support:   c.Support,
	}
	s.people = s.cfg.People
	s.teams = s.cfg.Teams
	zones := map[string]*zone{}
	zoneOf := func(name string) *zone {
		if z, ok := zones[name]; ok {
			return z
		}
		l, _ := loadZone(name) // validated above
		zones[name] = newZone(l)
		return zones[name]
	}
	cals, err := compileCalendars(c)
	if err != nil {
		return nil, err
	}
	for i, p := range s.people {
		s.personIdx[p.ID] = int32(i)
		h, _ := parseHours(p.WorkingHours)
		z := zoneOf(p.Timezone)
		pi := personInfo{z: z, loc: z.loc, hours: h}
		var notes []string
		for _, off := range p.TimeOff {
			a, _ := parseDate(off.Start)
			b, _ := parseDate(off.End)
			pi.off = append(pi.off, span{
				start: pi.z.resolve(a*secondsPerDay) * 1e9,
				end:   pi.z.resolve((b+1)*secondsPerDay) * 1e9,
			})
			notes = append(notes, off.Note)
		}
		pi.off, pi.offNote = mergeNotedSpans(pi.off, notes)
		var hs []*holiday.Calendar
		for _, name := range p.Holidays {
			hs = append(hs, cals[name])
		}
		pi.hol = holiday.Union(strings.Join(p.Holidays, ", "), hs...)
		pi.holName = strings.Join(p.Holidays, ", ")
		hours := p.WorkingHours
		if hours == "" {
			hours = "none"
		}
		pi.catchExpl = p.ID + " is inside their working hours (" + hours + ", " + p.Timezone + ")"
		s.info = append(s.info, pi)
	}
	for i := range s.cfg.Rotations {
		r, err := s.compileRotation(&s.cfg.Rotations[i], zoneOf(s.cfg.Rotations[i].Timezone))
		if err != nil {
			return nil, err
		}
		s.rotIdx[r.ID] = i
		s.rots = append(s.rots, r)
	}
	for _, o := range dedupeOverrides(s.cfg.Overrides) {
		r := s.rots[s.rotIdx[o.Rotation]]
		r.ovs = append(r.ovs, s.compileOverride(o))
	}
	for _, r := range s.rots {
		r.indexOverrides()
	}
	for i, t := range s.teams {
		s.teamIdx[t.ID] = i
		s.teamRot = append(s.teamRot, s.rots[s.rotIdx[t.Secondary]])
	}
	if c.Support.Hero != "" {
		s.hero = s.rots[s.rotIdx[c.Support.Hero]]
	}
	if len(c.Support.CatcherPool) > 0 {
		for _, id := range c.Support.CatcherPool {
			s.catchers = append(s.catchers, s.personIdx[id])
		}
	} else {
		for i := range s.people {
			s.catchers = append(s.catchers, int32(i))
		}
	}
	inRoster := map[int32]bool{}
	if s.hero != nil {
		for _, p := range s.hero.part {
			if !inRoster[p] {
				inRoster[p] = true
				s.roster = append(s.roster, p)
			}
		}
	}
	if s.support.Catchers {
		for _, p := range s.catchers {
			if !inRoster[p] {
				inRoster[p] = true
				s.roster = append(s.roster, p)
			}
		}
	}
	return s, nil
}

func cloneConfig(c *Config) Config {
	out := Config{
		People:    slices.Clone(c.People),
		Rotations: slices.Clone(c.Rotations),
		Teams:     slices.Clone(c.Teams),
		Support:   c.Support,
		Overrides: slices.Clone(c.Overrides),
		Calendars: slices.Clone(c.Calendars),
	}
	out.Support.CatcherPool = slices.Clone(c.Support.CatcherPool)
	for i := range out.People {
		out.People[i].TimeOff = slices.Clone(out.People[i].TimeOff)
		out.People[i].Holidays = slices.Clone(out.People[i].Holidays)
	}
	for i := range out.Rotations {
		out.Rotations[i].Participants = slices.Clone(out.Rotations[i].Participants)
	}
	return out
}

// dedupeOverrides drops repeated ids (the same override in the file and in
// the store, or a retried request), keeping the first.
func dedupeOverrides(os []Override) []Override {
	seen := map[string]bool{}
	out := make([]Override, 0, len(os))
	for _, o := range os {
		if o.ID != "" && seen[o.ID] {
			continue
		}
		seen[o.ID] = true
		out = append(out, o)
	}
	return out
}

func mergeSpans(in []span) []span {
	if len(in) == 0 {
		return nil
	}
	slices.SortFunc(in, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	out := in[:1]
	for _, sp := range in[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// Person returns the person with id.
func (s *Schedule) Person(id string) (*Person, bool) {
	i, ok := s.personIdx[id]
	if !ok {
		return nil, false
	}
	return &s.people[i], true
}

// People returns a copy of every person, in configuration order.
func (s *Schedule) People() []Person { return cloneConfig(&Config{People: s.people}).People }

// Teams returns a copy of every team, in configuration order.
func (s *Schedule) Teams() []Team { return slices.Clone(s.teams) }

// Rotations returns a copy of every rotation, in configuration order.
func (s *Schedule) Rotations() []Rotation {
	return cloneConfig(&Config{Rotations: s.cfg.Rotations}).Rotations
}

// Config returns a copy of the configuration the schedule was compiled from.
func (s *Schedule) Config() *Config {
	c := cloneConfig(&s.cfg)
	return &c
}

// onLeave reports whether person p is on time off at t (unix nanos), and
// which span of info.off.
func (s *Schedule) onLeave(p int32, t int64) (int, bool) {
	off := s.info[p].off
	i := sort.Search(len(off), func(i int) bool { return off[i].end > t })
	if i < len(off) && off[i].start <= t {
		return i, true
	}
	return -1, false
}

// onHoliday reports whether t (unix nanos) falls on one of person p's
// public holidays, read in their zone: the holiday's name and its day.
func (s *Schedule) onHoliday(p int32, t int64) (string, span, bool) {
	pi := &s.info[p]
	if pi.hol == nil {
		return "", span{}, false
	}
	day := floorDiv(pi.z.wall(floorDiv(t, 1e9)), secondsPerDay)
	name, ok := pi.hol.On(day)
	if !ok {
		return "", span{}, false
	}
	return name, span{pi.z.resolve(day*secondsPerDay) * 1e9, pi.z.resolve((day+1)*secondsPerDay) * 1e9}, true
}

// working reports whether person p is within working hours at t (unix nanos).
func (s *Schedule) working(p int32, t int64) bool {
	pi := &s.info[p]
	u := floorDiv(t, 1e9)
	return pi.hours.at(pi.z.wall(u))
}

// available reports whether p can take duty at t: neither on time off
// nor on a public holiday.
func (s *Schedule) available(p int32, t int64) bool {
	if _, off := s.onLeave(p, t); off {
		return false
	}
	_, _, hol := s.onHoliday(p, t)
	return !hol
}

// WhoIsOnCall answers who holds a role at q.At: the hero (with catchers),
// a team's secondary (the hero when the derived rule applies), or whoever is
// on duty in a rotation. It returns an error only for an unknown team or
// rotation, or a hero query without a hero rotation.
func (s *Schedule) WhoIsOnCall(q Query) (Answer, error) {
	t := q.At.UnixNano()
	var ans Answer
	switch q.Role {
	case RoleHero:
		if s.hero == nil {
			return Answer{}, errors.New("no Support Hero rotation is configured")
		}
		ans = s.heroAnswer(t)
		ans.Chain, ans.onDuty = s.heroChain(t)
	case RoleSecondary:
		i, ok := s.teamIdx[q.Team]
		if !ok {
			return Answer{}, fmt.Errorf("unknown team %q", q.Team)
		}
		ans = s.secondaryAnswer(i, t)
		ans.Chain, ans.onDuty = s.secondaryChain(i, &ans, t)
	case RoleRotation:
		i, ok := s.rotIdx[q.Rotation]
		if !ok {
			return Answer{}, fmt.Errorf("unknown rotation %q", q.Rotation)
		}
		var buf [4]duty
		ans = s.rotationAnswer(s.rots[i], t, buf[:0])
		ans.Chain, ans.onDuty = s.rotationChain(s.rots[i], t, nil)
	default:
		return Answer{}, fmt.Errorf("unknown role %v", q.Role)
	}
	s.route(&ans, t)
	return ans, nil
}

// rotationAnswer: the first available person on duty, the others in Also;
// a gap when nobody is on duty or everybody on duty is on time off.
func (s *Schedule) rotationAnswer(r *rotation, t int64, buf []duty) Answer {
	st := r.state(t, buf)
	var ans Answer
	first := true
	for _, d := range st.duties {
		if !s.available(d.person, t) {
			continue
		}
		oc := s.onCall(r, &st, d, t)
		if first {
			ans.OnCall = oc
			first = false
			continue
		}
		ans.Also = append(ans.Also, oc)
	}
	if !first {
		return ans
	}
	ans.Gap = true
	if len(st.duties) == 0 {
		if st.k < 0 && t < r.startNano {
			ans.GapReason = "nobody is on duty in " + r.ID + ": it starts at " + time.Unix(0, r.startNano).In(r.loc).Format("2006-01-02 15:04 MST")
		} else {
			ans.GapReason = "nobody is on duty in " + r.ID
		}
		return ans
	}
	d := st.duties[0]
	ans.OnCall = s.onCall(r, &st, d, t)
	p := &s.people[d.person]
	ans.GapReason = p.ID + " is on duty in " + r.ID + " but " + s.awayText(d.person, t) + " and no swap or override covers it"
	return ans
}

// heroAnswer adds follow-the-sun catchers to the hero rotation's answer
// when the hero is outside working hours (or unavailable).
func (s *Schedule) heroAnswer(t int64) Answer {
	var buf [4]duty
	ans := s.rotationAnswer(s.hero, t, buf[:0])
	if !s.support.Catchers {
		return ans
	}
	if !ans.Gap && ans.OnCall.Person != nil && s.working(s.personIdx[ans.OnCall.Person.ID], t) {
		return ans
	}
	why := s.catchWhy(ans.OnCall.Person, t)
	for _, p := range s.catchers {
		if s.involved(&ans, p) || !s.working(p, t) || !s.available(p, t) {
			continue
		}
		ans.Also = append(ans.Also, OnCall{
			Person:      &s.people[p],
			Shift:       s.catchShift(p, t),
			Reason:      ReasonCatcher,
			Explanation: s.people[p].ID + " catches: " + why + ", " + s.info[p].catchExpl,
		})
	}
	return ans
}

// catchWhy says why the hero (nil: nobody on duty) cannot take a message
// at t, for a catcher's explanation.
func (s *Schedule) catchWhy(hero *Person, t int64) string {
	if hero == nil {
		return "nobody is on duty as hero"
	}
	p := s.personIdx[hero.ID]
	if !s.available(p, t) {
		return "the hero is " + s.awayText(p, t)
	}
	return "the hero is outside working hours"
}

func (s *Schedule) involved(ans *Answer, p int32) bool {
	id := s.people[p].ID
	if ans.OnCall.Person != nil && ans.OnCall.Person.ID == id {
		return true
	}
	for _, o := range ans.Also {
		if o.Person != nil && o.Person.ID == id {
			return true
		}
	}
	return false
}

// catchShift is the catcher's current stretch of working hours: the
// configured range containing t (ranges that merely touch are not joined),
// cut short by time off.
func (s *Schedule) catchShift(p int32, t int64) Shift {
	pi := &s.info[p]
	sh := Shift{Person: s.people[p].ID, Reason: ReasonCatcher}
	w := pi.z.wall(floorDiv(t, 1e9))
	day := floorDiv(w, secondsPerDay)
	minute := int((w - day*secondsPerDay) / 60)
	for _, dd := range [2]int64{0, -1} {
		wd := wallWeekday((day + dd) * secondsPerDay)
		m := minute - int(dd)*1440
		for _, rg := range pi.hours.ranges {
			if rg.day != wd || m < rg.start || m >= rg.end {
				continue
			}
			start := pi.z.resolve((day+dd)*secondsPerDay+int64(rg.start)*60) * 1e9
			end := pi.z.resolve((day+dd)*secondsPerDay+int64(rg.end)*60) * 1e9
			for _, off := range pi.off {
				if off.start > t && off.start < end {
					end = off.start
				}
			}
			sh.Start, sh.End = time.Unix(0, start).In(pi.loc), time.Unix(0, end).In(pi.loc)
			return sh
		}
	}
	return sh
}

// secondaryAnswer applies the derived rule: while the hero belongs to the
// team, the hero is its secondary and the rotation's own secondary is the
// backup.
func (s *Schedule) secondaryAnswer(team int, t int64) Answer {
	var buf [4]duty
	sec := s.rotationAnswer(s.teamRot[team], t, buf[:0])
	if s.hero == nil || !s.support.HeroIsTeamSecondary || s.teamRot[team] == s.hero {
		return sec
	}
	var hbuf [4]duty
	hero := s.rotationAnswer(s.hero, t, hbuf[:0])
	if hero.Gap || hero.OnCall.Person == nil || hero.OnCall.Person.Team != s.teams[team].ID {
		return sec
	}
	h := hero.OnCall
	ans := Answer{OnCall: OnCall{
		Person: h.Person,
		Shift:  h.Shift,
		Reason: ReasonDerived,
	}}
	expl := h.Person.ID + " is the Support Hero (" + h.Reason.String() + "), so also " + s.teams[team].ID + "'s secondary (derived)"
	if !sec.Gap && sec.OnCall.Person != nil && sec.OnCall.Person.ID != h.Person.ID {
		ans.Also = append(ans.Also, sec.OnCall)
		expl += "; " + sec.OnCall.Person.ID + " from " + s.teamRot[team].ID + " is backup"
	}
	for _, o := range sec.Also {
		if o.Person.ID != h.Person.ID {
			ans.Also = append(ans.Also, o)
		}
	}
	ans.OnCall.Explanation = expl
	return ans
}

// onCall builds the OnCall for duty d: the shift is the person's unbroken
// stretch of this duty within the base shift, overrides applied.
func (s *Schedule) onCall(r *rotation, st *state, d duty, t int64) OnCall {
	lo, hi := r.dutyBounds(st, d)
	sh := Shift{
		Rotation: r.ID,
		Person:   s.people[d.person].ID,
		Start:    nanoTime(lo, r.loc),
		End:      nanoTime(hi, r.loc),
		Reason:   d.reason,
	}
	expl := ""
	if d.scheduled >= 0 {
		sh.Scheduled = s.people[d.scheduled].ID
	}
	if d.ov >= 0 {
		expl = r.ovs[d.ov].expl
	} else {
		expl = r.baseExpl[st.pos]
	}
	return OnCall{Person: &s.people[d.person], Shift: sh, Reason: d.reason, Explanation: expl}
}

// nanoTime converts unix nanos to a time, leaving unbounded ends zero.
func nanoTime(n int64, loc *time.Location) time.Time {
	if n == minNano || n == maxNano {
		return time.Time{}
	}
	return time.Unix(0, n).In(loc)
}
