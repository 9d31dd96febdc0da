package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// NextOnCallWeeks is how far ahead "when am I next on call" looks.
const NextOnCallWeeks = 8

// maxOverrideNote bounds an override's note, in bytes.
const maxOverrideNote = 1 << 10

// overrideKinds are the override form's choices.
var overrideKinds = map[string]rotationv1.OverrideKind{
	"replace": rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE,
	"add":     rotationv1.OverrideKind_OVERRIDE_KIND_ADD,
	"remove":  rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE,
}

// shiftView is one stretch of duty shown in a day's cell.
type shiftView struct {
	Person, Reason string
	// Changed is true when an override, a swap or a derived rule put the
	// person there rather than the rotation's order.
	Changed bool
	// From and Until are the stretch's ends within the day, in the
	// console's zone ("" at the day's edges).
	From, Until string
}

// calendarRow is one rotation's week.
type calendarRow struct {
	Rotation *rotationv1.Rotation
	Days     [][]shiftView
	Err      string
}

// nextShift is the visitor's next shift.
type nextShift struct {
	Rotation string
	Shift    *rotationv1.Shift
}

// calendarData is the on-call calendar.
type calendarData struct {
	Week, Prev, Next string
	Days             []time.Time
	Rows             []calendarRow
	Overrides        []*rotationv1.Override
	Rotations        []*rotationv1.Rotation
	Mine             *nextShift
	Dir              directory
}

// weekOf is the Monday starting the week of day (YYYY-MM-DD, in loc;
// empty: today).
func weekOf(day string, now time.Time, loc *time.Location) (time.Time, bool) {
	d := now.In(loc)
	if day != "" {
		var err error
		if d, err = time.ParseInLocation(time.DateOnly, day, loc); err != nil {
			return time.Time{}, false
		}
	}
	d = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7)), true
}

// calendar is GET /console/calendar?week=YYYY-MM-DD: each rotation's
// shifts day by day for the week holding that day (this week by default)
// in the console's zone, the overrides in it (those made here can be
// deleted), a form to create an override, and the visitor's next shift.
func (s *Service) calendar(w http.ResponseWriter, r *http.Request, v *visitor) {
	start, ok := weekOf(r.URL.Query().Get("week"), s.deps.Clock.Now(), s.loc)
	if !ok {
		s.renderError(w, r, v, http.StatusBadRequest, "The week is a day as YYYY-MM-DD.")
		return
	}
	end := start.AddDate(0, 0, 7)
	ctx, cancel := s.call(r.Context())
	defer cancel()
	rots, err := s.deps.Rotation.ListRotations(ctx, &rotationv1.ListRotationsRequest{})
	if err != nil {
		s.rpcError(w, r, v, "Listing rotations", err)
		return
	}
	d := calendarData{Week: start.Format(time.DateOnly), Prev: start.AddDate(0, 0, -7).Format(time.DateOnly),
		Next: end.Format(time.DateOnly), Rotations: rots.GetRotations(), Dir: s.directory(r.Context(), false)}
	for i := range 7 {
		d.Days = append(d.Days, start.AddDate(0, 0, i))
	}
	for _, rot := range rots.GetRotations() {
		row := calendarRow{Rotation: rot, Days: make([][]shiftView, 7)}
		shifts, err := s.deps.Rotation.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: rot.GetId(), From: timestamppb.New(start), To: timestamppb.New(end)})
		if err != nil {
			row.Err = "could not ask rotation: " + statusMessage(err)
		}
		for _, sh := range shifts.GetShifts() {
			for i, day := range d.Days {
				from, until := sh.GetStart().AsTime(), sh.GetEnd().AsTime()
				next := day.AddDate(0, 0, 1)
				if !from.Before(next) || !until.After(day) {
					continue
				}
				sv := shiftView{Person: d.Dir.Name(sh.GetPersonId()), Reason: enumWords(sh.GetReason().String(), "REASON_"),
					Changed: sh.GetReason() != rotationv1.Reason_REASON_ROTATION}
				if from.After(day) {
					sv.From = from.In(s.loc).Format("15:04")
				}
				if until.Before(next) {
					sv.Until = until.In(s.loc).Format("15:04")
				}
				row.Days[i] = append(row.Days[i], sv)
			}
		}
		d.Rows = append(d.Rows, row)
	}
	overrides, err := s.deps.Rotation.ListOverrides(ctx, &rotationv1.ListOverridesRequest{From: timestamppb.New(start), To: timestamppb.New(end)})
	if err != nil {
		s.deps.Logger.Warn("console: list overrides", "error", err)
	}
	d.Overrides = overrides.GetOverrides()
	d.Mine = s.nextShift(r, v, rots.GetRotations())
	s.renderPage(w, r, http.StatusOK, "calendar", v, d, calendarDone[r.URL.Query().Get("done")], "")
}

