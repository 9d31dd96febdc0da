// Package grpcapi implements sidekick.rotation.v1.RotationService over the
// compiled schedule.
package grpcapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// Backend is what the API needs from the service.
type Backend interface {
	Schedule() *schedule.Schedule
	Apply(ctx context.Context, yaml []byte, dryRun bool, by string) ([]string, error)
	AddOverrides(ctx context.Context, os ...schedule.Override) error
}

// Server implements RotationServiceServer.
type Server struct {
	rotationv1.UnimplementedRotationServiceServer
	b   Backend
	now func() time.Time
}

// New returns the API over b.
func New(b Backend, now func() time.Time) *Server { return &Server{b: b, now: now} }

func (s *Server) schedule() (*schedule.Schedule, error) {
	sc := s.b.Schedule()
	if sc == nil {
		return nil, status.Error(codes.FailedPrecondition, "no configuration applied yet: run `sidekick apply -f sidekick.yaml`")
	}
	return sc, nil
}

func (s *Server) at(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return s.now()
	}
	return ts.AsTime()
}

// WhoIsOnCall resolves the hero, a team's secondary or a rotation.
func (s *Server) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	q := schedule.Query{Team: req.GetTeam(), Rotation: req.GetRotation(), At: s.at(req.GetAt())}
	switch req.GetRole() {
	case rotationv1.Role_ROLE_HERO, rotationv1.Role_ROLE_UNSPECIFIED:
		q.Role = schedule.RoleHero
	case rotationv1.Role_ROLE_SECONDARY:
		if q.Team == "" {
			return nil, status.Error(codes.InvalidArgument, "role SECONDARY needs a team")
		}
		q.Role = schedule.RoleSecondary
	case rotationv1.Role_ROLE_ROTATION:
		if q.Rotation == "" {
			return nil, status.Error(codes.InvalidArgument, "role ROTATION needs a rotation")
		}
		q.Role = schedule.RoleRotation
	default:
		return nil, status.Errorf(codes.InvalidArgument, "unknown role %v", req.GetRole())
	}
	ans, err := sc.WhoIsOnCall(q)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	resp := &rotationv1.WhoIsOnCallResponse{Gap: ans.Gap, GapReason: ans.GapReason}
	if !ans.Gap || ans.OnCall.Person != nil {
		resp.OnCall = onCallProto(ans.OnCall)
	}
	for _, o := range ans.Also {
		resp.Also = append(resp.Also, onCallProto(o))
	}
	return resp, nil
}

// ListShifts lists shifts with overrides applied.
func (s *Server) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	from, to := s.at(req.GetFrom()), req.GetTo().AsTime()
	if req.GetTo() == nil {
		to = from.AddDate(0, 0, 28)
	}
	if !to.After(from) {
		return nil, status.Error(codes.InvalidArgument, "to must be after from")
	}
	rot := req.GetRotation()
	if rot == "" && req.GetTeam() != "" {
		for _, t := range sc.Teams() {
			if t.ID == req.GetTeam() {
				rot = t.Secondary
			}
		}
		if rot == "" {
			return nil, status.Errorf(codes.NotFound, "unknown team %q", req.GetTeam())
		}
	}
	if rot == "" {
		return nil, status.Error(codes.InvalidArgument, "rotation or team is required")
	}
	shifts, err := sc.Shifts(rot, from, to)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	resp := &rotationv1.ListShiftsResponse{}
	for _, sh := range shifts {
		resp.Shifts = append(resp.Shifts, shiftProto(sh))
	}
	return resp, nil
}

// CreateOverride stores one override.
func (s *Server) CreateOverride(ctx context.Context, req *rotationv1.CreateOverrideRequest) (*rotationv1.CreateOverrideResponse, error) {
	o := req.GetOverride()
	if o == nil {
		return nil, status.Error(codes.InvalidArgument, "override is required")
	}
	ov := schedule.Override{
		ID: o.GetId(), Rotation: o.GetRotationId(), Person: o.GetPersonId(), With: o.GetWithPersonId(),
		Start: o.GetStart().AsTime(), End: o.GetEnd().AsTime(), Note: o.GetNote(),
	}
	switch o.GetKind() {
	case rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE:
		ov.Kind = schedule.Replace
	case rotationv1.OverrideKind_OVERRIDE_KIND_ADD:
		ov.Kind = schedule.Add
	case rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE:
		ov.Kind = schedule.Remove
	default:
		return nil, status.Error(codes.InvalidArgument, "override kind is required (replace, add or remove)")
	}
	if ov.ID == "" {
		ov.ID = "ovr-" + newID()
	}
	if err := s.validate(ov); err != nil {
		return nil, err
	}
	if err := s.b.AddOverrides(ctx, ov); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rotationv1.CreateOverrideResponse{Override: overrideProto(ov)}, nil
}

