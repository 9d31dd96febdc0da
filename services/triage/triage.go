// Package triage owns Sidekick's conversations: it consumes normalized
// inbound messages from support.inbound.> idempotently (an inbox table in
// the same transaction as the effect), groups them into conversations by
// (channel, thread key), assigns the customer's tier from the customer
// directory and categories from rules and a learned model (closing spam,
// routing business proposals to the business team), tracks the
// first-response clock in covered working time with durable deadline
// timers, summarises hero handoffs, and publishes
// support.conversation.<event> through a transactional outbox. It serves
// sidekick.triage.v1.ConversationService, CustomerService and
// ReportService.
package triage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strings"
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
	"github.com/sidekickhq/sidekick/platform/content"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/coverage"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/grpcapi"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
	"github.com/sidekickhq/sidekick/services/triage/internal/timers"
)

// Schema is triage's Postgres schema.
const Schema = "triage"

// Name is the service name: the bus consumer owner and dead-letter subject.
const Name = "triage"

// DurableInbound is the durable consumer of support.inbound.>.
const DurableInbound = "triage-inbound"

// DurableRotation is the durable consumer of the rotation events triage
// reacts to (hero handoffs, overrides).
const DurableRotation = "triage-rotation"

// DurableReceipts is the durable consumer of the receipts of replies and
// mirror posts (support.outbound.*.receipt).
const DurableReceipts = "triage-receipts"

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

