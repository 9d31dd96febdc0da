// Package ingestslack is the Slack ingest service. It receives Slack's
// Events API (POST /slack/events, or the same events over Socket Mode),
// interactive button clicks (POST /slack/interactions) and the /hero slash
// command (POST /slack/commands); it verifies Slack's request signature,
// normalizes messages in the intake channels into InboundMessages on
// support.inbound.slack and button clicks into Actions on
// support.action.<ack|escalate|close>, and answers Slack only after
// JetStream acknowledged the publish.
//
// The message id is "slack:"+event_id. Slack keeps event_id when it
// retries a delivery (X-Slack-Retry-Num), so JetStream's duplicate window
// drops a quick retry and triage's inbox table a later one; the service
// itself keeps no state beyond a cache of users.info answers.
//
// What is published and what is not:
//   - top-level messages, thread replies (thread_broadcast too), file
//     shares and /me messages: kind POSTED;
//   - message_changed: kind EDITED, unless neither text nor files changed
//     (unfurls, reply counts), which is dropped; a thread root deleted
//     while it has replies (a tombstone) is kind DELETED;
//   - message_deleted: kind DELETED;
//   - messages of other bots and apps: published with author role BOT, so
//     the thread keeps them while triage opens nothing for them;
//   - this app's own messages, channel joins and leaves and other channel
//     housekeeping: dropped, counted in
//     sidekick_ingest_slack_events_total{result="ignored_self"|"ignored_subtype"};
//   - app_mention: published only from channels outside the intake
//     allow-list (mentioning the app is how a thread elsewhere is brought
//     in); in intake channels the message event carries the same message.
package ingestslack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/outbound"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/directory"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackevent"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackreply"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slacksig"
)

// Name is the name of the service; dead letters go to
// support.deadletter.ingest-slack.
const Name = "ingest-slack"

// Source is the ce-source of everything the service publishes.
const Source = "sidekick/ingest-slack"

// Modes of receiving events.
const (
	// ModeEvents receives the Events API over HTTP (POST /slack/events).
	ModeEvents = "events"
	// ModeSocket receives events, interactions and commands over a Socket
	// Mode WebSocket opened with the app-level token; the HTTP routes
	// stay mounted.
	ModeSocket = "socket"
)

// Config is ingest-slack's configuration.
type Config struct {
	// SigningSecret verifies every HTTP request from Slack.
	SigningSecret string `env:"SIDEKICK_SLACK_SIGNING_SECRET,required,notEmpty"`
	// BotToken (xoxb-) resolves authors with users.info (cached) and,
	// without WorkspaceURL, the workspace's URL with auth.test (once);
	// without it the event's own facts are used.
	BotToken string `env:"SIDEKICK_SLACK_BOT_TOKEN"`
	// AppToken (xapp-, scope connections:write) opens Socket Mode.
	AppToken string `env:"SIDEKICK_SLACK_APP_TOKEN"`
	// Mode is "events" (HTTP Events API) or "socket" (Socket Mode).
	Mode string `env:"SIDEKICK_SLACK_MODE" envDefault:"events"`
	// Channels is the intake allow-list of channel ids (C…, G…); empty
	// takes every channel the app is in.
	Channels []string `env:"SIDEKICK_SLACK_CHANNELS"`
	// TeamID is our own workspace: its members are staff, everyone else a
	// customer. Empty means the workspace the app is installed in (the
	// team_id of each event).
	TeamID string `env:"SIDEKICK_SLACK_TEAM_ID"`
	// MaxBodyBytes bounds a request; larger ones get 413.
	MaxBodyBytes int64 `env:"SIDEKICK_SLACK_MAX_BODY" envDefault:"1048576"`
	// APIURL overrides the Web API base URL (tests and fakes).
	APIURL string `env:"SIDEKICK_SLACK_API_URL"`
	// WorkspaceURL, such as https://acme.slack.com, is the base of the
	// permalinks (https://acme.slack.com/archives/<channel>/p<ts>); empty
	// asks auth.test once with the bot token, and until that answers (or
	// without a token) links use the web client's thread view, which
	// needs only ids.
	WorkspaceURL string `env:"SIDEKICK_SLACK_WORKSPACE_URL"`
	// Timeout bounds the handling of one request (lookups and publish),
	// inside Slack's 3 seconds; past it the answer is 503 and Slack retries.
	Timeout time.Duration `env:"SIDEKICK_SLACK_TIMEOUT" envDefault:"2500ms"`
	// UserCacheTTL is how long a users.info answer is reused.
	UserCacheTTL time.Duration `env:"SIDEKICK_SLACK_USER_CACHE_TTL" envDefault:"1h"`

	// Replies to customers (support.outbound.slack) are sent with BotToken
	// whenever it is set; see docs/replies.md.

	// ReplyConcurrency is how many replies are sent at once.
	ReplyConcurrency int `env:"SIDEKICK_SLACK_REPLY_CONCURRENCY" envDefault:"4"`
	// ReplyAckWait is how long a reply whose sending process died waits
	// before it is tried again.
	ReplyAckWait time.Duration `env:"SIDEKICK_SLACK_REPLY_ACK_WAIT" envDefault:"30s"`
	// ReplySettle is how long after an interrupted attempt the thread is
	// searched for it (conversations.replies) before the reply is posted
	// again.
	ReplySettle time.Duration `env:"SIDEKICK_SLACK_REPLY_SETTLE" envDefault:"5s"`
}

