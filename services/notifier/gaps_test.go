package notifier

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// rotation's gap_covered, consumed: a gap covered before its announcement
// (a day ahead) is never announced; a gap covered after it was announced
// is announced gone to whoever heard of it, once however often the event
// comes.
func TestCoveredGapsAreCancelledOrConfirmed(t *testing.T) {
	st := newStack(t, "")
	st.cfg.GapNotice = 24 * time.Hour
	s, _ := st.run(t)
	gapEvent := func(typ supportv1.RotationEventType, gapID string, start time.Time) *supportv1.RotationEvent {
		return &supportv1.RotationEvent{
			Id: "rotation:" + typ.String() + ":" + gapID, Type: typ, GapId: gapID,
			RotationId: "platform-secondary", TeamId: "platform", Start: timestamppb.New(start), End: timestamppb.New(start.Add(8 * time.Hour)),
			OccurredAt: timestamppb.New(st.clock.Now()), Detail: "everyone on the rotation is off",
		}
	}
	ahead := supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD
	covered := supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_COVERED

	// Two gaps 30 and 31 hours ahead, announced 24 hours before they
	// start; the first is covered at once, the second after its
	// announcement.
	first, start := st.clock.Now().Add(30*time.Hour), st.clock.Now().Add(31*time.Hour)
	for id, at := range map[string]time.Time{"gap-1": first, "gap-2": start} {
		ev := gapEvent(ahead, id, at)
		st.handled(t, bus.RotationSubject("gap_ahead"), ev.GetId(), ev)
	}
	ev := gapEvent(covered, "gap-1", first)
	st.handled(t, bus.RotationSubject("gap_covered"), ev.GetId(), ev)
	if esc := st.escalation(t, "rotation.gap_ahead/gap-1"); esc.Status != store.EscalationStopped || esc.StopReason != "gap covered before it was announced" {
		t.Errorf("the covered gap's announcement: %s (%s), want stopped", esc.Status, esc.StopReason)
	}

	st.advance(t, 7*time.Hour)
	st.tick(t, s)
	notifiertest.Eventually(t, "the second gap's announcement", func() bool { return len(st.posts("U0ALICE")) == 1 })
	if text := st.posts("U0ALICE")[0].Form.Get("text"); !strings.Contains(text, "coverage gap ahead") {
		t.Fatalf("announcement = %q", text)
	}
	ev = gapEvent(covered, "gap-2", start)
	ev.Detail = "no longer a gap as announced: covered by an override"
	st.handled(t, bus.RotationSubject("gap_covered"), ev.GetId(), ev)
	notifiertest.Eventually(t, "the cover confirmed", func() bool { return len(st.posts("U0ALICE")) == 2 })
	if text := st.posts("U0ALICE")[1].Form.Get("text"); !strings.Contains(text, "coverage gap covered: the platform secondary on call gap") {
		t.Errorf("confirmation = %q", text)
	}
	// Redelivered (a new message id): nothing more.
	st.handled(t, bus.RotationSubject("gap_covered"), ev.GetId()+"-again", ev)
	ev = gapEvent(covered, "gap-1", first)
	st.handled(t, bus.RotationSubject("gap_covered"), ev.GetId()+"-again", ev)
	st.advance(t, 48*time.Hour)
	st.tick(t, s)
	if n := len(st.posts("")); n != 2 {
		t.Errorf("%d messages, want the second gap's announcement and its cover only", n)
	}
	if esc := st.escalation(t, consume.GapKey(gapEvent(ahead, "gap-2", start))); esc.Status != store.EscalationDone {
		t.Errorf("the announced gap's escalation is %s", esc.Status)
	}
}
