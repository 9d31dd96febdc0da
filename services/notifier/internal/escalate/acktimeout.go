package escalate

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// ackTimeoutMark separates an escalation's key from the count of the
// re-escalations its acknowledgements timed out into.
const ackTimeoutMark = "/ack-timeout/"

func isReEscalation(key string) bool { return strings.Contains(key, ackTimeoutMark) }

// reEscalation is the escalation an acknowledgement timeout starts: the
// same policy, conversation and text, keyed "<first key>/ack-timeout/<n>"
// (so each timeout starts one, once), from the step that was acknowledged
// (the last one fired), which is due now; the steps after it keep their
// spacing, and deadline-anchored steps their deadlines. Its own
// acknowledgement arms the timeout again.
func reEscalation(acked store.Escalation, now time.Time) store.NewEscalation {
	base, n, _ := strings.Cut(acked.Key, ackTimeoutMark)
	count, _ := strconv.Atoi(n)
	ne := acked.NewEscalation
	ne.Key = base + ackTimeoutMark + strconv.Itoa(count+1)
	ne.FirstStep = max(acked.NextStep-1, 0)
	ne.StartedAt, ne.CreatedAt, ne.Held = now, now, false
	var p policy.Policy
	if err := json.Unmarshal(acked.Policy, &p); err == nil {
		if st, state := locate(&p, acked.StartedAt, deadlineMap(acked.Deadlines), ne.FirstStep); state == ready {
			// Move the plan's start so the acknowledged step is due now.
			ne.StartedAt = acked.StartedAt.Add(now.Sub(st.Due))
		}
	}
	return ne
}

// reEscalateDue re-escalates one acknowledged escalation whose
// acknowledgement timed out (see store.ReEscalateDue) and returns the
// notifications it recorded, to send.
func (r *Runner) reEscalateDue(ctx context.Context) (found bool, ids []string, err error) {
	now := r.clock.Now()
	acked, esc, found, started, ids, err := r.store.ReEscalateDue(ctx, now,
		func(acked store.Escalation) store.NewEscalation { return reEscalation(acked, now) }, r.fire)
	if err != nil || !found {
		return found, nil, err
	}
	if !started {
		r.logger.Info("acknowledgement timed out, but its re-escalation exists or its group has an open one",
			"escalation", acked.ID, "conversation", acked.ConversationID)
		return true, nil, nil
	}
	r.logger.Info("acknowledged without a reply for too long; escalating again", "escalation", acked.ID,
		"reescalation", esc.ID, "conversation", acked.ConversationID, "ack_timeout", acked.AckTimeout,
		"acknowledged", acked.StopReason, "from_step", esc.NextStep)
	r.metrics.reEscalations.Inc()
	return true, ids, nil
}
