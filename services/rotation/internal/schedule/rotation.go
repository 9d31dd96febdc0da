package schedule

import (
	"fmt"
	"sort"
	"time"
)

// rotation is a compiled Rotation: shift index arithmetic on the wall clock
// of its zone, and its overrides as an index of elementary segments.
type rotation struct {
	Rotation
	z   *zone
	loc *time.Location
	// step is the wall-clock length of a shift in seconds (hourly, daily,
	// weekly); months is the length of a monthly shift.
	step, months int64
	// The first handoff: its wall reading and parts, and the instant.
	startWall            int64
	sy                   int64
	sm, sd, ssec         int
	startUnix, startNano int64
	part                 []int32
	baseExpl             []string

	// Overrides sorted by start; bounds are every override start and end
	// (unix nanos, sorted, unique). Segment j is [bounds[j-1], bounds[j])
	// with open ends for j = 0 and j = len(bounds); active[j] lists the
	// overrides in force over segment j, in application order.
	ovs    []compiledOverride
	bounds []int64
	active [][]int32
}

type compiledOverride struct {
	Override
	person, with int32 // -1 when unused
	reason       Reason
	expl         string
}

// duty is one person on duty in a rotation at some instant.
type duty struct {
	person int32
	reason Reason
	// scheduled is the rotation-order person this duty replaced, -1 if none.
	scheduled int32
	// ov is the override that produced this duty, -1 for the base.
	ov int32
}

func (d duty) same(o duty) bool {
	return d.person == o.person && d.reason == o.reason && d.scheduled == o.scheduled
}

// state is a rotation's state at one instant.
type state struct {
	k      int64 // base shift index, -1 before the start
	pos    int   // participant position of shift k
	bs, be int64 // base shift bounds, unix nanos
	seg    int   // override segment
	duties []duty
}

func (s *Schedule) compileRotation(cfg *Rotation, z *zone) (*rotation, error) {
	lt, err := ParseLocalTime(cfg.Start)
	if err != nil {
		return nil, fmt.Errorf("rotation %s: %w", cfg.ID, err)
	}
	if lt.Year < 1900 || lt.Year > 2200 {
		return nil, fmt.Errorf("rotation %s: start year %d is out of range", cfg.ID, lt.Year)
	}
	n := int64(cfg.Length)
	if n == 0 {
		n = 1
	}
	r := &rotation{Rotation: *cfg, z: z, loc: z.loc}
	r.Length = int(n)
	switch cfg.Kind {
	case Hourly:
		r.step = n * 3600
	case Daily:
		r.step = n * secondsPerDay
	case Weekly:
		r.step = n * 7 * secondsPerDay
	case Monthly:
		r.months = n
	}
	r.sy, r.sm, r.sd, r.ssec = int64(lt.Year), int(lt.Month), lt.Day, lt.Hour*3600+lt.Min*60+lt.Sec
	r.startWall = lt.wall()
	r.startUnix = r.handoff(0)
	r.startNano = r.startUnix * 1e9
	for _, id := range cfg.Participants {
		r.part = append(r.part, s.personIdx[id])
		r.baseExpl = append(r.baseExpl, id+" is on duty in "+cfg.ID+" by rotation order")
	}
	return r, nil
}

// handoff returns the instant (unix seconds) of handoff k, where shift k
// starts: the start's wall reading advanced by k shifts, resolved in the
// zone. Monthly shifts keep the start's day of month, clamped to the last
// day of shorter months.
func (r *rotation) handoff(k int64) int64 {
	if r.months > 0 {
		mm := int64(r.sm-1) + k*r.months
		y := r.sy + floorDiv(mm, 12)
		m := int(floorMod(mm, 12)) + 1
		d := min(r.sd, daysIn(y, m))
		return r.z.resolve(wallSeconds(y, m, d, r.ssec))
	}
	return r.z.resolve(r.startWall + k*r.step)
}

// estimate guesses the shift index at instant u from its wall reading;
// locate corrects it by a step or two around DST changes.
func (r *rotation) estimate(u int64) int64 {
	w := r.z.wall(u)
	if r.months > 0 {
		y, m, _ := civilFromDays(floorDiv(w, secondsPerDay))
		return floorDiv((y-r.sy)*12+int64(m-r.sm), r.months)
	}
	return floorDiv(w-r.startWall, r.step)
}

// locate returns the shift index at instant u (unix seconds) and the
// shift's bounds: the largest k with handoff(k) <= u. Before the first
// handoff it returns k = -1. Shifts a DST gap makes empty are skipped.
func (r *rotation) locate(u int64) (k, start, end int64) {
	if u < r.startUnix {
		return -1, 0, r.startUnix
	}
	k = max(r.estimate(u), 0)
	start = r.handoff(k)
	for k > 0 && start > u {
		k--
		start = r.handoff(k)
	}
	end = r.handoff(k + 1)
	for end <= u {
		k++
		start, end = end, r.handoff(k+1)
	}
	return k, start, end
}

