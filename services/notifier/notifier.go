// Package notifier tells people about support work. Escalation policies
// from the organisation file (section `escalation`, or the handbook's
// defaults) decide whom to tell about what, how loudly and when; each
// policy step resolves its recipients through rotation, records its
// notification and deliveries before sending anything (so a redelivered
// event or a restart never sends twice and never forgets a send), and
// delivers through the channels configured: Slack, email, the console,
// plus PagerDuty for pages and a signed webhook for everything. The
// delivery log is published on support.notify.{delivered,failed,acked};
// final failures also go to support.deadletter.notifier.
//
// It consumes support.conversation.> (opened, reopened, deadline,
// escalated, handoff, message, responded, closed), support.action.{ack,
// escalate,close} and support.rotation.{shift_started,gap_ahead,
// gap_covered}, and
// serves sidekick.notify.v1.NotifierService.
//
// This package wires the service. What happens to a message: consume turns
// it into a trigger or an acknowledgement; escalate.Runner matches a
// policy and fires its steps; deliver.Dispatcher records and sends each
// step's deliveries; store holds the state; outbox.Relay publishes the
// support.notify events. Every wait and every timestamp goes through
// Deps.Clock.
package notifier

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/escalate"
	"github.com/sidekickhq/sidekick/services/notifier/internal/grpcapi"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/console"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/email"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/slack"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/webhook"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// Schema is the notifier's Postgres schema.
const Schema = "notifier"

// Name is the service name: the bus consumer owner and dead-letter subject.
const Name = "notifier"

// Durable consumer names.
const (
	DurableConversations = "notifier-conversations"
	DurableActions       = "notifier-actions"
	DurableRotation      = "notifier-rotation"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded goose migrations of Schema.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}

// Channel, Message, Receipt and Recipient are the delivery channel contract,
// so callers (the dev stack, end-to-end tests) can plug in their own.
type (
	// Channel delivers messages through one medium.
	Channel = notify.Channel
	// Message is one delivery of a notification to one recipient.
	Message = notify.Message
	// Receipt is what a channel reports after a successful send.
	Receipt = notify.Receipt
	// Recipient is who a message goes to.
	Recipient = notify.Recipient
)

