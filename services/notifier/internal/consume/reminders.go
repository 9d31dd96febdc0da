package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/escalate"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
)

// Shifts is what shift reminders ask rotation;
// rotationv1.RotationServiceClient satisfies it.
type Shifts interface {
	People
	ListRotations(ctx context.Context, in *rotationv1.ListRotationsRequest, opts ...grpc.CallOption) (*rotationv1.ListRotationsResponse, error)
	ListShifts(ctx context.Context, in *rotationv1.ListShiftsRequest, opts ...grpc.CallOption) (*rotationv1.ListShiftsResponse, error)
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
}

// Reminders tells people their shift is about to start: each check looks
// Lead ahead in every rotation and starts a shift_reminder escalation per
// shift starting then, keyed by rotation, person and start, so replicas
// and repeated checks remind once. A stretch the same person already
// holds the shift before (an override inside their own week) is no new
// shift and is not reminded.
type Reminders struct {
	rot        Shifts
	runner     *escalate.Runner
	clock      clock.Clock
	logger     *slog.Logger
	lead       time.Duration
	consoleURL string
}

// NewReminders returns Reminders looking lead ahead; consoleURL is linked
// for the incoming Support Hero (the open queue).
func NewReminders(rot Shifts, runner *escalate.Runner, c clock.Clock, logger *slog.Logger, lead time.Duration, consoleURL string) *Reminders {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Reminders{rot: rot, runner: runner, clock: clock.OrReal(c), logger: logger, lead: lead, consoleURL: consoleURL}
}

// ReminderKey is the key of the reminder of a shift.
func ReminderKey(rotationID, personID string, start time.Time) string {
	return "rotation.shift_reminder/" + rotationID + "/" + personID + "/" + strconv.FormatInt(start.Unix(), 10)
}

// Check reminds everybody whose shift starts within the lead from now,
// and returns how many reminders it started.
func (r *Reminders) Check(ctx context.Context) (int, error) {
	if r.lead <= 0 {
		return 0, nil
	}
	now := r.clock.Now()
	rots, err := r.rot.ListRotations(ctx, &rotationv1.ListRotationsRequest{})
	if err != nil {
		return 0, fmt.Errorf("shift reminders: list rotations: %w", err)
	}
	hero := ""
	if who, err := r.rot.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: timestamppb.New(now)}); err == nil {
		hero = who.GetOnCall().GetShift().GetRotationId()
	}
	var zones map[string]*time.Location
	if ps, err := r.rot.ListPeople(ctx, &rotationv1.ListPeopleRequest{}); err == nil {
		zones = personZones(ps.GetPeople())
	}
	started := 0
	var errs []error
	for _, rot := range rots.GetRotations() {
		resp, err := r.rot.ListShifts(ctx, &rotationv1.ListShiftsRequest{
			Rotation: rot.GetId(), From: timestamppb.New(now), To: timestamppb.New(now.Add(r.lead + time.Second)),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("shift reminders: shifts of %s: %w", rot.GetId(), err))
			continue
		}
		prev := ""
		for _, sh := range resp.GetShifts() {
			start, person := sh.GetStart().AsTime(), sh.GetPersonId()
			fresh := person != "" && person != prev
			prev = person
			if !fresh || !start.After(now) || start.After(now.Add(r.lead)) {
				continue
			}
			out, err := r.runner.Trigger(ctx, r.trigger(rot, sh, rot.GetId() == hero, zones[person], now))
			if err != nil {
				errs = append(errs, fmt.Errorf("shift reminder of %s in %s: %w", person, rot.GetId(), err))
				continue
			}
			if out.Started {
				started++
				r.logger.Info("shift reminder", "person", person, "rotation", rot.GetId(), "start", start)
			}
		}
	}
	return started, errors.Join(errs...)
}

func (r *Reminders) trigger(rot *rotationv1.Rotation, sh *rotationv1.Shift, hero bool, loc *time.Location, now time.Time) escalate.Trigger {
	start, end := sh.GetStart().AsTime(), sh.GetEnd().AsTime()
	if loc == nil {
		loc = time.UTC
	}
	const layout = "Mon 2 Jan 15:04 MST"
	what := firstNonEmpty(rot.GetName(), rot.GetId())
	if hero {
		what = "Support Hero"
	}
	t := escalate.Trigger{
		Key:      ReminderKey(rot.GetId(), sh.GetPersonId(), start),
		Event:    policy.Event{Kind: policy.ShiftReminder},
		PersonID: sh.GetPersonId(),
		Title:    fmt.Sprintf("your %s shift starts in %s (%s)", what, roughly(start.Sub(now)), start.In(loc).Format(layout)),
		Text:     fmt.Sprintf("%s: %s until %s.", what, start.In(loc).Format(layout), end.In(loc).Format(layout)),
		At:       now,
	}
	if sh.GetScheduledPersonId() != "" && sh.GetScheduledPersonId() != sh.GetPersonId() {
		t.Text += fmt.Sprintf(" You cover %s (%s).", sh.GetScheduledPersonId(), strings.ToLower(strings.TrimPrefix(sh.GetReason().String(), "REASON_")))
	}
	if hero && r.consoleURL != "" {
		t.Text += " The open queue is waiting for you."
		t.Links = []notify.Link{{Title: "Open queue", URL: strings.TrimSuffix(r.consoleURL, "/") + "/"}}
	}
	return t
}

// roughly is d to the minute, as people say it: "1h", "45m", "1h30m".
func roughly(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m < 60:
		return fmt.Sprintf("%dm", max(m, 1))
	case m%60 == 0:
		return fmt.Sprintf("%dh", m/60)
	}
	return fmt.Sprintf("%dh%dm", m/60, m%60)
}

// personZones maps each person who has a valid time zone to it; the times
// a person is told are in their own zone, UTC for the others.
func personZones(people []*rotationv1.Person) map[string]*time.Location {
	zones := map[string]*time.Location{}
	for _, p := range people {
		if loc, err := time.LoadLocation(p.GetTimezone()); err == nil && p.GetTimezone() != "" {
			zones[p.GetId()] = loc
		}
	}
	return zones
}
