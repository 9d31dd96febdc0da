// Package ingestgithub is the GitHub ingest service: POST /github/webhook
// verifies X-Hub-Signature-256, normalizes issues, issue_comment,
// discussion and discussion_comment events of the allowed repositories into
// InboundMessages on support.inbound.github, and answers GitHub only after
// JetStream acknowledged the publish.
//
// With a token or a GitHub App it also sends replies to customers as
// comments (support.outbound.github; package ghreply and platform/outbound
// say how each is posted once).
//
// The message id derives from GitHub's own identity of the change: the
// issue, comment or discussion id, the event and action, and for changes
// that can happen more than once the time GitHub stamped them (and a
// digest of an edit's text), such as
// "github:issues.closed:444500041:2026-11-02T10:00:00Z". A redelivery (by
// hand or by `sidekick github redeliver`) carries the same body, and so
// does a signed body replayed under a fresh X-GitHub-Delivery, so
// JetStream's duplicate window drops a quick one and triage's inbox table
// drops one that comes days later; the service itself keeps no state. A
// payload without the time falls back to "github:"+X-GitHub-Delivery.
package ingestgithub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/outbound"
	"github.com/sidekickhq/sidekick/platform/promreg"
	"github.com/sidekickhq/sidekick/services/ingest-github/internal/ghreply"
	"github.com/sidekickhq/sidekick/services/ingest-github/internal/ghwebhook"
)

// Name is the name of the service; dead letters go to
// support.deadletter.ingest-github.
const Name = "ingest-github"

// Source is the ce-source of everything the service publishes.
const Source = "sidekick/ingest-github"

// MaxPayloadBytes is GitHub's cap on webhook payloads (25 MB); GitHub
// drops larger ones itself, and the service answers 413 to anything larger.
const MaxPayloadBytes = 25 << 20

// maxDeadLetterBytes bounds the body kept in a dead letter, below the NATS
// default max_payload of 1 MiB; GitHub still holds the full delivery.
const maxDeadLetterBytes = 512 << 10

// Config is ingest-github's configuration.
type Config struct {
	// WebhookSecret is the secret set on the GitHub webhook.
	WebhookSecret string `env:"SIDEKICK_GITHUB_WEBHOOK_SECRET,required,notEmpty"`
	// Repositories is the allow-list with optional priority hints, such as
	// "acme/main:high,acme/docs"; empty accepts every repository.
	Repositories string `env:"SIDEKICK_GITHUB_REPOSITORIES"`
	// MaxBodyBytes bounds a delivery; larger ones get 413.
	MaxBodyBytes int64 `env:"SIDEKICK_GITHUB_MAX_BODY_BYTES" envDefault:"26214400"`
	// PublishTimeout bounds the JetStream publish, well inside GitHub's 10
	// seconds; when it passes the answer is 503.
	PublishTimeout time.Duration `env:"SIDEKICK_GITHUB_PUBLISH_TIMEOUT" envDefault:"5s"`

	// Replies to customers (support.outbound.github) are comments posted
	// with a token, or as a GitHub App; without either none are sent. See
	// docs/replies.md.

	// Token is a token with Issues (and Discussions) read and write on the
	// repositories.
	Token string `env:"SIDEKICK_GITHUB_TOKEN"`
	// AppID, AppInstallationID and AppPrivateKeyFile authenticate as a
	// GitHub App installation instead of Token.
	AppID             string `env:"SIDEKICK_GITHUB_APP_ID"`
	AppInstallationID int64  `env:"SIDEKICK_GITHUB_APP_INSTALLATION_ID"`
	AppPrivateKeyFile string `env:"SIDEKICK_GITHUB_APP_PRIVATE_KEY_FILE"`
	// APIURL is the REST API base (GitHub Enterprise Server:
	// https://HOST/api/v3); GraphQL is at APIURL + "/graphql".
	APIURL string `env:"SIDEKICK_GITHUB_API_URL" envDefault:"https://api.github.com"`
	// ReplyConcurrency is how many replies are sent at once.
	ReplyConcurrency int `env:"SIDEKICK_GITHUB_REPLY_CONCURRENCY" envDefault:"4"`
	// ReplyAckWait is how long a reply whose sending process died waits
	// before it is tried again.
	ReplyAckWait time.Duration `env:"SIDEKICK_GITHUB_REPLY_ACK_WAIT" envDefault:"30s"`
	// ReplySettle is how long after an interrupted attempt the thread's
	// comments are searched for it before the reply is posted again.
	ReplySettle time.Duration `env:"SIDEKICK_GITHUB_REPLY_SETTLE" envDefault:"5s"`
}