// Config is the notifier's own configuration.
type Config struct {
	// SlackBotToken enables the Slack channel: DMs to people's Slack ids
	// with Block Kit buttons (needs chat:write).
	SlackBotToken string `env:"SIDEKICK_SLACK_BOT_TOKEN"`
	// SlackAPIURL overrides Slack's Web API base URL (tests, proxies).
	SlackAPIURL string `env:"SIDEKICK_SLACK_API_URL"`
	// SMTPURL enables email, e.g.
	// smtp://user:pass@mail.example.com:587?from=sidekick@example.com&starttls=required
	// (see docs/escalation.md).
	SMTPURL string `env:"SIDEKICK_SMTP_URL"`
	// PagerDutyRoutingKey enables PagerDuty (Events API v2): every page
	// also triggers an alert.
	PagerDutyRoutingKey string `env:"SIDEKICK_PAGERDUTY_ROUTING_KEY"`
	// PagerDutyURL overrides the Events API endpoint (EU accounts, tests).
	PagerDutyURL string `env:"SIDEKICK_PAGERDUTY_URL"`
	// WebhookURL enables the webhook channel: a signed JSON POST of every
	// message; WebhookSecret (required with it) keys the signature.
	WebhookURL    string `env:"SIDEKICK_WEBHOOK_URL"`
	WebhookSecret string `env:"SIDEKICK_WEBHOOK_SECRET"`
	// MaxAttempts is how many times one delivery is tried.
	MaxAttempts int `env:"SIDEKICK_NOTIFIER_MAX_ATTEMPTS" envDefault:"6"`
	// RetryBase is the delay after a first failed attempt; each further
	// failure doubles it up to RetryMax, minus up to RetryJitter of it at
	// random (0 turns jitter off). A channel's Retry-After is a floor.
	RetryBase   time.Duration `env:"SIDEKICK_NOTIFIER_RETRY_BASE" envDefault:"10s"`
	RetryMax    time.Duration `env:"SIDEKICK_NOTIFIER_RETRY_MAX" envDefault:"15m"`
	RetryJitter float64       `env:"SIDEKICK_NOTIFIER_RETRY_JITTER" envDefault:"0.5"`
	// RateLimit is how many pings one person gets through one channel
	// within RateWindow; more wait. Pages are never held back; a negative
	// limit turns the limit off.
	RateLimit  int           `env:"SIDEKICK_NOTIFIER_RATE_LIMIT" envDefault:"20"`
	RateWindow time.Duration `env:"SIDEKICK_NOTIFIER_RATE_WINDOW" envDefault:"10m"`
	// OpsChannel is the Slack channel (id or name) told when a message for
	// the hero or a secondary reaches nobody: everybody in rotation's
	// backup chain is on time off or a holiday. Empty: only the log.
	OpsChannel string `env:"SIDEKICK_NOTIFIER_OPS_CHANNEL"`
	// BurstWindow coalesces the pings about conversations to one person
	// (or Slack channel) on Slack: those within BurstWindow of the first
	// are added to its message, rewritten with the growing list, instead
	// of a message each; 0 sends each on its own.
	BurstWindow time.Duration `env:"SIDEKICK_NOTIFIER_BURST_WINDOW" envDefault:"1m"`
	// BurstEvery is the least time between two rewrites of a burst's
	// message (Slack's chat.update allows about one a second).
	BurstEvery time.Duration `env:"SIDEKICK_NOTIFIER_BURST_EVERY" envDefault:"1s"`
	// SendTimeout bounds one channel call.
	SendTimeout time.Duration `env:"SIDEKICK_NOTIFIER_SEND_TIMEOUT" envDefault:"30s"`
	// Lease is how long a delivery being sent is left to its sender before
	// another replica resumes it. A live sender renews it every quarter
	// lease, so it bounds how long a crashed sender's deliveries wait.
	Lease time.Duration `env:"SIDEKICK_NOTIFIER_LEASE" envDefault:"20s"`
	// SweepInterval is how often due retries and abandoned deliveries are
	// looked for.
	SweepInterval time.Duration `env:"SIDEKICK_NOTIFIER_SWEEP_INTERVAL" envDefault:"5s"`
	// TickInterval is how often due escalation steps, digests and storm
	// updates are looked for.
	TickInterval time.Duration `env:"SIDEKICK_NOTIFIER_TICK_INTERVAL" envDefault:"1s"`
	// RelayInterval is how often the outbox is checked when no commit's
	// notification woke the relay (one can be missed while its listener
	// reconnects), and the wait after a failed publish.
	RelayInterval time.Duration `env:"SIDEKICK_NOTIFIER_RELAY_INTERVAL" envDefault:"5s"`
	// RefreshInterval is the least time between two rewrites of the
	// messages of one alert group (a Sentry issue's new events).
	RefreshInterval time.Duration `env:"SIDEKICK_NOTIFIER_REFRESH_INTERVAL" envDefault:"1m"`
	// HandoffWait is how long a handoff summary waits for the incoming
	// hero's shift_started before it is sent anyway.
	HandoffWait time.Duration `env:"SIDEKICK_NOTIFIER_HANDOFF_WAIT" envDefault:"1h"`
	// ShiftReminder is how long before a shift starts its person is told
	// (the shift_reminder policy; for the Support Hero with a link to the
	// open queue); 0 turns reminders off. Rotation is asked every
	// ShiftReminderEvery.
	ShiftReminder      time.Duration `env:"SIDEKICK_NOTIFIER_SHIFT_REMINDER" envDefault:"1h"`
	ShiftReminderEvery time.Duration `env:"SIDEKICK_NOTIFIER_SHIFT_REMINDER_EVERY" envDefault:"1m"`
	// GapNotice is how long before a coverage gap it is announced (at once
	// when rotation reports it later than that).
	GapNotice time.Duration `env:"SIDEKICK_NOTIFIER_GAP_NOTICE" envDefault:"24h"`
	// DigestEvery, when set, replaces the interval of every digest policy.
	DigestEvery time.Duration `env:"SIDEKICK_NOTIFIER_DIGEST_EVERY"`
	// ConsoleURL is the web console's base (triage's share links use the
	// same variable); a digest too long for one message links to its
	// queue.
	ConsoleURL string `env:"SIDEKICK_CONSOLE_URL" envDefault:"http://localhost:8080/console"`
	// Concurrency is how many conversation events are handled at once;
	// each holds a database connection while it starts an escalation, so
	// the pool (PoolSize) is larger. 16 keeps up with 500 new
	// conversations a second on two cores (docs/performance.md).
	Concurrency int `env:"SIDEKICK_NOTIFIER_CONCURRENCY" envDefault:"16"`
	// ConsumerBackoff is the redelivery delay of bus messages whose handling
	// failed (rotation unreachable, say); empty: the bus default.
	ConsumerBackoff []time.Duration `env:"SIDEKICK_NOTIFIER_CONSUMER_BACKOFF" envSeparator:","`
	// ConsumerMaxDeliver is how many failed attempts at one bus message
	// (rotation unreachable, say) are made before it is dead-lettered.
	ConsumerMaxDeliver int `env:"SIDEKICK_NOTIFIER_CONSUMER_MAX_DELIVER" envDefault:"20"`

	// Retention is how long the delivery log (notifications and their
	// deliveries), closed escalations, sent or dropped digest items, hero
	// shifts, conversation stops and response deadlines are kept; 0 keeps
	// them forever. Rows still needed (a pending delivery, an open
	// escalation) are kept whatever their age. It must exceed the event
	// streams' max age, or a replayed event could notify twice.
	Retention time.Duration `env:"SIDEKICK_NOTIFIER_RETENTION" envDefault:"2160h"`
	// OutboxRetention is how long published support.notify events stay in
	// the outbox; 0 keeps them.
	OutboxRetention time.Duration `env:"SIDEKICK_NOTIFIER_OUTBOX_RETENTION" envDefault:"24h"`
	// RetentionInterval is how often old rows are pruned, and
	// RetentionBatch the most rows deleted per transaction.
	RetentionInterval time.Duration `env:"SIDEKICK_NOTIFIER_RETENTION_INTERVAL" envDefault:"10m"`
	RetentionBatch    int           `env:"SIDEKICK_NOTIFIER_RETENTION_BATCH" envDefault:"1000"`
}

