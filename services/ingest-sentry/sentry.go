// Package ingestsentry is the Sentry ingest service: POST /sentry/webhook
// receives Sentry integration-platform webhooks (Sentry-Hook-Signature
// verified with the internal integration's client secret) and turns them
// into InboundMessages on support.inbound.sentry, one conversation per
// Sentry issue.
//
// A storm of thousands of events a second for a handful of issues must not
// become thousands of messages downstream, and nothing accepted may be
// lost. So the webhook answers 200 only after the normalized occurrence is
// stored in the SENTRY_OCCURRENCES work-queue stream (subject
// sentry.occurrences.<issue id>), and the coalescer (Run) consumes that
// stream: it publishes an issue's first occurrence at once and then at most
// one update per issue per interval carrying the count, and acknowledges
// the occurrences only after the message that counts them is stored
// downstream. A crash loses nothing accepted: unacknowledged occurrences
// are redelivered to the next coalescer. It can count an occurrence twice
// (a crash between the downstream PubAck and the acks), never zero times.
// docs/sentry.md has the whole story.
package ingestsentry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	"github.com/sidekickhq/sidekick/platform/promreg"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/coalesce"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/ownership"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/sentryhook"
)

// Name is the service name; dead letters go to support.deadletter.ingest-sentry.
const Name = "ingest-sentry"

// Source is the ce-source of everything the service publishes.
const Source = "sidekick/ingest-sentry"

// maxDeadLetterBytes bounds the body kept in a dead letter, below the NATS
// default max_payload of 1 MiB.
const maxDeadLetterBytes = 512 << 10

// Config is ingest-sentry's configuration.
type Config struct {
	// ClientSecret is the internal integration's client secret, which
	// signs every webhook.
	ClientSecret string `env:"SIDEKICK_SENTRY_CLIENT_SECRET,required,notEmpty"`
	// Ownership maps projects (and tags) to teams, such as
	// "frontend=core-experience,api=platform"; see internal/ownership.
	Ownership string `env:"SIDEKICK_SENTRY_OWNERSHIP"`
	// MaxBodyBytes bounds a webhook body; larger ones get 413.
	MaxBodyBytes int64 `env:"SIDEKICK_SENTRY_MAX_BODY_BYTES" envDefault:"5242880"`
	// PublishTimeout bounds storing an occurrence, inside Sentry's 1 second;
	// past it the answer is 503.
	PublishTimeout time.Duration `env:"SIDEKICK_SENTRY_PUBLISH_TIMEOUT" envDefault:"800ms"`
	// CoalesceInterval is the least time between two messages about one
	// issue (Alertmanager's group_interval; the first goes at once).
	CoalesceInterval time.Duration `env:"SIDEKICK_SENTRY_COALESCE_INTERVAL" envDefault:"1m"`
	// CoalesceIdle is how long an issue is remembered after its last
	// occurrence; the next occurrence after that is sent at once.
	CoalesceIdle time.Duration `env:"SIDEKICK_SENTRY_COALESCE_IDLE" envDefault:"1h"`
	// AckWait is how long the server waits for the coalescer to account
	// for an occurrence before redelivering it; 0 means 2×interval+30s.
	AckWait time.Duration `env:"SIDEKICK_SENTRY_COALESCE_ACK_WAIT"`
	// MaxPending caps occurrences handed to the coalescer and not yet
	// accounted for; beyond it they wait in the stream until the next
	// update frees them. The coalescer holds each one's ack subject and
	// sequence (about 150 bytes), so the default bounds that near 8 MB.
	MaxPending int `env:"SIDEKICK_SENTRY_MAX_PENDING" envDefault:"50000"`
	// OccurrenceMaxAge and OccurrenceMaxBytes bound SENTRY_OCCURRENCES.
	// When it is full, new webhooks get 503 (nothing stored is dropped);
	// an occurrence older than the age is dropped unconsumed, which only
	// happens if no coalescer runs for that long.
	OccurrenceMaxAge   time.Duration `env:"SIDEKICK_SENTRY_OCCURRENCE_MAX_AGE" envDefault:"24h"`
	OccurrenceMaxBytes int64         `env:"SIDEKICK_SENTRY_OCCURRENCE_MAX_BYTES" envDefault:"1073741824"`
	// Replicas of SENTRY_OCCURRENCES; set from SIDEKICK_STREAM_REPLICAS by FromKit.
	Replicas int `env:"SIDEKICK_STREAM_REPLICAS" envDefault:"1"`
}

