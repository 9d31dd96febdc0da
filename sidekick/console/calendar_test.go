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
