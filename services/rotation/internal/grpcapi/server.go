// Package grpcapi implements sidekick.rotation.v1.RotationService over the
// compiled schedule.
//
// Errors map to gRPC codes in this package only, by one rule:
//
//   - InvalidArgument: the request is wrong whatever the schedule says: a
//     required field missing, fields that contradict each other, an end not
//     after its start, a range too long, a malformed configuration.
//   - NotFound: a rotation, team or person the request names is not in the
//     configuration in force.
//   - FailedPrecondition: the request is well formed but the schedule
//     refuses it: no configuration applied yet, no Support Hero rotation, a
//     person giving up time they are not on duty for, a swap side before
//     the rotation starts.
//   - AlreadyExists: CreateOverride with an id a different override has.
//   - NotFound also: DeleteOverride of an id that is neither a stored
//     override nor a swap; FailedPrecondition: of an override of the
//     organisation file.
//   - Internal: anything else (storage failures).
package grpcapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// ErrInvalidConfig marks Backend.Apply errors caused by the configuration
// itself (it does not parse or compile); they become InvalidArgument. Any
// other Backend error becomes Internal.
var ErrInvalidConfig = errors.New("invalid configuration")

// ErrOverrideExists marks Backend.AddOverrides errors for an override id a
// different override already has (found in storage by a replica whose
// schedule did not show it yet); they become AlreadyExists.
var ErrOverrideExists = errors.New("override exists")

// Backend is what the API needs from the service.
type Backend interface {
	Schedule() *schedule.Schedule
	Apply(ctx context.Context, yaml []byte, dryRun bool, by string) ([]string, error)
	AddOverrides(ctx context.Context, os ...schedule.Override) error
	// DeleteOverride deletes a stored override by id, or both sides of a
	// swap by either side's id or the swap id, and returns what it
	// deleted; an unknown id is an error wrapping ErrNoOverride.
	DeleteOverride(ctx context.Context, id string) ([]schedule.Override, error)
	// FromFile reports whether id is an override of the organisation file
	// in force.
	FromFile(id string) bool
}

// Limits on request sizes.
const (
	// MaxRange is the longest range ListShifts and WorkingWindows accept.
	MaxRange = 366 * 24 * time.Hour
	// MaxNote is the longest override note, in bytes.
	MaxNote = 1000
)

// overrideID is what a client-chosen override id may look like; it ends up
// in event ids and Nats-Msg-Id headers.
var overrideID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

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

// instant reads an optional timestamp field, def when it is absent.
func instant(field string, ts *timestamppb.Timestamp, def time.Time) (time.Time, error) {
	if ts == nil {
		return def, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, status.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	return ts.AsTime(), nil
}

// required reads a timestamp field that must be present.
func required(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, status.Errorf(codes.InvalidArgument, "%s is required", field)
	}
	return instant(field, ts, time.Time{})
}

func notFound(kind, id string) error {
	return status.Errorf(codes.NotFound, "unknown %s %q", kind, id)
}

func hasRotation(sc *schedule.Schedule, id string) bool {
	for _, r := range sc.Rotations() {
		if r.ID == id {
			return true
		}
	}
	return false
}

func findTeam(sc *schedule.Schedule, id string) (schedule.Team, bool) {
	for _, t := range sc.Teams() {
		if t.ID == id {
			return t, true
		}
	}
	return schedule.Team{}, false
}

// WhoIsOnCall resolves the hero, a team's secondary or a rotation.
func (s *Server) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	at, err := instant("at", req.GetAt(), s.now())
	if err != nil {
		return nil, err
	}
	q := schedule.Query{Team: req.GetTeam(), Rotation: req.GetRotation(), At: at}
	// The engine refuses only an unknown team or rotation, or a hero query
	// without a hero rotation; which one follows from the role, so the hot
	// path looks nothing up twice.
	refused := func(err error) error { return status.Error(codes.NotFound, err.Error()) }
	switch req.GetRole() {
	case rotationv1.Role_ROLE_HERO, rotationv1.Role_ROLE_UNSPECIFIED:
		q.Role = schedule.RoleHero
		refused = func(err error) error {
			return status.Errorf(codes.FailedPrecondition, "%v (set support.hero)", err)
		}
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
		return nil, refused(err)
	}
	resp := &rotationv1.WhoIsOnCallResponse{Gap: ans.Gap, GapReason: ans.GapReason}
	if !ans.Gap || ans.OnCall.Person != nil {
		resp.OnCall = onCallProto(ans.OnCall)
	}
	for _, o := range ans.Also {
		resp.Also = append(resp.Also, onCallProto(o))
	}
	for _, o := range ans.Chain {
		resp.Chain = append(resp.Chain, onCallProto(o))
	}
	resp.High = routeProto(ans.High, resp.Chain)
	resp.Low = routeProto(ans.Low, resp.Chain)
	return resp, nil
}

