package schedule

import (
	"iter"
	"slices"
	"time"
)

// dayRanges yields the working ranges of the person's local day d (days
// since the epoch in their zone's wall time) as instants, unix nanos:
// each range's wall-clock start and end resolved in their zone.
func (pi *personInfo) dayRanges(d int64) iter.Seq2[int64, int64] {
	return func(yield func(int64, int64) bool) {
		wd := wallWeekday(d * secondsPerDay)
		for _, rg := range pi.hours.ranges {
			if rg.day != wd {
				continue
			}
			a := pi.z.resolve(d*secondsPerDay+int64(rg.start)*60) * 1e9
			b := pi.z.resolve(d*secondsPerDay+int64(rg.end)*60) * 1e9
			if !yield(a, b) {
				return
			}
		}
	}
}

// personWindows returns person p's working stretches overlapping
// [from, to) (unix nanos), unclipped, minus time off and holidays. A stretch's ends are
// wall-clock times resolved in the person's zone.
func (s *Schedule) personWindows(p int32, from, to int64) []span {
	pi := &s.info[p]
	if len(pi.hours.ranges) == 0 || to <= from {
		return nil
	}
	d0 := floorDiv(pi.z.wall(floorDiv(from, 1e9)), secondsPerDay) - 1
	d1 := floorDiv(pi.z.wall(floorDiv(to, 1e9)), secondsPerDay) + 1
	var out []span
	for d := d0; d <= d1; d++ {
		for a, b := range pi.dayRanges(d) {
			if b > a {
				out = append(out, span{a, b})
			}
		}
	}
	away := pi.off
	if hol := s.holidaySpans(p, d0, d1); len(hol) > 0 {
		away = mergeSpans(append(slices.Clone(pi.off), hol...))
	}
	out = subtractSpans(mergeSpans(out), away)
	kept := out[:0]
	for _, sp := range out {
		if sp.end > from && sp.start < to {
			kept = append(kept, sp)
		}
	}
	return kept
}

// subtractSpans removes sorted, merged cut from sorted, merged in.
func subtractSpans(in, cut []span) []span {
	if len(cut) == 0 {
		return in
	}
	var out []span
	for _, sp := range in {
		for _, c := range cut {
			if c.end <= sp.start || c.start >= sp.end {
				continue
			}
			if c.start > sp.start {
				out = append(out, span{sp.start, c.start})
			}
			sp.start = c.end
			if sp.start >= sp.end {
				break
			}
		}
		if sp.start < sp.end {
			out = append(out, sp)
		}
	}
	return out
}

// WorkingWindows returns, within [from, to), the union of the support
// roster's working hours minus their time off and public holidays, as
// sorted, disjoint
// intervals in UTC. The roster is the hero rotation's participants plus,
// when catchers are on, the catcher pool. Response deadlines count only
// time inside these windows.
func (s *Schedule) WorkingWindows(from, to time.Time) []Interval {
	f, e := from.UnixNano(), to.UnixNano()
	var all []span
	for _, p := range s.roster {
		for _, sp := range s.personWindows(p, f, e) {
			all = append(all, span{max(sp.start, f), min(sp.end, e)})
		}
	}
	all = mergeSpans(all)
	out := make([]Interval, 0, len(all))
	for _, sp := range all {
		out = append(out, Interval{Start: time.Unix(0, sp.start).UTC(), End: time.Unix(0, sp.end).UTC()})
	}
	return out
}

// DutyWindows returns, within [from, to), when whoever is on duty as
// Support Hero can take a message, as sorted, disjoint intervals in UTC:
// the hero (or whoever a swap or an override puts on duty) while within
// their working hours and neither on time off nor on a public holiday,
// and, when catchers are on, any catcher within theirs (catchers take
// what the hero cannot). The hero's colleagues who are off duty count for
// nothing, unlike in WorkingWindows. Response deadlines count only time
// inside these windows (issue 17: the clock follows the person on duty).
// Without a hero rotation it is WorkingWindows.
func (s *Schedule) DutyWindows(from, to time.Time) []Interval {
	if s.hero == nil {
		return s.WorkingWindows(from, to)
	}
	f, e := from.UnixNano(), to.UnixNano()
	if e <= f {
		return nil
	}
	var all []span
	add := func(p int32, a, b int64) {
		for _, sp := range s.personWindows(p, a, b) {
			all = append(all, span{max(sp.start, a), min(sp.end, b)})
		}
	}
	points := s.changePoints(f, e, nil, s.hero)
	for i, at := range points {
		end := e
		if i+1 < len(points) {
			end = points[i+1]
		}
		var buf [4]duty
		for _, d := range s.hero.state(at, buf[:0]).duties {
			add(d.person, at, end)
		}
	}
	if s.support.Catchers {
		for _, p := range s.catchers {
			add(p, f, e)
		}
	}
	all = mergeSpans(all)
	out := make([]Interval, 0, len(all))
	for _, sp := range all {
		out = append(out, Interval{Start: time.Unix(0, sp.start).UTC(), End: time.Unix(0, sp.end).UTC()})
	}
	return out
}

