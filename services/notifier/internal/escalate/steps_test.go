package escalate

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

func TestLocate(t *testing.T) {
	start := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	okay := start.Add(time.Hour)
	p := &policy.Policy{
		ID: "p",
		Steps: []policy.Rule{
			{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Ping},
			{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Page, After: policy.After{Deadline: policy.OkayDeadline}},
			{Notify: policy.Target{Kind: policy.TeamSecondary}, Via: notify.Page, After: policy.After{Offset: 30 * time.Minute}},
		},
		Repeat: 1, RepeatAfter: 30 * time.Minute,
	}
	known := map[string]time.Time{policy.OkayDeadline: okay}
	for _, tc := range []struct {
		name      string
		deadlines map[string]time.Time
		pos       int
		want      state
		due       time.Time
		target    policy.TargetKind
	}{
		{"first step at once", nil, 0, ready, start, policy.Hero},
		{"deadline unknown: waits", nil, 1, waiting, time.Time{}, policy.Hero},
		{"deadline known", known, 1, ready, okay, policy.Hero},
		{"after the deadline step", known, 2, ready, okay.Add(30 * time.Minute), policy.TeamSecondary},
		// Round 2 starts 30m after the last step of round 1 and keeps the
		// spacing: +2h from the first round.
		{"second round", known, 3, ready, start.Add(2 * time.Hour), policy.Hero},
		{"second round's deadline step", known, 4, ready, okay.Add(2 * time.Hour), policy.Hero},
		{"past the plan", known, 6, finished, time.Time{}, ""},
	} {
		step, st := locate(p, start, tc.deadlines, tc.pos)
		if st != tc.want || !step.Due.Equal(tc.due) || step.Target.Kind != tc.target || (st != finished && step.Index != tc.pos) {
			t.Errorf("%s: locate(%d) = %v %v %s #%d, want %v %v %s", tc.name, tc.pos, st, step.Due, step.Target.Kind, step.Index, tc.want, tc.due, tc.target)
		}
	}
	if _, st := locate(&policy.Policy{Digest: &policy.Digest{Every: time.Hour}}, start, nil, 0); st != finished {
		t.Errorf("a digest policy has steps: %v", st)
	}
}

// A step whose deadline has already passed when the one before is due
// fires with it, never earlier.
func TestLocateNeverGoesBackwards(t *testing.T) {
	start := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	p := &policy.Policy{Steps: []policy.Rule{
		{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Ping, After: policy.After{Offset: 20 * time.Minute}},
		{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Page, After: policy.After{Deadline: policy.GreatDeadline}},
	}}
	step, st := locate(p, start, map[string]time.Time{policy.GreatDeadline: start.Add(15 * time.Minute)}, 1)
	if st != ready || !step.Due.Equal(start.Add(20*time.Minute)) {
		t.Errorf("locate = %v %v, want ready at +20m", st, step.Due)
	}
}

func TestDeadlineMap(t *testing.T) {
	at := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	m := deadlineMap(store.Deadlines{Okay: at})
	if len(m) != 1 || !m[policy.OkayDeadline].Equal(at) {
		t.Errorf("deadlineMap = %v", m)
	}
}

// threeSteps pings the hero at once, pages the team's secondary 10
// minutes later and pings Carol 5 minutes after that.
var threeSteps = &policy.Policy{ID: "three", Steps: []policy.Rule{
	{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Ping},
	{Notify: policy.Target{Kind: policy.TeamSecondary}, Via: notify.Page, After: policy.After{Offset: 10 * time.Minute}},
	{Notify: policy.Target{Kind: policy.Person, Name: "carol"}, Via: notify.Ping, After: policy.After{Offset: 5 * time.Minute}},
}}

// pageAtOkay pings the hero at once and pages them at the okay deadline,
// twice (one repeat an hour after the first round).
var pageAtOkay = &policy.Policy{ID: "okay", Repeat: 1, RepeatAfter: time.Hour, Steps: []policy.Rule{
	{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Ping},
	{Notify: policy.Target{Kind: policy.Hero}, Via: notify.Page, After: policy.After{Deadline: policy.OkayDeadline}},
}}