// MinRetention is the shortest Retention accepted: the event streams' max
// age and a day, so no event that can still be replayed finds its effect
// forgotten.
const MinRetention = bus.DefaultEventMaxAge + 24*time.Hour

// Rotation is what the notifier asks the rotation service;
// rotationv1.RotationServiceClient satisfies it.
type Rotation interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
	ListRotations(ctx context.Context, in *rotationv1.ListRotationsRequest, opts ...grpc.CallOption) (*rotationv1.ListRotationsResponse, error)
	ListShifts(ctx context.Context, in *rotationv1.ListShiftsRequest, opts ...grpc.CallOption) (*rotationv1.ListShiftsResponse, error)
}

// Deps are the notifier's collaborators.
type Deps struct {
	Logger   *slog.Logger
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Registry prometheus.Registerer
	// Clock is the time of everything: escalation steps, digests, storm
	// refreshes, retries, leases, sweeps, the relay and pruning; nil: the
	// wall clock. Tests and the end-to-end harness pass a clock.Fake.
	Clock    clock.Clock
	Rotation Rotation
	// Org is the organisation file; its `escalation` and
	// `business_contacts` sections configure the policies. Without it, or
	// without those sections, the handbook's defaults apply.
	Org *orgfile.File
	// Console, when set, adds the console channel: what would be sent is
	// written there. It is the fallback for people no other channel
	// reaches (`sidekick dev`).
	Console io.Writer
	// Channels are extra channels, preferred over Slack, email and the
	// console in the order given.
	Channels []Channel
	// SlackHTTPClient is used by the Slack channel; nil: a default client.
	SlackHTTPClient *http.Client
	// HTTPClient is used by the PagerDuty and webhook channels; nil: their
	// defaults.
	HTTPClient *http.Client
	// Rand draws retry jitter, uniform in [0, 1); nil: math/rand.
	Rand func() float64
}

// Service is the notifier.
type Service struct {
	cfg        Config
	deps       Deps
	dispatcher *deliver.Dispatcher
	runner     *escalate.Runner
	relay      *outbox.Relay
	handler    *consume.Handler
	reminders  *consume.Reminders
	pruner     *prune.Pruner
	org        *orgwatch.Watcher
	api        *grpcapi.Server
	closers    []func() error
}

