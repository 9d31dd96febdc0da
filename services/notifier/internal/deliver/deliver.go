// Package deliver is the notifier's engine: it resolves recipients through
// rotation, records a notification and its deliveries before sending
// anything, sends each delivery through a channel, records the outcome with
// its support.notify event in one transaction, retries failures, resumes
// deliveries a crash left behind, and relays the events to JetStream.
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// Backoff is the delay after the n-th failed attempt (the last entry
	// repeats); default 10s, 30s, 1m, 5m, 15m.
	Backoff []time.Duration
	// Lease is how long a claimed delivery stays with its sender before
	// another worker may resume it; default 2m. Keep it well above
	// SendTimeout.
	Lease time.Duration
	// SendTimeout bounds one channel call; default 30s.
	SendTimeout time.Duration
	// Batch is how many due deliveries one sweep claims; default 50.
	Batch int
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute}
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
	return c
}

// Engine delivers notifications. Its methods are safe for concurrent use.
type Engine struct {
	cfg      Config
	store    *store.Store
	rotation Rotation
	channels []notify.Channel
	byName   map[string]notify.Channel
	pub      Publisher
	logger   *slog.Logger
	now      func() time.Time
	metrics  *metrics
	kick     chan struct{}
}

// Deps are the engine's collaborators.
type Deps struct {
	Store    *store.Store
	Rotation Rotation
	// Channels in order of preference: a recipient gets the first channel
	// that can reach them.
	Channels  []notify.Channel
	Publisher Publisher
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Now       func() time.Time
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
	case len(d.Channels) == 0:
		return nil, errors.New("deliver: at least one channel is required")
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
	byName := make(map[string]notify.Channel, len(d.Channels))
	for _, c := range d.Channels {
		byName[c.Name()] = c
	}
	return &Engine{
		cfg: cfg.withDefaults(), store: d.Store, rotation: d.Rotation, channels: d.Channels, byName: byName,
		pub: d.Publisher, logger: d.Logger, now: d.Now, metrics: m, kick: make(chan struct{}, 1),
	}, nil
}

// Target is a requested recipient: a person, a role resolved through
// rotation when the notification is recorded, or a Slack channel.
type Target struct {
	PersonID     string
	Role         rotationv1.Role
	Team         string
	SlackChannel string
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
		recipients, err := e.resolve(ctx, req.Targets)
		if err != nil {
			return store.Notification{}, false, err
		}
		if len(recipients) == 0 {
			e.logger.Warn("nobody to notify: every target resolved to nobody (a coverage gap)",
				"key", req.IdempotencyKey, "conversation", req.ConversationID)
		}
		n, created, err = e.store.CreateNotification(ctx, store.NewNotification{
			IdempotencyKey: req.IdempotencyKey, Origin: req.Origin, Urgency: req.Urgency,
			Title: req.Title, Body: req.Text, Links: req.Links, ConversationID: req.ConversationID,
			CreatedAt: e.now(),
		}, e.plan(req, recipients))
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

// plan picks a channel for each recipient and names each delivery.
func (e *Engine) plan(req Request, recipients []notify.Recipient) []store.NewDelivery {
	ds := make([]store.NewDelivery, 0, len(recipients))
	seen := map[string]bool{}
	for _, r := range recipients {
		key := DedupKey(req.IdempotencyKey, recipientKey(r), req.Step)
		if seen[key] {
			continue
		}
		seen[key] = true
		d := store.NewDelivery{DedupKey: key, Step: req.Step, Recipient: r}
		if c := e.channelFor(r); c != nil {
			d.Channel = c.Name()
		} else {
			d.Channel = "none"
			d.Failed = fmt.Sprintf("no configured channel can reach %s", r.Display())
		}
		ds = append(ds, d)
	}
	return ds
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
		if rc, ok := c.(Reacher); ok && !rc.CanReach(r) {
			continue
		}
		return c
	}
	return nil
}

// resolve turns targets into recipients as of now.
func (e *Engine) resolve(ctx context.Context, targets []Target) ([]notify.Recipient, error) {
	var out []notify.Recipient
	var people map[string]*rotationv1.Person
	for _, t := range targets {
		switch {
		case t.PersonID != "":
			if people == nil {
				resp, err := e.rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
				if err != nil {
					return nil, fmt.Errorf("resolve person %s: list people: %w", t.PersonID, err)
				}
				people = make(map[string]*rotationv1.Person, len(resp.GetPeople()))
				for _, p := range resp.GetPeople() {
					people[p.GetId()] = p
				}
			}
			p, ok := people[t.PersonID]
			if !ok {
				return nil, fmt.Errorf("resolve person %s: %w", t.PersonID, ErrUnknownPerson)
			}
			out = append(out, recipient(p, ""))
		case t.SlackChannel != "":
			out = append(out, notify.Recipient{SlackChannel: t.SlackChannel})
		case t.Role != rotationv1.Role_ROLE_UNSPECIFIED:
			resp, err := e.rotation.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{
				Role: t.Role, Team: t.Team, At: timestamppb.New(e.now()),
			})
			if err != nil {
				return nil, fmt.Errorf("resolve %s: who is on call: %w", roleLabel(t.Role, t.Team), err)
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
			return nil, errors.New("resolve: empty recipient")
		}
	}
	return out, nil
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
	msg := notify.Message{
		NotificationID: n.ID, DeliveryID: d.ID, Recipient: d.Recipient, Urgency: n.Urgency,
		Title: n.Title, Text: n.Body, Links: n.Links, ConversationID: n.ConversationID,
		DedupKey: d.DedupKey, Attempt: d.Attempts,
	}
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
		if evErr == nil {
			evErr = e.store.MarkDelivered(ctx, d.ID, d.Attempts, receipt.Ref, now, ev)
		}
		if evErr != nil {
			logger.Error("sent but could not record it; the lease will expire and it may be sent again", "error", evErr)
			return
		}
		e.metrics.deliveries.WithLabelValues(d.Channel, "delivered").Inc()
		logger.Info("delivered")
		e.Kick()
		return
	}
	var retryAt time.Time
	result := "failed"
	if !notify.IsPermanent(err) && d.Attempts < e.cfg.MaxAttempts {
		delay := e.cfg.Backoff[min(d.Attempts, len(e.cfg.Backoff))-1]
		if after, ok := notify.RetryAfter(err); ok && after > delay {
			delay = after
		}
		retryAt = now.Add(delay)
		result = "retry"
	}
	ev, evErr := e.deliveryEvent(d, n, supportv1.DeliveryStatus_DELIVERY_STATUS_FAILED, err.Error(), now)
	if evErr == nil {
		evErr = e.store.MarkFailed(ctx, d.ID, d.Attempts, err.Error(), retryAt, now, ev)
	}
	if evErr != nil {
		logger.Error("send failed and could not record it", "error", err, "record_error", evErr)
		return
	}
	e.metrics.deliveries.WithLabelValues(d.Channel, result).Inc()
	if result == "retry" {
		logger.Warn("send failed; will retry", "error", err, "retry_at", retryAt)
	} else {
		logger.Error("send failed for good", "error", err)
	}
	e.Kick()
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