// TestAdvance: which steps of an escalation fire at a given time, and
// where the escalation stands afterwards.
func TestAdvance(t *testing.T) {
	t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	esc := func(next int, mod func(*store.Escalation)) store.Escalation {
		e := store.Escalation{ID: "e", NewEscalation: store.NewEscalation{StartedAt: t0}, NextStep: next}
		if mod != nil {
			mod(&e)
		}
		return e
	}
	okayKnown := func(e *store.Escalation) { e.Deadlines.Okay = at(time.Hour) }
	for _, tc := range []struct {
		name   string
		p      *policy.Policy
		esc    store.Escalation
		now    time.Time
		nobody map[int]bool // steps that reach nobody
		fired  []int
		want   store.Fired
	}{
		{name: "the first step at once, the next due after its delay", p: threeSteps, esc: esc(0, nil), now: t0,
			fired: []int{0}, want: store.Fired{NextStep: 1, DueAt: at(10 * time.Minute), Status: store.EscalationActive}},
		{name: "a second early: nothing", p: threeSteps, esc: esc(1, nil), now: at(10*time.Minute - time.Second),
			want: store.Fired{NextStep: 1, DueAt: at(10 * time.Minute), Status: store.EscalationActive}},
		{name: "exactly on time", p: threeSteps, esc: esc(1, nil), now: at(10 * time.Minute),
			fired: []int{1}, want: store.Fired{NextStep: 2, DueAt: at(15 * time.Minute), Status: store.EscalationActive}},
		{name: "down past two steps: both fire, in order, and the plan is done", p: threeSteps, esc: esc(1, nil), now: at(time.Hour),
			fired: []int{1, 2}, want: store.Fired{NextStep: 3, Status: store.EscalationDone}},
		{name: "past the plan", p: threeSteps, esc: esc(3, nil), now: at(48 * time.Hour),
			want: store.Fired{NextStep: 3, Status: store.EscalationDone}},
		{name: "a step that reaches nobody fires the next at once, and the rest come forward with it",
			p: threeSteps, esc: esc(0, nil), now: t0, nobody: map[int]bool{0: true},
			fired: []int{0, 1}, want: store.Fired{NextStep: 2, DueAt: at(5 * time.Minute), Status: store.EscalationActive, StartedAt: at(-10 * time.Minute)}},
		{name: "nobody twice: the whole plan at once", p: threeSteps, esc: esc(0, nil), now: t0, nobody: map[int]bool{0: true, 1: true},
			fired: []int{0, 1, 2}, want: store.Fired{NextStep: 3, Status: store.EscalationDone, StartedAt: at(-15 * time.Minute)}},
		{name: "a step anchored on an unknown deadline waits without a due time", p: pageAtOkay, esc: esc(0, nil), now: t0,
			fired: []int{0}, want: store.Fired{NextStep: 1, Status: store.EscalationActive}},
		{name: "the deadline known: due then", p: pageAtOkay, esc: esc(1, okayKnown), now: at(time.Minute),
			want: store.Fired{NextStep: 1, DueAt: at(time.Hour), Status: store.EscalationActive}},
		{name: "the deadline passed: it fires; the repeat is due after the pause", p: pageAtOkay, esc: esc(1, okayKnown), now: at(time.Hour),
			fired: []int{1}, want: store.Fired{NextStep: 2, DueAt: at(2 * time.Hour), Status: store.EscalationActive}},
		{name: "the repeat's own deadline step keeps the spacing", p: pageAtOkay, esc: esc(3, okayKnown), now: at(2 * time.Hour),
			want: store.Fired{NextStep: 3, DueAt: at(3 * time.Hour), Status: store.EscalationActive}},
		{name: "brought forward (the step before failed for good): due at once though its deadline is unknown",
			p: pageAtOkay, esc: esc(1, func(e *store.Escalation) { e.Hurried, e.DueAt = true, at(time.Minute) }), now: at(time.Minute),
			fired: []int{1}, want: store.Fired{NextStep: 2, DueAt: at(time.Hour), Status: store.EscalationActive}},
		{name: "brought forward, not yet due", p: threeSteps, esc: esc(1, func(e *store.Escalation) { e.Hurried, e.DueAt = true, at(2*time.Minute) }),
			now: at(time.Minute), want: store.Fired{NextStep: 1, DueAt: at(2 * time.Minute), Hurried: true, Status: store.EscalationActive, StartedAt: at(-8 * time.Minute)}},
		{name: "brought forward to later than planned: the plan wins", p: threeSteps, esc: esc(1, func(e *store.Escalation) { e.Hurried, e.DueAt = true, at(time.Hour) }),
			now: at(10 * time.Minute), fired: []int{1}, want: store.Fired{NextStep: 2, DueAt: at(15 * time.Minute), Status: store.EscalationActive}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fired []int
			got, err := advance(tc.p, tc.esc, tc.now, func(s policy.Step) (bool, error) {
				fired = append(fired, s.Index)
				return tc.nobody[s.Index], nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(fired, tc.fired) {
				t.Errorf("fired %v, want %v", fired, tc.fired)
			}
			if !got.DueAt.Equal(tc.want.DueAt) || !got.StartedAt.Equal(tc.want.StartedAt) || got.NextStep != tc.want.NextStep ||
				got.Hurried != tc.want.Hurried || got.Status != tc.want.Status {
				t.Errorf("advance = next %d due %v hurried %v %s start %v;\n     want next %d due %v hurried %v %s start %v",
					got.NextStep, got.DueAt, got.Hurried, got.Status, got.StartedAt,
					tc.want.NextStep, tc.want.DueAt, tc.want.Hurried, tc.want.Status, tc.want.StartedAt)
			}
		})
	}
}

// A step that cannot be fired (rotation unreachable) stops the walk: the
// steps after it do not fire and the error comes back.
func TestAdvanceStopsAtAFailedStep(t *testing.T) {
	t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	var fired []int
	_, err := advance(threeSteps, store.Escalation{NewEscalation: store.NewEscalation{StartedAt: t0}}, t0.Add(time.Hour),
		func(s policy.Step) (bool, error) {
			fired = append(fired, s.Index)
			if s.Index == 1 {
				return false, errors.New("rotation unreachable")
			}
			return false, nil
		})
	if err == nil || !slices.Equal(fired, []int{0, 1}) {
		t.Fatalf("fired %v, err %v; want 0 and 1 tried and the error", fired, err)
	}
}
