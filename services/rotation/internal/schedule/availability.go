package schedule

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/rotation/internal/holiday"
)

// Availability says whether a person can receive a message at an instant.
type Availability int

// Availabilities. The zero Availability is unknown.
const (
	// Available: not away and within working hours; pages and pings reach
	// them.
	Available Availability = iota + 1
	// OutsideHours: not away, outside working hours; a page reaches them,
	// a ping goes to whoever is working or waits for their next working
	// hour.
	OutsideHours
	// OffWork: on time off; nothing reaches them.
	OffWork
	// OnHoliday: on a public holiday of their calendar; as time off.
	OnHoliday
)

// String returns "available", "outside_hours", "time_off" or "holiday".
func (a Availability) String() string {
	switch a {
	case Available:
		return "available"
	case OutsideHours:
		return "outside_hours"
	case OffWork:
		return "time_off"
	case OnHoliday:
		return "holiday"
	}
	return fmt.Sprintf("Availability(%d)", int(a))
}

// Away reports time off or a holiday: nothing reaches the person.
func (a Availability) Away() bool { return a == OffWork || a == OnHoliday }

// Status is whether a person can receive at an instant, and until when.
type Status struct {
	Availability Availability
	// Detail says why not Available: "on time off (2026-03-02..2026-03-04,
	// conference)", "on a public holiday (Christmas Day, GB)", "outside
	// working hours (Mon-Fri 09:00-17:30, Europe/London)".
	Detail string
	// AwayUntil is when time off or a holiday ends (adjoining ones joined).
	AwayUntil time.Time
	// WorkingUntil is when the working stretch they are in ends (Available).
	WorkingUntil time.Time
	// NextWorking is when their next working stretch starts, after any
	// time away (not Available); zero when none starts within a year.
	NextWorking time.Time
}

// searchAhead bounds how far ahead the next working hour is looked for.
const searchAhead = 366 * 24 * time.Hour

// StatusOf returns person id's status at t.
func (s *Schedule) StatusOf(id string, t time.Time) (Status, error) {
	p, ok := s.personIdx[id]
	if !ok {
		return Status{}, fmt.Errorf("unknown person %q", id)
	}
	return s.status(p, t.UnixNano()), nil
}

func (s *Schedule) status(p int32, t int64) Status {
	pi := &s.info[p]
	if _, off := s.onLeave(p, t); off {
		back := s.awayUntil(p, t)
		return Status{Availability: OffWork, Detail: s.awayText(p, t), AwayUntil: nanoTime(back, pi.loc), NextWorking: nanoTime(s.nextWorking(p, back), pi.loc)}
	}
	if _, _, hol := s.onHoliday(p, t); hol {
		back := s.awayUntil(p, t)
		return Status{Availability: OnHoliday, Detail: s.awayText(p, t), AwayUntil: nanoTime(back, pi.loc), NextWorking: nanoTime(s.nextWorking(p, back), pi.loc)}
	}
	if s.working(p, t) {
		return Status{Availability: Available, WorkingUntil: nanoTime(s.workingUntil(p, t), pi.loc)}
	}
	hours := s.people[p].WorkingHours
	if hours == "" {
		hours = "none set"
	}
	return Status{
		Availability: OutsideHours,
		Detail:       "outside working hours (" + hours + ", " + s.people[p].Timezone + ")",
		NextWorking:  nanoTime(s.nextWorking(p, t), pi.loc),
	}
}

// awayText says why p is away at t: "on time off (2026-03-02..2026-03-04,
// conference)" or "on a public holiday (Christmas Day, GB)".
func (s *Schedule) awayText(p int32, t int64) string {
	pi := &s.info[p]
	if i, off := s.onLeave(p, t); off {
		sp := pi.off[i]
		txt := "on time off (" + time.Unix(0, sp.start).In(pi.loc).Format("2006-01-02") + ".." + time.Unix(0, sp.end-1).In(pi.loc).Format("2006-01-02")
		if pi.offNote[i] != "" {
			txt += ", " + pi.offNote[i]
		}
		return txt + ")"
	}
	if name, _, ok := s.onHoliday(p, t); ok {
		return "on a public holiday (" + name + ", " + pi.holName + ")"
	}
	return "available"
}