// New builds the notifier from its configuration and dependencies.
func New(cfg Config, deps Deps) (*Service, error) {
	switch {
	case deps.Pool == nil:
		return nil, errors.New("notifier: Pool is required")
	case deps.JS == nil:
		return nil, errors.New("notifier: JS is required")
	case deps.Rotation == nil:
		return nil, errors.New("notifier: Rotation is required")
	case cfg.WebhookURL != "" && cfg.WebhookSecret == "":
		return nil, errors.New("notifier: SIDEKICK_WEBHOOK_URL needs SIDEKICK_WEBHOOK_SECRET (the signing secret)")
	case cfg.Retention > 0 && cfg.Retention < MinRetention:
		return nil, fmt.Errorf("notifier: SIDEKICK_NOTIFIER_RETENTION is %s: want 0 (keep forever) or at least %s, longer than the event streams' max age", cfg.Retention, MinRetention)
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Clock = clock.OrReal(deps.Clock)
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	policies, err := policy.FromFile(deps.Org)
	if err != nil {
		return nil, fmt.Errorf("notifier: %s: %w", orgPath(deps.Org), err)
	}
	channels := append([]notify.Channel(nil), deps.Channels...)
	if cfg.SlackBotToken != "" {
		channels = append(channels, slack.New(slack.Options{
			Token: cfg.SlackBotToken, APIURL: cfg.SlackAPIURL, HTTPClient: deps.SlackHTTPClient, Logger: deps.Logger,
		}))
	}
	if cfg.SMTPURL != "" {
		ec, err := email.ParseURL(cfg.SMTPURL)
		if err != nil {
			return nil, fmt.Errorf("notifier: SIDEKICK_SMTP_URL: %w", err)
		}
		ch, err := email.New(email.Options{Config: ec, Timeout: cfg.SendTimeout, Now: deps.Clock.Now})
		if err != nil {
			return nil, fmt.Errorf("notifier: SIDEKICK_SMTP_URL: %w", err)
		}
		channels = append(channels, ch)
	}
	if deps.Console != nil {
		channels = append(channels, console.New(deps.Console))
	}
	if len(channels) == 0 {
		return nil, errors.New("notifier: no delivery channel: set SIDEKICK_SLACK_BOT_TOKEN or SIDEKICK_SMTP_URL (or run `sidekick dev` for console output)")
	}
	var pager notify.Channel
	if cfg.PagerDutyRoutingKey != "" {
		pd, err := pagerduty.New(pagerduty.Options{RoutingKey: cfg.PagerDutyRoutingKey, URL: cfg.PagerDutyURL, HTTPClient: deps.HTTPClient, Now: deps.Clock.Now})
		if err != nil {
			return nil, fmt.Errorf("notifier: SIDEKICK_PAGERDUTY_ROUTING_KEY: %w", err)
		}
		pager = pd
	}
	var mirrors []notify.Channel
	if cfg.WebhookURL != "" {
		wh, err := webhook.New(webhook.Options{URL: cfg.WebhookURL, Secret: []byte(cfg.WebhookSecret), HTTPClient: deps.HTTPClient, Now: deps.Clock.Now})
		if err != nil {
			return nil, fmt.Errorf("notifier: SIDEKICK_WEBHOOK_URL: %w", err)
		}
		mirrors = append(mirrors, wh)
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	if cfg.RelayInterval <= 0 {
		cfg.RelayInterval = 5 * time.Second
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	st := store.New(deps.Pool)
	s := &Service{cfg: cfg, deps: deps}
	s.dispatcher, err = deliver.New(deliver.Config{
		MaxAttempts: cfg.MaxAttempts, RetryBase: cfg.RetryBase, RetryMax: cfg.RetryMax, Jitter: jitter(cfg.RetryJitter),
		Lease: cfg.Lease, SendTimeout: cfg.SendTimeout, RateLimit: cfg.RateLimit, RateWindow: cfg.RateWindow,
		OpsChannel:   cfg.OpsChannel,
		ContactRules: policies.ContactRules,
		BurstWindow:  cfg.BurstWindow, BurstEvery: cfg.BurstEvery,
	}, deliver.Deps{
		Store: st, Rotation: deps.Rotation, Channels: channels, Pager: pager, Mirrors: mirrors,
		Logger: deps.Logger, Registry: deps.Registry, Clock: deps.Clock, Rand: deps.Rand,
		Hurried: func() { s.runner.Wake() },
	})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	pub := bus.NewPublisher(deps.JS, "sidekick/"+Name, bus.WithClock(deps.Clock.Now), bus.WithRegisterer(deps.Registry))
	s.relay, err = outbox.New(deps.Pool, pub, outbox.Config{Interval: cfg.RelayInterval}, deps.Clock, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s.runner, err = escalate.New(escalate.Config{
		Policies: policies, RefreshInterval: cfg.RefreshInterval, DigestEvery: cfg.DigestEvery, HandoffWait: cfg.HandoffWait,
		ConsoleURL: cfg.ConsoleURL,
	}, escalate.Deps{Store: st, Dispatcher: s.dispatcher, Logger: deps.Logger, Registry: deps.Registry, Clock: deps.Clock})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s.handler, err = consume.New(consume.Deps{
		Dispatcher: s.dispatcher, Runner: s.runner, People: deps.Rotation, Logger: deps.Logger, Clock: deps.Clock,
		GapNotice: cfg.GapNotice,
	})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s.reminders = consume.NewReminders(deps.Rotation, s.runner, deps.Clock, deps.Logger, cfg.ShiftReminder, cfg.ConsoleURL)
	s.pruner, err = prune.New(deps.Pool, prune.Config{Service: Name, Interval: cfg.RetentionInterval, Batch: cfg.RetentionBatch, Clock: deps.Clock},
		store.RetentionRules(cfg.Retention, cfg.OutboxRetention), deps.Logger, deps.Clock.Now, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s.org, err = orgwatch.New(deps.JS, orgwatch.Config{Load: s.loadOrg}, deps.Org, deps.Clock, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	s.api = grpcapi.New(s.dispatcher)
	return s, nil
}

// loadOrg reads the escalation and business_contacts sections of an
// organisation file applied through rotation and swaps them in: the
// policies new escalations follow, the business contacts, and people's
// contact rules. A file that does not read changes nothing.
func (s *Service) loadOrg(f *orgfile.File) error {
	p, err := policy.FromFile(f)
	if err != nil {
		return err
	}
	s.runner.SetPolicies(p)
	s.dispatcher.SetContactRules(p.ContactRules)
	return nil
}

// OrgVersion is the version of the organisation file whose sections the
// notifier follows (orgfile.File.Version).
func (s *Service) OrgVersion() string { return s.org.Version() }

// LoadOrg loads the organisation file a config_applied event carries, as
// the watcher does when rotation announces one; tests call it.
func (s *Service) LoadOrg(event []byte) { s.org.Consider(event) }

// jitter maps the configured fraction to deliver.Config.Jitter, where 0
// means the default and a negative value none.
func jitter(f float64) float64 {
	if f <= 0 {
		return -1
	}
	return f
}

// orgPath names the organisation file in errors.
func orgPath(f *orgfile.File) string {
	if f == nil || f.Path == "" {
		return "organisation file"
	}
	return f.Path
}

// PoolSize is the notifier's database pool unless its URL sets
// pool_max_conns: the default Concurrency's handlers, plus the sender,
// sweeper, relay and ticker beside them. 20 of PostgreSQL's default 100
// connections.
const PoolSize = 20

// Spec describes the notifier to an app.Host: its schema, gRPC and its
// sections of the organisation file.
func Spec() app.Spec {
	return app.Spec{Name: Name, Schema: Schema, Migrations: Migrations(), MaxConns: PoolSize, GRPC: true, Org: true, Config: &Config{}, Build: FromKit}
}

// FromKit builds the notifier inside a process wired by platform/app.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	out := k.Console
	if out == nil && k.Common.Dev && cfg.SlackBotToken == "" && cfg.SMTPURL == "" {
		out = logWriter{k.Logger}
	}
	if k.Common.Dev && cfg.DigestEvery == 0 {
		// `sidekick dev` compresses digests so you see them come out.
		cfg.DigestEvery = DevDigestEvery
	}
	conn, err := k.Dial(k.Common.RotationAddr)
	if err != nil {
		return nil, fmt.Errorf("dial rotation %s: %w", k.Common.RotationAddr, err)
	}
	s, err := New(cfg, Deps{
		Logger: k.Logger, JS: k.JS, Pool: k.Pool, Registry: k.Registry, Clock: k.Clock,
		Rotation: rotationv1.NewRotationServiceClient(conn), Console: out, Org: k.Org,
		SlackHTTPClient: k.HTTPClient, HTTPClient: k.HTTPClient,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.closers = append(s.closers, conn.Close)
	return s, nil
}

// DevDigestEvery is the digest interval in dev mode unless
// SIDEKICK_NOTIFIER_DIGEST_EVERY says otherwise.
const DevDigestEvery = 10 * time.Second

// Run consumes conversation events, actions and rotation events, fires
// escalation steps, digests and storm updates on a timer, resumes and
// retries deliveries, and relays delivery events until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		for _, c := range s.closers {
			_ = c()
		}
	}()
	consumers := []struct {
		cfg bus.ConsumerConfig
		h   bus.Handler
	}{
		{bus.ConsumerConfig{Service: Name, Stream: bus.StreamConversations, Durable: DurableConversations,
			FilterSubjects: []string{bus.AllConversations}, Concurrency: s.cfg.Concurrency}, s.handler.Conversation},
		{bus.ConsumerConfig{Service: Name, Stream: bus.StreamActions, Durable: DurableActions,
			FilterSubjects: []string{bus.ActionSubject("ack"), bus.ActionSubject("escalate"), bus.ActionSubject("close")}}, s.handler.Action},
		{bus.ConsumerConfig{Service: Name, Stream: bus.StreamRotation, Durable: DurableRotation,
			FilterSubjects: []string{bus.RotationSubject("shift_started"), bus.RotationSubject("gap_ahead"), bus.RotationSubject("gap_covered")}}, s.handler.Rotation},
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range consumers {
		c.cfg.Backoff, c.cfg.MaxDeliver = s.cfg.ConsumerBackoff, s.cfg.ConsumerMaxDeliver
		cons, err := bus.NewConsumer(s.deps.JS, c.cfg, s.deps.Logger, s.deps.Registry)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", c.cfg.Durable, err)
		}
		g.Go(func() error { return cons.Run(gctx, c.h) })
	}
	g.Go(func() error { return s.relay.Run(gctx) })
	g.Go(func() error { return s.dispatcher.RunSweeper(gctx, s.cfg.SweepInterval) })
	g.Go(func() error { return s.dispatcher.RunBursts(gctx) })
	g.Go(func() error { return s.runner.Run(gctx, s.cfg.TickInterval) })
	g.Go(func() error { return s.pruner.Run(gctx) })
	g.Go(func() error { return s.org.Run(gctx) })
	if s.cfg.ShiftReminder > 0 {
		g.Go(func() error { return s.remind(gctx) })
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// Tick does at once what the timers do: fires the escalation steps,
// digests and storm updates due now by the service's clock, then sends due
// deliveries (retries, resumed sends). It returns how many it handled.
// Tests move a fake clock and call it.
func (s *Service) Tick(ctx context.Context) (int, error) {
	n, err := s.runner.Tick(ctx)
	m, serr := s.dispatcher.Sweep(ctx)
	return n + m, errors.Join(err, serr)
}

// remind checks for shifts about to start every ShiftReminderEvery until
// ctx is done; a failed check (rotation unreachable) is logged and the
// next one catches up, as the reminder keys make a reminder once.
func (s *Service) remind(ctx context.Context) error {
	every := s.cfg.ShiftReminderEvery
	if every <= 0 {
		every = time.Minute
	}
	for {
		if _, err := s.reminders.Check(ctx); err != nil && ctx.Err() == nil {
			s.deps.Logger.Warn("shift reminders", "error", err)
		}
		if !clock.Wait(ctx, s.deps.Clock, every) {
			return nil
		}
	}
}

// RemindShifts does at once what the reminder timer does: tells everybody
// whose shift starts within SIDEKICK_NOTIFIER_SHIFT_REMINDER, once per
// shift, and returns how many it told. Tests move a fake clock and call it.
func (s *Service) RemindShifts(ctx context.Context) (int, error) {
	return s.reminders.Check(ctx)
}

// Prune deletes, once, the rows older than the retention settings that
// nothing needs any more, and returns how many per table. Run does it every
// RetentionInterval; tests move a fake clock and call it.
func (s *Service) Prune(ctx context.Context) (map[string]int64, error) {
	return s.pruner.Prune(ctx)
}

// RegisterGRPC registers sidekick.notify.v1.NotifierService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) {
	notifyv1.RegisterNotifierServiceServer(r, s.api)
}

// logWriter sends console output to the logger when no writer was given.
type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Info("console delivery\n" + string(p))
	return len(p), nil
}
