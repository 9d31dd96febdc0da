package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
)

// Shift reminders, on the fake clock and at the wire: an hour before bob's
// Support Hero week he gets a Slack DM with the open queue; carol (email
// only) an hour before her platform secondary shift; each once however
// often rotation is asked; a stretch an override cuts inside a shift of
// the same person is no new shift.
func TestShiftRemindersTellTheIncomingPersonOnce(t *testing.T) {
	st := newStack(t, "")
	st.cfg.ConsoleURL = "https://sidekick.example/console"
	// Only the test asks, besides the check at start.
	st.cfg.ShiftReminder, st.cfg.ShiftReminderEvery = time.Hour, 1000*time.Hour
	at := func(d time.Duration) *timestamppb.Timestamp { return timestamppb.New(notifiertest.Start.Add(d)) } // Mon 10:00 UTC
	shift := func(rot, person string, from, to time.Duration) *rotationv1.Shift {
		return &rotationv1.Shift{RotationId: rot, PersonId: person, Start: at(from), End: at(to), Reason: rotationv1.Reason_REASON_ROTATION}
	}
	st.rot.SetShifts(
		[]*rotationv1.Rotation{{Id: "hero", Name: "Support Hero"}, {Id: "platform-secondary", Name: "Platform secondary"}},
		[]*rotationv1.Shift{
			shift("hero", "alice", -time.Hour, 23*time.Hour), shift("hero", "bob", 23*time.Hour, 191*time.Hour),
			shift("platform-secondary", "bob", -time.Hour, 2*time.Hour), shift("platform-secondary", "bob", 2*time.Hour, 23*time.Hour+30*time.Minute),
			shift("platform-secondary", "carol", 23*time.Hour+30*time.Minute, 47*time.Hour),
		})
	st.rot.SetHeroAnswer(&rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{Person: notifiertest.Alice,
		Shift: shift("hero", "alice", -time.Hour, 23*time.Hour)}})
	s, _ := st.run(t)
	ctx := context.Background()
	remind := func() int {
		t.Helper()
		n, err := s.RemindShifts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	if n := remind(); n != 0 {
		t.Fatalf("Monday 10:00: %d reminders; bob's stretch at 12:00 is no new shift", n)
	}
	st.advance(t, 22*time.Hour-time.Second)
	if n := remind(); n != 0 {
		t.Fatalf("a second before the hour: %d reminders", n)
	}
	st.advance(t, time.Second)
	if n := remind(); n != 1 {
		t.Fatalf("an hour before bob's week: %d reminders, want 1", n)
	}
	if n := remind(); n != 0 {
		t.Fatalf("asked again: %d reminders, want none", n)
	}
	notifiertest.Eventually(t, "bob's DM", func() bool { return len(st.posts("U0BOB")) == 1 })
	text := st.posts("U0BOB")[0].Form.Get("text")
	blocks := st.posts("U0BOB")[0].Form.Get("blocks")
	if !strings.Contains(text, "your Support Hero shift starts in 1h (Tue 3 Mar 09:00 UTC)") || !strings.Contains(blocks, "https://sidekick.example/console/") {
		t.Errorf("bob's reminder: %q\n%s", text, blocks)
	}

	st.advance(t, 30*time.Minute)
	if n := remind(); n != 1 {
		t.Fatalf("an hour before carol's shift: %d reminders, want 1", n)
	}
	notifiertest.Eventually(t, "carol's email", func() bool { return len(st.smtp.Mail("carol@example.com")) == 1 })
	if m := st.smtp.Mail("carol@example.com")[0]; !strings.Contains(m.Subject, "your Platform secondary shift starts in 1h") || strings.Contains(m.Body, "open queue") {
		t.Errorf("carol's reminder: %q\n%s", m.Subject, m.Body)
	}
	if len(st.posts("")) != 1 {
		t.Errorf("%d Slack posts, want bob's only", len(st.posts("")))
	}
}