// Publisher publishes one event and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// OnCallLookup is the part of rotationv1.RotationServiceClient that /hero
// needs (its arguments: a team, next week, a person's next shift).
type OnCallLookup interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListTeams(ctx context.Context, in *rotationv1.ListTeamsRequest, opts ...grpc.CallOption) (*rotationv1.ListTeamsResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
	ListShifts(ctx context.Context, in *rotationv1.ListShiftsRequest, opts ...grpc.CallOption) (*rotationv1.ListShiftsResponse, error)
}

var _ OnCallLookup = rotationv1.RotationServiceClient(nil)

// Deps are ingest-slack's collaborators.
type Deps struct {
	Logger *slog.Logger
	// JS stores dead letters.
	JS        jetstream.JetStream
	Publisher Publisher
	Registry  prometheus.Registerer
	Now       func() time.Time
	// OnCall answers /hero; nil makes /hero say the rotation service is
	// not configured.
	OnCall OnCallLookup
	// HTTPClient is used for the Slack Web API; default http.DefaultClient.
	HTTPClient *http.Client
	// Clock times replies' retries; default the wall clock.
	Clock clock.Clock
	// LedgerReplicas is the replica count of the reply ledger bucket (the
	// kit's SIDEKICK_STREAM_REPLICAS); default 1.
	LedgerReplicas int
	// LedgerMaxBytes bounds the reply ledger bucket (the kit's
	// SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES); default outbound's.
	LedgerMaxBytes int64
}

// Service is the Slack ingest service.
type Service struct {
	cfg      Config
	deps     Deps
	verifier *slacksig.Verifier
	opts     slackevent.Options
	api      *slack.Client
	dir      *directory.Directory
	metrics  *metrics
	closers  []func() error
	// workspace is the workspace's URL as auth.test gave it; nil until
	// then (see learnWorkspace).
	workspace atomic.Pointer[string]
	// replies sends support.outbound.slack; nil without a bot token.
	replies *outbound.Runner
}

