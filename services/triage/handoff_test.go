package triage

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// publishRotation publishes a rotation event as the rotation service does;
// msgID, when set, replaces the Nats-Msg-Id (a redelivery).
func publishRotation(t *testing.T, h *harness, ev *supportv1.RotationEvent, msgID string) {
	t.Helper()
	name := "shift_ended"
	switch ev.GetType() {
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED:
		name = "shift_started"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED:
		name = "override_created"
	}
	msg, err := bus.NewPublisher(h.js, "test/rotation").Msg(bus.Event{Subject: bus.RotationSubject(name), ID: ev.GetId(), Message: ev})
	if err != nil {
		t.Fatal(err)
	}
	if msgID != "" {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	if _, err := h.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func TestHeroHandoffSummary(t *testing.T) {
	h := newHarness(t)
	rot := &fakeRotation{hero: "bob"}
	h.deps.Rotation = serveRotation(t, rot)
	h.deps.Coverage = coverage.Always{}
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)
	ctx := context.Background()

	shiftStart, shiftEnd := utc("2026-03-02 09:00"), utc("2026-03-09 09:00")
	// B was opened and handed over a week earlier: that note does not count.
	triagetest.SetClock(h.clock, utc("2026-02-27 10:00"))
	b := triagetest.Slack("B")
	h.send(t, at(h.clock, b.Customer("U0B", "Session recordings are missing")))
	if _, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: byThread(t, convs, b.ThreadKey).GetId(), Text: "waiting on the customer's logs", Handoff: true, Actor: "zoe"}); err != nil {
		t.Fatal(err)
	}
	// During alice's week: A gets a handoff note, C none, E was answered,
	// D is closed.
	triagetest.SetClock(h.clock, utc("2026-03-09 08:00"))
	a, c, d, e := triagetest.Slack("A"), triagetest.Slack("C"), triagetest.Slack("D"), triagetest.Slack("E")
	h.send(t, at(h.clock, a.Customer("U0A", "Feature flags evaluate wrong")))
	h.clock.Advance(time.Minute)
	h.send(t, at(h.clock, c.Customer("U0C", "Toolbar does not load")), at(h.clock, d.Customer("U0D", "How do I export?")),
		at(h.clock, e.Customer("U0E", "Is there an API for cohorts?")))
	h.send(t, at(h.clock, e.Staff("alice", "Yes: /api/cohorts")), d.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, "U0D", "", ""))
	// A partnership proposal: the business contacts', not in the hero's
	// handoff.
	proposal := email("partner@agency.example").Customer("dana@agency.example", "We'd love to explore a co marketing partnership and a joint webinar.")
	proposal.Subject = "Partnership proposal"
	h.send(t, at(h.clock, proposal))
	idA, idB, idC, idE := byThread(t, convs, a.ThreadKey).GetId(), byThread(t, convs, b.ThreadKey).GetId(), byThread(t, convs, c.ThreadKey).GetId(), byThread(t, convs, e.ThreadKey).GetId()
	if _, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: idA, Text: "bob: flag rollout bug, see PR 123", Handoff: true, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}

	triagetest.SetClock(h.clock, shiftEnd)
	triagetest.Eventually(t, "deadlines due by the handoff fired", func() bool {
		return triagetest.Count(t, h.pool, `SELECT count(*) FROM timers WHERE status = 1 AND due_at <= $1`, shiftEnd) == 0
	})
	ended := &supportv1.RotationEvent{
		Id: "rotation:shift_ended:hero:alice", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED,
		RotationId: "hero", Hero: true, PersonId: "alice",
		Start: timestamppb.New(shiftStart), End: timestamppb.New(shiftEnd), OccurredAt: timestamppb.New(shiftEnd),
	}
	started := &supportv1.RotationEvent{
		Id: "rotation:shift_started:hero:bob", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED,
		RotationId: "hero", Hero: true, PersonId: "bob", PreviousPersonId: "alice",
		Start: timestamppb.New(shiftEnd), End: timestamppb.New(shiftEnd.AddDate(0, 0, 7)), OccurredAt: timestamppb.New(shiftEnd),
	}
	secondary := &supportv1.RotationEvent{
		Id: "rotation:shift_ended:platform-secondary:gus", Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED,
		RotationId: "platform-secondary", TeamId: "platform", PersonId: "gus",
		Start: timestamppb.New(shiftStart), End: timestamppb.New(shiftEnd), OccurredAt: timestamppb.New(shiftEnd),
	}
	publishRotation(t, h, ended, "")
	publishRotation(t, h, started, "")
	publishRotation(t, h, secondary, "")
	publishRotation(t, h, ended, "redelivered-days-later")
	triagetest.Drained(t, h.js, bus.StreamRotation, DurableRotation)
	h.settled(t)

	events, _ := triagetest.ConversationEvents(t, h.js)
	handoffs := eventsOf(events, supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_HANDOFF)
	if len(handoffs) != 1 {
		t.Fatalf("%d handoff events, want 1", len(handoffs))
	}
	sum := handoffs[0].GetHandoff()
	if sum.GetFromPerson() != "alice" || sum.GetToPerson() != "bob" {
		t.Fatalf("handoff from %q to %q", sum.GetFromPerson(), sum.GetToPerson())
	}
	var open []string
	for _, c := range sum.GetOpen() {
		open = append(open, c.GetId())
	}
	// Queue order: B (breached long ago), C (okay until 09:01), A (late
	// since 09:00, too late at 16:00), E (answered: no deadline).
	if want := []string{idB, idC, idA, idE}; !slices.Equal(open, want) {
		t.Fatalf("open %v, want %v", open, want)
	}
	// A's note travels with the summary, its text and author; B's, written
	// a week earlier, does not.
	if notes := sum.GetNotes(); len(notes) != 1 || notes[0].GetConversationId() != idA || notes[0].GetAuthor() != "alice" ||
		notes[0].GetText() != "bob: flag rollout bug, see PR 123" {
		t.Fatalf("notes %v, want A's by alice", notes)
	}
	missing := slices.Clone(sum.GetMissingNotes())
	if want := []string{idB, idC, idE}; !slices.Equal(missing, want) {
		t.Fatalf("missing notes %v, want %v", missing, want)
	}
	for _, c := range sum.GetOpen() {
		if flagged := slices.Contains(c.GetTags(), "needs-handoff"); flagged != slices.Contains(missing, c.GetId()) {
			t.Fatalf("snapshot %s tags %v", c.GetId(), c.GetTags())
		}
	}
	if _, asked := rot.calls(); len(asked) != 1 || asked[0].GetRole() != rotationv1.Role_ROLE_ROTATION || asked[0].GetRotation() != "hero" || !asked[0].GetAt().AsTime().Equal(shiftEnd) {
		t.Fatalf("asked rotation %v", asked)
	}
	list, err := convs.ListConversations(ctx, &triagev1.ListConversationsRequest{Tag: "needs-handoff"})
	if err != nil || len(list.GetConversations()) != 3 {
		t.Fatalf("flagged conversations %v %v", list, err)
	}
	if got := actions(get(t, convs, idC).GetAudit()); !slices.Contains(got, "system handoff flagged") {
		t.Fatalf("audit of C %v", got)
	}
	// A handoff note clears the flag.
	if _, err := convs.AddNote(ctx, &triagev1.AddNoteRequest{Id: idC, Text: "bob: toolbar CSP issue, customer sent headers", Handoff: true, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(get(t, convs, idC).GetConversation().GetTags(), "needs-handoff") {
		t.Fatal("handoff note left the flag")
	}
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM handoffs WHERE open_count = 4 AND missing_count = 3 AND event_id = $1`, handoffs[0].GetId()); n != 1 {
		t.Fatal("handoff not recorded")
	}
}