// Config is triage's own configuration.
type Config struct {
	// ConsoleURL is the base of conversation share links
	// (ConsoleURL/conversations/<id>).
	ConsoleURL string `env:"SIDEKICK_CONSOLE_URL" envDefault:"http://localhost:8080/console"`
	// PriorityRevenueCents is the monthly revenue from which a customer is
	// Priority (default $2,000).
	PriorityRevenueCents int64 `env:"SIDEKICK_TRIAGE_PRIORITY_REVENUE_CENTS" envDefault:"200000"`
	// Concurrency is the number of inbound batches applied at once. Above
	// 1, messages of one thread may be applied out of order (a reply before
	// the question): keep 1 unless ordering is not needed.
	Concurrency int `env:"SIDEKICK_TRIAGE_CONCURRENCY" envDefault:"1"`
	// InboundBatch is the most inbound messages applied in one transaction,
	// in delivery order; 1 applies them one at a time.
	InboundBatch int `env:"SIDEKICK_TRIAGE_INBOUND_BATCH" envDefault:"200"`
	// RelayInterval is how often the outbox is polled when no Postgres
	// notification wakes the relay.
	RelayInterval time.Duration `env:"SIDEKICK_TRIAGE_RELAY_INTERVAL" envDefault:"1s"`
	// RelayBatch is the most events published per outbox transaction.
	RelayBatch int `env:"SIDEKICK_TRIAGE_RELAY_BATCH" envDefault:"100"`
	// ConsumerBackoff is the redelivery delay of inbound messages whose
	// handling failed (Postgres unavailable, say); empty: the bus default.
	ConsumerBackoff []time.Duration `env:"SIDEKICK_TRIAGE_CONSUMER_BACKOFF" envSeparator:","`
	// ConsumerMaxDeliver is how many failed attempts at one inbound message
	// are made before it is dead-lettered.
	ConsumerMaxDeliver int `env:"SIDEKICK_TRIAGE_CONSUMER_MAX_DELIVER" envDefault:"20"`
	// InboxRetention is how long handled inbound message ids are kept to
	// drop redeliveries (GitHub redelivers days later); never less than
	// store.MinKeepInbox, the inbound stream's max age and a week.
	InboxRetention time.Duration `env:"SIDEKICK_TRIAGE_INBOX_RETENTION" envDefault:"888h"`
	// OutboxRetention is how long published events stay in the outbox.
	OutboxRetention time.Duration `env:"SIDEKICK_TRIAGE_OUTBOX_RETENTION" envDefault:"24h"`
	// RetentionInterval and RetentionBatch pace the pruning of the inbox
	// and the outbox: how often it runs, and the most rows it deletes per
	// transaction.
	RetentionInterval time.Duration `env:"SIDEKICK_TRIAGE_RETENTION_INTERVAL" envDefault:"10m"`
	RetentionBatch    int           `env:"SIDEKICK_TRIAGE_RETENTION_BATCH" envDefault:"1000"`

	// ResponseGreat, ResponseOkay and ResponseTooLate are the first-response
	// thresholds in covered working time for every tier (the organisation
	// file may set them per tier): under great is great, under okay is
	// okay, from too late on the deadline is breached.
	ResponseGreat   time.Duration `env:"SIDEKICK_TRIAGE_RESPONSE_GREAT" envDefault:"15m"`
	ResponseOkay    time.Duration `env:"SIDEKICK_TRIAGE_RESPONSE_OKAY" envDefault:"1h"`
	ResponseTooLate time.Duration `env:"SIDEKICK_TRIAGE_RESPONSE_TOO_LATE" envDefault:"8h"`
	// Coverage says when response clocks run, for the tiers whose policy
	// does not say (the organisation file's `coverage:`): "duty" (while
	// whoever is on duty as hero, or a catcher covering them, is within
	// working hours, asked from rotation's WorkingWindows), "roster"
	// (while anybody on the support roster is; "rotation" is its older
	// name) or "always" (wall-clock time). Without a rotation client,
	// duty and roster count wall-clock time.
	Coverage string `env:"SIDEKICK_TRIAGE_COVERAGE" envDefault:"duty"`
	// WindowsTTL is how long working windows fetched from rotation are
	// reused.
	WindowsTTL time.Duration `env:"SIDEKICK_TRIAGE_WINDOWS_TTL" envDefault:"5m"`
	// DeadlineHorizon is how far ahead working windows are fetched to place
	// the next deadline.
	DeadlineHorizon time.Duration `env:"SIDEKICK_TRIAGE_DEADLINE_HORIZON" envDefault:"336h"`
	// TimerInterval is the longest the timer loop sleeps between looks at
	// the timers table (it otherwise wakes when the next timer is due).
	TimerInterval time.Duration `env:"SIDEKICK_TRIAGE_TIMER_INTERVAL" envDefault:"250ms"`
	// TimerBatch is the most timers fired per transaction.
	TimerBatch int `env:"SIDEKICK_TRIAGE_TIMER_BATCH" envDefault:"500"`
	// BusinessTeam is the team marketing and partnership proposals are
	// given to (notifier routes it to the business contacts).
	BusinessTeam string `env:"SIDEKICK_TRIAGE_BUSINESS_TEAM" envDefault:"business"`
	// HandoffMaxOpen caps the conversation snapshots in a handoff summary.
	HandoffMaxOpen int `env:"SIDEKICK_TRIAGE_HANDOFF_MAX_OPEN" envDefault:"200"`
	// HandoffReminder is how long before the hero's duty ends the hero is
	// told which open conversations still lack a handoff note (through
	// the notifier at SIDEKICK_NOTIFIER_ADDR); 0 disables it.
	HandoffReminder time.Duration `env:"SIDEKICK_TRIAGE_HANDOFF_REMINDER" envDefault:"1h"`
	// HandoffReminderEvery is how often that is checked.
	HandoffReminderEvery time.Duration `env:"SIDEKICK_TRIAGE_HANDOFF_REMINDER_EVERY" envDefault:"1m"`
	// PeopleTTL is how long the people of the organisation file, asked
	// from rotation, are reused to map staff authors to persons.
	PeopleTTL time.Duration `env:"SIDEKICK_TRIAGE_PEOPLE_TTL" envDefault:"1m"`
	// SupportChannel is the Slack channel id of the support channel (the
	// handbook's #_customer_support): every conversation from elsewhere
	// gets a thread there. Empty: no mirror. See docs/replies.md.
	SupportChannel string `env:"SIDEKICK_SUPPORT_CHANNEL"`
	// NotePrefix starts a message in a mirror thread that is a private
	// note rather than a reply to the customer.
	NotePrefix string `env:"SIDEKICK_SUPPORT_NOTE_PREFIX" envDefault:"!note"`
	// EmailFrom is the support address email replies come from (the
	// variable ingest-email reads too): triage chooses each reply's
	// Message-ID at its domain, so the customer's answer threads back.
	EmailFrom string `env:"SIDEKICK_EMAIL_FROM"`
	// Org holds the organisation file's triage settings (FromKit takes
	// them from the Kit's file); see OrgFrom.
	Org Org `env:"-"`
}

