// Package deliver sends notifications. Its Dispatcher resolves recipients
// through rotation, records a notification and its deliveries before
// sending anything, sends each delivery through a channel, records the
// outcome with its support.notify event in one transaction, retries
// failures with exponential backoff and jitter, holds back messages beyond
// a recipient's rate limit, dead-letters final failures and resumes
// deliveries a crash left behind (the sweeper). The events go out through
// the service's outbox (platform/outbox).
//
// A recipient gets one message through the first chat channel that can
// reach them; a page also goes to the pager (PagerDuty) when one is
// configured, and every message to the mirrors (webhooks).
//
// Files: dispatcher.go plans a notification's deliveries; send.go makes
// one attempt and records it; ack.go acknowledges and stops; sweeper.go
// sends what is due on the clock; logevents.go builds the support.notify
// events and dead letters.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Rotation answers who is on call and who people are;
// rotationv1.RotationServiceClient satisfies it.
type Rotation interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// Reacher is implemented by channels that cannot reach everyone (Slack
// needs a Slack id). Channels without it reach every recipient.
type Reacher interface {
	CanReach(r notify.Recipient) bool
}

// ErrUnknownPerson is returned when a person recipient is not in rotation's
// directory.
var ErrUnknownPerson = errors.New("unknown person")

// ErrNoRecipients is returned when a request names no recipient.
var ErrNoRecipients = errors.New("no recipients")

// Config tunes delivery.
type Config struct {
	// MaxAttempts is how many times a delivery is tried before it fails for
	// good; default 6.
	MaxAttempts int
	// RetryBase is the delay after the first failed attempt; each further
	// failure doubles it, up to RetryMax. Defaults 10s and 15m.
	RetryBase time.Duration
	RetryMax  time.Duration
	// Jitter is the fraction of each delay drawn at random, so that
	// deliveries failing together do not retry together: the delay is
	// d × (1 − Jitter × r), r uniform in [0, 1). Default 0.5; negative:
	// none. A channel's Retry-After is a floor on top.
	Jitter float64
	// Lease is how long a claimed delivery stays with its sender before
	// another worker may resume it; default 20s. A live sender renews it
	// every quarter lease while the delivery waits or is being sent, so it
	// need not cover SendTimeout: it bounds how long a crashed sender's
	// deliveries wait.
	Lease time.Duration
	// SendTimeout bounds one channel call; default 30s.
	SendTimeout time.Duration
	// Batch is how many due deliveries one sweep claims; default 50.
	Batch int
	// RateLimit is how many pings one recipient gets through one channel
	// within RateWindow; more are held back until the window allows them.
	// Pages are never held back. Default 20 per 10m; negative: no limit.
	RateLimit  int
	RateWindow time.Duration
	// OpsChannel is the Slack channel told when a message for a role
	// reaches nobody (everybody in rotation's backup chain is away), so
	// nobody is never silence; empty: only the log says so.
	OpsChannel string
	// ContactRules are people's own notification rules by person id: a
	// person with rules for a message's urgency is told through each
	// rule's channel after its delay instead of the first channel that
	// reaches them (and the pager for a page); see planRules.
	ContactRules map[string][]notify.ContactRule
	// BurstWindow, when positive, coalesces the pings about conversations
	// that reach one recipient through a channel that can rewrite its
	// messages (Slack): those within BurstWindow of a burst's first post
	// are added to its message (burst.go). Zero: one message each.
	BurstWindow time.Duration
	// BurstEvery is the least time between two rewrites of a burst's
	// message (Slack allows chat.update about once a second); default 1s.
	BurstEvery time.Duration
	// BurstLimit bounds the members one rewrite adds; default 1000.
	BurstLimit int
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 10 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 15 * time.Minute
	}
	if c.RetryMax < c.RetryBase {
		c.RetryMax = c.RetryBase
	}
	switch {
	case c.Jitter == 0:
		c.Jitter = 0.5
	case c.Jitter < 0:
		c.Jitter = 0
	case c.Jitter > 1:
		c.Jitter = 1
	}
	if c.Lease <= 0 {
		c.Lease = 20 * time.Second
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 50
	}
	if c.RateLimit == 0 {
		c.RateLimit = 20
	}
	if c.RateWindow <= 0 {
		c.RateWindow = 10 * time.Minute
	}
	if c.BurstEvery <= 0 {
		c.BurstEvery = time.Second
	}
	if c.BurstLimit <= 0 {
		c.BurstLimit = 1000
	}
	return c
}

