// Package deliver is the notifier's engine: it resolves recipients through
// rotation, records a notification and its deliveries before sending
// anything, sends each delivery through a channel, records the outcome with
// its support.notify event in one transaction, retries failures with
// exponential backoff and jitter, holds back messages beyond a recipient's
// rate limit, dead-letters final failures, resumes deliveries a crash left
// behind, and relays the events to JetStream.
//
// A recipient gets one message through the first chat channel that can
// reach them; a page also goes to the pager (PagerDuty) when one is
// configured, and every message to the mirrors (webhooks).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Rotation answers who is on call and who people are;
// rotationv1.RotationServiceClient satisfies it.
type Rotation interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// Publisher publishes events; *bus.Publisher satisfies it.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
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
	// another worker may resume it; default 2m. Keep it well above
	// SendTimeout.
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
		c.Lease = 2 * time.Minute
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

// Engine delivers notifications. Its methods are safe for concurrent use.
type Engine struct {
	cfg      Config
	store    *store.Store
	rotation Rotation
	channels []notify.Channel
	pager    notify.Channel
	mirrors  []notify.Channel
	byName   map[string]notify.Channel
	extra    map[string]bool
	pub      Publisher
	logger   *slog.Logger
	now      func() time.Time
	rand     func() float64
	hurried  func()
	metrics  *metrics
	kick     chan struct{}
}

// Deps are the engine's collaborators.
type Deps struct {
	Store    *store.Store
	Rotation Rotation
	// Channels in order of preference: a recipient gets the first channel
	// that can reach them.
	Channels []notify.Channel
	// Pager, when set, also gets every page (PagerDuty).
	Pager notify.Channel
	// Mirrors also get every message (webhooks).
	Mirrors   []notify.Channel
	Publisher Publisher
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Now       func() time.Time
	// Rand draws the jitter, uniform in [0, 1); default math/rand/v2.
	Rand func() float64
	// Hurried is called when a final failure made an escalation's next
	// step due at once, to wake the escalation timer.
	Hurried func()
}

// New returns an Engine.
func New(cfg Config, d Deps) (*Engine, error) {
	switch {
	case d.Store == nil:
		return nil, errors.New("deliver: Store is required")
	case d.Rotation == nil:
		return nil, errors.New("deliver: Rotation is required")
	case d.Publisher == nil:
		return nil, errors.New("deliver: Publisher is required")
	case len(d.Channels) == 0 && d.Pager == nil && len(d.Mirrors) == 0:
		return nil, errors.New("deliver: at least one channel is required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.Float64
	}
	if d.Hurried == nil {
		d.Hurried = func() {}
	}
	m, err := newMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]notify.Channel, len(d.Channels)+len(d.Mirrors)+1)
	extra := map[string]bool{}
	for _, c := range d.Channels {
		byName[c.Name()] = c
	}
	if d.Pager != nil {
		byName[d.Pager.Name()] = d.Pager
		extra[d.Pager.Name()] = true
	}
	for _, c := range d.Mirrors {
		byName[c.Name()] = c
		extra[c.Name()] = true
	}
	return &Engine{
		cfg: cfg.withDefaults(), store: d.Store, rotation: d.Rotation, channels: d.Channels, pager: d.Pager,
		mirrors: d.Mirrors, byName: byName, extra: extra, pub: d.Publisher, logger: d.Logger, now: d.Now,
		rand: d.Rand, hurried: d.Hurried, metrics: m, kick: make(chan struct{}, 1),
	}, nil
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
}