// Publisher publishes one event downstream and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// DeadLetterFunc records input that was accepted but cannot be used.
type DeadLetterFunc func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error

// Deps are ingest-sentry's collaborators.
type Deps struct {
	Logger *slog.Logger
	// JS holds SENTRY_OCCURRENCES (see EnsureStream): the webhook publishes
	// to it and the coalescer consumes it.
	JS jetstream.JetStream
	// Publisher publishes to support.inbound.sentry.
	Publisher  Publisher
	DeadLetter DeadLetterFunc
	Registry   prometheus.Registerer
	Clock      clock.Clock
	// Org is the organisation file read at start; its sentry.ownership
	// section adds rules after those of Config.Ownership. A version
	// applied through rotation later replaces them without a restart
	// (platform/orgfile/orgwatch).
	Org *orgfile.File
	// ReturnMemory gives the memory a storm used back to the system once
	// the storm is over (see the coalescer's loop); default
	// debug.FreeOSMemory.
	ReturnMemory func()
}

// Service is the Sentry ingest service.
type Service struct {
	cfg    Config
	deps   Deps
	secret []byte
	// envOwners are Config.Ownership's rules; owners are those and the
	// organisation file's in force, swapped whole when a version is
	// applied.
	envOwners ownership.Rules
	owners    atomic.Pointer[ownership.Rules]
	org       *orgwatch.Watcher
	envelop   *bus.Publisher // builds occurrence messages with CloudEvents headers
	metrics   *metrics
}

type metrics struct {
	webhooks   *prometheus.CounterVec
	received   prometheus.Counter
	coalesced  prometheus.Counter
	downstream *prometheus.CounterVec
	duplicates prometheus.Counter
	errors     prometheus.Counter
	pending    prometheus.Gauge
	latency    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		webhooks: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_webhooks_total",
			Help: "Sentry webhooks by resource and result (accepted, ignored_resource, ignored_action, installation, deadletter, unauthorized, malformed, too_large, error).",
		}, []string{"resource", "result"})),
		received: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_coalescer_occurrences_received_total",
			Help: "Occurrences the coalescer took from SENTRY_OCCURRENCES (redeliveries of pending ones not counted).",
		})),
		coalesced: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_occurrences_published_total",
			Help: "Occurrences accounted for in messages published downstream (the sum of their occurrence counts).",
		})),
		downstream: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_messages_published_total",
			Help: "Messages published to support.inbound.sentry by kind (first, update, passthrough).",
		}, []string{"kind"})),
		duplicates: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_duplicate_events_total",
			Help: "Reports of a Sentry event already counted (the same event id from an error webhook and an issue alert; issue.created and its first event), acknowledged without counting.",
		})),
		errors: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_ingest_sentry_coalescer_publish_errors_total",
			Help: "Failed downstream publishes; the occurrences stay pending and are retried.",
		})),
		pending: promreg.MustRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidekick_ingest_sentry_coalescer_pending_occurrences",
			Help: "Occurrences received by the coalescer and not yet published.",
		})),
		latency: promreg.MustRegister(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sidekick_ingest_sentry_occurrence_store_seconds",
			Help:    "Time to store one accepted webhook in SENTRY_OCCURRENCES.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		})),
	}
}