var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// New checks cfg and builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if cfg.SigningSecret == "" {
		return nil, errors.New("ingest-slack: SIDEKICK_SLACK_SIGNING_SECRET is required")
	}
	if deps.Publisher == nil || deps.JS == nil {
		return nil, errors.New("ingest-slack: a publisher and JetStream (for dead letters) are required")
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeEvents
	case ModeEvents:
	case ModeSocket:
		if !strings.HasPrefix(cfg.AppToken, "xapp-") {
			return nil, errors.New("ingest-slack: SIDEKICK_SLACK_MODE=socket needs SIDEKICK_SLACK_APP_TOKEN (an app-level xapp- token with connections:write)")
		}
	default:
		return nil, fmt.Errorf("ingest-slack: SIDEKICK_SLACK_MODE is %q, want events or socket", cfg.Mode)
	}
	opts := slackevent.Options{}
	for _, c := range cfg.Channels {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !channelID.MatchString(c) {
			return nil, fmt.Errorf("ingest-slack: SIDEKICK_SLACK_CHANNELS: %q is not a channel id (C…, G… as shown in the channel's details)", c)
		}
		if opts.Channels == nil {
			opts.Channels = map[string]bool{}
		}
		opts.Channels[c] = true
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2500 * time.Millisecond
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{cfg: cfg, deps: deps, verifier: slacksig.NewVerifier([]byte(cfg.SigningSecret)), opts: opts, metrics: newMetrics(deps.Registry)}
	if cfg.BotToken != "" || cfg.AppToken != "" {
		o := []slack.Option{slack.OptionAppLevelToken(cfg.AppToken)}
		if cfg.APIURL != "" {
			u := cfg.APIURL
			if !strings.HasSuffix(u, "/") {
				u += "/"
			}
			o = append(o, slack.OptionAPIURL(u))
		}
		if deps.HTTPClient != nil {
			o = append(o, slack.OptionHTTPClient(deps.HTTPClient))
		}
		s.api = slack.New(cfg.BotToken, o...)
	}
	if cfg.BotToken != "" {
		s.dir = directory.New(s.api, directory.Options{TTL: cfg.UserCacheTTL, Now: deps.Now, Refreshed: func(err error) {
			// After the answer: a sender seen before is looked up again
			// off the request path.
			if err != nil {
				s.metrics.lookups.WithLabelValues("users.info", "refresh_error").Inc()
				s.deps.Logger.Warn("users.info in the background failed; the cached profile stays in use", "error", err)
				return
			}
			s.metrics.lookups.WithLabelValues("users.info", "refreshed").Inc()
		}})
		r, err := outbound.New(outbound.Config{
			Channel: "slack", Service: Name, Source: Source, Replicas: deps.LedgerReplicas, MaxBytes: deps.LedgerMaxBytes,
			Concurrency: cfg.ReplyConcurrency, AckWait: cfg.ReplyAckWait, Settle: cfg.ReplySettle,
		}, &slackreply.Channel{API: s.api, WorkspaceURL: cfg.WorkspaceURL}, outbound.Deps{
			JS: deps.JS, Publisher: deps.Publisher, Logger: deps.Logger, Registry: deps.Registry, Clock: deps.Clock,
		})
		if err != nil {
			return nil, fmt.Errorf("ingest-slack: replies: %w", err)
		}
		s.replies = r
	}
	return s, nil
}

// Spec describes ingest-slack to an app.Host.
func Spec() app.Spec {
	return app.Spec{Name: Name, Config: &Config{}, Build: FromKit, Provision: provision}
}

// provision makes the ledger bucket of the replies sent on slack
// (platform/outbound).
func provision(ctx context.Context, k *app.Kit) error {
	return outbound.ProvisionLedger(ctx, k.JS, outbound.Config{Channel: "slack", Service: k.Name, Replicas: k.Common.StreamReplicas, MaxBytes: k.Common.LedgerMaxBytes})
}