// Gap is a stretch of time when a role has nobody covering it.
type Gap struct {
	Role Role
	// Team is set for RoleSecondary.
	Team     string
	Rotation string
	Start    time.Time
	End      time.Time
	Reason   string
	// OpenStart and OpenEnd (GapsAround only): the gap starts before, or
	// runs past, what was looked at; Start or End is that limit.
	OpenStart, OpenEnd bool
}

// GapsAround lists the coverage gaps overlapping [from, to) with their true
// bounds, looking up to reach before from and after to: a gap found to go
// on further is cut there and marked OpenStart or OpenEnd.
func (s *Schedule) GapsAround(from, to time.Time, reach time.Duration) []Gap {
	lo, hi := from.Add(-reach), to.Add(reach)
	var out []Gap
	for _, g := range s.Gaps(lo, hi) {
		if !g.End.After(from) || !g.Start.Before(to) {
			continue
		}
		g.OpenStart, g.OpenEnd = !g.Start.After(lo), !g.End.Before(hi)
		out = append(out, g)
	}
	return out
}

// Gaps lists the coverage gaps in [from, to), clipped to it: for the hero
// (nobody on duty, or the hero on time off without a swap or override)
// and for each team's secondary (the same, unless the derived rule covers
// it with the hero). Hero gaps come first, then teams in configuration
// order, each in time order.
func (s *Schedule) Gaps(from, to time.Time) []Gap {
	f, e := from.UnixNano(), to.UnixNano()
	if e <= f {
		return nil
	}
	var leave []int64
	for p, pi := range s.info {
		for _, sp := range pi.off {
			leave = append(leave, sp.start, sp.end)
		}
		if pi.hol != nil {
			d0 := floorDiv(pi.z.wall(floorDiv(f, 1e9)), secondsPerDay)
			d1 := floorDiv(pi.z.wall(floorDiv(e, 1e9)), secondsPerDay)
			for _, sp := range s.holidaySpans(int32(p), d0, d1) {
				leave = append(leave, sp.start, sp.end)
			}
		}
	}
	var out []Gap
	if s.hero != nil {
		points := s.changePoints(f, e, leave, s.hero)
		out = appendGaps(out, points, e, Gap{Role: RoleHero, Rotation: s.hero.ID}, func(t int64) Answer {
			var buf [4]duty
			return s.rotationAnswer(s.hero, t, buf[:0])
		})
	}
	for i, t := range s.teams {
		rots := []*rotation{s.teamRot[i]}
		if s.hero != nil {
			rots = append(rots, s.hero)
		}
		points := s.changePoints(f, e, leave, rots...)
		out = appendGaps(out, points, e, Gap{Role: RoleSecondary, Team: t.ID, Rotation: t.Secondary}, func(at int64) Answer {
			return s.secondaryAnswer(i, at)
		})
	}
	return out
}

// changePoints lists every instant in [f, e) at which the answer for the
// given rotations may change, starting with f.
func (s *Schedule) changePoints(f, e int64, extra []int64, rots ...*rotation) []int64 {
	points := []int64{f}
	add := func(t int64) {
		if t > f && t < e {
			points = append(points, t)
		}
	}
	for _, t := range extra {
		add(t)
	}
	for _, r := range rots {
		for _, b := range r.bounds {
			add(b)
		}
		add(r.startNano)
		k, _, end := r.locate(floorDiv(f, 1e9))
		for end*1e9 < e {
			add(end * 1e9)
			k++
			end = r.handoff(k + 1)
		}
	}
	slices.Sort(points)
	return slices.Compact(points)
}

func appendGaps(out []Gap, points []int64, e int64, proto Gap, answer func(int64) Answer) []Gap {
	open := -1
	for i, p := range points {
		end := e
		if i+1 < len(points) {
			end = points[i+1]
		}
		a := answer(p)
		if !a.Gap {
			open = -1
			continue
		}
		if open >= 0 && out[open].Reason == a.GapReason && out[open].End.UnixNano() == p {
			out[open].End = time.Unix(0, end).UTC()
			continue
		}
		g := proto
		g.Start, g.End, g.Reason = time.Unix(0, p).UTC(), time.Unix(0, end).UTC(), a.GapReason
		out = append(out, g)
		open = len(out) - 1
	}
	return out
}
