// Package worktime does the arithmetic of first-response deadlines that count
// only covered working time.
//
// The handbook's rule is that the response clock runs only while somebody on
// the support roster is within working hours. The rotation service answers
// that question as working windows: sorted, non-overlapping, half-open
// [start, end) intervals in UTC for a requested range (the WorkingWindows
// RPC). This package takes those windows as plain data and answers:
//
//   - how much covered time lies between two instants ([Elapsed]);
//   - at which instant the covered time since a start reaches a duration
//     ([Deadline]), or that the windows end first, in which case the caller
//     fetches windows further ahead and asks again;
//   - how a conversation's response clock stands ([Clock]): it starts when
//     a customer writes, stops at the first staff reply and restarts when the
//     customer writes again, and its elapsed time is the covered time summed
//     over the spans during which it ran;
//   - which level of the first-response guideline that elapsed time is in
//     ([Thresholds.Level]: great under 15 minutes, okay under an hour, late
//     under one working day, breached after), per customer tier ([Policy]).
//
// Everything is computed on absolute instants, so durations are real elapsed
// time whatever the time zones and daylight-saving changes behind the
// windows; windows built from local schedules are converted to UTC by
// [Normalize]. The package has no clock of its own: callers pass "now".
package worktime

import (
	"slices"
	"sort"
	"time"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// Interval is the half-open time range [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration returns the length of the interval, zero when it is empty or
// inverted.
func (iv Interval) Duration() time.Duration {
	if !iv.End.After(iv.Start) {
		return 0
	}
	return iv.End.Sub(iv.Start)
}

// Windows are the stretches of covered working time: sorted by start,
// non-empty, non-overlapping and non-adjacent intervals in UTC. Build them
// with [Normalize] (or [FromProto]) unless they already satisfy that, as
// rotation's WorkingWindows answers do. The zero value covers no time.
type Windows []Interval

// Normalize returns the windows covering exactly the union of ivs: empty and
// inverted intervals are dropped, the rest converted to UTC, sorted, and
// overlapping or touching intervals merged. It does not modify ivs. Use it to
// union the working hours of several people (for instance one in London and
// one in New York) or several fetched ranges.
func Normalize(ivs []Interval) Windows {
	out := make(Windows, 0, len(ivs))
	for _, iv := range ivs {
		if iv.End.After(iv.Start) {
			out = append(out, Interval{Start: iv.Start.UTC(), End: iv.End.UTC()})
		}
	}
	slices.SortFunc(out, func(a, b Interval) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return a.End.Compare(b.End)
	})
	merged := out[:0]
	for _, iv := range out {
		if n := len(merged); n > 0 && !iv.Start.After(merged[n-1].End) {
			if iv.End.After(merged[n-1].End) {
				merged[n-1].End = iv.End
			}
			continue
		}
		merged = append(merged, iv)
	}
	return merged
}

// Union returns the normalized union of several sets of windows.
func Union(ws ...Windows) Windows {
	var all []Interval
	for _, w := range ws {
		all = append(all, w...)
	}
	return Normalize(all)
}

// FromProto converts rotation's WorkingWindows answer into normalized
// windows. Intervals missing either end are skipped.
func FromProto(ivs []*rotationv1.Interval) Windows {
	out := make([]Interval, 0, len(ivs))
	for _, iv := range ivs {
		if iv.GetStart() == nil || iv.GetEnd() == nil {
			continue
		}
		out = append(out, Interval{Start: iv.GetStart().AsTime(), End: iv.GetEnd().AsTime()})
	}
	return Normalize(out)
}

// first returns the index of the first window that ends after t.
func (w Windows) first(t time.Time) int {
	return sort.Search(len(w), func(i int) bool { return w[i].End.After(t) })
}

// Covers reports whether t lies inside a window, that is whether a running
// response clock advances at t.
func (w Windows) Covers(t time.Time) bool {
	i := w.first(t)
	return i < len(w) && !w[i].Start.After(t)
}

// End returns the end of the last window, the zero time when there are none.
// A caller whose [Deadline] came back false fetches windows from here on.
func (w Windows) End() time.Time {
	if len(w) == 0 {
		return time.Time{}
	}
	return w[len(w)-1].End
}

// Total returns the covered time of all windows.
func (w Windows) Total() time.Duration {
	var d time.Duration
	for _, iv := range w {
		d += iv.Duration()
	}
	return d
}

// Clip returns the parts of the windows inside [from, to).
func (w Windows) Clip(from, to time.Time) Windows {
	if !to.After(from) {
		return nil
	}
	var out Windows
	for i := w.first(from); i < len(w) && w[i].Start.Before(to); i++ {
		out = append(out, Interval{Start: laterOf(w[i].Start, from).UTC(), End: earlierOf(w[i].End, to).UTC()})
	}
	return out
}

// Elapsed returns the covered time between from and to: the total length of
// the windows' overlap with [from, to). It is zero when to is not after from.
// The result is real elapsed time, independent of time zones.
func Elapsed(w Windows, from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	var d time.Duration
	for i := w.first(from); i < len(w) && w[i].Start.Before(to); i++ {
		d += earlierOf(w[i].End, to).Sub(laterOf(w[i].Start, from))
	}
	return d
}

// Deadline returns the earliest instant at which the covered time since start
// reaches d, in UTC. A d of zero or less is reached at start. When the
// windows end before d has been covered it returns false: the caller fetches
// windows beyond [Windows.End] and asks again.
//
// For t not before start, Deadline(w, start, Elapsed(w, start, t)) is not
// after t, and Elapsed(w, start, Deadline(w, start, d)) equals d.
func Deadline(w Windows, start time.Time, d time.Duration) (time.Time, bool) {
	if d <= 0 {
		return start.UTC(), true
	}
	remaining := d
	for i := w.first(start); i < len(w); i++ {
		from := laterOf(w[i].Start, start)
		avail := w[i].End.Sub(from)
		if avail >= remaining {
			return from.Add(remaining).UTC(), true
		}
		remaining -= avail
	}
	return time.Time{}, false
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlierOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