// Publisher publishes one event and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// DeadLetterFunc records a delivery that was accepted but cannot be
// normalized, with where and why.
type DeadLetterFunc func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error

// Deps are ingest-github's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Publisher  Publisher
	DeadLetter DeadLetterFunc
	Registry   prometheus.Registerer
	Now        func() time.Time
	// JS holds the reply stream and ledger; replies need it.
	JS jetstream.JetStream
	// Clock times replies' retries; default the wall clock.
	Clock clock.Clock
	// HTTPClient calls GitHub's API; default a client with a 30s timeout.
	HTTPClient *http.Client
	// LedgerReplicas is the replica count of the reply ledger bucket (the
	// kit's SIDEKICK_STREAM_REPLICAS); default 1.
	LedgerReplicas int
	// LedgerMaxBytes bounds the reply ledger bucket (the kit's
	// SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES); default outbound's.
	LedgerMaxBytes int64
}

// Service is the GitHub ingest service.
type Service struct {
	cfg      Config
	deps     Deps
	secret   []byte
	repos    ghwebhook.Repositories
	requests *prometheus.CounterVec
	// replies sends support.outbound.github; nil without credentials.
	replies *outbound.Runner
}

// New checks cfg and builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if cfg.WebhookSecret == "" {
		return nil, errors.New("ingest-github: SIDEKICK_GITHUB_WEBHOOK_SECRET is required")
	}
	if deps.Publisher == nil || deps.DeadLetter == nil {
		return nil, errors.New("ingest-github: a publisher and a dead-letter function are required")
	}
	repos, err := ghwebhook.ParseRepositories(cfg.Repositories)
	if err != nil {
		return nil, fmt.Errorf("ingest-github: SIDEKICK_GITHUB_REPOSITORIES: %w", err)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = MaxPayloadBytes
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Service{
		cfg: cfg, deps: deps, secret: []byte(cfg.WebhookSecret), repos: repos,
		requests: promreg.MustRegister(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_github_webhooks_total",
			Help: "GitHub webhook deliveries by event and result (published, duplicate, ping, ignored_event, ignored_action, ignored_repository, deadletter, unauthorized, malformed, too_large, error).",
		}, []string{"event", "result"})),
	}
	tokens, err := replyTokens(cfg, deps.HTTPClient)
	if err != nil || tokens == nil {
		return s, err
	}
	if deps.JS == nil {
		return nil, errors.New("ingest-github: replies need JetStream")
	}
	s.replies, err = outbound.New(outbound.Config{
		Channel: "github", Service: Name, Source: Source, Replicas: deps.LedgerReplicas, MaxBytes: deps.LedgerMaxBytes,
		Concurrency: cfg.ReplyConcurrency, AckWait: cfg.ReplyAckWait, Settle: cfg.ReplySettle,
	}, &ghreply.Channel{APIURL: cfg.APIURL, Tokens: tokens, HTTP: deps.HTTPClient}, outbound.Deps{
		JS: deps.JS, Publisher: deps.Publisher, Logger: deps.Logger, Registry: deps.Registry, Clock: deps.Clock,
	})
	if err != nil {
		return nil, fmt.Errorf("ingest-github: replies: %w", err)
	}
	return s, nil
}

