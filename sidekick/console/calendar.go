package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
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
	// Overrides are the week's overrides but the sides of swaps, which
	// Swaps shows side by side.
	Overrides []*rotationv1.Override
	Swaps     []swapView
	Rotations []*rotationv1.Rotation
	Mine      *nextShift
	Dir       directory
}

// swapView is a swap: its two sides (overrides sharing a swap id), shown
// and deleted together.
type swapView struct {
	ID, Rotation string
	Sides        []*rotationv1.Override
	Note         string
	FromFile     bool
}

// swapReach is how far from the week the calendar looks for the other
// side of a swap one of whose sides falls in the week (rotation answers
// ranges up to a year: 50 weeks and the week).
const swapReach = 25 * 7 * 24 * time.Hour

// swaps splits the week's overrides into plain ones and swaps, fetching
// the sides of swaps that fall outside the week.
func (s *Service) swaps(ctx context.Context, week []*rotationv1.Override, start, end time.Time) ([]*rotationv1.Override, []swapView) {
	var plain []*rotationv1.Override
	sides := map[string][]*rotationv1.Override{}
	var order []string
	for _, o := range week {
		id := o.GetSwapId()
		if id == "" {
			plain = append(plain, o)
			continue
		}
		if sides[id] == nil {
			order = append(order, id)
		}
		sides[id] = append(sides[id], o)
	}
	lonely := false
	for _, id := range order {
		lonely = lonely || len(sides[id]) < 2
	}
	if lonely {
		wide, err := s.deps.Rotation.ListOverrides(ctx, &rotationv1.ListOverridesRequest{From: timestamppb.New(start.Add(-swapReach)), To: timestamppb.New(end.Add(swapReach))})
		if err != nil {
			s.deps.Logger.Warn("console: list the other sides of swaps", "error", err)
		}
		for _, o := range wide.GetOverrides() {
			id := o.GetSwapId()
			if sides[id] != nil && !slices.ContainsFunc(sides[id], func(x *rotationv1.Override) bool { return x.GetId() == o.GetId() }) {
				sides[id] = append(sides[id], o)
			}
		}
	}
	var out []swapView
	for _, id := range order {
		sv := swapView{ID: id, Sides: sides[id]}
		slices.SortFunc(sv.Sides, func(a, b *rotationv1.Override) int { return a.GetStart().AsTime().Compare(b.GetStart().AsTime()) })
		for _, o := range sv.Sides {
			sv.Rotation, sv.FromFile = o.GetRotationId(), sv.FromFile || o.GetFromFile()
			if sv.Note == "" {
				sv.Note = o.GetNote()
			}
		}
		out = append(out, sv)
	}
	return plain, out
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
	d.Overrides, d.Swaps = s.swaps(ctx, overrides.GetOverrides(), start, end)
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
	"swap":     "Swap created: two overrides, one for each side.",
	"deleted":  "Override deleted.",
}

// createOverride is POST /console/calendar/overrides: rotation, kind
// (replace, add, remove), person, with_person, start and end
// (YYYY-MM-DDTHH:MM in the rotation's zone, as the organisation file
// reads them), note; rotation validates it as it does the CLI's.
func (s *Service) createOverride(w http.ResponseWriter, r *http.Request, v *visitor) {
	invalid, ok := s.calendarForm(w, r, v, "override")
	if !ok {
		return
	}
	f := r.PostForm
	kind, known := overrideKinds[f.Get("kind")]
	if !known {
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
	times, ok := s.rotationTimes(ctx, w, r, v, rotID, invalid, "start", "end")
	if !ok {
		return
	}
	o := &rotationv1.Override{RotationId: rotID, Kind: kind, PersonId: strings.TrimSpace(f.Get("person")),
		WithPersonId: strings.TrimSpace(f.Get("with_person")), Start: timestamppb.New(times[0]), End: timestamppb.New(times[1]),
		Note: strings.TrimSpace(f.Get("note"))}
	created, err := s.deps.Rotation.CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: o})
	if err != nil {
		s.calendarFailed(w, r, v, "override", "Creating the override", err)
		return
	}
	s.metrics.actions.WithLabelValues("override", "ok").Inc()
	s.deps.Logger.Info("console override", "override_id", created.GetOverride().GetId(), "rotation", rotID, "actor", v.Actor)
	week, _ := weekOf("", times[0], s.loc)
	http.Redirect(w, r, BasePath+"/calendar?done=override&week="+week.Format(time.DateOnly), http.StatusSeeOther)
}

