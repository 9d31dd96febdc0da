// Package triage owns Sidekick's conversations: it consumes normalized
// inbound messages from support.inbound.> idempotently (an inbox table in
// the same transaction as the effect), groups them into conversations by
// (channel, thread key), assigns the customer's tier from the customer
// directory, tracks status and the first response, and publishes
// support.conversation.<event> through a transactional outbox. It serves
// sidekick.triage.v1.ConversationService and CustomerService.
package triage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/config"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/grpcapi"
	"github.com/sidekickhq/sidekick/services/triage/internal/outbox"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
)

// Schema is triage's Postgres schema.
const Schema = "triage"

// Name is the service name: the bus consumer owner and dead-letter subject.
const Name = "triage"

// DurableInbound is the durable consumer of support.inbound.>.
const DurableInbound = "triage-inbound"

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
	// Concurrency is the number of inbound messages handled at once. Above
	// 1, messages of one thread may be applied out of order (a reply before
	// the question): keep 1 unless ordering is not needed.
	Concurrency int `env:"SIDEKICK_TRIAGE_CONCURRENCY" envDefault:"1"`
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
	// drop redeliveries (GitHub redelivers days later).
	InboxRetention time.Duration `env:"SIDEKICK_TRIAGE_INBOX_RETENTION" envDefault:"720h"`
}

// Deps are triage's collaborators.
type Deps struct {
	Logger   *slog.Logger
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Registry prometheus.Registerer
	Now      func() time.Time
	// Publisher, when set, replaces the outbox relay's JetStream publisher
	// (tests use it to fail mid-batch).
	Publisher outbox.Publisher
}

// Service is triage.
type Service struct {
	cfg      Config
	deps     Deps
	engine   *engine.Engine
	relay    *outbox.Relay
	consumer *bus.Consumer
	api      *grpcapi.Server
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
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	eng, err := engine.New(deps.Pool, engine.Config{
		ConsoleURL: cfg.ConsoleURL,
		Rules:      tier.Rules{PriorityRevenueCents: cfg.PriorityRevenueCents},
	}, deps.Now, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	pub := deps.Publisher
	if pub == nil {
		pub = bus.NewPublisher(deps.JS, "sidekick/"+Name, bus.WithClock(deps.Now), bus.WithRegisterer(deps.Registry))
	}
	relay, err := outbox.New(deps.Pool, pub, outbox.Config{
		Batch: cfg.RelayBatch, Interval: cfg.RelayInterval, KeepInbox: cfg.InboxRetention,
	}, deps.Logger, deps.Now, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	consumer, err := bus.NewConsumer(deps.JS, bus.ConsumerConfig{
		Service:        Name,
		Stream:         bus.StreamInbound,
		Durable:        DurableInbound,
		FilterSubjects: []string{bus.AllInbound},
		MaxDeliver:     cfg.ConsumerMaxDeliver,
		Backoff:        cfg.ConsumerBackoff,
		Concurrency:    cfg.Concurrency,
	}, deps.Logger, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("triage: %w", err)
	}
	return &Service{cfg: cfg, deps: deps, engine: eng, relay: relay, consumer: consumer, api: grpcapi.New(eng)}, nil
}

// FromKit builds triage inside a process wired by platform/app.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	return New(cfg, Deps{Logger: k.Logger, JS: k.JS, Pool: k.Pool, Registry: k.Registry})
}

// Run consumes inbound messages and relays the outbox until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.consumer.Run(ctx, s.handleInbound) })
	g.Go(func() error { return s.relay.Run(ctx) })
	return g.Wait()
}

// RegisterGRPC registers ConversationService and CustomerService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) { s.api.Register(r) }

// handleInbound applies one support.inbound.* message.
func (s *Service) handleInbound(ctx context.Context, msg jetstream.Msg) error {
	var m supportv1.InboundMessage
	if err := bus.Decode(msg, &m); err != nil {
		return err
	}
	if m.GetId() == "" {
		m.Id = msg.Headers().Get(bus.HeaderID)
	}
	res, err := s.engine.HandleInbound(ctx, &m, msg.Subject())
	if errors.Is(err, engine.ErrInvalid) {
		return bus.Permanent(err)
	}
	if err != nil {
		return err
	}
	s.deps.Logger.Debug("inbound handled", "message_id", m.GetId(), "thread_key", m.GetThreadKey(), "result", string(res))
	return nil
}