// replyTokens returns the token source replies are sent with: the App's
// installation tokens, the fixed token, or nil without either.
func replyTokens(cfg Config, hc *http.Client) (ghreply.TokenSource, error) {
	app := cfg.AppID != "" || cfg.AppInstallationID != 0 || cfg.AppPrivateKeyFile != ""
	switch {
	case app && (cfg.AppID == "" || cfg.AppInstallationID == 0 || cfg.AppPrivateKeyFile == ""):
		return nil, errors.New("ingest-github: a GitHub App needs SIDEKICK_GITHUB_APP_ID, SIDEKICK_GITHUB_APP_INSTALLATION_ID and SIDEKICK_GITHUB_APP_PRIVATE_KEY_FILE")
	case app:
		pemBytes, err := os.ReadFile(cfg.AppPrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ingest-github: SIDEKICK_GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		}
		key, err := ghreply.ParsePrivateKey(pemBytes)
		if err != nil {
			return nil, fmt.Errorf("ingest-github: SIDEKICK_GITHUB_APP_PRIVATE_KEY_FILE: %w", err)
		}
		return &ghreply.AppTokens{APIURL: cfg.APIURL, AppID: cfg.AppID, InstallationID: cfg.AppInstallationID, Key: key, HTTP: hc}, nil
	case cfg.Token != "":
		return ghreply.StaticToken(cfg.Token), nil
	}
	return nil, nil
}

// Spec describes ingest-github to an app.Host.
func Spec() app.Spec {
	return app.Spec{Name: Name, Config: &Config{}, Build: FromKit, Provision: provision}
}

// provision makes the ledger bucket of the replies sent on github
// (platform/outbound).
func provision(ctx context.Context, k *app.Kit) error {
	return outbound.ProvisionLedger(ctx, k.JS, outbound.Config{Channel: "github", Service: k.Name, Replicas: k.Common.StreamReplicas, MaxBytes: k.Common.LedgerMaxBytes})
}

// FromKit builds the service from the process kit.
func FromKit(_ context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	js := k.JS
	return New(cfg, Deps{
		Logger:    k.Logger,
		Publisher: bus.NewPublisher(js, Source, bus.WithRegisterer(k.Registry)),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("github"), data, hdr, cause)
		},
		Registry: k.Registry,
		Now:      clock.OrReal(k.Clock).Now,
		JS:       js,
		Clock:    k.Clock,

		LedgerReplicas: k.Common.StreamReplicas,
		LedgerMaxBytes: k.Common.LedgerMaxBytes,
	})
}

// Register mounts POST /github/webhook.
func (s *Service) Register(mux *http.ServeMux) {
	mux.Handle("POST /github/webhook", s)
}

// Run serves replays of its dead letters (see replay) and sends replies
// when credentials are configured, until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	if s.deps.JS != nil {
		sub, err := bus.ServeReplay(ctx, s.deps.JS.Conn(), Name, s.cfg.PublishTimeout, s.replay)
		if err != nil {
			return err
		}
		defer func() { _ = sub.Drain() }()
	}
	if s.replies != nil {
		return s.replies.Run(ctx)
	}
	<-ctx.Done()
	return nil
}

// replay runs a dead-lettered delivery (see deadLetter) through Normalize
// again and publishes the message, as ServeHTTP would have; a delivery
// the repository filter or the event handling now ignore is done with.
func (s *Service) replay(ctx context.Context, body []byte, hdr nats.Header) error {
	if n := hdr.Get(bus.HeaderBodyTruncatedFrom); n != "" {
		return fmt.Errorf("only the first %d of %s bytes were kept: redeliver it from GitHub (sidekick github redeliver)", len(body), n)
	}
	event, delivery := hdr.Get("github-event"), hdr.Get("github-delivery")
	if event == "" || delivery == "" {
		return errors.New("the dead letter names no github-event and github-delivery")
	}
	res, err := ghwebhook.Normalize(ghwebhook.Delivery{Event: event, ID: delivery, Body: body}, s.repos, s.deps.Now())
	if err != nil {
		return fmt.Errorf("normalize delivery %s: %w", delivery, err)
	}
	if res.Message == nil {
		return nil
	}
	if _, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: bus.InboundSubject("github"), ID: res.Message.GetId(), Message: res.Message}); err != nil {
		return fmt.Errorf("publish delivery %s: %w", delivery, err)
	}
	return nil
}