// New checks cfg and builds the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if cfg.ClientSecret == "" {
		return nil, errors.New("ingest-sentry: SIDEKICK_SENTRY_CLIENT_SECRET is required")
	}
	if deps.JS == nil || deps.Publisher == nil || deps.DeadLetter == nil {
		return nil, errors.New("ingest-sentry: JetStream, a publisher and a dead-letter function are required")
	}
	owners, err := ownership.ParseEnv(cfg.Ownership)
	if err != nil {
		return nil, fmt.Errorf("ingest-sentry: SIDEKICK_SENTRY_OWNERSHIP: %w", err)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 5 << 20
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 800 * time.Millisecond
	}
	if cfg.CoalesceInterval <= 0 {
		cfg.CoalesceInterval = time.Minute
	}
	if cfg.CoalesceIdle < cfg.CoalesceInterval {
		cfg.CoalesceIdle = max(time.Hour, cfg.CoalesceInterval)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 2*cfg.CoalesceInterval + 30*time.Second
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 50000
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Clock = clock.OrReal(deps.Clock)
	if deps.ReturnMemory == nil {
		deps.ReturnMemory = debug.FreeOSMemory
	}
	s := &Service{
		cfg: cfg, deps: deps, secret: []byte(cfg.ClientSecret), envOwners: owners,
		envelop: bus.NewPublisher(deps.JS, Source, bus.WithClock(deps.Clock.Now)),
		metrics: newMetrics(deps.Registry),
	}
	if err := s.loadOrg(deps.Org); err != nil {
		return nil, fmt.Errorf("ingest-sentry: %s: %w", deps.Org.Path, err)
	}
	if s.org, err = orgwatch.New(deps.JS, orgwatch.Config{Load: s.loadOrg}, deps.Org, deps.Clock, deps.Logger, deps.Registry); err != nil {
		return nil, fmt.Errorf("ingest-sentry: %w", err)
	}
	return s, nil
}

// loadOrg reads the ownership rules of an organisation file's sentry
// section and puts them in force after Config.Ownership's, or returns an
// error and changes nothing.
func (s *Service) loadOrg(f *orgfile.File) error {
	more, err := ownership.FromSection(f.Section("sentry"))
	if err != nil {
		return err
	}
	rules := append(slices.Clone(s.envOwners), more...)
	s.owners.Store(&rules)
	return nil
}

// OrgVersion is the version of the organisation file whose ownership
// rules are in force (orgfile.File.Version).
func (s *Service) OrgVersion() string { return s.org.Version() }

// Spec describes ingest-sentry to an app.Host; it reads the ownership
// rules of the organisation file.
func Spec() app.Spec {
	return app.Spec{Name: Name, Org: true, Config: &Config{}, Build: FromKit, Provision: provision}
}

// provision creates or updates SENTRY_OCCURRENCES.
func provision(ctx context.Context, k *app.Kit) error {
	var cfg Config
	if err := config.LoadSettings(&cfg, k.Environ); err != nil {
		return err
	}
	cfg.Replicas = k.Common.StreamReplicas
	return EnsureStream(ctx, k.JS, cfg)
}

// FromKit builds the service from the process kit and makes sure
// SENTRY_OCCURRENCES exists: it creates a missing stream where the NATS
// user may (its provision step, Spec.Provision, makes it in production).
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	cfg.Replicas = k.Common.StreamReplicas
	if _, err := k.JS.Stream(ctx, OccurrenceStream); errors.Is(err, jetstream.ErrStreamNotFound) {
		if err := EnsureStream(ctx, k.JS, cfg); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("stream %s: %w", OccurrenceStream, err)
	}
	js := k.JS
	return New(cfg, Deps{
		Logger:    k.Logger,
		JS:        js,
		Publisher: bus.NewPublisher(js, Source, bus.WithRegisterer(k.Registry)),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("sentry"), data, hdr, cause)
		},
		Registry: k.Registry,
		Clock:    k.Clock,
		Org:      k.Org,
	})
}

// Register mounts POST /sentry/webhook.
func (s *Service) Register(mux *http.ServeMux) {
	mux.Handle("POST /sentry/webhook", s)
}

// bodies lends ServeHTTP its request buffers: a storm is thousands of
// 6 kB bodies a second. Nothing outlives the request: Parse copies what
// it keeps, and a dead letter is published before the handler returns.
var bodies = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBody bounds the buffers bodies keeps.
const maxPooledBody = 64 << 10

