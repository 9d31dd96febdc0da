// Package escalate runs escalation policies: an event (a conversation
// opened, a deadline passed, an explicit escalation, a Sentry alert, a
// handoff, a coverage gap) matches a policy (internal/policy), and its
// steps are fired one after the other until someone acknowledges or the
// conversation is answered or closed.
//
// The state is durable in Postgres (internal/store). Firing a step
// resolves its targets through rotation, records the step's notification
// and deliveries and advances the escalation in one transaction, and only
// then sends; a crash re-fires nothing and skips nothing, and the timer
// loop (Tick) locks escalations with FOR UPDATE SKIP LOCKED, so several
// replicas share the work. Time comes from the injected clock.
//
// Steps anchored on a response deadline wait until triage has reported
// that deadline. A step that reached nobody (every delivery failed for
// good, or nobody was on call) makes the next step due at once. Policies
// with a digest collect conversations into one message per interval.
// Updates of an alert group (a Sentry issue's new events) rewrite the
// messages already sent, at most once per RefreshInterval, instead of
// sending new ones.
package escalate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Deliverer resolves, records and sends; *deliver.Engine satisfies it.
type Deliverer interface {
	Prepare(ctx context.Context, req deliver.Request) (store.NewNotification, []store.NewDelivery, error)
	DeliverNotification(ctx context.Context, notificationID string) error
	Refresh(ctx context.Context, sent []store.Job, text string) int
	IsMirror(channel string) bool
}

var _ Deliverer = (*deliver.Engine)(nil)

// Config tunes the engine.
type Config struct {
	// Policies are the escalation policies; default policy.Default().
	Policies *policy.Config
	// RetryDelay is how long an escalation whose step could not be fired
	// (rotation unreachable) waits before the next try; default 30s.
	RetryDelay time.Duration
	// RefreshInterval is the least time between two rewrites of an alert
	// group's messages; default 1m.
	RefreshInterval time.Duration
	// DigestEvery, when set, replaces every digest policy's interval.
	DigestEvery time.Duration
	// Batch bounds the escalations, digests and refreshes one Tick
	// handles of each; default 100.
	Batch int
}

// Deps are the engine's collaborators.
type Deps struct {
	Store    *store.Store
	Deliver  Deliverer
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Now      func() time.Time
}

// Engine runs escalations. Its methods are safe for concurrent use.
type Engine struct {
	cfg     Config
	store   *store.Store
	deliver Deliverer
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics
}

// New returns an Engine.
func New(cfg Config, d Deps) (*Engine, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("escalate: Store is required")
	case d.Deliver == nil:
		return nil, errors.New("escalate: Deliver is required")
	}
	if cfg.Policies == nil {
		cfg.Policies = policy.Default()
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = 30 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, store: d.Store, deliver: d.Deliver, logger: d.Logger, now: d.Now, metrics: m}, nil
}

// Trigger is an event that may start an escalation.
type Trigger struct {
	// Key names the event: triggering twice with one key starts one
	// escalation.
	Key string
	// Group, when set, allows one open escalation per group (storm
	// protection): "sentry/<conversation>".
	Group string
	// Event selects the policy.
	Event          policy.Event
	ConversationID string
	// PersonID is the incoming hero of a handoff.
	PersonID string
	Title    string
	Text     string
	Links    []notify.Link
	// At is when the event happened; step durations count from it.
	At time.Time
	// Hold marks a handoff waiting for the incoming hero's shift:
	// ReleaseHandoffs starts it then if that is before At.
	Hold bool
}

// Outcome says what a trigger did.
type Outcome struct {
	// Policy is the id of the policy that matched; empty when none did.
	Policy string
	// Digest is true when the event went into a digest.
	Digest bool
	// Escalation is the escalation started, or the one already open for
	// the key or group (Started false).
	Escalation store.Escalation
	Started    bool
}