// rotationTimes reads the form's fields named (YYYY-MM-DDTHH:MM) in the
// zone of rotation rotID, as the organisation file and the CLI read
// them; a field whose name ends in "_end" may be empty (the zero time).
// It answers the request itself when it returns false.
func (s *Service) rotationTimes(ctx context.Context, w http.ResponseWriter, r *http.Request, v *visitor, rotID string, invalid func(string), names ...string) ([]time.Time, bool) {
	rots, err := s.deps.Rotation.ListRotations(ctx, &rotationv1.ListRotationsRequest{})
	if err != nil {
		s.rpcError(w, r, v, "Listing rotations", err)
		return nil, false
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
		return nil, false
	}
	times := make([]time.Time, len(names))
	for i, name := range names {
		raw := strings.TrimSpace(r.PostForm.Get(name))
		if raw == "" && strings.HasSuffix(name, "_end") {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02T15:04", raw, loc)
		if err != nil {
			invalid("The " + strings.ReplaceAll(name, "_", " ") + " is a date and time, YYYY-MM-DDTHH:MM, in the rotation's zone (" + loc.String() + ").")
			return nil, false
		}
		times[i] = t
	}
	return times, true
}

// createSwap is POST /console/calendar/swaps: rotation, a and a_start (a
// gives up the shift starting then), b and b_start (b gives up theirs),
// a_end and b_end (optional: part of the shift, such as one day),
// note; times in the rotation's zone. Two different people, as the CLI's
// swap requires; rotation validates the rest as it does the CLI's (each
// side on duty then) and records two overrides sharing a swap id.
func (s *Service) createSwap(w http.ResponseWriter, r *http.Request, v *visitor) {
	invalid, ok := s.calendarForm(w, r, v, "swap")
	if !ok {
		return
	}
	f := r.PostForm
	a, b := strings.TrimSpace(f.Get("a")), strings.TrimSpace(f.Get("b"))
	switch {
	case a == "" || b == "":
		invalid("A swap needs both people.")
		return
	case a == b:
		invalid("A swap is between two different people.")
		return
	case len(f.Get("note")) > maxOverrideNote:
		invalid("The note is too long.")
		return
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	rotID := strings.TrimSpace(f.Get("rotation"))
	ts, ok := s.rotationTimes(ctx, w, r, v, rotID, invalid, "a_start", "a_end", "b_start", "b_end")
	if !ok {
		return
	}
	stamp := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	resp, err := s.deps.Rotation.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{Rotation: rotID,
		PersonA: a, ShiftAStart: stamp(ts[0]), ShiftAEnd: stamp(ts[1]),
		PersonB: b, ShiftBStart: stamp(ts[2]), ShiftBEnd: stamp(ts[3]), Note: strings.TrimSpace(f.Get("note"))})
	if err != nil {
		s.calendarFailed(w, r, v, "swap", "Swapping the shifts", err)
		return
	}
	s.metrics.actions.WithLabelValues("swap", "ok").Inc()
	s.deps.Logger.Info("console swap", "swap_id", resp.GetSwapId(), "rotation", rotID, "actor", v.Actor)
	week, _ := weekOf("", ts[0], s.loc)
	http.Redirect(w, r, BasePath+"/calendar?done=swap&week="+week.Format(time.DateOnly), http.StatusSeeOther)
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
		s.calendarFailed(w, r, v, "delete_override", "Deleting override "+id, err)
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

// calendarForm checks a calendar form's post (same origin, CSRF token)
// and returns how to refuse it as invalid, counted under action; false
// when the post was refused already.
func (s *Service) calendarForm(w http.ResponseWriter, r *http.Request, v *visitor, action string) (func(string), bool) {
	if !s.checkPost(w, r, v) {
		s.metrics.actions.WithLabelValues(action, "rejected").Inc()
		return nil, false
	}
	return func(msg string) {
		s.metrics.actions.WithLabelValues(action, "rejected").Inc()
		s.renderError(w, r, v, http.StatusBadRequest, msg)
	}, true
}

// calendarFailed counts and shows a calendar change rotation refused or
// failed.
func (s *Service) calendarFailed(w http.ResponseWriter, r *http.Request, v *visitor, action, what string, err error) {
	result := "error"
	if rejected(err) {
		result = "rejected"
	}
	s.metrics.actions.WithLabelValues(action, result).Inc()
	s.rpcError(w, r, v, what, err)
}