// awayUntil is when p's time away at t ends: time off and holidays that
// follow one another without a gap count as one absence.
func (s *Schedule) awayUntil(p int32, t int64) int64 {
	for range 400 {
		if i, off := s.onLeave(p, t); off {
			t = s.info[p].off[i].end
			continue
		}
		if _, sp, ok := s.onHoliday(p, t); ok {
			t = sp.end
			continue
		}
		break
	}
	return t
}

// nextWorking is the first instant at or after t at which p is within
// working hours and not away; maxNano when none within searchAhead. It
// walks the working ranges day by day without building windows: the
// answer is on every WhoIsOnCall's path.
func (s *Schedule) nextWorking(p int32, t int64) int64 {
	pi := &s.info[p]
	if len(pi.hours.ranges) == 0 {
		return maxNano
	}
	day := floorDiv(pi.z.wall(floorDiv(t, 1e9)), secondsPerDay)
	limit := t + int64(searchAhead)
	for d := day - 1; d <= day+int64(searchAhead/(24*time.Hour)); d++ {
		best := int64(maxNano)
		for a, b := range pi.dayRanges(d) {
			if b <= t {
				continue
			}
			c := max(a, t)
			for c < b && !s.available(p, c) {
				c = s.awayUntil(p, c)
			}
			if c < b {
				best = min(best, c)
			}
		}
		if best != maxNano {
			return best
		}
		if d*secondsPerDay*1e9 > limit {
			break
		}
	}
	return maxNano
}

// workingUntil is when the working stretch p is in at t ends: the end of
// the range (or of ranges that follow on without a break), or the start
// of time away, whichever is first.
func (s *Schedule) workingUntil(p int32, t int64) int64 {
	end := t
	for range 8 {
		next := s.rangeEnd(p, end)
		if next <= end {
			break
		}
		end = next
	}
	off := s.info[p].off
	if i := sort.Search(len(off), func(i int) bool { return off[i].start > t }); i < len(off) && off[i].start < end {
		end = off[i].start
	}
	pi := &s.info[p]
	if pi.hol != nil {
		for d := floorDiv(pi.z.wall(floorDiv(t, 1e9)), secondsPerDay) + 1; ; d++ {
			start := pi.z.resolve(d*secondsPerDay) * 1e9
			if start >= end {
				break
			}
			if _, ok := pi.hol.On(d); ok {
				end = start
				break
			}
		}
	}
	return end
}

// rangeEnd is the end of a working range of p containing t, or t.
func (s *Schedule) rangeEnd(p int32, t int64) int64 {
	pi := &s.info[p]
	day := floorDiv(pi.z.wall(floorDiv(t, 1e9)), secondsPerDay)
	end := t
	for d := day - 1; d <= day; d++ {
		for a, b := range pi.dayRanges(d) {
			if a <= t && b > t {
				end = max(end, b)
			}
		}
	}
	return end
}

// holidaySpans are p's holidays on the local days d0..d1 as instants.
func (s *Schedule) holidaySpans(p int32, d0, d1 int64) []span {
	pi := &s.info[p]
	if pi.hol == nil {
		return nil
	}
	var out []span
	for d := d0; d <= d1; d++ {
		if _, ok := pi.hol.On(d); ok {
			out = append(out, span{pi.z.resolve(d*secondsPerDay) * 1e9, pi.z.resolve((d+1)*secondsPerDay) * 1e9})
		}
	}
	return out
}

// compileCalendars builds every holiday calendar the people name: the
// holidays section's iCalendar ones by id, country codes by code.
func compileCalendars(c *Config) (map[string]*holiday.Calendar, error) {
	out := map[string]*holiday.Calendar{}
	for _, cal := range c.Calendars {
		hc, err := holiday.ParseICal(cal.ID, cal.ICal)
		if err != nil {
			return nil, fmt.Errorf("holidays %s: %w", cal.ID, err)
		}
		out[cal.ID] = hc
	}
	for _, p := range c.People {
		for _, name := range p.Holidays {
			if _, ok := out[name]; ok || !holiday.IsCode(name) {
				continue
			}
			hc, err := holiday.Code(name)
			if err != nil {
				return nil, fmt.Errorf("person %s: holidays: %w", p.ID, err)
			}
			out[name] = hc
		}
	}
	return out, nil
}