// ServeHTTP handles one webhook delivery.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	event := r.Header.Get("X-GitHub-Event")
	metricEvent := event
	if !ghwebhook.Handled(event) && event != "ping" {
		metricEvent = "other" // keep the label set bounded
	}
	// GitHub signs the body, so it is read (within the size limit) before
	// the signature is checked; a request without a well-formed signature
	// is refused before that.
	if err := ghwebhook.CheckHeader(r.Header.Get("X-Hub-Signature-256")); err != nil {
		s.answer(w, metricEvent, "unauthorized", http.StatusUnauthorized, err.Error())
		return
	}
	body, berr := httpx.ReadBody(w, r, s.cfg.MaxBodyBytes)
	if berr != nil {
		s.answer(w, metricEvent, berr.Result, berr.Status, berr.Message)
		return
	}
	if err := ghwebhook.Verify(s.secret, body, r.Header.Get("X-Hub-Signature-256")); err != nil {
		s.answer(w, metricEvent, "unauthorized", http.StatusUnauthorized, err.Error())
		return
	}
	delivery := r.Header.Get("X-GitHub-Delivery")
	switch {
	case event == "":
		s.answer(w, metricEvent, "malformed", http.StatusBadRequest, "missing X-GitHub-Event")
		return
	case event == "ping":
		s.answer(w, metricEvent, "ping", http.StatusOK, "")
		return
	case delivery == "":
		s.answer(w, metricEvent, "malformed", http.StatusBadRequest, "missing X-GitHub-Delivery")
		return
	}

	res, err := ghwebhook.Normalize(ghwebhook.Delivery{Event: event, ID: delivery, Body: body}, s.repos, s.deps.Now())
	switch {
	case errors.Is(err, ghwebhook.ErrMalformed):
		s.answer(w, metricEvent, "malformed", http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.deadLetter(w, r, metricEvent, event, delivery, body, err)
		return
	case res.Message == nil:
		s.answer(w, metricEvent, "ignored_"+res.Ignored, http.StatusOK, "")
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	ack, err := s.deps.Publisher.Publish(ctx, bus.Event{Subject: bus.InboundSubject("github"), ID: res.Message.GetId(), Message: res.Message})
	if errors.Is(err, nats.ErrMaxPayload) {
		// Over the NATS server's max_payload: a redelivery would fail the
		// same way, so keep it where an operator can see it.
		s.deadLetter(w, r, metricEvent, event, delivery, body, err)
		return
	}
	if err != nil {
		s.deps.Logger.Error("publish github delivery", "delivery", delivery, "event", event, "error", err)
		s.answer(w, metricEvent, "error", http.StatusServiceUnavailable, "could not store the delivery; redeliver it")
		return
	}
	result := "published"
	if ack.Duplicate {
		result = "duplicate"
	}
	s.answer(w, metricEvent, result, http.StatusOK, "")
}

// deadLetter stores a well-formed delivery that cannot become a message
// and acknowledges it; if even that fails, GitHub is asked to retry.
func (s *Service) deadLetter(w http.ResponseWriter, r *http.Request, metricEvent, event, delivery string, body []byte, cause error) {
	hdr := nats.Header{}
	hdr.Set(bus.HeaderRawRequest, Name)
	hdr.Set("github-event", event)
	hdr.Set("github-delivery", delivery)
	hdr.Set(jetstream.MsgIDHeader, "github:"+delivery)
	if len(body) > maxDeadLetterBytes {
		hdr.Set(bus.HeaderBodyTruncatedFrom, strconv.Itoa(len(body)))
		body = body[:maxDeadLetterBytes]
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	if err := s.deps.DeadLetter(ctx, Name+"/webhook/"+event, body, hdr, cause); err != nil {
		s.deps.Logger.Error("dead-letter github delivery", "delivery", delivery, "event", event, "cause", cause, "error", err)
		s.answer(w, metricEvent, "error", http.StatusServiceUnavailable, "could not store the delivery; redeliver it")
		return
	}
	s.deps.Logger.Warn("github delivery dead-lettered", "delivery", delivery, "event", event, "error", cause)
	s.answer(w, metricEvent, "deadletter", http.StatusOK, "")
}

func (s *Service) answer(w http.ResponseWriter, event, result string, code int, msg string) {
	s.requests.WithLabelValues(event, result).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code >= 400 {
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"result": result})
}
