// Package escalate runs escalation policies: an event (a conversation
// opened, a deadline passed, an explicit escalation, a Sentry alert, a
// handoff, a coverage gap) matches a policy (internal/policy), and its
// steps are fired one after the other until someone acknowledges or the
// conversation is answered or closed.
//
// The state is durable in Postgres (internal/store). Firing a step
// resolves its targets through rotation, records the step's notification
// and deliveries and advances the escalation in one transaction, and only
// then sends; a crash re-fires nothing and skips nothing, and the runner's
// Tick locks escalations with FOR UPDATE SKIP LOCKED, so several replicas
// share the work. Time comes from the injected clock.
//
// Steps anchored on a response deadline wait until triage has reported
// that deadline. A step that reached nobody (every delivery failed for
// good, or nobody was on call) makes the next step due at once. Policies
// with a digest collect conversations into one message per interval.
// Updates of an alert group (a Sentry issue's new events) rewrite the
// messages already sent, at most once per RefreshInterval, instead of
// sending new ones. A handoff summary waits for the incoming hero's shift.
//
// The decisions are pure functions, tested without a database: steps.go
// (which step fires when), digest.go (what a digest holds), storm.go (when
// a group's messages are rewritten), handoff.go (how long a summary
// waits). runner.go records and sends what they decide.
package escalate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Dispatcher resolves, records and sends; *deliver.Dispatcher satisfies it.
type Dispatcher interface {
	Prepare(ctx context.Context, req deliver.Request) (store.NewNotification, []store.NewDelivery, error)
	Send(ctx context.Context, notificationID string) error
	Refresh(ctx context.Context, sent []store.Job, text string) int
	IsMirror(channel string) bool
}

var _ Dispatcher = (*deliver.Dispatcher)(nil)

// Config tunes the runner.
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
	// ConsoleURL is the web console's base: a digest with more items than
	// it lists links to the console's queue for the rest.
	ConsoleURL string
	// HandoffWait is how long a handoff summary waits for the incoming
	// hero's shift to start; default 1h.
	HandoffWait time.Duration
	// Batch bounds the escalations, digests and refreshes one Tick
	// handles of each; default 100.
	Batch int
}

// Deps are the runner's collaborators.
type Deps struct {
	Store      *store.Store
	Dispatcher Dispatcher
	Logger     *slog.Logger
	Registry   prometheus.Registerer
	// Clock tells the time steps, digests and refreshes are due by, and
	// paces Run; default the wall clock.
	Clock clock.Clock
}

// Runner runs escalations. Its methods are safe for concurrent use.
type Runner struct {
	cfg Config
	// policies are cfg.Policies until SetPolicies swaps them.
	policies atomic.Pointer[policy.Config]
	store    *store.Store
	dispatch Dispatcher
	logger   *slog.Logger
	clock    clock.Clock
	metrics  *metrics
	wake     chan struct{}
	// unmatched holds the event kinds "no escalation policy matches" was
	// logged for: it is logged once per kind, and counted every time.
	unmatched sync.Map
}

// New returns a Runner.
func New(cfg Config, deps Deps) (*Runner, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("escalate: Store is required")
	case deps.Dispatcher == nil:
		return nil, errors.New("escalate: Dispatcher is required")
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
	if cfg.HandoffWait <= 0 {
		cfg.HandoffWait = time.Hour
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	r := &Runner{cfg: cfg, store: deps.Store, dispatch: deps.Dispatcher, logger: deps.Logger,
		clock: clock.OrReal(deps.Clock), metrics: m, wake: make(chan struct{}, 1)}
	r.policies.Store(cfg.Policies)
	return r, nil
}

// SetPolicies swaps the escalation policies (an organisation file applied
// through rotation): escalations started after it follow p; one under way
// keeps the steps it planned.
func (r *Runner) SetPolicies(p *policy.Config) { r.policies.Store(p) }

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
	// ShiftStarted starts it then if that is before At.
	Hold bool
	// Deadlines are the conversation's deadlines as the event reported
	// them (zero: none): recorded, as Learn does, in the transaction
	// that starts the escalation, or by Learn when it starts none.
	Deadlines store.Deadlines
	// UnlessStopped starts nothing when the conversation was answered or
	// closed at or after At (Outcome.Stopped): the event came late.
	UnlessStopped bool
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
	// Stopped is true when nothing started because the conversation was
	// answered or closed since the event (Trigger.UnlessStopped).
	Stopped bool
}