// Notify records the notification for req unless its key was seen, then
// sends its due deliveries. created is false for a repeated key; the
// deliveries of the existing notification that are still due (a crash
// before sending) are sent, nothing already sent is sent again.
func (e *Engine) Notify(ctx context.Context, req Request) (store.Notification, bool, error) {
	if req.IdempotencyKey == "" {
		return store.Notification{}, false, errors.New("notify: idempotency key is required")
	}
	n, err := e.store.NotificationByKey(ctx, req.IdempotencyKey)
	created := false
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		if len(req.Targets) == 0 {
			return store.Notification{}, false, ErrNoRecipients
		}
		nn, ds, err := e.Prepare(ctx, req)
		if err != nil {
			return store.Notification{}, false, err
		}
		n, created, err = e.store.CreateNotification(ctx, nn, ds)
		if err != nil {
			return store.Notification{}, false, err
		}
	default:
		return store.Notification{}, false, err
	}
	if err := e.DeliverNotification(ctx, n.ID); err != nil {
		return n, created, err
	}
	return n, created, nil
}

// Prepare resolves req's targets as of now and plans its deliveries,
// without recording anything: the caller records them (with an escalation
// step, say) before anything is sent.
func (e *Engine) Prepare(ctx context.Context, req Request) (store.NewNotification, []store.NewDelivery, error) {
	recipients, failed, err := e.resolve(ctx, req.Targets, req.Lenient)
	if err != nil {
		return store.NewNotification{}, nil, err
	}
	if len(recipients) == 0 && len(failed) == 0 {
		e.logger.Warn("nobody to notify: every target resolved to nobody (a coverage gap)",
			"key", req.IdempotencyKey, "conversation", req.ConversationID)
	}
	n := store.NewNotification{
		IdempotencyKey: req.IdempotencyKey, Origin: req.Origin, Urgency: req.Urgency,
		Title: req.Title, Body: req.Text, Links: req.Links, ConversationID: req.ConversationID,
		CreatedAt: e.now(),
	}
	ds := e.plan(req, recipients)
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
func (e *Engine) plan(req Request, recipients []notify.Recipient) []store.NewDelivery {
	ds := make([]store.NewDelivery, 0, len(recipients))
	seen := map[string]bool{}
	add := func(d store.NewDelivery) {
		if !seen[d.DedupKey] {
			seen[d.DedupKey] = true
			ds = append(ds, d)
		}
	}
	for _, r := range recipients {
		key := DedupKey(req.IdempotencyKey, recipientKey(r), req.Step)
		d := store.NewDelivery{DedupKey: key, Step: req.Step, Recipient: r}
		paged := req.Urgency == notify.Page && e.pager != nil && canReach(e.pager, r)
		if c := e.channelFor(r); c != nil {
			d.Channel = c.Name()
			add(d)
		} else if !paged {
			d.Channel = "none"
			d.Failed = fmt.Sprintf("no configured channel can reach %s", r.Display())
			add(d)
		}
		if paged {
			add(store.NewDelivery{DedupKey: key + "|" + e.pager.Name(), Step: req.Step, Recipient: r, Channel: e.pager.Name()})
		}
		for _, m := range e.mirrors {
			if canReach(m, r) {
				add(store.NewDelivery{DedupKey: key + "|" + m.Name(), Step: req.Step, Recipient: r, Channel: m.Name()})
			}
		}
	}
	return ds
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

func (e *Engine) channelFor(r notify.Recipient) notify.Channel {
	for _, c := range e.channels {
		if canReach(c, r) {
			return c
		}
	}
	return nil
}

// resolve turns targets into recipients as of now. Leniently, people
// rotation does not know are returned in unknown instead of failing.
func (e *Engine) resolve(ctx context.Context, targets []Target, lenient bool) (out []notify.Recipient, unknown []string, err error) {
	var people map[string]*rotationv1.Person
	for _, t := range targets {
		switch {
		case t.Direct != nil:
			out = append(out, *t.Direct)
		case t.PersonID != "":
			if people == nil {
				resp, err := e.rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
				if err != nil {
					return nil, nil, fmt.Errorf("resolve person %s: list people: %w", t.PersonID, err)
				}
				people = make(map[string]*rotationv1.Person, len(resp.GetPeople()))
				for _, p := range resp.GetPeople() {
					people[p.GetId()] = p
				}
			}
			p, ok := people[t.PersonID]
			if !ok && lenient {
				e.logger.Error("a policy names a person rotation does not know", "person", t.PersonID)
				unknown = append(unknown, t.PersonID)
				continue
			}
			if !ok {
				return nil, nil, fmt.Errorf("resolve person %s: %w", t.PersonID, ErrUnknownPerson)
			}
			out = append(out, recipient(p, ""))
		case t.SlackChannel != "":
			out = append(out, notify.Recipient{SlackChannel: t.SlackChannel})
		case t.Role != rotationv1.Role_ROLE_UNSPECIFIED:
			resp, err := e.rotation.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{
				Role: t.Role, Team: t.Team, At: timestamppb.New(e.now()),
			})
			if err != nil {
				return nil, nil, fmt.Errorf("resolve %s: who is on call: %w", roleLabel(t.Role, t.Team), err)
			}
			label := roleLabel(t.Role, t.Team)
			if p := resp.GetOnCall().GetPerson(); p.GetId() != "" {
				out = append(out, recipient(p, label))
				continue
			}
			// A gap: tell whoever catches (follow-the-sun) instead.
			for _, also := range resp.GetAlso() {
				if p := also.GetPerson(); p.GetId() != "" {
					out = append(out, recipient(p, label+" (covering)"))
				}
			}
			if len(resp.GetAlso()) == 0 {
				e.logger.Warn("nobody on call", "role", label, "reason", resp.GetGapReason())
			}
		default:
			return nil, nil, errors.New("resolve: empty recipient")
		}
	}
	return out, unknown, nil
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

// DeliverNotification sends the due deliveries of one notification.
func (e *Engine) DeliverNotification(ctx context.Context, notificationID string) error {
	now := e.now()
	jobs, err := e.store.Claim(ctx, notificationID, now, now.Add(e.cfg.Lease), e.cfg.Batch)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		e.send(ctx, j)
	}
	return nil
}

// Sweep sends every due delivery: retries whose time has come, deliveries
// recorded but never sent, and deliveries whose sender died mid-send. It
// returns how many it attempted.
func (e *Engine) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		now := e.now()
		jobs, err := e.store.Claim(ctx, "", now, now.Add(e.cfg.Lease), e.cfg.Batch)
		if err != nil {
			return total, err
		}
		for _, j := range jobs {
			e.send(ctx, j)
		}
		total += len(jobs)
		if len(jobs) < e.cfg.Batch || ctx.Err() != nil {
			return total, ctx.Err()
		}
	}
}