// Trigger matches t to a policy and starts its escalation (firing what is
// due at once) or adds it to its digest. Notifications fired are sent
// before it returns; a send failure is recorded and retried by the sweeper,
// not returned.
func (e *Engine) Trigger(ctx context.Context, t Trigger) (Outcome, error) {
	if t.Key == "" {
		return Outcome{}, errors.New("escalate: trigger without a key")
	}
	p := e.cfg.Policies.Match(t.Event)
	if p == nil {
		e.metrics.unmatched.WithLabelValues(string(t.Event.Kind)).Inc()
		e.logger.Info("no escalation policy matches; nobody is told", "kind", t.Event.Kind, "tier", t.Event.Tier,
			"key", t.Key, "conversation", t.ConversationID)
		return Outcome{}, nil
	}
	out := Outcome{Policy: p.ID}
	if p.Digest != nil {
		out.Digest = true
		every := p.Digest.Every
		if e.cfg.DigestEvery > 0 {
			every = e.cfg.DigestEvery
		}
		link := ""
		if len(t.Links) > 0 {
			link = t.Links[0].URL
		}
		title := t.Title
		if first, _, _ := strings.Cut(strings.TrimSpace(t.Text), "\n"); first != "" {
			title += ": " + first
		}
		added, err := e.store.AddDigestItem(ctx, store.DigestItem{
			Key: t.Key, PolicyID: p.ID, Target: p.Digest.To.String(), DueAt: policy.Digest{Every: every}.Next(t.At),
			ConversationID: t.ConversationID, Title: title, Link: link, AddedAt: t.At,
		})
		if err != nil {
			return out, err
		}
		if added {
			e.metrics.digestItems.WithLabelValues(p.ID).Inc()
		}
		return out, nil
	}
	snapshot, err := json.Marshal(p)
	if err != nil {
		return out, fmt.Errorf("escalate: encode policy %s: %w", p.ID, err)
	}
	esc, created, ids, err := e.store.StartEscalation(ctx, store.NewEscalation{
		Key: t.Key, GroupKey: t.Group, Kind: string(t.Event.Kind), PolicyID: p.ID, Policy: snapshot,
		ConversationID: t.ConversationID, Team: t.Event.Team, Tier: string(t.Event.Tier), Category: t.Event.Category,
		PersonID: t.PersonID, Title: t.Title, Body: t.Text, Links: t.Links, StartedAt: t.At, Held: t.Hold,
		CreatedAt: e.now(),
	}, e.now(), e.fire)
	if err != nil {
		return out, err
	}
	out.Escalation, out.Started = esc, created
	if created {
		e.metrics.started.WithLabelValues(string(t.Event.Kind), p.ID).Inc()
	}
	e.send(ctx, ids)
	return out, nil
}

// send delivers freshly recorded notifications; failures are in the
// delivery log and the sweeper retries them.
func (e *Engine) send(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := e.deliver.DeliverNotification(ctx, id); err != nil {
			e.logger.Warn("deliver fired step; the sweeper retries", "notification", id, "error", err)
		}
	}
}

// Tick fires every escalation step due now, sends due digests and storm
// updates, and returns how many steps, digests and updates it handled.
// Run calls it on a timer; tests call it after moving the fake clock.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	handled := 0
	var errs []error
	for range e.cfg.Batch {
		now := e.now()
		esc, found, ids, err := e.store.FireDue(ctx, now, e.fire)
		if err != nil {
			if ctx.Err() != nil {
				return handled, ctx.Err()
			}
			e.metrics.errors.Inc()
			errs = append(errs, err)
			if !found {
				break
			}
			e.logger.Warn("could not fire escalation step; will retry", "escalation", esc.ID, "error", err,
				"retry_in", e.cfg.RetryDelay)
			if err := e.store.Postpone(ctx, esc.ID, now.Add(e.cfg.RetryDelay), now); err != nil {
				errs = append(errs, err)
				break
			}
			continue
		}
		if !found {
			break
		}
		handled += len(ids)
		e.send(ctx, ids)
	}
	for range e.cfg.Batch {
		found, id, err := e.store.FireDigest(ctx, e.now(), e.digest)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if !found {
			break
		}
		if id != "" {
			handled++
			e.send(ctx, []string{id})
		}
	}
	for range e.cfg.Batch {
		found, err := e.store.FireRefresh(ctx, "", e.now(), e.refresh)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if !found {
			break
		}
		handled++
	}
	return handled, errors.Join(errs...)
}

// Learn records a conversation's deadlines and reschedules (and fires, if
// now due) its escalations whose next step waits for one.
func (e *Engine) Learn(ctx context.Context, conversationID string, d store.Deadlines) error {
	changed, err := e.store.LearnDeadlines(ctx, conversationID, d, e.now())
	if err != nil || !changed {
		return err
	}
	ids, err := e.store.ActiveEscalationIDs(ctx, conversationID)
	if err != nil {
		return err
	}
	for _, id := range ids {
		_, _, fired, err := e.store.FireEscalation(ctx, id, e.now(), e.fire)
		if err != nil {
			return err
		}
		e.send(ctx, fired)
	}
	return nil
}

// ReleaseHandoffs starts the handoffs held for personID, whose Support
// Hero shift started at start.
func (e *Engine) ReleaseHandoffs(ctx context.Context, personID string, start time.Time) error {
	ids, err := e.store.ReleaseHandoffs(ctx, personID, start, e.now(), e.fire)
	if err != nil {
		return err
	}
	e.send(ctx, ids)
	return nil
}

// Update records text as the latest state of an alert group; the messages
// already sent for it are rewritten now, or when RefreshInterval since the
// last rewrite has passed (by Tick). It reports whether the group has an
// open escalation.
func (e *Engine) Update(ctx context.Context, group, text string, at time.Time) (bool, error) {
	id, due, err := e.store.QueueRefresh(ctx, group, text, at, e.now(), e.cfg.RefreshInterval)
	if err != nil || id == "" {
		return false, err
	}
	if due {
		if _, err := e.store.FireRefresh(ctx, id, e.now(), e.refresh); err != nil {
			return true, err
		}
	}
	return true, nil
}