// ServeHTTP handles one Sentry webhook.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resource := r.Header.Get("Sentry-Hook-Resource")
	metricResource := resource
	if !sentryhook.Handled(resource) {
		metricResource = "other"
	}
	// Sentry signs the body, so it is read (within the size limit) before
	// the signature is checked; a request without a well-formed signature
	// is refused before that.
	if err := sentryhook.CheckHeader(r.Header.Get("Sentry-Hook-Signature")); err != nil {
		s.answer(w, metricResource, "unauthorized", http.StatusUnauthorized, err.Error())
		return
	}
	if err := sentryhook.CheckTimestamp(s.deps.Clock.Now(), r.Header.Get("Sentry-Hook-Timestamp")); err != nil {
		s.answer(w, metricResource, "unauthorized", http.StatusUnauthorized, err.Error())
		return
	}
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	body, berr := httpx.ReadBodyInto(w, r, s.cfg.MaxBodyBytes, *buf)
	if body != nil && cap(body) <= maxPooledBody {
		*buf = body[:0]
	}
	if berr != nil {
		s.answer(w, metricResource, berr.Result, berr.Status, berr.Message)
		return
	}
	if err := sentryhook.Verify(s.secret, body, r.Header.Get("Sentry-Hook-Signature")); err != nil {
		s.answer(w, metricResource, "unauthorized", http.StatusUnauthorized, err.Error())
		return
	}
	requestID := r.Header.Get("Request-ID")
	switch {
	case resource == "":
		s.answer(w, metricResource, "malformed", http.StatusBadRequest, "missing Sentry-Hook-Resource")
		return
	case requestID == "":
		s.answer(w, metricResource, "malformed", http.StatusBadRequest, "missing Request-ID")
		return
	}
	ev, err := sentryhook.Parse(resource, requestID, body, s.deps.Clock.Now())
	switch {
	case errors.Is(err, sentryhook.ErrMalformed):
		s.answer(w, metricResource, "malformed", http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.deadLetter(w, r, metricResource, resource, requestID, body, err)
		return
	case ev.Ignored == sentryhook.IgnoredInstallation:
		s.deps.Logger.Info("sentry installation", "installation", ev.Installation)
		s.answer(w, metricResource, "installation", http.StatusOK, "")
		return
	case ev.Message == nil:
		s.answer(w, metricResource, "ignored_"+ev.Ignored, http.StatusOK, "")
		return
	}
	ev.Message.Team = s.owners.Load().Team(ev.Project, ev.Tags)

	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	err = s.storeOccurrence(ctx, ev)
	if errors.Is(err, nats.ErrMaxPayload) {
		// Over the NATS server's max_payload: storing it again would fail
		// the same way, so keep it where an operator can see it instead
		// of asking Sentry to retry.
		s.deadLetter(w, r, metricResource, resource, requestID, body, err)
		return
	}
	if err != nil {
		s.deps.Logger.Error("store sentry webhook", "request_id", requestID, "resource", resource, "error", err)
		s.answer(w, metricResource, "error", http.StatusServiceUnavailable, "could not store the webhook; retry")
		return
	}
	s.metrics.latency.Observe(time.Since(start).Seconds())
	s.answer(w, metricResource, "accepted", http.StatusOK, "")
}

// Header on SENTRY_OCCURRENCES messages saying how the coalescer treats them.
const (
	headerRole      = "sidekick-sentry-role"
	roleOccurrence  = "occurrence"
	rolePassthrough = "passthrough"
)

// storeOccurrence publishes the normalized webhook to SENTRY_OCCURRENCES
// and waits for the PubAck; Nats-Msg-Id is the message id, so a Sentry
// retry within the duplicate window is stored once.
func (s *Service) storeOccurrence(ctx context.Context, ev sentryhook.Event) error {
	msg, err := s.envelop.Msg(bus.Event{Subject: OccurrenceSubject(ev.Key), ID: ev.Message.GetId(), Message: ev.Message})
	if err != nil {
		return err
	}
	role := rolePassthrough
	if ev.Occurrence {
		role = roleOccurrence
	}
	msg.Header.Set(headerRole, role)
	if _, err := s.deps.JS.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("store in %s: %w", OccurrenceStream, err)
	}
	return nil
}

