package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// calendarRotation has the hero rotation: alice this week (t0 is Monday
// 2 March 2026), bob from Wednesday noon by an override, alice again next
// week.
func calendarRotation() *fakeRotation {
	at := func(day, hour int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC))
	}
	return &fakeRotation{
		people:    []*rotationv1.Person{{Id: "alice", Name: "Alice Hero"}, {Id: "bob", Name: "Bob <b>Brown</b>"}},
		rotations: []*rotationv1.Rotation{{Id: "hero", Name: "Support Hero", Type: "weekly", Timezone: "Europe/London"}},
		shifts: func(req *rotationv1.ListShiftsRequest) []*rotationv1.Shift {
			all := []*rotationv1.Shift{
				{RotationId: "hero", PersonId: "alice", Start: at(2, 9), End: at(4, 12), Reason: rotationv1.Reason_REASON_ROTATION},
				{RotationId: "hero", PersonId: "bob", Start: at(4, 12), End: at(9, 9), Reason: rotationv1.Reason_REASON_OVERRIDE, ScheduledPersonId: "alice"},
				{RotationId: "hero", PersonId: "alice", Start: at(9, 9), End: at(16, 9), Reason: rotationv1.Reason_REASON_ROTATION},
			}
			var out []*rotationv1.Shift
			for _, s := range all {
				if s.GetEnd().AsTime().After(req.GetFrom().AsTime()) && s.GetStart().AsTime().Before(req.GetTo().AsTime()) {
					out = append(out, s)
				}
			}
			return out
		},
		overrides: []*rotationv1.Override{
			{Id: "ov-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "alice", WithPersonId: "bob",
				Start: at(4, 12), End: at(9, 9), Note: "dentist"},
			{Id: "ov-2", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "bob", Start: at(6, 9), End: at(6, 17), FromFile: true},
		},
	}
}

// TestCalendar: a week of shifts per rotation, day by day in the
// console's zone, who is there by override marked; the overrides with a
// delete button for those not from the file; "when am I next on call";
// an override created from the form reaches rotation with its times read
// in the rotation's zone, and rotation's refusal shows; delete works.
func TestCalendar(t *testing.T) {
	rot := calendarRotation()
	h := start(t, console.Config{Token: testToken}, nil, rot)
	h.signIn("alice")
	r := h.get("/console/calendar")
	if r.code != http.StatusOK {
		t.Fatalf("calendar: %d\n%s", r.code, r.body)
	}
	mustContain(t, r.body, "week of 2026-03-02", "<th>Mon 2 Mar</th>", "<th>Sun 8 Mar</th>",
		`<div class="duty">Alice Hero <small class="muted">from 09:00</small></div>`,
		`<div class="duty">Alice Hero <small class="muted"> until 12:00</small></div><div class="duty changed">Bob &lt;b&gt;Brown&lt;/b&gt; <small class="muted">from 12:00</small> <small class="muted">(override)</small></div>`,
		`href="/console/calendar?week=2026-02-23"`, `href="/console/calendar?week=2026-03-09"`,
		"dentist", `action="/console/calendar/overrides/ov-1/delete"`, "in the organisation file",
		"You are next on call on <strong>Support Hero</strong> from", `<option value="hero">Support Hero (Europe/London)</option>`)
	if strings.Contains(r.body, "/overrides/ov-2/delete") {
		t.Error("an override of the organisation file offers deletion")
	}
	if r := h.get("/console/calendar?week=2026-03-11"); !strings.Contains(r.body, "week of 2026-03-09") {
		t.Errorf("a Wednesday's week: %d", r.code)
	}

	csrf := h.csrf("/console/calendar")
	form := url.Values{"csrf": {csrf}, "rotation": {"hero"}, "kind": {"replace"}, "person": {"alice"}, "with_person": {"bob"},
		"start": {"2026-07-06T09:00"}, "end": {"2026-07-07T09:00"}, "note": {"swap day"}}
	r = h.post("/console/calendar/overrides", form)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/calendar?done=override&week=2026-07-06" {
		t.Fatalf("create: %d %s\n%s", r.code, r.header.Get("Location"), r.body)
	}
	// 09:00 in London in July is 08:00 UTC.
	sameProto(t, "CreateOverride", &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{RotationId: "hero",
		Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "alice", WithPersonId: "bob",
		Start: timestamppb.New(time.Date(2026, 7, 6, 8, 0, 0, 0, time.UTC)), End: timestamppb.New(time.Date(2026, 7, 7, 8, 0, 0, 0, time.UTC)),
		Note: "swap day"}}, first(rot.changes()))
	mustContain(t, h.get("/console/calendar?done=override&week=2026-07-06").body, "Override created.")

	rot.refuseWith(status.Error(codes.InvalidArgument, "override ends before it starts"))
	bad := url.Values{"csrf": {csrf}, "rotation": {"hero"}, "kind": {"remove"}, "person": {"alice"}, "start": {"2026-07-07T09:00"}, "end": {"2026-07-06T09:00"}}
	if r := h.post("/console/calendar/overrides", bad); r.code != http.StatusBadRequest || !strings.Contains(r.body, "override ends before it starts") {
		t.Errorf("refused override: %d\n%s", r.code, r.body)
	}
	created, _ := rot.changes()
	for _, f := range []url.Values{
		{"csrf": {csrf}, "rotation": {"hero"}, "kind": {"sideways"}, "start": {"2026-07-06T09:00"}, "end": {"2026-07-07T09:00"}},
		{"csrf": {csrf}, "rotation": {"nope"}, "kind": {"add"}, "start": {"2026-07-06T09:00"}, "end": {"2026-07-07T09:00"}},
		{"csrf": {csrf}, "rotation": {"hero"}, "kind": {"add"}, "start": {"tomorrow"}, "end": {"2026-07-07T09:00"}},
	} {
		if r := h.post("/console/calendar/overrides", f); r.code != http.StatusBadRequest {
			t.Errorf("%v: %d, want 400", f, r.code)
		}
	}
	if r := h.post("/console/calendar/overrides", url.Values{"rotation": {"hero"}, "kind": {"add"}}); r.code != http.StatusForbidden {
		t.Errorf("without the CSRF token: %d, want 403", r.code)
	}
	if now, _ := rot.changes(); len(now) != len(created) {
		t.Error("a refused form reached rotation")
	}

	r = h.post("/console/calendar/overrides/ov-1/delete", url.Values{"csrf": {csrf}, "week": {"2026-03-02"}})
	if _, deleted := rot.changes(); r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/calendar?done=deleted&week=2026-03-02" || len(deleted) != 1 || deleted[0] != "ov-1" {
		t.Fatalf("delete: %d %s %v", r.code, r.header.Get("Location"), deleted)
	}
}

