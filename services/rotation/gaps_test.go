package rotation

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Every uncovered interval inside the look-ahead is announced once with its
// true bounds, time off added inside the window included; a later change
// that covers it publishes a cancellation with the same gap id.
func TestGapsAnnouncedOnceAndCancelled(t *testing.T) {
	url, js := eventStack(t)
	ctx := context.Background()
	// Sunday 1 February 2026, 12:00 (London is UTC in winter). Bob is the
	// hero and platform's secondary the week of the 2nd, and is off on
	// Tuesday the 3rd and from Thursday the 5th to the 12th.
	clk := clock.NewFake(time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC))
	s := eventReplica(t, url, js, clk, 72*time.Hour)
	bobOff := `time_off: [{start: "2026-02-03", end: "2026-02-03"}, {start: "2026-02-05", end: "2026-02-12"}]`
	withBobOff := strings.Replace(org, `timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30"}`,
		`timezone: Europe/London, working_hours: "Mon-Fri 09:00-17:30", `+bobOff+`}`, 1)
	if withBobOff == org {
		t.Fatal("the test organisation changed: bob's line not found")
	}
	if _, err := s.Apply(ctx, []byte(withBobOff), false, "test"); err != nil {
		t.Fatal(err)
	}
	seen := 0
	tick := func() []*supportv1.RotationEvent {
		t.Helper()
		clk.Advance(time.Minute)
		s.emit(ctx)
		if _, err := s.relay.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		all := rotationEvents(t, js)
		var gaps []*supportv1.RotationEvent
		for _, ev := range all[seen:] {
			switch ev.GetType() {
			case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD, supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_COVERED:
				gaps = append(gaps, ev)
			}
		}
		seen = len(all)
		return gaps
	}
	day := func(d, h int) time.Time { return time.Date(2026, 2, d, h, 0, 0, 0, time.UTC) }
	type gap struct {
		kind       string
		who        string
		start, end time.Time
	}
	check := func(step string, got []*supportv1.RotationEvent, want ...gap) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d gap events, want %d: %v", step, len(got), len(want), got)
		}
		for i, w := range want {
			ev := got[i]
			kind := strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "ROTATION_EVENT_TYPE_"))
			who := ev.GetTeamId()
			if ev.GetHero() {
				who = "hero"
			}
			if kind != w.kind || who != w.who || !ev.GetStart().AsTime().Equal(w.start) || !ev.GetEnd().AsTime().Equal(w.end) || ev.GetGapId() == "" {
				t.Errorf("%s: event %d: %s %s %s..%s (%s), want %s %s %s..%s", step, i, kind, who,
					ev.GetStart().AsTime().Format(time.RFC3339), ev.GetEnd().AsTime().Format(time.RFC3339), ev.GetDetail(),
					w.kind, w.who, w.start.Format(time.RFC3339), w.end.Format(time.RFC3339))
			}
		}
	}
	s.emit(ctx) // the first tick only sets the cursor
	first := tick()
	check("Tuesday enters the look-ahead", first,
		gap{"gap_ahead", "hero", day(3, 0), day(4, 0)}, gap{"gap_ahead", "platform", day(3, 0), day(4, 0)})
	check("looked at again", tick())

	// Time off added inside the window (carol, analytics' only secondary,
	// off tomorrow) is announced at the next tick, though its start is
	// well inside the look-ahead already.
	withCarolOff := strings.Replace(withBobOff, `timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00"}`,
		`timezone: Europe/Berlin, working_hours: "Mon-Fri 09:00-17:00", time_off: [{start: "2026-02-02", end: "2026-02-02"}]}`, 1)
	if _, err := s.Apply(ctx, []byte(withCarolOff), false, "test"); err != nil {
		t.Fatal(err)
	}
	// Berlin is UTC+1: carol's Monday is 23:00 Sunday to 23:00 Monday UTC.
	check("time off added inside the window", tick(), gap{"gap_ahead", "analytics", day(1, 23), day(2, 23)})

	// A day later the long absence enters the window: announced with its
	// true end, the handoff to carol on Monday the 9th, not the window's.
	clk.Advance(24 * time.Hour)
	check("a gap longer than the window", tick(),
		gap{"gap_ahead", "hero", day(5, 0), day(9, 9)}, gap{"gap_ahead", "platform", day(5, 0), day(9, 9)})

	// Alice covers bob's Tuesday: both of Tuesday's gaps are void (alice,
	// platform's, is the hero then, so platform's secondary by the derived
	// rule), with the ids they were announced with.
	if _, err := s.api.CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
		RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "bob", WithPersonId: "alice",
		Start: timestamppb.New(day(3, 0)), End: timestamppb.New(day(4, 0)),
	}}); err != nil {
		t.Fatal(err)
	}
	covered := tick()
	check("covered by an override", covered,
		gap{"gap_covered", "hero", day(3, 0), day(4, 0)}, gap{"gap_covered", "platform", day(3, 0), day(4, 0)})
	for i := range covered {
		if covered[i].GetGapId() != first[i].GetGapId() {
			t.Errorf("cancellation %s names gap %s, the announcement %s", covered[i].GetId(), covered[i].GetGapId(), first[i].GetGapId())
		}
	}
	check("looked at again after the cancellation", tick())
}