// ListShifts lists a rotation's shifts, or a team's secondary cover (the
// secondary rotation's shifts and the hero's DERIVED stretches, see
// teamShifts), with overrides applied.
func (s *Server) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	from, to, err := s.listRange(req.GetFrom(), req.GetTo())
	if err != nil {
		return nil, err
	}
	rot, team := req.GetRotation(), req.GetTeam()
	var shifts []schedule.Shift
	switch {
	case rot != "" && team != "":
		return nil, status.Error(codes.InvalidArgument, "give a rotation or a team, not both")
	case rot != "":
		if !hasRotation(sc, rot) {
			return nil, notFound("rotation", rot)
		}
		shifts, err = sc.Shifts(rot, from, to)
	case team != "":
		t, ok := findTeam(sc, team)
		if !ok {
			return nil, notFound("team", team)
		}
		shifts, err = teamShifts(sc, t, from, to)
	default:
		return nil, status.Error(codes.InvalidArgument, "rotation or team is required")
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	resp := &rotationv1.ListShiftsResponse{}
	for _, sh := range shifts {
		resp.Shifts = append(resp.Shifts, shiftProto(sh))
	}
	return resp, nil
}

// listRange reads a list's optional [from, to): from defaults to now, to
// to four weeks after from; at most MaxRange.
func (s *Server) listRange(fromTS, toTS *timestamppb.Timestamp) (from, to time.Time, err error) {
	if from, err = instant("from", fromTS, s.now()); err != nil {
		return from, to, err
	}
	if to, err = instant("to", toTS, from.AddDate(0, 0, 28)); err != nil {
		return from, to, err
	}
	if !to.After(from) {
		return from, to, status.Error(codes.InvalidArgument, "to must be after from")
	}
	if to.Sub(from) > MaxRange {
		return from, to, status.Error(codes.InvalidArgument, "range longer than a year")
	}
	return from, to, nil
}