// Backoff returns the delay after the given failed attempt (from 1)
// before jitter: RetryBase doubled per further attempt, capped at RetryMax.
func (c Config) Backoff(attempt int) time.Duration {
	c = c.withDefaults()
	d := c.RetryBase
	for i := 1; i < attempt && d < c.RetryMax; i++ {
		d *= 2
	}
	return min(d, c.RetryMax)
}

// Dispatcher records and sends notifications. Its methods are safe for
// concurrent use.
type Dispatcher struct {
	cfg Config
	// contactRules are cfg.ContactRules until SetContactRules swaps them.
	contactRules atomic.Pointer[map[string][]notify.ContactRule]
	store        *store.Store
	rotation     Rotation
	channels     []notify.Channel
	pager        notify.Channel
	mirrors      []notify.Channel
	byName       map[string]notify.Channel
	extra        map[string]bool
	logger       *slog.Logger
	clock        clock.Clock
	rand         func() float64
	hurried      func()
	metrics      *metrics
	bursts       burstWorkers
}

// Deps are the dispatcher's collaborators.
type Deps struct {
	Store    *store.Store
	Rotation Rotation
	// Channels in order of preference: a recipient gets the first channel
	// that can reach them.
	Channels []notify.Channel
	// Pager, when set, also gets every page (PagerDuty).
	Pager notify.Channel
	// Mirrors also get every message (webhooks).
	Mirrors  []notify.Channel
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Clock tells the time of attempts, leases and retries, and paces the
	// sweeper; default the wall clock.
	Clock clock.Clock
	// Rand draws the jitter, uniform in [0, 1); default math/rand/v2.
	Rand func() float64
	// Hurried is called when a final failure made an escalation's next
	// step due at once, to wake the escalation runner.
	Hurried func()
}

// New returns a Dispatcher.
func New(cfg Config, deps Deps) (*Dispatcher, error) {
	switch {
	case deps.Store == nil:
		return nil, errors.New("deliver: Store is required")
	case deps.Rotation == nil:
		return nil, errors.New("deliver: Rotation is required")
	case len(deps.Channels) == 0 && deps.Pager == nil && len(deps.Mirrors) == 0:
		return nil, errors.New("deliver: at least one channel is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Rand == nil {
		deps.Rand = rand.Float64
	}
	if deps.Hurried == nil {
		deps.Hurried = func() {}
	}
	m, err := newMetrics(deps.Registry)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]notify.Channel, len(deps.Channels)+len(deps.Mirrors)+1)
	extra := map[string]bool{}
	for _, c := range deps.Channels {
		byName[c.Name()] = c
	}
	if deps.Pager != nil {
		byName[deps.Pager.Name()] = deps.Pager
		extra[deps.Pager.Name()] = true
	}
	for _, c := range deps.Mirrors {
		byName[c.Name()] = c
		extra[c.Name()] = true
	}
	d := &Dispatcher{
		cfg: cfg.withDefaults(), store: deps.Store, rotation: deps.Rotation, channels: deps.Channels, pager: deps.Pager,
		mirrors: deps.Mirrors, byName: byName, extra: extra, logger: deps.Logger, clock: clock.OrReal(deps.Clock),
		rand: deps.Rand, hurried: deps.Hurried, metrics: m,
	}
	d.contactRules.Store(&cfg.ContactRules)
	return d, nil
}

// SetContactRules swaps people's contact rules (an organisation file
// applied through rotation); notifications recorded after it follow them.
func (d *Dispatcher) SetContactRules(rules map[string][]notify.ContactRule) {
	d.contactRules.Store(&rules)
}

// Target is a requested recipient: a person, a role resolved through
// rotation when the notification is recorded, a Slack channel, or a
// recipient given in full (a business contact).
type Target struct {
	PersonID     string
	Role         rotationv1.Role
	Team         string
	SlackChannel string
	Direct       *notify.Recipient
}

// Request asks for a notification.
type Request struct {
	// IdempotencyKey: a second request with the same key records and sends
	// nothing new.
	IdempotencyKey string
	// Origin is "conversation" or "grpc".
	Origin         string
	Targets        []Target
	Urgency        notify.Urgency
	Title          string
	Text           string
	Links          []notify.Link
	ConversationID string
	// Step is the escalation step; part of each delivery's dedup key.
	Step int
	// Lenient records a person rotation does not know as a failed
	// delivery instead of failing the request (policies name people).
	Lenient bool
	// Coalesce lets a ping be added to a burst of its recipient's
	// (Config.BurstWindow): a conversation's notification that lists
	// well in one line.
	Coalesce bool
	// Test sends to each recipient at once through every channel of their
	// contact rules, or without rules every channel that can reach them,
	// and to no mirror: `sidekick notify test` (see planTest).
	Test bool
}