// validate checks an override against the schedule in force by compiling
// the configuration with it added.
func (s *Server) validate(os ...schedule.Override) error {
	sc, err := s.schedule()
	if err != nil {
		return err
	}
	if err := sc.CheckOverrides(os...); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// SwapShifts records a swap as two overrides.
func (s *Server) SwapShifts(ctx context.Context, req *rotationv1.SwapShiftsRequest) (*rotationv1.SwapShiftsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	side := func(person string, start, end *timestamppb.Timestamp) (time.Time, time.Time, error) {
		if start == nil {
			return time.Time{}, time.Time{}, status.Errorf(codes.InvalidArgument, "shift start for %s is required", person)
		}
		if end != nil {
			return start.AsTime(), end.AsTime(), nil
		}
		base, err := sc.BaseShiftAt(req.GetRotation(), start.AsTime())
		if err != nil {
			return time.Time{}, time.Time{}, status.Error(codes.NotFound, err.Error())
		}
		return start.AsTime(), base.End, nil
	}
	aStart, aEnd, err := side(req.GetPersonA(), req.GetShiftAStart(), req.GetShiftAEnd())
	if err != nil {
		return nil, err
	}
	bStart, bEnd, err := side(req.GetPersonB(), req.GetShiftBStart(), req.GetShiftBEnd())
	if err != nil {
		return nil, err
	}
	id := "swap-" + newID()
	pair, err := schedule.Swap(id, req.GetRotation(), req.GetPersonA(), aStart, aEnd, req.GetPersonB(), bStart, bEnd)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	for i := range pair {
		pair[i].Note = req.GetNote()
	}
	if err := s.validate(pair[:]...); err != nil {
		return nil, err
	}
	if err := s.b.AddOverrides(ctx, pair[:]...); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rotationv1.SwapShiftsResponse{SwapId: id, Overrides: []*rotationv1.Override{overrideProto(pair[0]), overrideProto(pair[1])}}, nil
}

// ListTeams lists the teams.
func (s *Server) ListTeams(context.Context, *rotationv1.ListTeamsRequest) (*rotationv1.ListTeamsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	resp := &rotationv1.ListTeamsResponse{}
	for _, t := range sc.Teams() {
		resp.Teams = append(resp.Teams, &rotationv1.Team{Id: t.ID, Name: t.Name, SecondaryRotation: t.Secondary})
	}
	return resp, nil
}

// ListPeople lists people, optionally of one team.
func (s *Server) ListPeople(_ context.Context, req *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	resp := &rotationv1.ListPeopleResponse{}
	for _, p := range sc.People() {
		if req.GetTeam() != "" && p.Team != req.GetTeam() {
			continue
		}
		resp.People = append(resp.People, personProto(&p))
	}
	return resp, nil
}

// ApplyConfig applies the organisation YAML (or returns its diff).
func (s *Server) ApplyConfig(ctx context.Context, req *rotationv1.ApplyConfigRequest) (*rotationv1.ApplyConfigResponse, error) {
	changes, err := s.b.Apply(ctx, req.GetConfig(), req.GetDryRun(), "grpc")
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &rotationv1.ApplyConfigResponse{Changes: changes, Applied: !req.GetDryRun() && len(changes) > 0}, nil
}

// WorkingWindows returns when the support roster is within working hours.
func (s *Server) WorkingWindows(_ context.Context, req *rotationv1.WorkingWindowsRequest) (*rotationv1.WorkingWindowsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	from, to := s.at(req.GetFrom()), req.GetTo().AsTime()
	if req.GetTo() == nil || !to.After(from) {
		return nil, status.Error(codes.InvalidArgument, "to must be after from")
	}
	if to.Sub(from) > 366*24*time.Hour {
		return nil, status.Error(codes.InvalidArgument, "range longer than a year")
	}
	resp := &rotationv1.WorkingWindowsResponse{}
	for _, iv := range sc.WorkingWindows(from, to) {
		resp.Windows = append(resp.Windows, &rotationv1.Interval{Start: timestamppb.New(iv.Start), End: timestamppb.New(iv.End)})
	}
	return resp, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func reasonProto(r schedule.Reason) rotationv1.Reason {
	switch r {
	case schedule.ReasonRotation:
		return rotationv1.Reason_REASON_ROTATION
	case schedule.ReasonOverride:
		return rotationv1.Reason_REASON_OVERRIDE
	case schedule.ReasonSwap:
		return rotationv1.Reason_REASON_SWAP
	case schedule.ReasonDerived:
		return rotationv1.Reason_REASON_DERIVED
	case schedule.ReasonCatcher:
		return rotationv1.Reason_REASON_CATCHER
	}
	return rotationv1.Reason_REASON_UNSPECIFIED
}

func personProto(p *schedule.Person) *rotationv1.Person {
	if p == nil {
		return nil
	}
	return &rotationv1.Person{Id: p.ID, Name: p.Name, Email: p.Email, SlackId: p.Slack, Team: p.Team, Timezone: p.Timezone, WorkingHours: p.WorkingHours}
}

func shiftProto(sh schedule.Shift) *rotationv1.Shift {
	return &rotationv1.Shift{
		RotationId: sh.Rotation, PersonId: sh.Person, Start: timestamppb.New(sh.Start), End: timestamppb.New(sh.End),
		Reason: reasonProto(sh.Reason), ScheduledPersonId: sh.Scheduled,
	}
}

func onCallProto(o schedule.OnCall) *rotationv1.OnCall {
	return &rotationv1.OnCall{Person: personProto(o.Person), Shift: shiftProto(o.Shift), Reason: reasonProto(o.Reason), Explanation: o.Explanation}
}

func overrideProto(o schedule.Override) *rotationv1.Override {
	k := rotationv1.OverrideKind_OVERRIDE_KIND_UNSPECIFIED
	switch o.Kind {
	case schedule.Replace:
		k = rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE
	case schedule.Add:
		k = rotationv1.OverrideKind_OVERRIDE_KIND_ADD
	case schedule.Remove:
		k = rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE
	}
	return &rotationv1.Override{
		Id: o.ID, RotationId: o.Rotation, Kind: k, PersonId: o.Person, WithPersonId: o.With,
		Start: timestamppb.New(o.Start), End: timestamppb.New(o.End), SwapId: o.SwapID, Note: o.Note,
	}
}