// send makes one attempt of a claimed delivery and records its outcome.
// Failures are recorded, not returned: the delivery log is the source of
// truth and the sweeper retries.
func (e *Engine) send(ctx context.Context, j store.Job) {
	d, n := j.Delivery, j.Notification
	logger := e.logger.With("delivery", d.ID, "notification", n.ID, "channel", d.Channel,
		"recipient", d.Recipient.Display(), "attempt", d.Attempts)
	if held, err := e.rateLimited(ctx, d, n); err != nil {
		logger.Warn("rate limit check failed; sending anyway", "error", err)
	} else if !held.IsZero() {
		if err := e.store.Defer(ctx, d.ID, d.Attempts, held, e.now()); err != nil {
			logger.Error("could not hold back a rate-limited delivery; the lease will expire and it is tried again", "error", err)
			return
		}
		e.metrics.rateLimited.WithLabelValues(d.Channel).Inc()
		logger.Info("recipient's rate limit reached; held back", "until", held)
		return
	}
	msg := message(n, d)
	var receipt notify.Receipt
	ch, ok := e.byName[d.Channel]
	var err error
	if !ok {
		err = notify.Permanent(fmt.Errorf("channel %q is not configured in this process", d.Channel))
	} else {
		sctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		start := time.Now()
		receipt, err = ch.Send(sctx, msg)
		cancel()
		e.metrics.sendSeconds.WithLabelValues(d.Channel).Observe(time.Since(start).Seconds())
	}
	if ctx.Err() != nil && err != nil {
		// Shutting down mid-send: leave the claim; its lease expires and the
		// next sweep (here or in another replica) resumes it.
		logger.Info("send interrupted by shutdown; will resume", "error", err)
		return
	}
	// Record the outcome even if shutdown begins now: a send that happened
	// must not be forgotten and sent again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := e.now()
	if err == nil {
		ev, evErr := e.deliveryEvent(d, n, supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, "", now)
		since := ""
		if evErr == nil {
			since, evErr = e.store.MarkDelivered(ctx, d.ID, d.Attempts, receipt.Ref, now, ev)
		}
		if evErr != nil {
			logger.Error("sent but could not record it; the lease will expire and it may be sent again", "error", evErr)
			return
		}
		e.metrics.deliveries.WithLabelValues(d.Channel, "delivered").Inc()
		logger.Info("delivered")
		if since != "" {
			// Acknowledged or answered while this message was on its way.
			d.Receipt = receipt.Ref
			e.updateSent(ctx, store.Acknowledged{Notification: n, Sent: []store.Delivery{d}}, since)
		}
		e.Kick()
		return
	}
	var retryAt time.Time
	result := "failed"
	if !notify.IsPermanent(err) && d.Attempts < e.cfg.MaxAttempts {
		retryAt = now.Add(e.retryDelay(d.Attempts, err))
		result = "retry"
	}
	ev, evErr := e.deliveryEvent(d, n, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, err.Error(), now)
	events := []store.OutboxEvent{ev}
	if evErr == nil && result == "failed" {
		var dl store.OutboxEvent
		dl, evErr = e.deadLetter(d, n, err, now)
		events = append(events, dl)
	}
	hurried := false
	if evErr == nil {
		hurried, evErr = e.store.MarkFailed(ctx, d.ID, d.Attempts, err.Error(), retryAt, now, events...)
	}
	if evErr != nil {
		logger.Error("send failed and could not record it", "error", err, "record_error", evErr)
		return
	}
	e.metrics.deliveries.WithLabelValues(d.Channel, result).Inc()
	if result == "retry" {
		logger.Warn("send failed; will retry", "error", err, "retry_at", retryAt)
	} else {
		logger.Error("send failed for good", "error", err, "next_step_now", hurried)
	}
	if hurried {
		e.hurried()
	}
	e.Kick()
}

