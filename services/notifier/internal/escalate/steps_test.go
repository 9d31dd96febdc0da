package escalate

import (
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