// mergeNotedSpans is mergeSpans keeping each span's note, joined with
// "; " where spans merge.
func mergeNotedSpans(in []span, notes []string) ([]span, []string) {
	if len(in) == 0 {
		return nil, nil
	}
	idx := make([]int, len(in))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(in[a].start, in[b].start) })
	var out []span
	var outNotes []string
	for _, i := range idx {
		sp, note := in[i], notes[i]
		if n := len(out); n > 0 && sp.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, sp.end)
			if note != "" && !strings.Contains(outNotes[n-1], note) {
				outNotes[n-1] = strings.TrimPrefix(outNotes[n-1]+"; "+note, "; ")
			}
			continue
		}
		out = append(out, sp)
		outNotes = append(outNotes, note)
	}
	return out, outNotes
}

// dutyCalls are everybody on duty in r at t, away or not: the scheduled
// person (or whoever replaces them) first, then those overrides add.
func (s *Schedule) dutyCalls(r *rotation, t int64, chain []OnCall) []OnCall {
	var buf [4]duty
	st := r.state(t, buf[:0])
	for _, d := range st.duties {
		if inChain(chain, s.people[d.person].ID) {
			continue
		}
		oc := s.onCall(r, &st, d, t)
		oc.Status = s.status(d.person, t)
		chain = append(chain, oc)
	}
	return chain
}

// nextInOrder adds the people after the current shift's in r's order, up
// to and including the first who is Available.
func (s *Schedule) nextInOrder(r *rotation, t int64, after string, chain []OnCall) []OnCall {
	k, _, _ := r.locate(floorDiv(t, 1e9))
	first := k + 1
	n := int64(len(r.part))
	for j := range n {
		kk := first + j
		p := r.part[r.pos(kk)]
		id := s.people[p].ID
		if inChain(chain, id) {
			continue
		}
		start, end := r.handoff(kk), r.handoff(kk+1)
		oc := OnCall{
			Person:      &s.people[p],
			Shift:       Shift{Rotation: r.ID, Person: id, Start: time.Unix(start, 0).In(r.loc), End: time.Unix(end, 0).In(r.loc), Reason: ReasonRotation},
			Reason:      ReasonBackup,
			Explanation: id + " is next after " + after + " in " + r.ID + "'s order (backup)",
			Status:      s.status(p, t),
		}
		chain = append(chain, oc)
		if oc.Status.Availability == Available {
			break
		}
	}
	return chain
}

func inChain(chain []OnCall, id string) bool {
	for _, c := range chain {
		if c.Person != nil && c.Person.ID == id {
			return true
		}
	}
	return false
}

// heroChain: the heroes on duty, catchers when the hero cannot take a
// ping, the scheduled hero's team's own secondary rotation, then the next
// heroes in order.
func (s *Schedule) heroChain(t int64) ([]OnCall, int) {
	chain := s.dutyCalls(s.hero, t, nil)
	onDuty := len(chain)
	if s.support.Catchers && (len(chain) == 0 || chain[0].Status.Availability != Available) {
		var hero *Person
		if len(chain) > 0 {
			hero = chain[0].Person
		}
		why := s.catchWhy(hero, t)
		for _, p := range s.catchers {
			if inChain(chain, s.people[p].ID) || !s.working(p, t) || !s.available(p, t) {
				continue
			}
			chain = append(chain, OnCall{
				Person: &s.people[p], Shift: s.catchShift(p, t), Reason: ReasonCatcher,
				Explanation: s.people[p].ID + " catches: " + why + ", " + s.info[p].catchExpl, Status: s.status(p, t),
			})
		}
	}
	after := "nobody"
	if len(chain) > 0 {
		after = chain[0].Person.ID
		if team, ok := s.teamIdx[chain[0].Person.Team]; ok && s.teamRot[team] != s.hero {
			n := len(chain)
			chain = s.dutyCalls(s.teamRot[team], t, chain)
			for i := n; i < len(chain); i++ {
				chain[i].Explanation = "backup: " + s.teams[team].ID + "'s own secondary rotation: " + chain[i].Explanation
			}
		}
	}
	return s.nextInOrder(s.hero, t, after, chain), onDuty
}

