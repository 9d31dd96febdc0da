package escalate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// state is where a planned step stands.
type state int

const (
	ready state = iota
	waiting
	finished
)

// locate returns the step at position pos of p's plan (round × steps +
// rule) for an escalation started at start: ready with its due time,
// waiting when it is anchored on a deadline not known yet, or finished
// when the plan has no such step.
func locate(p *policy.Policy, start time.Time, deadlines map[string]time.Time, pos int) (policy.Step, state) {
	n := len(p.Steps)
	if n == 0 || pos >= n*(p.Repeat+1) {
		return policy.Step{}, finished
	}
	round, rule := pos/n, pos%n
	r := p.Steps[rule]
	skeleton := policy.Step{Index: pos, Round: round, Rule: rule, Target: r.Notify, Urgency: r.Via}
	if r.After.Deadline != "" && deadlines[r.After.Deadline].IsZero() {
		return skeleton, waiting
	}
	for _, s := range p.Plan(start, deadlines) {
		if s.Round == round && s.Rule == rule {
			s.Index = pos
			return s, ready
		}
	}
	return skeleton, waiting
}

func deadlineMap(d store.Deadlines) map[string]time.Time {
	m := map[string]time.Time{}
	for name, t := range map[string]time.Time{policy.GreatDeadline: d.Great, policy.OkayDeadline: d.Okay, policy.TooLateDeadline: d.TooLate} {
		if !t.IsZero() {
			m[name] = t
		}
	}
	return m
}

// advance walks esc's plan p from its next step at now: it calls fire for
// each step due, in order, and returns where the escalation stands after
// them (Fired without Steps). fire reports whether its step reached
// nobody, which makes the next step due at once; an error from fire stops
// the walk and is returned.
//
// A step brought forward (esc.Hurried: the step before reached nobody)
// is due at esc.DueAt even when its deadline is unknown or later; when it
// fires sooner than planned the plan's start moves with it, so the steps
// after it keep their spacing.
func advance(p *policy.Policy, esc store.Escalation, now time.Time, fire func(policy.Step) (nobody bool, err error)) (store.Fired, error) {
	deadlines := deadlineMap(esc.Deadlines)
	out := store.Fired{Status: store.EscalationActive}
	start := esc.StartedAt
	nobody := false
	for pos := esc.NextStep; ; pos++ {
		step, st := locate(p, start, deadlines, pos)
		if st == finished {
			out.Status, out.NextStep = store.EscalationDone, pos
			return out, nil
		}
		due, hurried := step.Due, false
		switch {
		case pos == esc.NextStep && esc.Hurried && !esc.DueAt.IsZero() && (st == waiting || esc.DueAt.Before(due)):
			// Brought forward: the step before reached nobody.
			due, hurried = esc.DueAt, true
		case pos > esc.NextStep && nobody && (st == waiting || now.Before(due)):
			due, hurried = now, true
		}
		if hurried && st == ready {
			// The steps after it come forward with it.
			start = start.Add(due.Sub(step.Due))
			out.StartedAt = start
		}
		if hurried {
			st = ready
		}
		if st == waiting || due.After(now) {
			out.NextStep, out.Hurried = pos, hurried
			if st == ready {
				out.DueAt = due
			}
			return out, nil
		}
		var err error
		if nobody, err = fire(step); err != nil {
			return store.Fired{}, err
		}
	}
}

// fire is the store.FireFunc: it fires every step of esc due now and says
// when the next one is due.
func (r *Runner) fire(ctx context.Context, esc store.Escalation) (store.Fired, error) {
	var p policy.Policy
	if err := json.Unmarshal(esc.Policy, &p); err != nil {
		r.logger.Error("escalation policy snapshot unreadable; ending the escalation", "escalation", esc.ID, "error", err)
		return store.Fired{Status: store.EscalationDone, NextStep: esc.NextStep}, nil
	}
	var steps []store.FiredStep
	out, err := advance(&p, esc, r.clock.Now(), func(step policy.Step) (bool, error) {
		n, ds, err := r.dispatch.Prepare(ctx, r.request(esc, step))
		if err != nil {
			return false, fmt.Errorf("step %d of %s: %w", step.Index, esc.PolicyID, err)
		}
		steps = append(steps, store.FiredStep{Position: step.Index, Notification: n, Deliveries: ds})
		r.metrics.steps.WithLabelValues(esc.Kind, n.Urgency.String()).Inc()
		nobody := r.reachedNobody(ds)
		if nobody {
			r.logger.Warn("escalation step reaches nobody; the next step is due now", "escalation", esc.ID, "step", step.Index,
				"policy", esc.PolicyID)
		}
		return nobody, nil
	})
	if err != nil {
		return store.Fired{}, err
	}
	out.Steps = steps
	return out, nil
}

// reachedNobody reports whether no delivery of a step can reach its
// recipient (nobody on call, no channel, unknown person).
func (r *Runner) reachedNobody(ds []store.NewDelivery) bool {
	for _, d := range ds {
		if d.Failed == "" && !r.dispatch.IsMirror(d.Channel) {
			return false
		}
	}
	return true
}

// StepKey is the idempotency key of an escalation step's notification.
func StepKey(escalationKey string, pos int) string { return fmt.Sprintf("%s#%d", escalationKey, pos) }

// request is the notification a step asks for.
func (r *Runner) request(esc store.Escalation, step policy.Step) deliver.Request {
	title := esc.Title
	switch {
	case isReEscalation(esc.Key):
		title = "acknowledged, still no reply: " + title
	case step.Index > 0:
		title = "still unacknowledged: " + title
	}
	return deliver.Request{
		IdempotencyKey: StepKey(esc.Key, step.Index), Origin: "escalation", Targets: r.targets(esc, step.Target),
		Urgency: step.Urgency, Title: title, Text: esc.Body, Links: esc.Links, ConversationID: esc.ConversationID,
		Step: step.Index, Lenient: true,
		// A conversation's ping may join its recipient's burst; a storm
		// group's is rewritten with its updates, so it keeps its own.
		Coalesce: esc.ConversationID != "" && esc.GroupKey == "",
	}
}

// targets maps a policy target to delivery targets. A team's secondary
// without a known team falls back to the hero: somebody must hear.
func (r *Runner) targets(esc store.Escalation, t policy.Target) []deliver.Target {
	switch t.Kind {
	case policy.Hero:
		if esc.PersonID != "" {
			// A handoff summary is the incoming hero's own, whoever
			// rotation would route a ping to while they are off hours.
			return []deliver.Target{{PersonID: esc.PersonID}}
		}
		return []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}}
	case policy.TeamSecondary:
		if esc.Team == "" {
			r.logger.Warn("team_secondary without an owning team; telling the hero instead", "escalation", esc.ID,
				"conversation", esc.ConversationID)
			return []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}}
		}
		return []deliver.Target{{Role: rotationv1.Role_ROLE_SECONDARY, Team: esc.Team}}
	case policy.Person:
		return []deliver.Target{{PersonID: t.Name}}
	case policy.SlackChannel:
		return []deliver.Target{{SlackChannel: t.Name}}
	case policy.BusinessContacts:
		var out []deliver.Target
		for _, c := range r.policies.Load().BusinessContacts {
			id := c.Email
			if id == "" {
				id = c.Slack
			}
			out = append(out, deliver.Target{Direct: &notify.Recipient{
				PersonID: "contact:" + strings.ToLower(id), Name: c.Name, Email: c.Email, SlackID: c.Slack, Role: "business contact",
			}})
		}
		return out
	}
	r.logger.Error("unknown policy target", "target", t.String(), "escalation", esc.ID)
	return nil
}