// CreateOverride stores one override. Sending the same override (same id
// and content) again returns it unchanged.
func (s *Server) CreateOverride(ctx context.Context, req *rotationv1.CreateOverrideRequest) (*rotationv1.CreateOverrideResponse, error) {
	o := req.GetOverride()
	if o == nil {
		return nil, status.Error(codes.InvalidArgument, "override is required")
	}
	ov := schedule.Override{ID: o.GetId(), Rotation: o.GetRotationId(), Person: o.GetPersonId(), With: o.GetWithPersonId(), Note: o.GetNote()}
	var err error
	if ov.Start, err = required("override.start", o.GetStart()); err != nil {
		return nil, err
	}
	if ov.End, err = required("override.end", o.GetEnd()); err != nil {
		return nil, err
	}
	if err := checkOverrideRequest(o); err != nil {
		return nil, err
	}
	ov.Kind = overrideKind(o.GetKind())
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	if err := s.known(sc, ov.Rotation, ov.Person, ov.With); err != nil {
		return nil, err
	}
	generated := ov.ID == ""
	if generated {
		ov.ID = "new" // for the messages below; replaced once it passes
	} else {
		for _, prev := range sc.Config().Overrides {
			if prev.ID != ov.ID {
				continue
			}
			if sameOverride(prev, ov) {
				return &rotationv1.CreateOverrideResponse{Override: overrideProto(prev)}, nil // a retry
			}
			return nil, status.Errorf(codes.AlreadyExists, "override %s already exists and says something else", ov.ID)
		}
	}
	if err := sc.CheckOverrides(ov); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	if generated {
		ov.ID = "ovr-" + newID()
	}
	switch err := s.b.AddOverrides(ctx, ov); {
	case errors.Is(err, ErrOverrideExists):
		return nil, status.Errorf(codes.AlreadyExists, "override %s already exists and says something else", ov.ID)
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rotationv1.CreateOverrideResponse{Override: overrideProto(ov)}, nil
}

// checkOverrideRequest checks the fields of an override that need no
// schedule: kind and the people it takes, range, id, note.
func checkOverrideRequest(o *rotationv1.Override) error {
	bad := func(format string, args ...any) error {
		return status.Errorf(codes.InvalidArgument, "override: "+format, args...)
	}
	if o.GetRotationId() == "" {
		return bad("rotation_id is required")
	}
	person, with := o.GetPersonId(), o.GetWithPersonId()
	switch o.GetKind() {
	case rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE:
		if person == "" || with == "" {
			return bad("replace needs person_id (who gives up the time) and with_person_id (who takes it)")
		}
		if person == with {
			return bad("replaces %s with themselves", person)
		}
	case rotationv1.OverrideKind_OVERRIDE_KIND_ADD:
		if with == "" || person != "" {
			return bad("add takes with_person_id (who is added) and no person_id")
		}
	case rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE:
		if person == "" || with != "" {
			return bad("remove takes person_id (who is taken off) and no with_person_id")
		}
	default:
		return bad("kind is required (replace, add or remove)")
	}
	if !o.GetEnd().AsTime().After(o.GetStart().AsTime()) {
		return bad("end must be after start")
	}
	if id := o.GetId(); id != "" && !overrideID.MatchString(id) {
		return bad("id %q: use up to 64 letters, digits and . _ : -", id)
	}
	if o.GetSwapId() != "" {
		return bad("swap_id is set by SwapShifts, not by CreateOverride")
	}
	if len(o.GetNote()) > MaxNote {
		return bad("note longer than %d bytes", MaxNote)
	}
	return nil
}

// known reports NotFound for a rotation or person not in the schedule.
func (s *Server) known(sc *schedule.Schedule, rotation string, people ...string) error {
	if !hasRotation(sc, rotation) {
		return notFound("rotation", rotation)
	}
	for _, id := range people {
		if _, ok := sc.Person(id); id != "" && !ok {
			return notFound("person", id)
		}
	}
	return nil
}

func sameOverride(a, b schedule.Override) bool {
	return a.Rotation == b.Rotation && a.Kind == b.Kind && a.Person == b.Person && a.With == b.With &&
		a.Start.Equal(b.Start) && a.End.Equal(b.End) && a.SwapID == b.SwapID && a.Note == b.Note
}

// SwapShifts records a swap as two overrides.
func (s *Server) SwapShifts(ctx context.Context, req *rotationv1.SwapShiftsRequest) (*rotationv1.SwapShiftsResponse, error) {
	rot, a, b := req.GetRotation(), req.GetPersonA(), req.GetPersonB()
	switch {
	case rot == "":
		return nil, status.Error(codes.InvalidArgument, "rotation is required")
	case a == "" || b == "":
		return nil, status.Error(codes.InvalidArgument, "person_a and person_b are required")
	case a == b:
		return nil, status.Errorf(codes.InvalidArgument, "%s cannot swap with themselves", a)
	case len(req.GetNote()) > MaxNote:
		return nil, status.Errorf(codes.InvalidArgument, "note longer than %d bytes", MaxNote)
	}
	aStart, err := required("shift_a_start", req.GetShiftAStart())
	if err != nil {
		return nil, err
	}
	bStart, err := required("shift_b_start", req.GetShiftBStart())
	if err != nil {
		return nil, err
	}
	aEnd, err := instant("shift_a_end", req.GetShiftAEnd(), time.Time{})
	if err != nil {
		return nil, err
	}
	bEnd, err := instant("shift_b_end", req.GetShiftBEnd(), time.Time{})
	if err != nil {
		return nil, err
	}
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	if err := s.known(sc, rot, a, b); err != nil {
		return nil, err
	}
	// Without an end, a side runs to the end of the base shift it starts in.
	end := func(person string, start, end time.Time) (time.Time, error) {
		if !end.IsZero() {
			return end, nil
		}
		base, err := sc.BaseShiftAt(rot, start)
		if err != nil {
			return time.Time{}, status.Errorf(codes.FailedPrecondition, "%s's side: %v", person, err)
		}
		return base.End, nil
	}
	if aEnd, err = end(a, aStart, aEnd); err != nil {
		return nil, err
	}
	if bEnd, err = end(b, bStart, bEnd); err != nil {
		return nil, err
	}
	id := swapID(rot, a, aStart, aEnd, b, bStart, bEnd, req.GetNote())
	pair, err := schedule.Swap(id, rot, a, aStart, aEnd, b, bStart, bEnd)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	for i := range pair {
		pair[i].Note = req.GetNote()
	}
	if prev, ok := recordedSwap(sc, pair); ok {
		// The same request again: the same swap, recorded once.
		return &rotationv1.SwapShiftsResponse{SwapId: id, Overrides: []*rotationv1.Override{overrideProto(prev[0]), overrideProto(prev[1])}}, nil
	}
	if err := sc.CheckOverrides(pair[:]...); err != nil {
		return nil, status.Error(codes.FailedPrecondition, err.Error())
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
	if team := req.GetTeam(); team != "" {
		if _, ok := findTeam(sc, team); !ok {
			return nil, notFound("team", team)
		}
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
	if strings.TrimSpace(string(req.GetConfig())) == "" {
		return nil, status.Error(codes.InvalidArgument, "config is empty (an empty organisation would remove everybody; write `people: []` to mean it)")
	}
	changes, err := s.b.Apply(ctx, req.GetConfig(), req.GetDryRun(), "grpc")
	switch {
	case errors.Is(err, ErrInvalidConfig):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &rotationv1.ApplyConfigResponse{Changes: changes, Applied: !req.GetDryRun() && len(changes) > 0,
		Version: orgfile.Digest(req.GetConfig())}, nil
}

// WorkingWindows returns when the support roster is within working hours,
// or, for ROLE_HERO, when whoever is on duty as hero (or a catcher) is.
func (s *Server) WorkingWindows(_ context.Context, req *rotationv1.WorkingWindowsRequest) (*rotationv1.WorkingWindowsResponse, error) {
	windows := (*schedule.Schedule).WorkingWindows
	switch req.GetRole() {
	case rotationv1.Role_ROLE_UNSPECIFIED:
	case rotationv1.Role_ROLE_HERO:
		windows = (*schedule.Schedule).DutyWindows
	default:
		return nil, status.Errorf(codes.InvalidArgument, "role %s: want ROLE_HERO or none (the support roster)", req.GetRole())
	}
	sc, err := s.schedule()
	if err != nil {
		return nil, err
	}
	from, err := instant("from", req.GetFrom(), s.now())
	if err != nil {
		return nil, err
	}
	to, err := required("to", req.GetTo())
	if err != nil {
		return nil, err
	}
	if !to.After(from) {
		return nil, status.Error(codes.InvalidArgument, "to must be after from")
	}
	if to.Sub(from) > MaxRange {
		return nil, status.Error(codes.InvalidArgument, "range longer than a year")
	}
	resp := &rotationv1.WorkingWindowsResponse{}
	for _, iv := range windows(sc, from, to) {
		resp.Windows = append(resp.Windows, &rotationv1.Interval{Start: timestamppb.New(iv.Start), End: timestamppb.New(iv.End)})
	}
	return resp, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func overrideKind(k rotationv1.OverrideKind) schedule.OverrideKind {
	switch k {
	case rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE:
		return schedule.Replace
	case rotationv1.OverrideKind_OVERRIDE_KIND_ADD:
		return schedule.Add
	case rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE:
		return schedule.Remove
	}
	return 0
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
	case schedule.ReasonBackup:
		return rotationv1.Reason_REASON_BACKUP
	}
	return rotationv1.Reason_REASON_UNSPECIFIED
}

func availabilityProto(a schedule.Availability) rotationv1.Availability {
	switch a {
	case schedule.Available:
		return rotationv1.Availability_AVAILABILITY_AVAILABLE
	case schedule.OutsideHours:
		return rotationv1.Availability_AVAILABILITY_OUTSIDE_HOURS
	case schedule.OffWork:
		return rotationv1.Availability_AVAILABILITY_TIME_OFF
	case schedule.OnHoliday:
		return rotationv1.Availability_AVAILABILITY_HOLIDAY
	}
	return rotationv1.Availability_AVAILABILITY_UNSPECIFIED
}

// optionalTime is ts, or nil for the zero time.
func optionalTime(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func routeProto(r schedule.Route, chain []*rotationv1.OnCall) *rotationv1.Route {
	out := &rotationv1.Route{ReceiverIndex: int32(r.Receiver), Nobody: r.Nobody(), Explanation: r.Explanation, WaitUntil: optionalTime(r.WaitUntil)}
	if !r.Nobody() {
		out.Receiver = chain[r.Receiver]
	}
	return out
}

func personProto(p *schedule.Person) *rotationv1.Person {
	if p == nil {
		return nil
	}
	return &rotationv1.Person{Id: p.ID, Name: p.Name, Email: p.Email, SlackId: p.Slack, Team: p.Team, Timezone: p.Timezone,
		WorkingHours: p.WorkingHours, Github: p.GitHub, Emails: p.Emails}
}

func shiftProto(sh schedule.Shift) *rotationv1.Shift {
	out := &rotationv1.Shift{
		RotationId: sh.Rotation, PersonId: sh.Person,
		Reason: reasonProto(sh.Reason), ScheduledPersonId: sh.Scheduled,
	}
	// An unbounded end (zero time) stays unset rather than becoming 0001-01-01.
	if !sh.Start.IsZero() {
		out.Start = timestamppb.New(sh.Start)
	}
	if !sh.End.IsZero() {
		out.End = timestamppb.New(sh.End)
	}
	return out
}

func onCallProto(o schedule.OnCall) *rotationv1.OnCall {
	st := o.Status
	return &rotationv1.OnCall{
		Person: personProto(o.Person), Shift: shiftProto(o.Shift), Reason: reasonProto(o.Reason), Explanation: o.Explanation,
		Availability: availabilityProto(st.Availability), AvailabilityDetail: st.Detail, AwayUntil: optionalTime(st.AwayUntil),
		WorkingUntil: optionalTime(st.WorkingUntil), NextWorkingStart: optionalTime(st.NextWorking),
	}
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