// Notify records the notification for req unless its key was seen, then
// sends its due deliveries. created is false for a repeated key; the
// deliveries of the existing notification that are still due (a crash
// before sending) are sent, nothing already sent is sent again.
func (d *Dispatcher) Notify(ctx context.Context, req Request) (store.Notification, bool, error) {
	if req.IdempotencyKey == "" {
		return store.Notification{}, false, errors.New("notify: idempotency key is required")
	}
	n, err := d.store.NotificationByKey(ctx, req.IdempotencyKey)
	created := false
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		if len(req.Targets) == 0 {
			return store.Notification{}, false, ErrNoRecipients
		}
		nn, ds, err := d.Prepare(ctx, req)
		if err != nil {
			return store.Notification{}, false, err
		}
		n, created, err = d.store.CreateNotification(ctx, nn, ds)
		if err != nil {
			return store.Notification{}, false, err
		}
	default:
		return store.Notification{}, false, err
	}
	if err := d.Send(ctx, n.ID); err != nil {
		return n, created, err
	}
	return n, created, nil
}

// Prepare resolves req's targets as of now and plans its deliveries,
// without recording anything: the caller records them (with an escalation
// step, say) before anything is sent.
func (d *Dispatcher) Prepare(ctx context.Context, req Request) (store.NewNotification, []store.NewDelivery, error) {
	recipients, waits, failed, err := d.resolve(ctx, req.Targets, req.Lenient, req.Urgency)
	if err != nil {
		return store.NewNotification{}, nil, err
	}
	if len(recipients) == 0 && len(failed) == 0 {
		d.logger.Warn("nobody to notify: every target resolved to nobody (a coverage gap)",
			"key", req.IdempotencyKey, "conversation", req.ConversationID, "ops_channel", d.cfg.OpsChannel)
		if d.cfg.OpsChannel != "" && len(req.Targets) > 0 {
			recipients = append(recipients, notify.Recipient{SlackChannel: d.cfg.OpsChannel, Role: "ops: nobody on call can receive this"})
		}
	}
	n := store.NewNotification{
		IdempotencyKey: req.IdempotencyKey, Origin: req.Origin, Urgency: req.Urgency,
		Title: req.Title, Body: req.Text, Links: req.Links, ConversationID: req.ConversationID,
		CreatedAt: d.clock.Now(),
	}
	ds := d.plan(req, recipients, waits)
	for _, f := range failed {
		ds = append(ds, store.NewDelivery{
			DedupKey: DedupKey(req.IdempotencyKey, "person:"+f, req.Step), Step: req.Step,
			Recipient: notify.Recipient{PersonID: f}, Channel: "none", Failed: fmt.Sprintf("person %q: %v", f, ErrUnknownPerson),
		})
	}
	return n, ds, nil
}

// plan picks a channel for each recipient and names each delivery: the
// first chat channel that can reach them, plus the pager for a page and
// every mirror.
//
// A recipient in waits (a ping waiting for the person's next working
// hour) has every delivery delayed by that much more.
func (d *Dispatcher) plan(req Request, recipients []notify.Recipient, waits map[string]time.Duration) []store.NewDelivery {
	ds := make([]store.NewDelivery, 0, len(recipients))
	seen := map[string]bool{}
	var wait time.Duration
	add := func(nd store.NewDelivery) {
		if !seen[nd.DedupKey] {
			seen[nd.DedupKey] = true
			nd.After += wait
			ds = append(ds, nd)
		}
	}
	for _, r := range recipients {
		key := DedupKey(req.IdempotencyKey, recipientKey(r), req.Step)
		wait = waits[recipientKey(r)]
		if req.Test {
			d.planTest(req, r, key, add)
			continue
		}
		if d.planRules(req, r, key, add) {
			d.planMirrors(req, r, key, add)
			continue
		}
		nd := store.NewDelivery{DedupKey: key, Step: req.Step, Recipient: r}
		paged := req.Urgency == notify.Page && d.pager != nil && canReach(d.pager, r)
		if c := d.channelFor(r); c != nil {
			nd.Channel = c.Name()
			if _, ok := c.(notify.Coalescer); ok && req.Coalesce && req.Urgency == notify.Ping && d.cfg.BurstWindow > 0 {
				nd.BurstKey = c.Name() + "|" + recipientKey(r)
			}
			add(nd)
		} else if !paged {
			nd.Channel = "none"
			nd.Failed = fmt.Sprintf("no configured channel can reach %s", r.Display())
			add(nd)
		}
		if paged {
			add(store.NewDelivery{DedupKey: key + "|" + d.pager.Name(), Step: req.Step, Recipient: r, Channel: d.pager.Name()})
		}
		d.planMirrors(req, r, key, add)
	}
	return ds
}

