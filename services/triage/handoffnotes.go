package triage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Notifier sends a notification to people (the notifier's
// NotifierService; its idempotency key makes a reminder asked twice, by
// two replicas or after a restart, one message).
type Notifier interface {
	Notify(ctx context.Context, in *notifyv1.NotifyRequest, opts ...grpc.CallOption) (*notifyv1.NotifyResponse, error)
}

// Shifts lists a rotation's shifts (rotation's ListShifts): whether the
// hero's duty really ends when their current stretch does.
type Shifts interface {
	ListShifts(ctx context.Context, in *rotationv1.ListShiftsRequest, opts ...grpc.CallOption) (*rotationv1.ListShiftsResponse, error)
}

// remindHandoffNotes checks every HandoffReminderEvery, until ctx is
// done, whether the hero's duty ends within HandoffReminder; a failed
// check (rotation or the notifier unreachable) is logged and the next one
// tries again.
func (s *Service) remindHandoffNotes(ctx context.Context) error {
	for {
		if _, err := s.RemindHandoffNotes(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.Warn("handoff note reminder", "error", err)
		}
		if !clock.Wait(ctx, s.deps.Clock, s.cfg.HandoffReminderEvery) {
			return nil
		}
	}
}

// RemindHandoffNotes tells the hero whose duty ends within
// HandoffReminder which open conversations still lack a handoff note
// (subject, customer, tier, deadline; business proposals left out), once
// per shift, and reports whether it sent the reminder now. Nothing is
// sent when every open conversation has its note. Run calls it every
// HandoffReminderEvery; tests move a fake clock and call it.
func (s *Service) RemindHandoffNotes(ctx context.Context) (bool, error) {
	if s.cfg.HandoffReminder <= 0 || s.deps.Rotation == nil || s.deps.Notifier == nil {
		return false, nil
	}
	now := s.deps.Clock.Now()
	who, err := s.deps.Rotation.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: timestamppb.New(now)})
	if err != nil {
		return false, fmt.Errorf("who is the hero: %w", err)
	}
	sh := who.GetOnCall().GetShift()
	person, end := sh.GetPersonId(), sh.GetEnd().AsTime()
	if person == "" || sh.GetEnd() == nil || !end.After(now) || end.After(now.Add(s.cfg.HandoffReminder)) {
		return false, nil
	}
	// A stretch an override cuts inside one's own duty is no end of it.
	if shifts, ok := s.deps.Rotation.(Shifts); ok {
		next, err := shifts.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: sh.GetRotationId(), From: timestamppb.New(end), To: timestamppb.New(end.Add(time.Second))})
		if err != nil {
			return false, fmt.Errorf("the hero's next shift: %w", err)
		}
		for _, n := range next.GetShifts() {
			if n.GetPersonId() == person && !n.GetStart().AsTime().After(end) && n.GetEnd().AsTime().After(end) {
				return false, nil
			}
		}
	}
	convs, err := s.engine.WithoutHandoffNote(ctx, sh.GetStart().AsTime())
	if err != nil {
		return false, fmt.Errorf("conversations without a handoff note: %w", err)
	}
	if len(convs) == 0 {
		return false, nil
	}
	resp, err := s.deps.Notifier.Notify(ctx, handoffNotesRequest(sh, personZone(who.GetOnCall().GetPerson()), convs, s.cfg.ConsoleURL, now))
	if err != nil {
		return false, fmt.Errorf("remind %s of handoff notes: %w", person, err)
	}
	if resp.GetCreated() {
		s.deps.Logger.Info("handoff note reminder", "person", person, "shift_end", end, "without_note", len(convs))
	}
	return resp.GetCreated(), nil
}

// personZone is where p lives, for the times told to them; UTC when the
// organisation file gives no zone (or one this machine does not know).
func personZone(p *rotationv1.Person) *time.Location {
	if loc, err := time.LoadLocation(p.GetTimezone()); err == nil { // "" is UTC
		return loc
	}
	return time.UTC
}

// handoffNotesRequest is the reminder to sh's person listing convs, keyed
// by the shift so it is sent once; times are in loc, the person's zone.
func handoffNotesRequest(sh *rotationv1.Shift, loc *time.Location, convs []*supportv1.Conversation, consoleURL string, now time.Time) *notifyv1.NotifyRequest {
	end := sh.GetEnd().AsTime()
	noun := "open conversations lack"
	if len(convs) == 1 {
		noun = "open conversation lacks"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Write a handoff note on each before %s, for the next hero:\n", end.In(loc).Format("Mon 15:04 MST"))
	for _, c := range convs {
		fmt.Fprintf(&b, "• [%s] %s — %s", tierName(c.GetTier()), orDefault(c.GetSubject(), c.GetId()), customerOf(c))
		if d := c.GetNextDeadlineAt(); d != nil {
			fmt.Fprintf(&b, " (next deadline %s)", d.AsTime().In(loc).Format("Mon 15:04 MST"))
		}
		if c.GetShareUrl() != "" {
			fmt.Fprintf(&b, " %s", c.GetShareUrl())
		}
		b.WriteString("\n")
	}
	req := &notifyv1.NotifyRequest{
		IdempotencyKey: fmt.Sprintf("handoff-notes:%s:%s:%d", sh.GetRotationId(), sh.GetPersonId(), end.Unix()),
		Urgency:        notifyv1.Urgency_URGENCY_LOW,
		Title:          fmt.Sprintf("your Support Hero shift ends in %d min: %d %s a handoff note", int(end.Sub(now).Round(time.Minute).Minutes()), len(convs), noun),
		Text:           strings.TrimSpace(b.String()),
		Recipients:     []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: sh.GetPersonId()}}},
	}
	if consoleURL != "" {
		req.Links = []*notifyv1.Link{{Title: "Open queue", Url: strings.TrimSuffix(consoleURL, "/") + "/"}}
	}
	return req
}

func tierName(t supportv1.Tier) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TIER_"))
}

// customerOf names who wrote: the customer's name or organisation, else
// the author's.
func customerOf(c *supportv1.Conversation) string {
	a := c.GetAuthor()
	return orDefault(c.GetCustomer().GetName(), c.GetCustomer().GetOrganisation(), a.GetName(), a.GetHandle(), a.GetEmail(), "an unknown sender")
}

func orDefault(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