// Trigger matches t to a policy and starts its escalation (firing what is
// due at once) or adds it to its digest. Notifications fired are sent
// before it returns; a send failure is recorded and retried by the sweeper,
// not returned.
func (r *Runner) Trigger(ctx context.Context, t Trigger) (Outcome, error) {
	if t.Key == "" {
		return Outcome{}, errors.New("escalate: trigger without a key")
	}
	p := r.policies.Load().Match(t.Event)
	if p == nil || p.Digest != nil {
		if err := r.Learn(ctx, t.ConversationID, t.Deadlines); err != nil {
			return Outcome{}, err
		}
		if t.UnlessStopped && t.ConversationID != "" {
			stopped, err := r.store.ConversationStopped(ctx, t.ConversationID, t.At)
			if err != nil || stopped {
				return Outcome{Stopped: stopped}, err
			}
		}
	}
	if p == nil {
		r.metrics.unmatched.WithLabelValues(string(t.Event.Kind)).Inc()
		if _, logged := r.unmatched.LoadOrStore(t.Event.Kind, true); !logged {
			r.logger.Info("no escalation policy matches; nobody is told (logged once per kind, counted in sidekick_notifier_events_unmatched_total)",
				"kind", t.Event.Kind, "tier", t.Event.Tier, "key", t.Key, "conversation", t.ConversationID)
		}
		return Outcome{}, nil
	}
	out := Outcome{Policy: p.ID}
	if p.Digest != nil {
		out.Digest = true
		added, err := r.store.AddDigestItem(ctx, digestItem(t, p, r.cfg.DigestEvery))
		if err != nil {
			return out, err
		}
		if added {
			r.metrics.digestItems.WithLabelValues(p.ID).Inc()
		}
		return out, nil
	}
	ne, err := newEscalation(t, p, r.clock.Now())
	if err != nil {
		return out, err
	}
	ne.Reported, ne.UnlessStopped = t.Deadlines, t.UnlessStopped && t.ConversationID != ""
	esc, created, ids, err := r.store.StartEscalation(ctx, ne, r.clock.Now(), r.fire)
	if err != nil {
		return out, err
	}
	if !created && esc.ID == "" && esc.Status == store.EscalationStopped {
		out.Stopped = true
		return out, nil
	}
	out.Escalation, out.Started = esc, created
	if created {
		r.metrics.started.WithLabelValues(string(t.Event.Kind), p.ID).Inc()
	}
	r.send(ctx, ids)
	if created && t.Group != "" {
		// An update of the group that came before the escalation is due
		// now that its messages are out.
		if _, err := r.fireRefresh(ctx, esc.ID); err != nil {
			return out, err
		}
	}
	return out, nil
}

// newEscalation is the escalation t starts under policy p, with a
// snapshot of p: a restart with another configuration finishes what was
// started as it was planned.
func newEscalation(t Trigger, p *policy.Policy, now time.Time) (store.NewEscalation, error) {
	snapshot, err := json.Marshal(p)
	if err != nil {
		return store.NewEscalation{}, fmt.Errorf("escalate: encode policy %s: %w", p.ID, err)
	}
	return store.NewEscalation{
		Key: t.Key, GroupKey: t.Group, Kind: string(t.Event.Kind), PolicyID: p.ID, Policy: snapshot,
		ConversationID: t.ConversationID, Team: t.Event.Team, Tier: string(t.Event.Tier), Category: t.Event.Category,
		PersonID: t.PersonID, Title: t.Title, Body: t.Text, Links: t.Links, StartedAt: t.At, Held: t.Hold,
		CreatedAt: now, AckTimeout: p.AckTimeout,
	}, nil
}

// send delivers freshly recorded notifications; failures are in the
// delivery log and the sweeper retries them.
func (r *Runner) send(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := r.dispatch.Send(ctx, id); err != nil {
			r.logger.Warn("deliver fired step; the sweeper retries", "notification", id, "error", err)
		}
	}
}