func (r *rotation) pos(k int64) int { return int(floorMod(k, int64(len(r.part)))) }

// bounds of base shift k in unix nanos.
func (r *rotation) shiftNanos(k, start, end int64) (int64, int64) {
	if k < 0 {
		return minNano, r.startNano
	}
	return start * 1e9, end * 1e9
}

// state evaluates the rotation at t (unix nanos).
func (r *rotation) state(t int64, buf []duty) state {
	k, start, end := r.locate(floorDiv(t, 1e9))
	st := state{k: k}
	st.bs, st.be = r.shiftNanos(k, start, end)
	if k >= 0 {
		st.pos = r.pos(k)
	}
	st.seg = r.segAt(t)
	st.duties = r.duties(k, st.pos, st.seg, buf)
	return st
}

// duties applies the overrides of segment seg to base shift k.
func (r *rotation) duties(k int64, pos, seg int, buf []duty) []duty {
	buf = buf[:0]
	if k >= 0 {
		buf = append(buf, duty{person: r.part[pos], reason: ReasonRotation, scheduled: -1, ov: -1})
	}
	if len(r.active) == 0 {
		return buf
	}
	for _, oi := range r.active[seg] {
		buf = r.ovs[oi].apply(buf, oi)
	}
	return buf
}

func findDuty(ds []duty, p int32) int {
	for i, d := range ds {
		if d.person == p {
			return i
		}
	}
	return -1
}

// apply changes the on-duty list: an override about somebody not on duty
// at that moment has no effect (so applying a swap twice changes nothing).
func (o *compiledOverride) apply(ds []duty, oi int32) []duty {
	switch o.Kind {
	case Replace:
		i := findDuty(ds, o.person)
		if i < 0 {
			return ds
		}
		if findDuty(ds, o.with) >= 0 {
			return append(ds[:i], ds[i+1:]...)
		}
		sched := ds[i].scheduled
		if ds[i].ov < 0 {
			sched = ds[i].person
		}
		ds[i] = duty{person: o.with, reason: o.reason, scheduled: sched, ov: oi}
	case Add:
		if findDuty(ds, o.with) < 0 {
			ds = append(ds, duty{person: o.with, reason: o.reason, scheduled: -1, ov: oi})
		}
	case Remove:
		if i := findDuty(ds, o.person); i >= 0 {
			ds = append(ds[:i], ds[i+1:]...)
		}
	}
	return ds
}

func (s *Schedule) compileOverride(o Override) compiledOverride {
	c := compiledOverride{Override: o, person: -1, with: -1, reason: ReasonOverride}
	if o.Person != "" {
		c.person = s.personIdx[o.Person]
	}
	if o.With != "" {
		c.with = s.personIdx[o.With]
	}
	tag := "override " + o.ID
	if o.SwapID != "" {
		c.reason = ReasonSwap
		tag = "swap " + o.SwapID
	}
	switch o.Kind {
	case Replace:
		c.expl = o.With + " replaces " + o.Person + " in " + o.Rotation + " (" + tag + ")"
	case Add:
		c.expl = o.With + " is added to " + o.Rotation + " (" + tag + ")"
	case Remove:
		c.expl = o.Person + " is removed from " + o.Rotation + " (" + tag + ")"
	}
	if o.Note != "" {
		c.expl += ": " + o.Note
	}
	return c
}

// indexOverrides sorts the overrides and builds the segment index.
func (r *rotation) indexOverrides() {
	if len(r.ovs) == 0 {
		return
	}
	sort.SliceStable(r.ovs, func(i, j int) bool { return r.ovs[i].Start.Before(r.ovs[j].Start) })
	for _, o := range r.ovs {
		r.bounds = append(r.bounds, o.Start.UnixNano(), o.End.UnixNano())
	}
	sort.Slice(r.bounds, func(i, j int) bool { return r.bounds[i] < r.bounds[j] })
	uniq := r.bounds[:1]
	for _, b := range r.bounds[1:] {
		if b != uniq[len(uniq)-1] {
			uniq = append(uniq, b)
		}
	}
	r.bounds = uniq
	r.active = make([][]int32, len(r.bounds)+1)
	for oi, o := range r.ovs {
		from := sort.Search(len(r.bounds), func(i int) bool { return r.bounds[i] >= o.Start.UnixNano() })
		to := sort.Search(len(r.bounds), func(i int) bool { return r.bounds[i] >= o.End.UnixNano() })
		for j := from + 1; j <= to; j++ {
			r.active[j] = append(r.active[j], int32(oi))
		}
	}
}

// segAt returns the override segment containing t (unix nanos).
func (r *rotation) segAt(t int64) int {
	b := r.bounds
	lo, hi := 0, len(b)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m] <= t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func (r *rotation) segLo(j int) int64 {
	if j == 0 {
		return minNano
	}
	return r.bounds[j-1]
}

