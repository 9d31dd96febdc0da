package grpcapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// ErrNoOverride marks Backend.DeleteOverride errors for an id that is
// neither a stored override nor a swap; they become NotFound.
var ErrNoOverride = errors.New("no such override")

// ListOverrides lists the overrides overlapping a range, the organisation
// file's and the API's, by start.
func (s *Server) ListOverrides(_ context.Context, req *rotationv1.ListOverridesRequest) (*rotationv1.ListOverridesResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	from, to, err := s.listRange(req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	if rot := req.GetRotation(); rot != "" && !hasRotation(sc, rot) {
		return nil, notFound("rotation", rot)
	}
	var found []schedule.Override
	for _, o := range sc.Config().Overrides {
		if (req.GetRotation() == "" || o.Rotation == req.GetRotation()) && o.Start.Before(to) && o.End.After(from) {
			found = append(found, o)
		}
	}
	sort.SliceStable(found, func(i, j int) bool {
		if !found[i].Start.Equal(found[j].Start) {
			return found[i].Start.Before(found[j].Start)
		}
		return found[i].ID < found[j].ID
	})
	resp := &rotationv1.ListOverridesResponse{}
	for _, o := range found {
		p := overrideProto(o)
		p.FromFile = s.b.FromFile(o.ID)
		resp.Overrides = append(resp.Overrides, p)
	}
	return resp, nil
}

// DeleteOverride deletes an override made through the API, or both sides
// of a swap. An override of the organisation file is refused: the file is
// where it is changed.
func (s *Server) DeleteOverride(ctx context.Context, req *rotationv1.DeleteOverrideRequest) (*rotationv1.DeleteOverrideResponse, error) {
	id := req.GetId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "id is required (an override id or a swap id)")
	}
	if s.b.FromFile(id) {
		return nil, status.Errorf(codes.FailedPrecondition, "override %s is in the organisation file: remove it there and apply the file", id)
	}
	deleted, err := s.b.DeleteOverride(ctx, id)
	switch {
	case errors.Is(err, ErrNoOverride):
		return nil, status.Errorf(codes.NotFound, "no override or swap %q", id)
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &rotationv1.DeleteOverrideResponse{}
	for _, o := range deleted {
		resp.Deleted = append(resp.Deleted, overrideProto(o))
	}
	return resp, nil
}

// ListRotations lists the rotations with their time zones.
func (s *Server) ListRotations(context.Context, *rotationv1.ListRotationsRequest) (*rotationv1.ListRotationsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	resp := &rotationv1.ListRotationsResponse{}
	for _, r := range sc.Rotations() {
		length := r.Length
		if length == 0 {
			length = 1
		}
		resp.Rotations = append(resp.Rotations, &rotationv1.Rotation{
			Id: r.ID, Name: r.Name, Type: r.Kind.String(), Length: int32(length), Timezone: r.Timezone, Participants: r.Participants,
		})
	}
	return resp, nil
}

// swapID derives a swap's id from what it swaps, so the same request sent
// again (a retry, a second click) names the same swap and records nothing
// new.
func swapID(rot, a string, aStart, aEnd time.Time, b string, bStart, bEnd time.Time, note string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d\x00%s\x00%d\x00%d\x00%s", rot, a, aStart.UnixNano(), aEnd.UnixNano(), b, bStart.UnixNano(), bEnd.UnixNano(), note)
	return "swap-" + hex.EncodeToString(h.Sum(nil)[:8])
}

// recordedSwap returns the swap's two sides when the schedule already has
// them as pair says: the same request was recorded before.
func recordedSwap(sc *schedule.Schedule, pair [2]schedule.Override) ([]schedule.Override, bool) {
	byID := map[string]schedule.Override{}
	for _, o := range sc.Config().Overrides {
		if o.SwapID == pair[0].SwapID {
			byID[o.ID] = o
		}
	}
	var out []schedule.Override
	for _, want := range pair {
		got, ok := byID[want.ID]
		if !ok || !sameOverride(got, want) {
			return nil, false
		}
		out = append(out, got)
	}
	return out, true
}