// Tick fires every escalation step due now, sends due digests and storm
// updates, and returns how many steps, digests and updates it handled.
// Run calls it on the clock; tests call it after moving a fake clock.
func (r *Runner) Tick(ctx context.Context) (int, error) {
	handled := 0
	var errs []error
	for range r.cfg.Batch {
		now := r.clock.Now()
		esc, found, ids, err := r.store.FireDue(ctx, now, r.fire)
		if err != nil {
			if ctx.Err() != nil {
				return handled, ctx.Err()
			}
			r.metrics.errors.Inc()
			errs = append(errs, err)
			if !found {
				break
			}
			r.logger.Warn("could not fire escalation step; will retry", "escalation", esc.ID, "error", err,
				"retry_in", r.cfg.RetryDelay)
			if err := r.store.Postpone(ctx, esc.ID, now.Add(r.cfg.RetryDelay), now); err != nil {
				errs = append(errs, err)
				break
			}
			continue
		}
		if !found {
			break
		}
		handled += len(ids)
		r.send(ctx, ids)
	}
	for range r.cfg.Batch {
		found, ids, err := r.reEscalateDue(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return handled, ctx.Err()
			}
			// The timeout stays: the next tick tries again.
			r.metrics.errors.Inc()
			errs = append(errs, err)
			break
		}
		if !found {
			break
		}
		handled += len(ids)
		r.send(ctx, ids)
	}
	for range r.cfg.Batch {
		found, ids, err := r.store.FireDigest(ctx, r.clock.Now(), r.nextDigest, r.digest)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if !found {
			break
		}
		if len(ids) > 0 {
			handled++
			r.send(ctx, ids)
		}
	}
	for range r.cfg.Batch {
		found, err := r.fireRefresh(ctx, "")
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

// Run ticks at once (firing what a previous process left) and then every
// interval of the runner's clock, or sooner when Wake is called, until ctx
// is done.
func (r *Runner) Run(ctx context.Context, interval time.Duration) error {
	for {
		if _, err := r.Tick(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("escalation tick", "error", err)
		}
		if !clock.WaitOrWake(ctx, r.clock, interval, r.wake) {
			return nil
		}
	}
}

// Wake makes Run tick now: a final failure hurried a step.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Learn records a conversation's deadlines and reschedules (and fires, if
// now due) its escalations whose next step waits for one.
func (r *Runner) Learn(ctx context.Context, conversationID string, d store.Deadlines) error {
	changed, ids, err := r.store.LearnDeadlines(ctx, conversationID, d, r.clock.Now())
	if err != nil || !changed {
		return err
	}
	for _, id := range ids {
		_, _, fired, err := r.store.FireEscalation(ctx, id, r.clock.Now(), r.fire)
		if err != nil {
			return err
		}
		r.send(ctx, fired)
	}
	return nil
}

// ForgetDeadlines drops a conversation's deadlines: its response clock
// stopped (answered or closed).
func (r *Runner) ForgetDeadlines(ctx context.Context, conversationID string) error {
	return r.store.ForgetDeadlines(ctx, conversationID)
}

// EscalationOf returns what an explicit escalation from a notification
// builds on: the escalation the notification belongs to, or one made of
// the notification itself; without a notification id, the conversation's
// latest escalation. store.ErrNotFound when there is none.
func (r *Runner) EscalationOf(ctx context.Context, notificationID, conversationID string) (store.Escalation, error) {
	if notificationID == "" {
		return r.store.LatestEscalation(ctx, conversationID)
	}
	n, err := r.store.Notification(ctx, notificationID)
	switch {
	case err != nil:
		return store.Escalation{}, err
	case n.EscalationID != "":
		return r.store.Escalation(ctx, n.EscalationID)
	}
	return store.Escalation{NewEscalation: store.NewEscalation{ConversationID: n.ConversationID, Title: n.Title, Body: n.Body, Links: n.Links}}, nil
}

// CancelUnfired stops the escalation key if it has fired nothing yet; see
// store.CancelUnfired.
func (r *Runner) CancelUnfired(ctx context.Context, key, reason string) (exists, fired bool, err error) {
	return r.store.CancelUnfired(ctx, key, reason, r.clock.Now())
}
