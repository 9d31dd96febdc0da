package triage

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// handleRotation reacts to one support.rotation.* event:
//
//   - a hero's shift_ended summarises the handoff (engine.Handoff), naming
//     the next hero as rotation answers WhoIsOnCall at that instant;
//   - a hero's shift_started that names the previous hero does the same,
//     should it arrive first (a handoff is summarised once);
//   - override_created drops the cached working windows and recomputes
//     the deadlines due from the override's start on.
func (s *Service) handleRotation(ctx context.Context, msg jetstream.Msg) error {
	var ev supportv1.RotationEvent
	if err := bus.Decode(msg, &ev); err != nil {
		return bus.Permanent(err)
	}
	switch ev.GetType() {
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED:
		if !ev.GetHero() || ev.GetEnd() == nil {
			return nil
		}
		h := engine.Handoff{RotationID: ev.GetRotationId(), At: ev.GetEnd().AsTime(), From: ev.GetPersonId()}
		if ev.GetStart() != nil {
			h.ShiftStart = ev.GetStart().AsTime()
		}
		done, err := s.engine.HandedOff(ctx, h.RotationID, h.At)
		if err != nil {
			return bus.AtLocation("handoff", err)
		}
		if done {
			return nil // a redelivery, or shift_started came first
		}
		h.To = s.nextHero(ctx, ev.GetRotationId(), h.At)
		return s.handoff(ctx, h)
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED:
		if !ev.GetHero() || ev.GetPreviousPersonId() == "" || ev.GetStart() == nil {
			return nil
		}
		return s.handoff(ctx, engine.Handoff{
			RotationID: ev.GetRotationId(), At: ev.GetStart().AsTime(),
			From: ev.GetPreviousPersonId(), To: ev.GetPersonId(),
		})
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED:
		for _, c := range s.caches {
			c.Invalidate()
		}
		from := s.deps.Clock.Now()
		if ev.GetStart() != nil {
			from = ev.GetStart().AsTime()
		}
		n, err := s.engine.Recheck(ctx, from)
		if err != nil {
			return bus.AtLocation("override", err)
		}
		s.deps.Logger.Info("coverage changed; deadlines recomputed", "rotation", ev.GetRotationId(), "from", from, "timers", n)
	}
	return nil
}

func (s *Service) handoff(ctx context.Context, h engine.Handoff) error {
	fresh, err := s.engine.Handoff(ctx, h)
	if err != nil {
		return bus.AtLocation("handoff", err)
	}
	if fresh {
		s.deps.Logger.Info("hero handoff summarised", "rotation", h.RotationID, "at", h.At, "from", h.From, "to", h.To)
	}
	return nil
}

// nextHero asks rotation who is on duty in the rotation at the handoff;
// "" when rotation cannot say (the summary still goes out).
func (s *Service) nextHero(ctx context.Context, rotation string, at time.Time) string {
	if s.deps.Rotation == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := s.deps.Rotation.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{
		Role: rotationv1.Role_ROLE_ROTATION, Rotation: rotation, At: timestamppb.New(at),
	})
	if err != nil {
		s.deps.Logger.Warn("cannot name the next hero; the handoff summary goes out without", "rotation", rotation, "at", at, "error", err)
		return ""
	}
	return resp.GetOnCall().GetPerson().GetId()
}