// retryDelay is the wait after a failed attempt: exponential backoff with
// jitter, and no less than the Retry-After the channel was told.
func (e *Engine) retryDelay(attempt int, err error) time.Duration {
	delay := e.cfg.Backoff(attempt)
	delay -= time.Duration(float64(delay) * e.cfg.Jitter * e.rand())
	if after, ok := notify.RetryAfter(err); ok && after > delay {
		delay = after
	}
	return delay
}

// rateLimited returns when a ping may go out if the recipient already got
// RateLimit messages through the channel within RateWindow; zero when it
// may go now. Pages and the pager and mirror channels are not limited.
func (e *Engine) rateLimited(ctx context.Context, d store.Delivery, n store.Notification) (time.Time, error) {
	if e.cfg.RateLimit < 0 || n.Urgency == notify.Page || e.extra[d.Channel] {
		return time.Time{}, nil
	}
	now := e.now()
	recent, err := e.store.DeliveredSince(ctx, d.Channel, d.Recipient, now.Add(-e.cfg.RateWindow), e.cfg.RateLimit)
	if err != nil || len(recent) < e.cfg.RateLimit {
		return time.Time{}, err
	}
	// The oldest of the last RateLimit messages leaves the window then.
	return recent[len(recent)-1].Add(e.cfg.RateWindow), nil
}

// deadLetter is the support.deadletter.notifier copy of a delivery that
// failed for good, so operators see it beside every other service's.
func (e *Engine) deadLetter(d store.Delivery, n store.Notification, cause error, at time.Time) (store.OutboxEvent, error) {
	ev, err := e.deliveryEvent(d, n, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, cause.Error(), at)
	if err != nil {
		return ev, err
	}
	ev.EventID = d.ID + "/deadletter"
	ev.Subject = bus.DeadLetterSubject(DeadLetterService)
	ev.Header = map[string]string{
		bus.HeaderErrorLocation: DeadLetterService + "/deliver/" + d.Channel,
		bus.HeaderError:         headerValue(cause.Error()),
	}
	return ev, nil
}