// first is the first override created.
func first(created []*rotationv1.CreateOverrideRequest, _ []string) *rotationv1.CreateOverrideRequest {
	if len(created) == 0 {
		return nil
	}
	return created[0]
}

// TestCalendarSwaps: a swap's two sides show as one row with one delete
// button for both (the side outside the week fetched too); the swap form
// reaches rotation's SwapShifts with its times in the rotation's zone (an
// empty end: the whole shift); two sides of one person are refused as
// the CLI refuses them, without asking rotation; rotation's refusal
// shows.
func TestCalendarSwaps(t *testing.T) {
	rot := calendarRotation()
	at := func(month time.Month, day, hour int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, month, day, hour, 0, 0, 0, time.UTC))
	}
	rot.overrides = append(rot.overrides,
		&rotationv1.Override{Id: "sw-1-a", SwapId: "sw-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE,
			PersonId: "alice", WithPersonId: "bob", Start: at(3, 3, 9), End: at(3, 4, 9), Note: "school play"},
		&rotationv1.Override{Id: "sw-1-b", SwapId: "sw-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE,
			PersonId: "bob", WithPersonId: "alice", Start: at(4, 7, 8), End: at(4, 8, 8), Note: "school play"})
	h := start(t, console.Config{Token: testToken}, nil, rot)
	h.signIn("alice")
	r := h.get("/console/calendar")
	mustContain(t, r.body, `<tr data-swap="sw-1">`,
		`<div class="side">Bob &lt;b&gt;Brown&lt;/b&gt; takes Alice Hero's shift from`,
		`<div class="side">Alice Hero takes Bob &lt;b&gt;Brown&lt;/b&gt;'s shift from`,
		`action="/console/calendar/overrides/sw-1/delete"`, `id="swap-form"`)
	if strings.Count(r.body, "/delete\"") != 2 || strings.Contains(r.body, "sw-1-a/delete") || strings.Count(r.body, "school play") != 1 {
		t.Errorf("the swap is not one row with one delete button (ov-1's and the swap's):\n%s", r.body)
	}

	csrf := h.csrf("/console/calendar")
	form := url.Values{"csrf": {csrf}, "rotation": {"hero"}, "a": {"bob"}, "a_start": {"2026-07-06T09:00"}, "a_end": {"2026-07-07T09:00"},
		"b": {"alice"}, "b_start": {"2026-07-13T09:00"}, "note": {"a day for a week"}}
	r = h.post("/console/calendar/swaps", form)
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/calendar?done=swap&week=2026-07-06" {
		t.Fatalf("swap: %d %s\n%s", r.code, r.header.Get("Location"), r.body)
	}
	// 09:00 in London in July is 08:00 UTC; no b_end: Alice's whole shift.
	got := rot.swaps()
	if len(got) != 1 {
		t.Fatalf("SwapShifts calls: %v", got)
	}
	sameProto(t, "SwapShifts", &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "bob", ShiftAStart: at(7, 6, 8), ShiftAEnd: at(7, 7, 8),
		PersonB: "alice", ShiftBStart: at(7, 13, 8), Note: "a day for a week"}, got[0])
	mustContain(t, h.get("/console/calendar?done=swap&week=2026-07-06").body, "Swap created: two overrides, one for each side.")

	for _, f := range []url.Values{
		{"csrf": {csrf}, "rotation": {"hero"}, "a": {"bob"}, "a_start": {"2026-07-06T09:00"}, "b": {"bob"}, "b_start": {"2026-07-13T09:00"}},
		{"csrf": {csrf}, "rotation": {"hero"}, "a": {"bob"}, "a_start": {"2026-07-06T09:00"}, "b_start": {"2026-07-13T09:00"}},
		{"csrf": {csrf}, "rotation": {"hero"}, "a": {"bob"}, "a_start": {"next monday"}, "b": {"alice"}, "b_start": {"2026-07-13T09:00"}},
		{"csrf": {csrf}, "rotation": {"nope"}, "a": {"bob"}, "a_start": {"2026-07-06T09:00"}, "b": {"alice"}, "b_start": {"2026-07-13T09:00"}},
	} {
		if r := h.post("/console/calendar/swaps", f); r.code != http.StatusBadRequest {
			t.Errorf("%v: %d, want 400", f, r.code)
		}
	}
	if len(rot.swaps()) != 1 {
		t.Error("a refused swap form reached rotation")
	}
	rot.refuseWith(status.Error(codes.FailedPrecondition, "swap: alice is not on duty on hero at 2026-07-13 08:00 UTC"))
	if r := h.post("/console/calendar/swaps", form); r.code == http.StatusSeeOther || !strings.Contains(r.body, "alice is not on duty") {
		t.Errorf("refused swap: %d\n%s", r.code, r.body)
	}
}
