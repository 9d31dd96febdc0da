package triage

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// The reminder tells the hero the end of their duty and each deadline in
// their own zone, not in UTC: a New York hero whose duty ends at 14:00 UTC
// reads 09:00 EST.
func TestHandoffNoteReminderSpeaksThePersonsZone(t *testing.T) {
	end := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	sh := &rotationv1.Shift{RotationId: "support-hero", PersonId: "bob", Start: timestamppb.New(end.Add(-7 * 24 * time.Hour)), End: timestamppb.New(end)}
	conv := &supportv1.Conversation{Id: "c1", Subject: "Exports fail", Tier: supportv1.Tier_TIER_SUBSCRIBER, NextDeadlineAt: timestamppb.New(end.Add(-30 * time.Minute))}
	cases := []struct {
		person *rotationv1.Person
		want   []string
	}{
		{&rotationv1.Person{Id: "bob", Timezone: "America/New_York"}, []string{"before Mon 09:00 EST", "next deadline Mon 08:30 EST"}},
		{&rotationv1.Person{Id: "bob"}, []string{"before Mon 14:00 UTC", "next deadline Mon 13:30 UTC"}},
		{&rotationv1.Person{Id: "bob", Timezone: "Mars/Olympus_Mons"}, []string{"before Mon 14:00 UTC"}},
	}
	for _, c := range cases {
		req := handoffNotesRequest(sh, personZone(c.person), []*supportv1.Conversation{conv}, "", end.Add(-time.Hour))
		for _, w := range c.want {
			if !strings.Contains(req.GetText(), w) {
				t.Errorf("zone %q: the reminder lacks %q: %s", c.person.GetTimezone(), w, req.GetText())
			}
		}
	}
}
