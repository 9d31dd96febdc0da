package deliver

import (
	"time"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// onCallRecipients are who a message of urgency u for a role reaches, by
// rotation's answer, which is the one source of truth (`sidekick oncall`
// prints the same routes): the receiver of its high route for a page (the
// person on duty unless away, else the backup chain), of its low route
// for a ping (working hours respected, unless the organisation file's
// support.pings_follow_working_hours is false: then rotation makes the
// low route the high one). A ping nobody at work can take now waits for
// the high receiver's next working hour: it goes to them, not before
// until (rotation's wait_until); without a wait_until (no working hours
// within a year) it goes to them now rather than nowhere. Nobody at all is
// nobody, which the caller reports. An answer without routes (a rotation
// older than them) falls back to the person on duty, or in a gap the
// catchers. why says who and why, for the log.
func onCallRecipients(resp *rotationv1.WhoIsOnCallResponse, label string, u notify.Urgency, now time.Time) (out []notify.Recipient, until time.Time, why string) {
	high, low := resp.GetHigh(), resp.GetLow()
	if high == nil {
		if p := resp.GetOnCall().GetPerson(); p.GetId() != "" {
			return []notify.Recipient{recipient(p, label)}, time.Time{}, ""
		}
		for _, also := range resp.GetAlso() {
			if p := also.GetPerson(); p.GetId() != "" {
				out = append(out, recipient(p, label+" (covering)"))
			}
		}
		return out, time.Time{}, resp.GetGapReason()
	}
	route := high
	if u != notify.Page {
		if low.GetReceiver().GetPerson().GetId() != "" {
			route = low
		} else if w := low.GetWaitUntil(); w != nil && w.AsTime().After(now) {
			until = w.AsTime()
		}
	}
	rc := route.GetReceiver()
	p := rc.GetPerson()
	if p.GetId() == "" {
		return nil, time.Time{}, route.GetExplanation()
	}
	if route.GetReceiverIndex() > 0 || resp.GetGap() {
		label += " (covering: " + shortReason(rc.GetReason()) + ")"
	}
	why = route.GetExplanation()
	if !until.IsZero() {
		why = low.GetExplanation()
	}
	return []notify.Recipient{recipient(p, label)}, until, why
}

func shortReason(r rotationv1.Reason) string {
	switch r {
	case rotationv1.Reason_REASON_CATCHER:
		return "catcher"
	case rotationv1.Reason_REASON_BACKUP:
		return "next in the rotation"
	case rotationv1.Reason_REASON_OVERRIDE:
		return "override"
	case rotationv1.Reason_REASON_SWAP:
		return "swap"
	case rotationv1.Reason_REASON_DERIVED:
		return "the hero"
	}
	return "backup"
}
