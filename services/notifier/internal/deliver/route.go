package deliver

import (
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// onCallRecipients are who a message of urgency u for a role reaches, by
// rotation's answer: the receiver of its high route for a page (the person
// on duty unless away, else the backup chain), of its low route for a
// ping (working hours respected) when pingsByHours, else the page's. A
// ping nobody within working hours can
// take goes to the page's receiver rather than nowhere; nobody at all is
// nobody, which the caller reports. An answer without routes (a rotation
// older than them) falls back to the person on duty, or in a gap the
// catchers. why says who and why, for the log.
func onCallRecipients(resp *rotationv1.WhoIsOnCallResponse, label string, u notify.Urgency, pingsByHours bool) (out []notify.Recipient, why string) {
	high, low := resp.GetHigh(), resp.GetLow()
	if high == nil {
		if p := resp.GetOnCall().GetPerson(); p.GetId() != "" {
			return []notify.Recipient{recipient(p, label)}, ""
		}
		for _, also := range resp.GetAlso() {
			if p := also.GetPerson(); p.GetId() != "" {
				out = append(out, recipient(p, label+" (covering)"))
			}
		}
		return out, resp.GetGapReason()
	}
	route := high
	if pingsByHours && u != notify.Page && low.GetReceiver().GetPerson().GetId() != "" {
		route = low
	}
	rc := route.GetReceiver()
	p := rc.GetPerson()
	if p.GetId() == "" {
		return nil, route.GetExplanation()
	}
	if route.GetReceiverIndex() > 0 || resp.GetGap() {
		label += " (covering: " + shortReason(rc.GetReason()) + ")"
	}
	return []notify.Recipient{recipient(p, label)}, route.GetExplanation()
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