// FromKit builds the service from the process kit: the publisher and dead
// letters on the kit's JetStream, /hero through the rotation service at
// SIDEKICK_ROTATION_ADDR.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	deps := Deps{
		Logger:    k.Logger,
		JS:        k.JS,
		Publisher: bus.NewPublisher(k.JS, Source, bus.WithRegisterer(k.Registry)),
		Registry:  k.Registry,
		Now:       clock.OrReal(k.Clock).Now,
		Clock:     k.Clock,

		LedgerReplicas: k.Common.StreamReplicas,
		LedgerMaxBytes: k.Common.LedgerMaxBytes,
	}
	var conn *grpc.ClientConn
	if k.Dial != nil && k.Common.RotationAddr != "" {
		c, err := k.Dial(k.Common.RotationAddr)
		if err != nil {
			return nil, fmt.Errorf("dial rotation %s: %w", k.Common.RotationAddr, err)
		}
		conn = c
		deps.OnCall = rotationv1.NewRotationServiceClient(c)
	}
	s, err := New(cfg, deps)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, err
	}
	if conn != nil {
		s.closers = append(s.closers, conn.Close)
	}
	// Ask auth.test before the first event, so permalinks have their
	// usual form from the start; if Slack does not answer in time, Run
	// keeps asking in the background.
	lctx, cancel := context.WithTimeout(ctx, workspaceStartupWait)
	defer cancel()
	if err := s.learnWorkspace(lctx); err != nil {
		s.deps.Logger.Warn("could not learn the Slack workspace's URL at startup; retrying in the background", "error", err)
	}
	return s, nil
}

// workspaceStartupWait bounds FromKit's auth.test.
const workspaceStartupWait = 3 * time.Second

// workspaceURL is the base of permalinks: SIDEKICK_SLACK_WORKSPACE_URL,
// else what auth.test said, else "" (slackevent.Permalink then builds the
// web client's form).
func (s *Service) workspaceURL() string {
	if s.cfg.WorkspaceURL != "" {
		return s.cfg.WorkspaceURL
	}
	if u := s.workspace.Load(); u != nil {
		return *u
	}
	return ""
}

// learnWorkspace asks auth.test for the workspace's URL unless it is
// configured or known, or there is no bot token. The URL is asked once
// per process, off the request path: a workspace is renamed rarely, and
// Slack redirects its old links.
func (s *Service) learnWorkspace(ctx context.Context) error {
	if s.cfg.WorkspaceURL != "" || s.dir == nil || s.workspace.Load() != nil {
		return nil
	}
	u, err := s.dir.WorkspaceURL(ctx)
	if err != nil {
		return err
	}
	s.workspace.Store(&u)
	s.deps.Logger.Info("permalinks are built from the Slack workspace's URL", "url", u)
	return nil
}

// learnWorkspaceUntilKnown retries learnWorkspace, backing off from one
// second to five minutes, until it succeeds or ctx is done.
func (s *Service) learnWorkspaceUntilKnown(ctx context.Context) error {
	clk := clock.OrReal(s.deps.Clock)
	wait := time.Second
	for {
		err := s.learnWorkspace(ctx)
		if err == nil {
			return nil
		}
		s.deps.Logger.Warn("could not learn the Slack workspace's URL; permalinks use the web client's form meanwhile", "error", err, "retry_in", wait)
		if !clock.Wait(ctx, clk, wait) {
			return nil
		}
		wait = min(2*wait, 5*time.Minute)
	}
}

// Register mounts POST /slack/events, /slack/interactions and
// /slack/commands.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /slack/events", s.serveEvents)
	mux.HandleFunc("POST /slack/interactions", s.serveInteractions)
	mux.HandleFunc("POST /slack/commands", s.serveCommands)
}

// Run serves replays of its dead letters (see replay), learns the
// workspace's URL if it is not known yet, sends replies
// (with a bot token) and runs the Socket Mode loop when
// Mode is socket, until ctx is done; then it returns nil.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		for _, c := range s.closers {
			_ = c()
		}
	}()
	sub, err := bus.ServeReplay(ctx, s.deps.JS.Conn(), Name, s.cfg.Timeout, s.replay)
	if err != nil {
		return err
	}
	defer func() { _ = sub.Drain() }()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.learnWorkspaceUntilKnown(ctx) })
	if s.replies != nil {
		g.Go(func() error { return s.replies.Run(ctx) })
	}
	if s.cfg.Mode == ModeSocket {
		g.Go(func() error { return s.runSocket(ctx) })
	}
	g.Go(func() error { <-ctx.Done(); return nil })
	return g.Wait()
}
