package escalate

import (
	"context"
	"time"
)

// Handoff starts the handoff policy for t, the summary for the incoming
// hero t.PersonID: at once when their Support Hero shift already started
// (within HandoffWait before t.At), else held until it does (ShiftStarted)
// or HandoffWait has passed.
func (r *Runner) Handoff(ctx context.Context, t Trigger) (Outcome, error) {
	_, started, err := r.store.ShiftStarted(ctx, t.PersonID, t.At.Add(-r.cfg.HandoffWait), r.clock.Now())
	if err != nil {
		return Outcome{}, err
	}
	t.At, t.Hold = handoffStart(t.At, started, r.cfg.HandoffWait)
	return r.Trigger(ctx, t)
}

// handoffStart is when a handoff summary made at goes out: then, when the
// incoming hero's shift has started; otherwise it is held, due wait later
// at the latest (ShiftStarted brings it forward).
func handoffStart(at time.Time, shiftStarted bool, wait time.Duration) (time.Time, bool) {
	if shiftStarted {
		return at, false
	}
	return at.Add(wait), true
}

// ShiftStarted records that personID's Support Hero shift started at start
// (the rotation event eventID) and starts the handoff summaries held for
// them, from start when that is before they were due.
func (r *Runner) ShiftStarted(ctx context.Context, eventID, personID string, start time.Time) error {
	if err := r.store.RecordShiftStart(ctx, eventID, personID, start); err != nil {
		return err
	}
	ids, err := r.store.ReleaseHandoffs(ctx, personID, start, r.clock.Now(), r.fire)
	if err != nil {
		return err
	}
	r.send(ctx, ids)
	return nil
}
