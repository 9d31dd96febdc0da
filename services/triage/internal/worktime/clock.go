package worktime

import (
	"sort"
	"time"
)

// Span is one stretch during which a conversation's response clock ran:
// from the customer message that started it to the staff reply that stopped
// it. End is the zero time while the clock is still running.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
}

// Running reports whether the span is still open.
func (s Span) Running() bool { return s.End.IsZero() }

// Clock is a conversation's first-response clock. A customer message starts
// it (or restarts it after a staff reply), the first staff reply stops it;
// its elapsed time is the covered working time summed over the spans during
// which it ran. It is plain data, serialisable as JSON, so the service can
// store it with the conversation; the zero value is a clock that never ran.
//
// Events are expected roughly in time order but may arrive late (an email
// delayed in transit); the rules below keep the clock meaningful then:
//   - a customer message while the clock runs changes nothing, except that
//     an earlier unanswered message moves the start back;
//   - a customer message sent before the latest staff reply was answered by
//     that reply and does not restart the clock;
//   - a staff reply ends the span it falls in, and a reply earlier than the
//     one that stopped a span moves that span's end back (the first reply
//     counts);
//   - a staff reply before any span started (or before the settled part)
//     changes nothing.
type Clock struct {
	// Settled is the covered time of the spans folded in by [Clock.Settle].
	Settled time.Duration `json:"settled,omitzero"`
	// SettledUntil is the end of the last settled span.
	SettledUntil time.Time `json:"settled_until,omitzero"`
	// Spans are the unsettled spans, in time order; only the last may be
	// running.
	Spans []Span `json:"spans,omitempty"`
}

// Running reports whether the clock is running.
func (c *Clock) Running() bool {
	n := len(c.Spans)
	return n > 0 && c.Spans[n-1].Running()
}

// Since returns the earliest instant the clock needs working windows from:
// the start of its first unsettled span, or the zero time when there is
// none. Windows passed to [Clock.Elapsed] and [Clock.Status] must cover
// [Since, now) and, for the upcoming thresholds, some time beyond now.
func (c *Clock) Since() time.Time {
	if len(c.Spans) == 0 {
		return time.Time{}
	}
	return c.Spans[0].Start
}

// endBefore returns the end of the span before index i, or SettledUntil.
func (c *Clock) endBefore(i int) time.Time {
	if i > 0 {
		return c.Spans[i-1].End
	}
	return c.SettledUntil
}

// CustomerWrote records a customer message sent at t and reports whether the
// clock changed: it starts (or restarts) the clock unless the message is
// already covered by a running span or was answered by a later staff reply.
func (c *Clock) CustomerWrote(t time.Time) bool {
	t = t.UTC()
	n := len(c.Spans)
	if c.Running() {
		open := &c.Spans[n-1]
		if t.Before(open.Start) && !t.Before(c.endBefore(n-1)) {
			open.Start = t
			return true
		}
		return false
	}
	if t.Before(c.endBefore(n)) {
		return false
	}
	c.Spans = append(c.Spans, Span{Start: t})
	return true
}

// StaffReplied records a staff reply sent at t and reports whether the clock
// changed: it stops the running span when t is inside it, and moves back
// the end of a stopped span when t is earlier than the reply that stopped it.
func (c *Clock) StaffReplied(t time.Time) bool {
	t = t.UTC()
	i := sort.Search(len(c.Spans), func(i int) bool { return c.Spans[i].Start.After(t) }) - 1
	if i < 0 {
		return false
	}
	s := &c.Spans[i]
	if s.Running() || s.End.After(t) {
		s.End = t
		return true
	}
	return false
}

// Elapsed returns the clock's covered elapsed time at now: the settled time
// plus the covered time of every span, a running one counted up to now.
// Spans or parts of spans after now are not counted.
func (c *Clock) Elapsed(w Windows, now time.Time) time.Duration {
	d := c.Settled
	for _, s := range c.Spans {
		end := s.End
		if s.Running() || end.After(now) {
			end = now
		}
		d += Elapsed(w, s.Start, end)
	}
	return d
}

// Settle folds the stopped spans into Settled, so that later computations
// need no windows before the running span. w must cover the stopped spans;
// call it with the windows used to evaluate the reply that stopped them.
// Late events that fall before the settled part are ignored afterwards.
func (c *Clock) Settle(w Windows) {
	n := len(c.Spans)
	if c.Running() {
		n--
	}
	if n <= 0 {
		return
	}
	for _, s := range c.Spans[:n] {
		c.Settled += Elapsed(w, s.Start, s.End)
	}
	c.SettledUntil = c.Spans[n-1].End
	c.Spans = append(c.Spans[:0:0], c.Spans[n:]...)
}

// Status is where a clock stands at an instant against a tier's thresholds.
type Status struct {
	// Running reports whether the clock runs (a customer awaits a reply).
	Running bool
	// Elapsed is the covered elapsed time.
	Elapsed time.Duration
	// Level is the level Elapsed is in.
	Level Level
	// Next is the level the running clock reaches next; LevelUnspecified
	// when the clock is stopped or already breached.
	Next Level
	// NextAt is when the clock reaches Next (in UTC); zero when Next is
	// unspecified or the windows end first.
	NextAt time.Time
	// BreachAt is when the clock reaches the too-late threshold, the
	// conversation's deadline (in UTC); zero when the clock is stopped,
	// already breached, or the windows end first.
	BreachAt time.Time
	// MoreWindows reports that the windows ended before NextAt or BreachAt
	// could be found: fetch windows beyond [Windows.End] and ask again.
	MoreWindows bool
}

// Status returns the clock's standing at now against the thresholds th,
// with the instants at which the running clock passes its next threshold
// and the too-late one.
func (c *Clock) Status(w Windows, th Thresholds, now time.Time) Status {
	e := c.Elapsed(w, now)
	st := Status{Running: c.Running(), Elapsed: e, Level: th.Level(e)}
	if !st.Running || st.Level == LevelBreached {
		return st
	}
	from := laterOf(now, c.Spans[len(c.Spans)-1].Start)
	st.Next = st.Level + 1
	if at, ok := Deadline(w, from, th.Start(st.Next)-e); ok {
		st.NextAt = at
	} else {
		st.MoreWindows = true
	}
	if at, ok := Deadline(w, from, th.TooLate-e); ok {
		st.BreachAt = at
	} else {
		st.MoreWindows = true
	}
	return st
}