// planMirrors adds a copy of r's message for every mirror (webhook).
func (d *Dispatcher) planMirrors(req Request, r notify.Recipient, key string, add func(store.NewDelivery)) {
	for _, m := range d.mirrors {
		if canReach(m, r) {
			add(store.NewDelivery{DedupKey: key + "|" + m.Name(), Step: req.Step, Recipient: r, Channel: m.Name()})
		}
	}
}

// planTest adds a delivery at once through each channel r's contact
// rules name (whatever their delay and urgency), or without rules through
// every channel that can reach r (the chat channels and the pager), so a
// test shows what each of r's ways of being told answers. A channel that
// is not configured or cannot reach r is recorded as failed with the
// reason, as planRules does; mirrors get nothing.
func (d *Dispatcher) planTest(req Request, r notify.Recipient, key string, add func(store.NewDelivery)) {
	var names []string
	for _, cr := range (*d.contactRules.Load())[r.PersonID] {
		if !slices.Contains(names, cr.Channel) {
			names = append(names, cr.Channel)
		}
	}
	fromRules := len(names) > 0
	if !fromRules {
		for _, c := range d.channels {
			names = append(names, c.Name())
		}
		if d.pager != nil {
			names = append(names, d.pager.Name())
		}
	}
	for _, name := range names {
		nd := store.NewDelivery{DedupKey: key + "|test:" + name, Step: req.Step, Recipient: r, Channel: name}
		c, ok := d.byName[name]
		switch {
		case !ok:
			nd.Failed = fmt.Sprintf("a contact rule names %s, which is not configured", name)
		case !canReach(c, r) && fromRules:
			nd.Failed = fmt.Sprintf("a contact rule names %s, which cannot reach %s", name, r.Display())
		case !canReach(c, r):
			continue // not one of r's ways of being told
		}
		add(nd)
	}
}

// planRules adds a delivery for each of r's contact rules that applies
// to the message's urgency, due the rule's delay after now: an
// acknowledgement, an answer or a close before then cancels the later
// ones. A rule whose channel this notifier does not have, or that cannot
// reach r (no Slack id), is recorded as failed with the reason, so the
// delivery log shows it. It reports whether any rule can be sent; when
// none can (or r has no rules for this urgency) the caller tells r the
// default way, so a broken rule never leaves somebody untold.
func (d *Dispatcher) planRules(req Request, r notify.Recipient, key string, add func(store.NewDelivery)) bool {
	rules := (*d.contactRules.Load())[r.PersonID]
	if r.PersonID == "" || len(rules) == 0 {
		return false
	}
	var planned []store.NewDelivery
	usable := false
	for i, cr := range rules {
		if !cr.Applies(req.Urgency) {
			continue
		}
		nd := store.NewDelivery{
			DedupKey: fmt.Sprintf("%s|rule%d:%s", key, i+1, cr.Channel), Step: req.Step, Recipient: r,
			Channel: cr.Channel, After: cr.After,
		}
		switch c, ok := d.byName[cr.Channel]; {
		case !ok:
			nd.Failed = fmt.Sprintf("contact rule %d (%s): the %s channel is not configured", i+1, cr, cr.Channel)
		case !canReach(c, r):
			nd.Failed = fmt.Sprintf("contact rule %d (%s): %s cannot reach %s", i+1, cr, cr.Channel, r.Display())
		default:
			usable = true
		}
		planned = append(planned, nd)
	}
	for _, nd := range planned {
		add(nd)
	}
	if len(planned) > 0 && !usable {
		d.logger.Warn("no contact rule of this person can be sent; telling them the default way",
			"person", r.PersonID, "urgency", req.Urgency.String(), "key", req.IdempotencyKey)
	}
	return usable
}

