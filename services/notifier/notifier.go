// Package notifier tells people about support work: it resolves who is on
// call through rotation, records every notification and delivery before
// sending it (so a redelivered event or a restart never sends twice and
// never forgets a send), delivers through channels (console, Slack), and
// publishes the delivery log on support.notify.{delivered,failed,acked}.
//
// It consumes support.conversation.> (OPENED notifies the Support Hero;
// RESPONDED and CLOSED stop further work) and support.action.ack, and
// serves sidekick.notify.v1.NotifierService.
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
	"github.com/sidekickhq/sidekick/platform/config"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/grpcapi"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/console"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/slack"
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
	// MaxAttempts is how many times one delivery is tried.
	MaxAttempts int `env:"SIDEKICK_NOTIFIER_MAX_ATTEMPTS" envDefault:"6"`
	// Backoff is the delay after each failed attempt; the last repeats.
	Backoff []time.Duration `env:"SIDEKICK_NOTIFIER_BACKOFF" envDefault:"10s,30s,1m,5m,15m" envSeparator:","`
	// SendTimeout bounds one channel call.
	SendTimeout time.Duration `env:"SIDEKICK_NOTIFIER_SEND_TIMEOUT" envDefault:"30s"`
	// Lease is how long a delivery being sent is left to its sender before
	// another replica resumes it; keep it well above SendTimeout.
	Lease time.Duration `env:"SIDEKICK_NOTIFIER_LEASE" envDefault:"2m"`
	// SweepInterval is how often due retries and abandoned deliveries are
	// looked for.
	SweepInterval time.Duration `env:"SIDEKICK_NOTIFIER_SWEEP_INTERVAL" envDefault:"5s"`
	// RelayInterval is how often the outbox is checked for events that
	// could not be published at once.
	RelayInterval time.Duration `env:"SIDEKICK_NOTIFIER_RELAY_INTERVAL" envDefault:"5s"`
	// ConsumerBackoff is the redelivery delay of bus messages whose handling
	// failed (rotation unreachable, say); empty: the bus default.
	ConsumerBackoff []time.Duration `env:"SIDEKICK_NOTIFIER_CONSUMER_BACKOFF" envSeparator:","`
	// ConsumerMaxDeliver is how many failed attempts at one bus message
	// (rotation unreachable, say) are made before it is dead-lettered.
	ConsumerMaxDeliver int `env:"SIDEKICK_NOTIFIER_CONSUMER_MAX_DELIVER" envDefault:"20"`
}

// Rotation is what the notifier asks the rotation service;
// rotationv1.RotationServiceClient satisfies it.
type Rotation interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
}

// Deps are the notifier's collaborators.
type Deps struct {
	Logger   *slog.Logger
	JS       jetstream.JetStream
	Pool     *pgxpool.Pool
	Registry prometheus.Registerer
	Now      func() time.Time
	Rotation Rotation
	// Console, when set, adds the console channel: what would be sent is
	// written there. It is the fallback for people no other channel
	// reaches (`sidekick dev`).
	Console io.Writer
	// Channels are extra channels, preferred over Slack and the console in
	// the order given.
	Channels []Channel
	// SlackHTTPClient is used by the Slack channel; nil: a default client.
	SlackHTTPClient *http.Client
}

// Service is the notifier.
type Service struct {
	cfg     Config
	deps    Deps
	engine  *deliver.Engine
	api     *grpcapi.Server
	closers []func() error
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
	channels := append([]notify.Channel(nil), deps.Channels...)
	if cfg.SlackBotToken != "" {
		channels = append(channels, slack.New(slack.Options{
			Token: cfg.SlackBotToken, APIURL: cfg.SlackAPIURL, HTTPClient: deps.SlackHTTPClient, Logger: deps.Logger,
		}))
	}
	if deps.Console != nil {
		channels = append(channels, console.New(deps.Console))
	}
	if len(channels) == 0 {
		return nil, errors.New("notifier: no delivery channel: set SIDEKICK_SLACK_BOT_TOKEN (or run `sidekick dev` for console output)")
	}
	engine, err := deliver.New(deliver.Config{
		MaxAttempts: cfg.MaxAttempts, Backoff: cfg.Backoff, Lease: cfg.Lease, SendTimeout: cfg.SendTimeout,
	}, deliver.Deps{
		Store: store.New(deps.Pool), Rotation: deps.Rotation, Channels: channels,
		Publisher: bus.NewPublisher(deps.JS, "sidekick/"+Name, bus.WithClock(deps.Now), bus.WithRegisterer(deps.Registry)),
		Logger:    deps.Logger, Registry: deps.Registry, Now: deps.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = 5 * time.Second
	}
	if cfg.RelayInterval <= 0 {
		cfg.RelayInterval = 5 * time.Second
	}
	return &Service{cfg: cfg, deps: deps, engine: engine, api: grpcapi.New(engine)}, nil
}

// FromKit builds the notifier inside a process wired by platform/app.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	conn, err := k.Dial(k.Common.RotationAddr)
	if err != nil {
		return nil, fmt.Errorf("dial rotation %s: %w", k.Common.RotationAddr, err)
	}
	out := k.Console
	if out == nil && k.Common.Dev && cfg.SlackBotToken == "" {
		out = logWriter{k.Logger}
	}
	s, err := New(cfg, Deps{
		Logger: k.Logger, JS: k.JS, Pool: k.Pool, Registry: k.Registry, Now: time.Now,
		Rotation: rotationv1.NewRotationServiceClient(conn), Console: out,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.closers = append(s.closers, conn.Close)
	return s, nil
}

// Run consumes conversation events and actions, resumes and retries
// deliveries, and relays delivery events until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		for _, c := range s.closers {
			_ = c()
		}
	}()
	conv, err := bus.NewConsumer(s.deps.JS, bus.ConsumerConfig{
		Service: Name, Stream: bus.StreamConversations, Durable: DurableConversations,
		FilterSubjects: []string{"support.conversation.>"}, Backoff: s.cfg.ConsumerBackoff, MaxDeliver: s.cfg.ConsumerMaxDeliver,
	}, s.deps.Logger, s.deps.Registry)
	if err != nil {
		return fmt.Errorf("conversation consumer: %w", err)
	}
	acts, err := bus.NewConsumer(s.deps.JS, bus.ConsumerConfig{
		Service: Name, Stream: bus.StreamActions, Durable: DurableActions,
		FilterSubjects: []string{bus.ActionSubject("ack")}, Backoff: s.cfg.ConsumerBackoff, MaxDeliver: s.cfg.ConsumerMaxDeliver,
	}, s.deps.Logger, s.deps.Registry)
	if err != nil {
		return fmt.Errorf("action consumer: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.engine.RunRelay(gctx, s.cfg.RelayInterval) })
	g.Go(func() error { return s.engine.RunSweeper(gctx, s.cfg.SweepInterval) })
	g.Go(func() error { return conv.Run(gctx, s.handleConversation) })
	g.Go(func() error { return acts.Run(gctx, s.handleAction) })
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
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