func (e *Engine) refresh(ctx context.Context, esc store.Escalation, sent []store.Sent) error {
	e.deliver.Refresh(ctx, sent, esc.RefreshText)
	return nil
}

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

// fire is the store.FireFunc: it fires every step of esc due now and says
// when the next one is due.
func (e *Engine) fire(ctx context.Context, esc store.Escalation) (store.Fired, error) {
	var p policy.Policy
	if err := json.Unmarshal(esc.Policy, &p); err != nil {
		e.logger.Error("escalation policy snapshot unreadable; ending the escalation", "escalation", esc.ID, "error", err)
		return store.Fired{Status: store.EscalationDone, NextStep: esc.NextStep}, nil
	}
	now := e.now()
	deadlines := deadlineMap(esc.Deadlines)
	out := store.Fired{Status: store.EscalationActive}
	start := esc.StartedAt
	nobody := false
	for pos := esc.NextStep; ; pos++ {
		step, st := locate(&p, start, deadlines, pos)
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
		n, ds, err := e.deliver.Prepare(ctx, e.request(esc, step))
		if err != nil {
			return store.Fired{}, fmt.Errorf("step %d of %s: %w", pos, esc.PolicyID, err)
		}
		out.Steps = append(out.Steps, store.FiredStep{Position: pos, Notification: n, Deliveries: ds})
		e.metrics.steps.WithLabelValues(esc.Kind, n.Urgency.String()).Inc()
		nobody = e.reachedNobody(ds)
		if nobody {
			e.logger.Warn("escalation step reaches nobody; the next step is due now", "escalation", esc.ID, "step", pos,
				"policy", esc.PolicyID)
		}
	}
}

// reachedNobody reports whether no delivery of a step can reach its
// recipient (nobody on call, no channel, unknown person).
func (e *Engine) reachedNobody(ds []store.NewDelivery) bool {
	for _, d := range ds {
		if d.Failed == "" && !e.deliver.IsMirror(d.Channel) {
			return false
		}
	}
	return true
}

// StepKey is the idempotency key of an escalation step's notification.
func StepKey(escalationKey string, pos int) string { return fmt.Sprintf("%s#%d", escalationKey, pos) }

// request is the notification a step asks for.
func (e *Engine) request(esc store.Escalation, step policy.Step) deliver.Request {
	title := esc.Title
	if step.Index > 0 {
		title = "still unacknowledged: " + title
	}
	return deliver.Request{
		IdempotencyKey: StepKey(esc.Key, step.Index), Origin: "escalation", Targets: e.targets(esc, step.Target),
		Urgency: step.Urgency, Title: title, Text: esc.Body, Links: esc.Links, ConversationID: esc.ConversationID,
		Step: step.Index, Lenient: true,
	}
}

// targets maps a policy target to delivery targets. A team's secondary
// without a known team falls back to the hero: somebody must hear.
func (e *Engine) targets(esc store.Escalation, t policy.Target) []deliver.Target {
	switch t.Kind {
	case policy.Hero:
		return []deliver.Target{{Role: rotationv1.Role_ROLE_HERO}}
	case policy.TeamSecondary:
		if esc.Team == "" {
			e.logger.Warn("team_secondary without an owning team; telling the hero instead", "escalation", esc.ID,
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
		for _, c := range e.cfg.Policies.BusinessContacts {
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
	e.logger.Error("unknown policy target", "target", t.String(), "escalation", esc.ID)
	return nil
}

// digest is the store.DigestFunc: one notification listing the items.
func (e *Engine) digest(ctx context.Context, policyID, target string, due time.Time, items []store.DigestItem) (store.FiredStep, error) {
	t, err := policy.ParseTarget(target)
	if err != nil {
		return store.FiredStep{}, fmt.Errorf("digest %s: %w", policyID, err)
	}
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "• %s", it.Title)
		if it.Link != "" {
			fmt.Fprintf(&b, " — %s", it.Link)
		}
		b.WriteString("\n")
	}
	noun := "conversations"
	if len(items) == 1 {
		noun = "conversation"
	}
	key := fmt.Sprintf("digest/%s/%s/%d", policyID, target, due.Unix())
	n, ds, err := e.deliver.Prepare(ctx, deliver.Request{
		IdempotencyKey: key, Origin: "digest", Targets: e.targets(store.Escalation{ID: key}, t), Urgency: notify.Ping,
		Title: fmt.Sprintf("digest: %d new %s", len(items), noun), Text: strings.TrimSpace(b.String()), Lenient: true,
	})
	if err != nil {
		return store.FiredStep{}, fmt.Errorf("digest %s: %w", policyID, err)
	}
	e.metrics.digests.WithLabelValues(policyID).Inc()
	return store.FiredStep{Notification: n, Deliveries: ds}, nil
}