// Rotation is what triage asks the rotation service: the working windows
// deadlines count in, and the next hero at a handoff.
// rotationv1.RotationServiceClient satisfies it.
type Rotation interface {
	coverage.WindowsClient
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// Deps are triage's collaborators.
type Deps struct {
	Logger   *slog.Logger
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Registry prometheus.Registerer
	// Clock is what every timer, deadline and timestamp of triage reads;
	// nil: the wall clock.
	Clock clock.Clock
	// Rotation is the rotation service's client: the working windows of
	// the duty and roster coverages, and the next hero at a handoff.
	Rotation Rotation
	// Coverage, when set, replaces the working windows from rotation, of
	// every coverage but always (tests and benchmarks).
	Coverage coverage.Source
	// People, when set, replaces the people asked from Rotation (tests;
	// an installation without rotation maps no staff to persons).
	People people.Source
	// Publisher, when set, replaces the outbox relay's JetStream publisher
	// (tests use it to fail mid-batch).
	Publisher outbox.Publisher
	// OnTimerFired, when set, is called with each fired deadline timer's
	// lateness (benchmarks).
	OnTimerFired func(lag time.Duration)
	// Notifier, when set with Rotation, sends the handoff note reminder
	// (HandoffReminder).
	Notifier Notifier
	// Org is the organisation file Config.Org was read from, nil when
	// none: the version in force until rotation announces another.
	Org *orgfile.File
}

// Service is triage.
type Service struct {
	cfg      Config
	deps     Deps
	engine   *engine.Engine
	relay    *outbox.Relay
	pruner   *prune.Pruner
	inbound  *bus.Consumer
	rotation *bus.Consumer
	actions  *bus.Consumer
	acks     *bus.Consumer
	receipts *bus.Consumer
	timers   *timers.Loop
	caches   []*coverage.Cache // of the duty and roster windows
	api      *grpcapi.Server
	org      *orgwatch.Watcher
}

// New builds triage from its configuration and dependencies.
func New(cfg Config, deps Deps) (*Service, error) {
	switch {
	case deps.Pool == nil:
		return nil, errors.New("triage: Pool is required")
	case deps.JS == nil:
		return nil, errors.New("triage: JS is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Clock = clock.OrReal(deps.Clock)
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	policy, err := cfg.policy()
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, deps: deps}
	duty, roster, err := s.coverage()
	if err != nil {
		return nil, err
	}
	business := cfg.BusinessTeam
	if cfg.Org.BusinessTeam != "" {
		business = cfg.Org.BusinessTeam
	}
	staff := deps.People
	if staff == nil && deps.Rotation != nil {
		if staff, err = people.NewCache(deps.Rotation, cfg.PeopleTTL, deps.Clock, deps.Logger, deps.Registry); err != nil {
			return nil, fmt.Errorf("triage: %w", err)
		}
	}
	if c := strings.TrimSpace(cfg.SupportChannel); c != "" && !slackChannelID.MatchString(c) {
		return nil, fmt.Errorf("triage: SIDEKICK_SUPPORT_CHANNEL %q is not a Slack channel id (C…, G… as shown in the channel's details)", c)
	}
	s.engine, err = engine.New(deps.Pool, engine.Config{
		ConsoleURL:     cfg.ConsoleURL,
		Rules:          tier.Rules{PriorityRevenueCents: cfg.PriorityRevenueCents},
		Policy:         policy,
		Coverage:       duty,
		Roster:         roster,
		Horizon:        cfg.DeadlineHorizon,
		Classify:       cfg.Org.Rules,
		BusinessTeam:   business,
		HandoffMaxOpen: cfg.HandoffMaxOpen,
		People:         staff,
		Mirror:         engine.MirrorConfig{Channel: strings.TrimSpace(cfg.SupportChannel), NotePrefix: cfg.NotePrefix},
		EmailFrom:      cfg.EmailFrom,
		Logger:         deps.Logger,
		// A deadline armed sooner than the loop planned to look wakes it.
		OnArmed: func(due time.Time) { s.timers.Armed(due) },
	}, deps.Clock, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	pub := deps.Publisher
	if pub == nil {
		pub = bus.NewPublisher(deps.JS, "sidekick/"+Name, bus.WithClock(deps.Clock.Now), bus.WithRegisterer(deps.Registry))
	}
	s.relay, err = outbox.New(deps.Pool, pub, outbox.Config{Batch: cfg.RelayBatch, Interval: cfg.RelayInterval},
		deps.Clock, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	if cfg.InboxRetention > 0 && cfg.InboxRetention < store.MinKeepInbox {
		deps.Logger.Info("inbox retention raised to the minimum: ids must outlive the inbound stream's max age and late redeliveries",
			"configured", cfg.InboxRetention, "used", store.MinKeepInbox)
	}
	if cfg.OutboxRetention <= 0 {
		cfg.OutboxRetention = 24 * time.Hour
	}
	s.pruner, err = prune.New(deps.Pool, prune.Config{Service: Name, Interval: cfg.RetentionInterval, Batch: cfg.RetentionBatch, Clock: deps.Clock},
		store.RetentionRules(cfg.OutboxRetention, cfg.InboxRetention), deps.Logger, deps.Clock.Now, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	s.inbound, err = bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Service:        Name,
		Stream:         bus.StreamInbound,
		Durable:        DurableInbound,
		FilterSubjects: []string{bus.AllInbound},
		MaxDeliver:     cfg.ConsumerMaxDeliver,
		Backoff:        cfg.ConsumerBackoff,
		Concurrency:    cfg.Concurrency,
		Batch:          cfg.InboundBatch,
	}, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	// The other consumers take one message at a time.
	consumer := func(stream, durable string, subjects ...string) (*bus.Consumer, error) {
		c, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
			Service: Name, Stream: stream, Durable: durable, FilterSubjects: subjects,
			MaxDeliver: cfg.ConsumerMaxDeliver, Backoff: cfg.ConsumerBackoff,
		}, deps.Logger, deps.Registry)
		if err != nil {
			return nil, fmt.Errorf("triage: %w", err)
		}
		return c, nil
	}
	if s.rotation, err = consumer(bus.StreamRotation, DurableRotation,
		bus.RotationSubject("shift_started"), bus.RotationSubject("shift_ended"), bus.RotationSubject("override_created")); err != nil {
		return nil, err
	}
	if s.actions, err = consumer(bus.StreamActions, DurableActions,
		bus.ActionSubject("close"), bus.ActionSubject("assign"), bus.ActionSubject("escalate"), bus.ActionSubject("ack")); err != nil {
		return nil, err
	}
	if s.acks, err = consumer(bus.StreamNotify, DurableAcks, bus.NotifySubject("acked")); err != nil {
		return nil, err
	}
	if s.receipts, err = consumer(bus.StreamOutbound, DurableReceipts, bus.AllOutboundReceipts); err != nil {
		return nil, err
	}
	s.timers, err = timers.New(s.engine, timers.Config{
		Batch: cfg.TimerBatch, Interval: cfg.TimerInterval, OnFired: deps.OnTimerFired,
	}, deps.Clock, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	s.org, err = orgwatch.New(deps.JS, orgwatch.Config{Load: s.loadOrg}, deps.Org, deps.Clock, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	s.api = grpcapi.New(s.engine)
	return s, nil
}

// coverage picks where the working windows of the duty and the roster
// coverages come from: rotation, through a cache each.
func (s *Service) coverage() (duty, roster coverage.Source, err error) {
	if s.deps.Coverage != nil {
		return s.deps.Coverage, s.deps.Coverage, nil
	}
	if s.deps.Rotation == nil {
		// Nobody to ask when people work: wall-clock time.
		return coverage.Always{}, coverage.Always{}, nil
	}
	cached := func(role rotationv1.Role) (coverage.Source, error) {
		c, err := coverage.NewCache(coverage.Rotation{Client: s.deps.Rotation, Role: role}, coverage.CacheConfig{TTL: s.cfg.WindowsTTL},
			s.deps.Clock, s.deps.Logger, s.deps.Registry)
		if err != nil {
			return nil, fmt.Errorf("triage: %w", err)
		}
		s.caches = append(s.caches, c)
		return c, nil
	}
	if duty, err = cached(rotationv1.Role_ROLE_HERO); err != nil {
		return nil, nil, err
	}
	if roster, err = cached(rotationv1.Role_ROLE_UNSPECIFIED); err != nil {
		return nil, nil, err
	}
	return duty, roster, nil
}

// Spec describes triage to an app.Host: its schema, its connections'
// settings, gRPC and its sections of the organisation file.
func Spec() app.Spec {
	return app.Spec{Name: Name, Schema: Schema, Migrations: Migrations(), Settings: PostgresSettings(), GRPC: true, Org: true,
		Config: &Config{}, Build: FromKit}
}

// PostgresSettings are the run-time parameters of triage's connections.
//
// JIT is off: triage's statements read a page or a few thousand rows, and
// over a large history the planner's cost estimates pass jit_above_cost
// for some of them, so PostgreSQL spent longer compiling them than running
// them (a search for an error code over a million conversations: 155 ms
// of JIT for a 5 ms statement; the 90-day report seconds;
// docs/performance.md). A jit setting in SIDEKICK_DATABASE_URL wins.
func PostgresSettings() map[string]string { return map[string]string{"jit": "off"} }

// FromKit builds triage inside a process wired by platform/app: it takes
// its sections of the organisation file from the Kit and dials rotation at
// SIDEKICK_ROTATION_ADDR.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	var err error
	if cfg.Org, err = OrgFrom(k.Org); err != nil {
		return nil, fmt.Errorf("triage: %s: %w", k.Common.OrgConfig, err)
	}
	deps := Deps{Logger: k.Logger, JS: k.JS, Pool: k.Pool, Registry: k.Registry, Clock: k.Clock, Org: k.Org}
	if k.Dial != nil {
		conn, err := k.Dial(k.Common.RotationAddr)
		if err != nil {
			return nil, fmt.Errorf("triage: dial rotation %s: %w", k.Common.RotationAddr, err)
		}
		deps.Rotation = rotationv1.NewRotationServiceClient(conn)
		nconn, err := k.Dial(k.Common.NotifierAddr)
		if err != nil {
			return nil, fmt.Errorf("triage: dial notifier %s: %w", k.Common.NotifierAddr, err)
		}
		deps.Notifier = notifyv1.NewNotifierServiceClient(nconn)
	}
	return New(cfg, deps)
}

// Run consumes inbound messages, rotation events, close, assign and
// escalate actions, notifier's acknowledgements and the receipts of
// replies, fires deadline timers, relays the outbox and prunes sent events
// and old inbox ids until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.inbound.RunBatch(ctx, s.handleInbound) })
	g.Go(func() error { return s.rotation.Run(ctx, s.handleRotation) })
	g.Go(func() error { return s.actions.Run(ctx, s.handleAction) })
	g.Go(func() error { return s.acks.Run(ctx, s.handleAcked) })
	g.Go(func() error { return s.receipts.Run(ctx, s.handleReceipt) })
	g.Go(func() error { return s.timers.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	g.Go(func() error { return s.pruner.Run(ctx) })
	g.Go(func() error { return s.org.Run(ctx) })
	if s.cfg.HandoffReminder > 0 && s.deps.Rotation != nil && s.deps.Notifier != nil {
		g.Go(func() error { return s.remindHandoffNotes(ctx) })
	}
	g.Go(func() error { return s.fillSearchText(ctx) })
	return g.Wait()
}

// fillSearchText indexes for search the messages stored before search
// existed (migration 00005), then returns; a failure is logged and left
// for the next start, since search missing old messages must not stop
// triage.
func (s *Service) fillSearchText(ctx context.Context) error {
	n, err := s.engine.FillSearchText(ctx, 500)
	switch {
	case err != nil && ctx.Err() == nil:
		s.deps.Logger.Error("indexing earlier messages for search failed; the next start continues", "indexed", n, "error", err)
	case n > 0:
		s.deps.Logger.Info("indexed earlier messages for search", "messages", n)
	}
	return nil
}

// RegisterGRPC registers ConversationService, CustomerService and
// ReportService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) { s.api.Register(r) }

// decodeInbound decodes a support.inbound.* message and, when it is a stub
// whose content went to the object store (platform/content), puts the
// whole message back. Content that has expired leaves the stub and its
// preview; any other failure to read it is retried.
func (s *Service) decodeInbound(ctx context.Context, msg jetstream.Msg) (*supportv1.InboundMessage, error) {
	var m supportv1.InboundMessage
	if err := bus.Decode(msg, &m); err != nil {
		return nil, err
	}
	if m.GetId() == "" {
		m.Id = msg.Headers().Get(bus.HeaderID)
	}
	err := content.Resolve(ctx, s.deps.JS, &m)
	if errors.Is(err, content.ErrGone) {
		s.deps.Logger.Warn("inbound content gone; keeping the preview", "message_id", m.GetId(), "error", err)
		err = nil
	}
	return &m, err
}

// handleInbound applies support.inbound.* messages in delivery order in
// one transaction; a message that does not decode or is invalid is
// dead-lettered on its own. When the transaction fails (the database, or
// one message that cannot be applied), each message is applied again as a
// batch of its own, so one bad message holds up no other.
func (s *Service) handleInbound(ctx context.Context, msgs []jetstream.Msg) []error {
	errs := make([]error, len(msgs))
	in := make([]engine.Inbound, 0, len(msgs))
	of := make([]int, 0, len(msgs)) // in[j] is msgs[of[j]]
	for i, msg := range msgs {
		m, err := s.decodeInbound(ctx, msg)
		if err == nil {
			err = engine.ValidInbound(m)
		}
		if err != nil {
			errs[i] = inboundError(err)
			continue
		}
		in = append(in, engine.Inbound{Message: m, Subject: msg.Subject()})
		of = append(of, i)
	}
	if len(in) == 0 {
		return errs
	}
	results, err := s.engine.HandleInbound(ctx, in)
	if err != nil && len(in) > 1 {
		s.deps.Logger.Info("batch failed; applying its messages one by one", "messages", len(in), "error", err)
		for j := range in {
			_, err := s.engine.HandleInbound(ctx, in[j:j+1])
			errs[of[j]] = inboundError(err)
		}
		return errs
	}
	for j, m := range in {
		if errs[of[j]] = inboundError(err); err == nil {
			s.deps.Logger.Debug("inbound handled", "message_id", m.Message.GetId(), "thread_key", m.Message.GetThreadKey(), "result", string(results[j]))
		}
	}
	return errs
}

// slackChannelID is the form of a Slack channel id.
var slackChannelID = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)

// handleReceipt records a reply's or mirror post's receipt. A receipt that
// cannot be read is dead-lettered; the same receipt twice, or a stale one,
// changes nothing.
func (s *Service) handleReceipt(ctx context.Context, msg jetstream.Msg) error {
	var rc supportv1.OutboundReceipt
	if err := bus.Decode(msg, &rc); err != nil {
		return bus.Permanent(err)
	}
	changed, err := s.engine.HandleReceipt(ctx, &rc)
	switch {
	case errors.Is(err, engine.ErrInvalid):
		return bus.Permanent(err)
	case err != nil:
		return bus.AtLocation("receipt", err)
	}
	s.deps.Logger.Debug("receipt", "outbound_id", rc.GetOutboundId(), "status", rc.GetStatus().String(), "retry", rc.GetRetry(), "changed", changed)
	return nil
}

// inboundError is the consumer's outcome of an inbound message's error:
// an invalid message is dead-lettered at once.
func inboundError(err error) error {
	if errors.Is(err, engine.ErrInvalid) {
		return bus.Permanent(err)
	}
	return err
}