// secondaryChain: the hero while the derived rule applies, the team's own
// secondary rotation, then the next people in its order.
func (s *Schedule) secondaryChain(team int, ans *Answer, t int64) ([]OnCall, int) {
	var chain []OnCall
	if ans.OnCall.Reason == ReasonDerived && ans.OnCall.Person != nil {
		oc := ans.OnCall
		oc.Status = s.status(s.personIdx[oc.Person.ID], t)
		chain = append(chain, oc)
	}
	return s.rotationChain(s.teamRot[team], t, chain)
}

// rotationChain: everybody on duty in r, then the next people in order.
// It also returns how many of the chain are on duty.
func (s *Schedule) rotationChain(r *rotation, t int64, chain []OnCall) ([]OnCall, int) {
	n := len(chain)
	chain = s.dutyCalls(r, t, chain)
	onDuty := len(chain)
	after := "nobody"
	if len(chain) > n {
		after = chain[n].Person.ID
	} else if n > 0 {
		after = chain[0].Person.ID
	}
	return s.nextInOrder(r, t, after, chain), onDuty
}

// route picks who receives at each urgency from the chain, and fills in
// the status of OnCall and Also.
func (s *Schedule) route(ans *Answer, t int64) {
	if p := ans.OnCall.Person; p != nil {
		ans.OnCall.Status = s.status(s.personIdx[p.ID], t)
	}
	for i := range ans.Also {
		if p := ans.Also[i].Person; p != nil {
			ans.Also[i].Status = s.status(s.personIdx[p.ID], t)
		}
	}
	chain := ans.Chain
	ans.High, ans.Low = Route{Receiver: -1}, Route{Receiver: -1}
	for i, c := range chain {
		if !c.Status.Availability.Away() {
			ans.High.Receiver = i
			break
		}
	}
	h := ans.High.Receiver
	if h < 0 {
		ans.High.Explanation = "nobody can receive: " + passedOver(chain, len(chain))
		if len(chain) == 0 {
			ans.High.Explanation = "nobody can receive: nobody is on duty and nobody is next in order"
		}
		ans.Low.Explanation = ans.High.Explanation
		return
	}
	ans.High.Explanation = receives(chain, h)
	rc := chain[h]
	if !s.support.PingsFollowWorkingHours {
		ans.Low.Receiver = h
		ans.Low.Explanation = ans.High.Explanation + " (a ping goes where a page goes: support.pings_follow_working_hours is false)"
		return
	}
	if rc.Status.Availability == Available {
		ans.Low.Receiver, ans.Low.Explanation = h, ans.High.Explanation
		return
	}
	ans.Low.WaitUntil = rc.Status.NextWorking
	wait := "never (no working hours within a year)"
	if !rc.Status.NextWorking.IsZero() {
		wait = rc.Status.NextWorking.UTC().Format(time.RFC3339)
	}
	if h < ans.onDuty {
		// On duty, merely outside working hours: a ping goes to a working
		// catcher, or waits for them.
		for i, c := range chain {
			if c.Reason == ReasonCatcher && c.Status.Availability == Available {
				ans.Low.Receiver = i
				ans.Low.Explanation = c.Person.ID + " catches: " + rc.Person.ID + " is " + rc.Status.Detail + " (next working " + wait + ")"
				return
			}
		}
	} else {
		// Everybody on duty is away: whoever in the rest of the chain is
		// working takes the ping.
		for i := h + 1; i < len(chain); i++ {
			if chain[i].Status.Availability == Available {
				ans.Low.Receiver = i
				ans.Low.Explanation = receives(chain, i)
				return
			}
		}
	}
	ans.Low.Explanation = "nobody within working hours can receive: " + rc.Person.ID + " is " + rc.Status.Detail + "; wait for " + rc.Person.ID + " at " + wait
}

// receives explains chain[i] as the receiver, naming who was passed over.
func receives(chain []OnCall, i int) string {
	c := chain[i]
	txt := c.Person.ID + " (" + c.Reason.String() + ")"
	if c.Status.Availability == OutsideHours {
		txt += ", " + c.Status.Detail
	}
	if i == 0 {
		return txt + " receives"
	}
	return txt + " receives: " + passedOver(chain, i)
}

func passedOver(chain []OnCall, n int) string {
	var parts []string
	for _, c := range chain[:n] {
		parts = append(parts, c.Person.ID+" ("+c.Reason.String()+") is "+c.Status.Detail)
	}
	return strings.Join(parts, "; ")
}