// nextShift is the visitor's first shift in the next NextOnCallWeeks
// weeks on any rotation, nil when none (or rotation cannot say).
func (s *Service) nextShift(r *http.Request, v *visitor, rots []*rotationv1.Rotation) *nextShift {
	ctx, cancel := s.call(r.Context())
	defer cancel()
	now := s.deps.Clock.Now()
	var best *nextShift
	for _, rot := range rots {
		shifts, err := s.deps.Rotation.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: rot.GetId(),
			From: timestamppb.New(now), To: timestamppb.New(now.AddDate(0, 0, 7*NextOnCallWeeks))})
		if err != nil {
			continue
		}
		for _, sh := range shifts.GetShifts() {
			if sh.GetPersonId() != v.Actor {
				continue
			}
			if best == nil || sh.GetStart().AsTime().Before(best.Shift.GetStart().AsTime()) {
				best = &nextShift{Rotation: rot.GetName(), Shift: sh}
			}
			break
		}
	}
	return best
}

// calendarDone confirm an override change after its redirect.
var calendarDone = map[string]string{
	"override": "Override created.",
	"deleted":  "Override deleted.",
}

// createOverride is POST /console/calendar/overrides: rotation, kind
// (replace, add, remove), person, with_person, start and end
// (YYYY-MM-DDTHH:MM in the rotation's zone, as the organisation file
// reads them), note; rotation validates it as it does the CLI's.
func (s *Service) createOverride(w http.ResponseWriter, r *http.Request, v *visitor) {
	if !s.checkPost(w, r, v) {
		s.metrics.actions.WithLabelValues("override", "rejected").Inc()
		return
	}
	f := r.PostForm
	invalid := func(msg string) {
		s.metrics.actions.WithLabelValues("override", "rejected").Inc()
		s.renderError(w, r, v, http.StatusBadRequest, msg)
	}
	kind, ok := overrideKinds[f.Get("kind")]
	if !ok {
		invalid("The kind of override is replace, add or remove.")
		return
	}
	if len(f.Get("note")) > maxOverrideNote {
		invalid("The note is too long.")
		return
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	rotID := strings.TrimSpace(f.Get("rotation"))
	rots, err := s.deps.Rotation.ListRotations(ctx, &rotationv1.ListRotationsRequest{})
	if err != nil {
		s.rpcError(w, r, v, "Listing rotations", err)
		return
	}
	loc := s.loc
	found := false
	for _, rot := range rots.GetRotations() {
		if rot.GetId() == rotID {
			found = true
			if l, err := time.LoadLocation(rot.GetTimezone()); err == nil {
				loc = l
			}
		}
	}
	if !found {
		invalid("There is no rotation " + rotID + ".")
		return
	}
	var times [2]time.Time
	for i, name := range []string{"start", "end"} {
		t, err := time.ParseInLocation("2006-01-02T15:04", strings.TrimSpace(f.Get(name)), loc)
		if err != nil {
			invalid("The " + name + " is a date and time, YYYY-MM-DDTHH:MM, in the rotation's zone (" + loc.String() + ").")
			return
		}
		times[i] = t
	}
	o := &rotationv1.Override{RotationId: rotID, Kind: kind, PersonId: strings.TrimSpace(f.Get("person")),
		WithPersonId: strings.TrimSpace(f.Get("with_person")), Start: timestamppb.New(times[0]), End: timestamppb.New(times[1]),
		Note: strings.TrimSpace(f.Get("note"))}
	created, err := s.deps.Rotation.CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: o})
	if err != nil {
		s.overrideFailed(w, r, v, "Creating the override", err)
		return
	}
	s.metrics.actions.WithLabelValues("override", "ok").Inc()
	s.deps.Logger.Info("console override", "override_id", created.GetOverride().GetId(), "rotation", rotID, "actor", v.Actor)
	week, _ := weekOf("", times[0], s.loc)
	http.Redirect(w, r, BasePath+"/calendar?done=override&week="+week.Format(time.DateOnly), http.StatusSeeOther)
}

// deleteOverride is POST /console/calendar/overrides/{id}/delete.
func (s *Service) deleteOverride(w http.ResponseWriter, r *http.Request, v *visitor) {
	if !s.checkPost(w, r, v) {
		s.metrics.actions.WithLabelValues("delete_override", "rejected").Inc()
		return
	}
	id := r.PathValue("id")
	ctx, cancel := s.call(r.Context())
	defer cancel()
	if _, err := s.deps.Rotation.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: id}); err != nil {
		s.overrideFailed(w, r, v, "Deleting override "+id, err)
		return
	}
	s.metrics.actions.WithLabelValues("delete_override", "ok").Inc()
	s.deps.Logger.Info("console override deleted", "override_id", id, "actor", v.Actor)
	q := url.Values{"done": {"deleted"}}
	if wk := r.PostForm.Get("week"); wk != "" {
		q.Set("week", wk)
	}
	http.Redirect(w, r, BasePath+"/calendar?"+q.Encode(), http.StatusSeeOther)
}

// overrideFailed counts and shows a refused or failed override change.
func (s *Service) overrideFailed(w http.ResponseWriter, r *http.Request, v *visitor, what string, err error) {
	result := "error"
	if rejected(err) {
		result = "rejected"
	}
	s.metrics.actions.WithLabelValues("override", result).Inc()
	s.rpcError(w, r, v, what, err)
}
