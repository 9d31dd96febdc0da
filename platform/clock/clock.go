// Package clock is the one clock of Sidekick: every timer, lease, digest,
// escalation, deadline and rotation event reads the time and waits through
// a Clock, so tests (and the end-to-end harness) can run the whole system
// on a Fake and move it forward.
//
// It is a thin layer over github.com/jonboulle/clockwork: Clock, Timer and
// Ticker are its types; Real and NewFake its constructors; Wait adds the
// context-aware sleep that service loops need.
//
// What runs on the clock is domain time. Waits that pace infrastructure
// (reconnects, retries after a failed database call, polling for work
// another replica may have added) use it too, so a fake clock controls
// them in tests; a loop that must make progress while a fake clock stands
// still also wakes on the events that give it work (a NATS message, a
// Postgres notification).
package clock

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
)

type (
	// Clock tells the time and makes timers.
	Clock = clockwork.Clock
	// Timer is a one-shot timer; read its channel with Chan().
	Timer = clockwork.Timer
	// Ticker fires every period; read its channel with Chan().
	Ticker = clockwork.Ticker
	// Fake is a clock that moves only when told (Advance), firing the
	// timers and tickers that fall due on the way.
	Fake = clockwork.FakeClock
)

// Real returns the wall clock.
func Real() Clock { return clockwork.NewRealClock() }

// NewFake returns a fake clock standing at t.
func NewFake(t time.Time) *Fake { return clockwork.NewFakeClockAt(t) }

// OrReal returns c, or the wall clock when c is nil: constructors use it
// for an optional Clock dependency.
func OrReal(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Wait blocks for d on c, or until ctx is done; it reports whether the
// whole d passed. A d of zero or less returns at once (true unless ctx is
// done).
func Wait(ctx context.Context, c Clock, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.Chan():
		return true
	}
}

// WaitOrWake is Wait that also returns early when wake delivers; it
// reports false only when ctx is done.
func WaitOrWake(ctx context.Context, c Clock, d time.Duration, wake <-chan struct{}) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return true
	case <-t.Chan():
		return true
	}
}

// WaitUntil blocks until c reaches t, wake delivers (nil: never), or ctx
// is done; it reports false only when ctx is done. Loops that pace
// themselves use it with an instant read before their work
// (start.Add(interval)) rather than WaitOrWake with a duration read after
// it: a fake clock advanced while the loop worked, or between reading the
// time and arming the timer, would otherwise leave the loop asleep past t
// until the next Advance.
func WaitUntil(ctx context.Context, c Clock, t time.Time, wake <-chan struct{}) bool {
	if !c.Now().Before(t) {
		return ctx.Err() == nil
	}
	// clockwork arms a fake clock's deadline under the clock's own lock,
	// measured from the time it holds then: no Advance can slip in between.
	dctx, cancel := clockwork.WithDeadline(context.Background(), c, t)
	defer cancel()
	select {
	case <-ctx.Done():
		return false
	case <-wake:
		return true
	case <-dctx.Done():
		return true
	}
}