// deadLetter stores a well-formed webhook that cannot become a message and
// acknowledges it; if even that fails, Sentry is asked to retry.
func (s *Service) deadLetter(w http.ResponseWriter, r *http.Request, metricResource, resource, requestID string, body []byte, cause error) {
	hdr := nats.Header{}
	hdr.Set(bus.HeaderRawRequest, Name)
	hdr.Set("sentry-hook-resource", resource)
	hdr.Set("request-id", requestID)
	hdr.Set(jetstream.MsgIDHeader, "sentry:"+requestID)
	if len(body) > maxDeadLetterBytes {
		hdr.Set(bus.HeaderBodyTruncatedFrom, strconv.Itoa(len(body)))
		body = body[:maxDeadLetterBytes]
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.PublishTimeout)
	defer cancel()
	if err := s.deps.DeadLetter(ctx, Name+"/webhook/"+resource, body, hdr, cause); err != nil {
		s.deps.Logger.Error("dead-letter sentry webhook", "request_id", requestID, "cause", cause, "error", err)
		s.answer(w, metricResource, "error", http.StatusServiceUnavailable, "could not store the webhook; retry")
		return
	}
	s.deps.Logger.Warn("sentry webhook dead-lettered", "request_id", requestID, "resource", resource, "error", cause)
	s.answer(w, metricResource, "deadletter", http.StatusOK, "")
}

// replay runs a dead-lettered webhook (see deadLetter) through
// sentryhook.Parse again and stores the occurrence, as ServeHTTP would
// have; a webhook that is now ignored is done with.
func (s *Service) replay(ctx context.Context, body []byte, hdr nats.Header) error {
	if n := hdr.Get(bus.HeaderBodyTruncatedFrom); n != "" {
		return fmt.Errorf("only the first %d of %s bytes were kept: the webhook cannot be rebuilt", len(body), n)
	}
	resource, requestID := hdr.Get("sentry-hook-resource"), hdr.Get("request-id")
	if resource == "" || requestID == "" {
		return errors.New("the dead letter names no sentry-hook-resource and request-id")
	}
	ev, err := sentryhook.Parse(resource, requestID, body, s.deps.Clock.Now())
	if err != nil {
		return fmt.Errorf("parse webhook %s: %w", requestID, err)
	}
	if ev.Message == nil {
		return nil
	}
	ev.Message.Team = s.owners.Load().Team(ev.Project, ev.Tags)
	return s.storeOccurrence(ctx, ev)
}

func (s *Service) answer(w http.ResponseWriter, resource, result string, code int, msg string) {
	s.metrics.webhooks.WithLabelValues(resource, result).Inc()
	if code >= 400 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	w.WriteHeader(code)
}

// OccurrenceStream is the work-queue stream between the webhook and the
// coalescer.
const OccurrenceStream = "SENTRY_OCCURRENCES"

const occurrencePrefix = "sentry.occurrences."

// OccurrenceSubject is the subject of one issue's occurrences.
func OccurrenceSubject(key string) string {
	return occurrencePrefix + strings.Map(func(r rune) rune {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r == 0x7f {
			return '_'
		}
		return r
	}, key)
}

// StreamConfig is the configuration of SENTRY_OCCURRENCES: a file-backed
// work queue (an occurrence is deleted once the coalescer acknowledged
// it), bounded in bytes with DiscardNew so that a full stream refuses new
// webhooks (503) instead of dropping accepted ones, and a 2-minute
// duplicate window over Request-IDs.
func StreamConfig(cfg Config) jetstream.StreamConfig {
	maxBytes := cfg.OccurrenceMaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	age := cfg.OccurrenceMaxAge
	if age <= 0 {
		age = 24 * time.Hour
	}
	return jetstream.StreamConfig{
		Name:        OccurrenceStream,
		Description: "Sentry webhooks accepted by ingest-sentry, waiting to be coalesced per issue",
		Subjects:    []string{occurrencePrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(cfg.Replicas, 1),
		Discard:     jetstream.DiscardNew,
		MaxAge:      age,
		MaxBytes:    maxBytes,
		Duplicates:  min(2*time.Minute, age),
	}
}

// EnsureStream creates or updates SENTRY_OCCURRENCES.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if _, err := js.CreateOrUpdateStream(ctx, StreamConfig(cfg)); err != nil {
		return fmt.Errorf("create stream %s: %w", OccurrenceStream, err)
	}
	return nil
}

// coalescerFor builds the per-issue coalescer from the configuration.
func (s *Service) coalescerFor() *coalesce.Coalescer {
	return coalesce.New(s.cfg.CoalesceInterval, s.cfg.CoalesceIdle, sentryhook.LevelRank)
}
