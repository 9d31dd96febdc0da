package grpcapi

import (
	"sort"
	"time"

	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// teamShifts lists a team's secondary cover overlapping [from, to): the
// shifts of the team's secondary rotation, plus a DERIVED shift (in the
// hero rotation) for each stretch during which the hero belongs to the team
// and so is its secondary. The rotation's own shifts stay in the list:
// during a DERIVED shift they are the backup, as WhoIsOnCall lists them in
// Also. Like Schedule.Shifts the result is ordered by start and not clipped
// to the range; at equal starts the DERIVED shift comes first.
//
// The DERIVED stretches are read from the engine itself: between two
// consecutive change points (hero handoffs and override boundaries, and
// time-off boundaries) WhoIsOnCall's answer is constant, so one query per
// stretch says whether the derived rule holds there. The list therefore
// agrees with WhoIsOnCall(SECONDARY, team) by construction, time off and
// swaps included.
func teamShifts(sc *schedule.Schedule, team schedule.Team, from, to time.Time) ([]schedule.Shift, error) {
	own, err := sc.Shifts(team.Secondary, from, to)
	if err != nil {
		return nil, err
	}
	sup := sc.Config().Support
	if sup.Hero == "" || !sup.HeroIsTeamSecondary || sup.Hero == team.Secondary {
		return own, nil
	}
	heroShifts, err := sc.Shifts(sup.Hero, from, to)
	if err != nil {
		return nil, err
	}
	// Scan every hero shift a team member holds, whole, so a DERIVED shift
	// is not cut at the edges of the range.
	var lo, hi time.Time
	for _, h := range heroShifts {
		p, ok := sc.Person(h.Person)
		if !ok || p.Team != team.ID || h.Start.IsZero() || h.End.IsZero() {
			continue
		}
		if lo.IsZero() || h.Start.Before(lo) {
			lo = h.Start
		}
		if h.End.After(hi) {
			hi = h.End
		}
	}
	if lo.IsZero() {
		return own, nil
	}
	points, err := changePoints(sc, sup.Hero, lo, hi)
	if err != nil {
		return nil, err
	}
	var derived []schedule.Shift
	for i := 0; i+1 < len(points); i++ {
		ans, err := sc.WhoIsOnCall(schedule.Query{Role: schedule.RoleSecondary, Team: team.ID, At: points[i]})
		if err != nil {
			return nil, err
		}
		if ans.Gap || ans.OnCall.Person == nil || ans.OnCall.Reason != schedule.ReasonDerived {
			continue
		}
		id := ans.OnCall.Person.ID
		if n := len(derived); n > 0 && derived[n-1].Person == id && derived[n-1].End.Equal(points[i]) {
			derived[n-1].End = points[i+1]
			continue
		}
		derived = append(derived, schedule.Shift{Rotation: sup.Hero, Person: id, Start: points[i], End: points[i+1], Reason: schedule.ReasonDerived})
	}
	out := own
	for _, d := range derived {
		if d.End.After(from) && d.Start.Before(to) {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Reason == schedule.ReasonDerived && out[j].Reason != schedule.ReasonDerived
	})
	return out, nil
}

// changePoints returns lo, hi and every instant between them at which who
// is on duty in the hero rotation, or whether somebody is on time off,
// changes; sorted, without repeats.
func changePoints(sc *schedule.Schedule, hero string, lo, hi time.Time) ([]time.Time, error) {
	points := []time.Time{lo, hi}
	add := func(t time.Time) {
		if t.After(lo) && t.Before(hi) {
			points = append(points, t)
		}
	}
	shifts, err := sc.Shifts(hero, lo, hi)
	if err != nil {
		return nil, err
	}
	for _, sh := range shifts {
		add(sh.Start)
		add(sh.End)
	}
	for _, p := range sc.People() {
		if len(p.TimeOff) == 0 {
			continue
		}
		loc, err := time.LoadLocation(p.Timezone)
		if err != nil {
			return nil, err // validated when the schedule was compiled
		}
		// Time off is whole days in the person's zone, end day included.
		for _, off := range p.TimeOff {
			if a, err := time.ParseInLocation(time.DateOnly, off.Start, loc); err == nil {
				add(a)
			}
			if b, err := time.ParseInLocation(time.DateOnly, off.End, loc); err == nil {
				add(b.AddDate(0, 0, 1))
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Before(points[j]) })
	out := points[:1]
	for _, t := range points[1:] {
		if !t.Equal(out[len(out)-1]) {
			out = append(out, t)
		}
	}
	return out, nil
}