func (r *rotation) segHi(j int) int64 {
	if j == len(r.bounds) {
		return maxNano
	}
	return r.bounds[j]
}

// dutyBounds is d's unbroken stretch within the base shift of st: the
// current segment, extended over neighbouring segments with the same duty.
func (r *rotation) dutyBounds(st *state, d duty) (lo, hi int64) {
	lo, hi = max(st.bs, r.segLo(st.seg)), min(st.be, r.segHi(st.seg))
	var buf [4]duty
	for j := st.seg; lo > st.bs; {
		if !containsDuty(r.duties(st.k, st.pos, j-1, buf[:0]), d) {
			break
		}
		j--
		lo = max(st.bs, r.segLo(j))
	}
	for j := st.seg; hi < st.be; {
		if !containsDuty(r.duties(st.k, st.pos, j+1, buf[:0]), d) {
			break
		}
		j++
		hi = min(st.be, r.segHi(j))
	}
	return lo, hi
}

func containsDuty(ds []duty, d duty) bool {
	for _, x := range ds {
		if x.same(d) {
			return true
		}
	}
	return false
}

// BaseShiftAt returns the shift the rotation order alone puts at t,
// ignoring overrides.
func (s *Schedule) BaseShiftAt(rotation string, t time.Time) (Shift, error) {
	r, err := s.rotation(rotation)
	if err != nil {
		return Shift{}, err
	}
	k, start, end := r.locate(floorDiv(t.UnixNano(), 1e9))
	if k < 0 {
		return Shift{}, fmt.Errorf("rotation %s starts at %s, after %s", r.ID, time.Unix(r.startUnix, 0).In(r.loc).Format(time.RFC3339), t.Format(time.RFC3339))
	}
	return Shift{
		Rotation: r.ID,
		Person:   s.people[r.part[r.pos(k)]].ID,
		Start:    time.Unix(start, 0).In(r.loc),
		End:      time.Unix(end, 0).In(r.loc),
		Reason:   ReasonRotation,
	}, nil
}

func (s *Schedule) rotation(id string) (*rotation, error) {
	i, ok := s.rotIdx[id]
	if !ok {
		return nil, fmt.Errorf("unknown rotation %q", id)
	}
	return s.rots[i], nil
}

// Shifts lists the rotation's shifts overlapping [from, to), overrides
// applied: a shift an override cuts is split, and the people an override
// puts on duty get shifts of their own. Shifts are not clipped to the
// range; they are ordered by start, the primary first.
func (s *Schedule) Shifts(rotation string, from, to time.Time) ([]Shift, error) {
	r, err := s.rotation(rotation)
	if err != nil {
		return nil, err
	}
	f, e := from.UnixNano(), to.UnixNano()
	if e <= f {
		return nil, nil
	}
	var out []Shift
	k, start, end := r.locate(floorDiv(f, 1e9))
	for {
		bs, be := r.shiftNanos(k, start, end)
		out = s.appendShifts(out, r, k, bs, be)
		if be >= e {
			break
		}
		k++
		start, end = r.handoff(k), r.handoff(k+1)
		for end == start { // emptied by a DST gap
			k++
			end = r.handoff(k + 1)
		}
	}
	kept := out[:0]
	for _, sh := range out {
		if (sh.End.IsZero() || sh.End.UnixNano() > f) && (sh.Start.IsZero() || sh.Start.UnixNano() < e) {
			kept = append(kept, sh)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Start.Before(kept[j].Start) })
	return kept, nil
}

// appendShifts appends base shift k's duty stretches, split and merged
// along the override segments.
func (s *Schedule) appendShifts(out []Shift, r *rotation, k int64, bs, be int64) []Shift {
	pos := 0
	if k >= 0 {
		pos = r.pos(k)
	}
	type open struct {
		d   duty
		idx int
	}
	var prev, cur []open
	var buf [4]duty
	for j := r.segAt(bs); j <= len(r.bounds) && r.segLo(j) < be; j++ {
		lo, hi := max(bs, r.segLo(j)), min(be, r.segHi(j))
		cur = cur[:0]
		for _, d := range r.duties(k, pos, j, buf[:0]) {
			extended := false
			for _, p := range prev {
				if p.d.same(d) {
					out[p.idx].End = nanoTime(hi, r.loc)
					cur = append(cur, open{d, p.idx})
					extended = true
					break
				}
			}
			if extended {
				continue
			}
			sh := Shift{Rotation: r.ID, Person: s.people[d.person].ID, Start: nanoTime(lo, r.loc), End: nanoTime(hi, r.loc), Reason: d.reason}
			if d.scheduled >= 0 {
				sh.Scheduled = s.people[d.scheduled].ID
			}
			out = append(out, sh)
			cur = append(cur, open{d, len(out) - 1})
		}
		prev, cur = cur, prev
	}
	return out
}