func canReach(c notify.Channel, r notify.Recipient) bool {
	rc, ok := c.(Reacher)
	return !ok || rc.CanReach(r)
}

// DedupKey is a delivery's idempotency key: (notification key, recipient,
// step).
func DedupKey(notificationKey, recipient string, step int) string {
	return fmt.Sprintf("%s|%s|%d", notificationKey, recipient, step)
}

func recipientKey(r notify.Recipient) string {
	if r.PersonID != "" {
		return "person:" + r.PersonID
	}
	return "slack:" + r.SlackChannel
}

func (d *Dispatcher) channelFor(r notify.Recipient) notify.Channel {
	for _, c := range d.channels {
		if canReach(c, r) {
			return c
		}
	}
	return nil
}

// IsMirror reports whether channel is a pager or mirror, which copies
// messages rather than reaching people by itself.
func (d *Dispatcher) IsMirror(channel string) bool {
	return d.extra[channel] && (d.pager == nil || channel != d.pager.Name())
}

// resolve turns targets into recipients as of now, a role's by urgency
// (see onCallRecipients). Leniently, people
// rotation does not know are returned in unknown instead of failing.
//
// waits holds, by recipientKey, how long a role's ping waits for its
// person's next working hour (rotation's low route has nobody at work
// now, and says until when).
func (d *Dispatcher) resolve(ctx context.Context, targets []Target, lenient bool, urgency notify.Urgency) (out []notify.Recipient, waits map[string]time.Duration, unknown []string, err error) {
	var people map[string]*rotationv1.Person
	for _, t := range targets {
		switch {
		case t.Direct != nil:
			out = append(out, *t.Direct)
		case t.PersonID != "":
			if people == nil {
				resp, err := d.rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
				if err != nil {
					return nil, nil, nil, fmt.Errorf("resolve person %s: list people: %w", t.PersonID, err)
				}
				people = make(map[string]*rotationv1.Person, len(resp.GetPeople()))
				for _, p := range resp.GetPeople() {
					people[p.GetId()] = p
				}
			}
			p, ok := people[t.PersonID]
			if !ok && lenient {
				d.logger.Error("a policy names a person rotation does not know", "person", t.PersonID)
				unknown = append(unknown, t.PersonID)
				continue
			}
			if !ok {
				return nil, nil, nil, fmt.Errorf("resolve person %s: %w", t.PersonID, ErrUnknownPerson)
			}
			out = append(out, recipient(p, ""))
		case t.SlackChannel != "":
			out = append(out, notify.Recipient{SlackChannel: t.SlackChannel})
		case t.Role != rotationv1.Role_ROLE_UNSPECIFIED:
			resp, err := d.rotation.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{
				Role: t.Role, Team: t.Team, At: timestamppb.New(d.clock.Now()),
			})
			if err != nil {
				return nil, nil, nil, fmt.Errorf("resolve %s: who is on call: %w", roleLabel(t.Role, t.Team), err)
			}
			label := roleLabel(t.Role, t.Team)
			// Whoever rotation says receives at this urgency: never the
			// person on time off, a catcher at night for a ping.
			now := d.clock.Now()
			rs, until, why := onCallRecipients(resp, label, urgency, now)
			if len(rs) > 0 && until.After(now) {
				if waits == nil {
					waits = map[string]time.Duration{}
				}
				waits[recipientKey(rs[0])] = until.Sub(now)
			}
			if len(rs) == 0 {
				d.logger.Warn("nobody on call", "role", label, "reason", why)
			} else if why != "" {
				d.logger.Info("on call", "role", label, "urgency", urgency.String(), "why", why)
			}
			out = append(out, rs...)
		default:
			return nil, nil, nil, errors.New("resolve: empty recipient")
		}
	}
	return out, waits, unknown, nil
}

func recipient(p *rotationv1.Person, role string) notify.Recipient {
	return notify.Recipient{PersonID: p.GetId(), Name: p.GetName(), Email: p.GetEmail(), SlackID: p.GetSlackId(), Role: role}
}

func roleLabel(r rotationv1.Role, team string) string {
	switch r {
	case rotationv1.Role_ROLE_HERO:
		return "Support Hero"
	case rotationv1.Role_ROLE_SECONDARY:
		if team != "" {
			return "secondary on-call, " + team
		}
		return "secondary on-call"
	default:
		return "on call"
	}
}