// headerValue makes s one header line of at most 4 kB.
func headerValue(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > 4096 {
		s = strings.ToValidUTF8(s[:4096], "")
	}
	return s
}

// IsMirror reports whether channel is a pager or mirror, which copies
// messages rather than reaching people by itself.
func (e *Engine) IsMirror(channel string) bool {
	return e.extra[channel] && (e.pager == nil || channel != e.pager.Name())
}

// DeadLetterService names the dead-letter subject of final failures.
const DeadLetterService = "notifier"

func message(n store.Notification, d store.Delivery) notify.Message {
	return notify.Message{
		NotificationID: n.ID, DeliveryID: d.ID, Recipient: d.Recipient, Urgency: n.Urgency,
		Title: n.Title, Text: n.Body, Links: n.Links, ConversationID: n.ConversationID,
		DedupKey: d.DedupKey, Attempt: d.Attempts,
	}
}

// Refresh rewrites the sent messages with text appended to their body,
// through the channels that can (best effort: failures are logged). It
// returns how many messages were rewritten.
func (e *Engine) Refresh(ctx context.Context, sent []store.Job, text string) int {
	done := 0
	for _, j := range sent {
		r, ok := e.byName[j.Delivery.Channel].(notify.Refresher)
		if !ok {
			continue
		}
		m := message(j.Notification, j.Delivery)
		if text != "" {
			m.Text = strings.TrimSpace(m.Text + "\n\n" + text)
		}
		rctx, cancel := context.WithTimeout(ctx, e.cfg.SendTimeout)
		err := r.Refresh(rctx, notify.Receipt{Ref: j.Delivery.Receipt}, m)
		cancel()
		if err != nil {
			e.logger.Warn("could not refresh sent message", "delivery", j.Delivery.ID, "channel", j.Delivery.Channel, "error", err)
			continue
		}
		done++
	}
	e.metrics.refreshes.Add(float64(done))
	return done
}

// deliveryEvent builds the outbox row for a delivery's new status. Its id
// names the delivery, status and attempt, so it is unique and stable.
func (e *Engine) deliveryEvent(d store.Delivery, n store.Notification, status supportv1.DeliveryStatus, cause string, at time.Time) (store.OutboxEvent, error) {
	name := statusName(status)
	msg := &supportv1.DeliveryEvent{
		Id:             fmt.Sprintf("%s/%s/%d", d.ID, name, d.Attempts),
		NotificationId: n.ID, IdempotencyKey: n.IdempotencyKey, Recipient: recipientID(d.Recipient),
		Channel: d.Channel, Status: status, Attempt: int32(d.Attempts), Error: cause,
		OccurredAt: timestamppb.New(at), ConversationId: n.ConversationID,
	}
	return outboxEvent(msg, name, at)
}

func recipientID(r notify.Recipient) string {
	if r.PersonID != "" {
		return r.PersonID
	}
	return "#" + r.SlackChannel
}

func statusName(s supportv1.DeliveryStatus) string {
	switch s {
	case supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED:
		return "delivered"
	case supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED:
		return "failed"
	case supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED:
		return "acked"
	}
	return "pending"
}

func outboxEvent(msg *supportv1.DeliveryEvent, status string, at time.Time) (store.OutboxEvent, error) {
	payload, err := proto.Marshal(msg)
	if err != nil {
		return store.OutboxEvent{}, fmt.Errorf("encode delivery event: %w", err)
	}
	return store.OutboxEvent{EventID: msg.GetId(), Subject: bus.NotifySubject(status), Payload: payload, OccurredAt: at}, nil
}

// Kick wakes the relay to publish queued events now.
func (e *Engine) Kick() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}
