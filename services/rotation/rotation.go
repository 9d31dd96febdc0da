// Package rotation is the schedule service: it knows who the Support Hero
// and each team's secondary are at any moment, with overrides, swaps,
// working hours and time zones, and answers over gRPC.
//
// Who is on call is an in-memory computation over a compiled schedule. The
// configuration (config as code) and API-created overrides live in
// Postgres; every replica recompiles when either changes.
package rotation

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/outbox"
	"github.com/sidekickhq/sidekick/platform/pg/prune"
	"github.com/sidekickhq/sidekick/platform/promreg"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	notifierconf "github.com/sidekickhq/sidekick/services/notifier/orgconf"
	"github.com/sidekickhq/sidekick/services/rotation/internal/events"
	"github.com/sidekickhq/sidekick/services/rotation/internal/grpcapi"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
	"github.com/sidekickhq/sidekick/services/rotation/internal/store"
	triageconf "github.com/sidekickhq/sidekick/services/triage/orgconf"
)

// Schema is rotation's Postgres schema.
const Schema = "rotation"

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded schema migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embed pattern above guarantees the directory
	}
	return sub
}

// Config is rotation's own configuration.
type Config struct {
	// ReloadInterval is how often a replica checks for configuration or
	// override changes made through another replica.
	ReloadInterval time.Duration `env:"SIDEKICK_ROTATION_RELOAD_INTERVAL" envDefault:"5s"`
	// EventInterval is how often handoffs and gaps ahead are checked and
	// written to the outbox for support.rotation.*; those events are late
	// by at most this much (override_created is written with the
	// override).
	EventInterval time.Duration `env:"SIDEKICK_ROTATION_EVENT_INTERVAL" envDefault:"15s"`
	// GapLookahead is how far in advance a coverage gap is announced.
	GapLookahead time.Duration `env:"SIDEKICK_ROTATION_GAP_LOOKAHEAD" envDefault:"72h"`
	// OverrideRetention is how long an override created through the API
	// is kept after it ended (ListShifts and the calendar feeds of that
	// past then show the rotation without it); 0 keeps them.
	OverrideRetention time.Duration `env:"SIDEKICK_ROTATION_OVERRIDE_RETENTION" envDefault:"2160h"`
	// ConfigRetention is how long superseded configuration versions are
	// kept; the one in force always is. 0 keeps them.
	ConfigRetention time.Duration `env:"SIDEKICK_ROTATION_CONFIG_RETENTION" envDefault:"8760h"`
	// OutboxRetention is how long published schedule events stay in the
	// outbox; 0 keeps them.
	OutboxRetention time.Duration `env:"SIDEKICK_ROTATION_OUTBOX_RETENTION" envDefault:"24h"`
	// RetentionInterval is how often old rows are pruned, and
	// RetentionBatch the most rows deleted per transaction.
	RetentionInterval time.Duration `env:"SIDEKICK_ROTATION_RETENTION_INTERVAL" envDefault:"1h"`
	RetentionBatch    int           `env:"SIDEKICK_ROTATION_RETENTION_BATCH" envDefault:"1000"`
}

// Deps are rotation's collaborators.
type Deps struct {
	Logger *slog.Logger
	Pool   *pgxpool.Pool
	// Clock is what the service's timestamps and loops read and wait on;
	// nil: the wall clock.
	Clock clock.Clock
	// Org is the organisation file (SIDEKICK_ORG_CONFIG, mounted from a
	// ConfigMap in Kubernetes), applied at start when it differs from the
	// configuration in force. Nil: keep what was applied through
	// ApplyConfig.
	Org *orgfile.File
	// Publisher publishes schedule events from the outbox (the relay's);
	// nil disables them.
	Publisher outbox.Publisher
	// Registry receives rotation's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
}

// Service is the rotation service.
type Service struct {
	cfg     Config
	deps    Deps
	store   *store.Store
	current atomic.Pointer[compiled]
	api     *grpcapi.Server
	emitter *events.Emitter
	relay   *outbox.Relay
	pruner  *prune.Pruner
	metrics metrics
}

type compiled struct {
	version  string
	yaml     []byte
	schedule *schedule.Schedule
	// ignored are the stored overrides left out of schedule.
	ignored []ignored
	// fromFile are the ids of the organisation file's overrides.
	fromFile map[string]bool
}

type metrics struct {
	ignored      prometheus.Gauge
	reloadErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	return metrics{
		ignored: promreg.MustRegister(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidekick_rotation_overrides_ignored",
			Help: "Stored overrides (from CreateOverride or SwapShifts) left out of the schedule in force because the configuration no longer has their person or rotation, or contradicts them.",
		})),
		reloadErrors: promreg.MustRegister(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_rotation_reload_errors_total",
			Help: "Failed attempts to load the configuration and overrides from Postgres; the schedule in force stays as it was.",
		})),
	}
}

// New builds the service and loads the schedule in force, applying
// deps.Org first when set.
func New(ctx context.Context, cfg Config, deps Deps) (*Service, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	deps.Clock = clock.OrReal(deps.Clock)
	s := &Service{cfg: cfg, deps: deps, store: store.New(deps.Pool), metrics: newMetrics(deps.Registry)}
	var err error
	s.pruner, err = prune.New(deps.Pool, prune.Config{Service: "rotation", Interval: cfg.RetentionInterval, Batch: cfg.RetentionBatch, Clock: deps.Clock},
		store.RetentionRules(cfg.OverrideRetention, cfg.ConfigRetention, cfg.OutboxRetention), deps.Logger, deps.Clock.Now, deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("rotation: %w", err)
	}
	if deps.Publisher != nil {
		// Before the file is applied, so applying it is announced.
		s.emitter = events.New(deps.Pool, cfg.GapLookahead)
	}
	if deps.Org != nil {
		if _, err := s.Apply(ctx, deps.Org.Data, false, "startup:"+deps.Org.Path); err != nil {
			return nil, fmt.Errorf("apply %s: %w", deps.Org.Path, err)
		}
	}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	s.api = grpcapi.New(s, deps.Clock.Now)
	if deps.Publisher != nil {
		if s.relay, err = outbox.New(deps.Pool, deps.Publisher, outbox.Config{}, deps.Clock, deps.Logger, deps.Registry); err != nil {
			return nil, fmt.Errorf("rotation: %w", err)
		}
	}
	return s, nil
}

// Spec describes rotation to an app.Host: its schema, gRPC and the
// organisation file it applies.
func Spec() app.Spec {
	return app.Spec{Name: "rotation", Schema: Schema, Migrations: Migrations(), GRPC: true, Org: true, Config: &Config{}, Build: FromKit}
}

// FromKit builds the service from the shared process kit.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	return New(ctx, cfg, Deps{Logger: k.Logger, Pool: k.Pool, Registry: k.Registry, Clock: k.Clock, Org: k.Org,
		Publisher: bus.NewPublisher(k.JS, "sidekick/rotation", bus.WithRegisterer(k.Registry))})
}

// Schedule returns the compiled schedule in force, nil before any
// configuration was applied.
func (s *Service) Schedule() *schedule.Schedule {
	if c := s.current.Load(); c != nil {
		return c.schedule
	}
	return nil
}

// reload recompiles from the store when anything changed. Stored overrides
// the configuration no longer supports are left out and logged, never a
// reason to fail: a replica must start and keep answering.
func (s *Service) reload(ctx context.Context) error {
	version, err := s.store.Version(ctx)
	if err != nil {
		return err
	}
	prev := s.current.Load()
	if prev != nil && prev.version == version {
		return nil
	}
	_, yaml, err := s.store.Current(ctx)
	if err != nil {
		return err
	}
	if yaml == nil {
		// Nothing applied yet: no schedule, and the API says so.
		s.current.Store(&compiled{version: version})
		return nil
	}
	cfg, err := schedule.ParseConfig(yaml)
	if err != nil {
		return fmt.Errorf("stored configuration no longer parses: %w", err)
	}
	stored, err := s.store.Overrides(ctx)
	if err != nil {
		return err
	}
	sched, ign, err := compileWith(cfg, stored)
	if err != nil {
		return fmt.Errorf("compile schedule: %w", err)
	}
	known := map[string]bool{}
	if prev != nil {
		for _, i := range prev.ignored {
			known[i.Override.ID] = true
		}
	}
	for _, i := range ign {
		if !known[i.Override.ID] {
			s.deps.Logger.Warn("stored override ignored", "override", i.Override.ID, "what", describe(i.Override), "reason", i.Reason)
		}
	}
	s.metrics.ignored.Set(float64(len(ign)))
	fromFile := map[string]bool{}
	for _, o := range cfg.Overrides {
		fromFile[o.ID] = true
	}
	s.current.Store(&compiled{version: version, yaml: yaml, schedule: sched, ignored: ign, fromFile: fromFile})
	s.deps.Logger.Info("schedule loaded", "version", version, "people", len(cfg.People), "rotations", len(cfg.Rotations),
		"overrides", len(cfg.Overrides)+len(stored)-len(ign), "ignored_overrides", len(ign))
	return nil
}

// Ignored returns the stored overrides the schedule in force leaves out,
// with the reason, one line each.
func (s *Service) Ignored() []string {
	c := s.current.Load()
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.ignored))
	for _, i := range c.ignored {
		out = append(out, i.Override.ID+" ("+describe(i.Override)+"): "+i.Reason)
	}
	return out
}

// Apply validates yaml, returns the diff against the configuration in force
// and, unless dryRun, stores it and recompiles. The diff also names the
// stored overrides the new configuration would leave out ("- stored
// override …: dropped, person "bob" is not in the configuration") or bring
// back. Errors caused by yaml itself wrap grpcapi.ErrInvalidConfig.
func (s *Service) Apply(ctx context.Context, yaml []byte, dryRun bool, by string) ([]string, error) {
	// The whole file first: a section no service knows is a typo, refused
	// with its line before anything is stored, and so is what the notifier
	// or triage would refuse in their sections, read as they read them.
	file, err := orgfile.Parse(yaml)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", grpcapi.ErrInvalidConfig, err)
	}
	if err := errors.Join(notifierconf.Check(file), triageconf.Check(file)); err != nil {
		return nil, fmt.Errorf("%w: %w", grpcapi.ErrInvalidConfig, err)
	}
	next, err := schedule.ParseConfig(yaml)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", grpcapi.ErrInvalidConfig, err)
	}
	stored, err := s.store.Overrides(ctx)
	if err != nil {
		return nil, err
	}
	_, nextIgnored, err := compileWith(next, stored)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", grpcapi.ErrInvalidConfig, err)
	}
	_, currentYAML, err := s.store.Current(ctx)
	if err != nil {
		return nil, err
	}
	prev := &schedule.Config{}
	var prevIgnored []ignored
	if currentYAML != nil {
		if prev, err = schedule.ParseConfig(currentYAML); err != nil {
			prev = &schedule.Config{}
		} else if _, prevIgnored, err = compileWith(prev, stored); err != nil {
			prevIgnored = nil
		}
	}
	changes := append(schedule.Diff(prev, next), ignoredChanges(prevIgnored, nextIgnored)...)
	var prevFile *orgfile.File
	if currentYAML != nil {
		prevFile, _ = orgfile.Parse(currentYAML) // unreadable: every section is new
	}
	changes = append(changes, orgfile.DiffSections(prevFile, file, otherSections...)...)
	if dryRun || len(changes) == 0 {
		return changes, nil
	}
	var announce func(int64) (outbox.Event, error)
	if s.emitter != nil {
		now := s.deps.Clock.Now()
		announce = func(version int64) (outbox.Event, error) {
			return events.Row(events.ConfigApplied(version, yaml, by, now))
		}
	}
	if _, err := s.store.Save(ctx, yaml, by, announce); err != nil {
		return nil, err
	}
	return changes, s.reload(ctx)
}

// otherSections are the organisation file's sections other services read;
// rotation versions them with its own and shows their changes in the
// diff, and the notifier and triage load them from the config_applied
// event (see docs/rotation.md, "Configuration as code").
var otherSections = []string{"policies", "triage", "escalation", "business_contacts", "sentry", "intake", "customers"}

// AddOverrides stores overrides (one, or the two sides of a swap; the API
// has checked them against the schedule) in one transaction and
// recompiles. An id stored with different content is refused with an
// error wrapping grpcapi.ErrOverrideExists.
func (s *Service) AddOverrides(ctx context.Context, os ...schedule.Override) error {
	now := s.deps.Clock.Now()
	var announce func(schedule.Override) (outbox.Event, error)
	if sched := s.Schedule(); s.emitter != nil && sched != nil {
		announce = func(o schedule.Override) (outbox.Event, error) {
			return events.Row(events.OverrideCreated(sched, o, now))
		}
	}
	if err := s.store.AddOverrides(ctx, now, announce, os...); errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %w", grpcapi.ErrOverrideExists, err)
	} else if err != nil {
		return err
	}
	return s.reload(ctx)
}

// DeleteOverride deletes a stored override, or both sides of a swap, with
// an override_deleted event for each in the same transaction, and
// recompiles. An unknown id is an error wrapping grpcapi.ErrNoOverride.
func (s *Service) DeleteOverride(ctx context.Context, id string) ([]schedule.Override, error) {
	now := s.deps.Clock.Now()
	var announce func(schedule.Override) (outbox.Event, error)
	if sched := s.Schedule(); s.emitter != nil && sched != nil {
		announce = func(o schedule.Override) (outbox.Event, error) {
			return events.Row(events.OverrideDeleted(sched, o, now))
		}
	}
	deleted, err := s.store.DeleteOverride(ctx, id, announce)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %w", grpcapi.ErrNoOverride, err)
	} else if err != nil {
		return nil, err
	}
	return deleted, s.reload(ctx)
}

// FromFile reports whether id is an override of the organisation file in
// force.
func (s *Service) FromFile(id string) bool {
	c := s.current.Load()
	return c != nil && c.fromFile[id]
}

// Run keeps the schedule in step with changes made through other replicas
// and writes and relays schedule events. Its waits are on the clock.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { _ = s.pruner.Run(ctx) })
	c := s.deps.Clock
	now := c.Now()
	nextReload, nextEmit := now.Add(s.cfg.ReloadInterval), now
	if s.emitter != nil {
		wg.Go(func() { _ = s.relay.Run(ctx) })
	}
	for {
		next := nextReload
		if s.emitter != nil && nextEmit.Before(next) {
			next = nextEmit
		}
		if !clock.WaitUntil(ctx, c, next, nil) {
			return nil
		}
		// Planned from the time read before the work, so a clock moved
		// meanwhile (a fake one, in tests) is not slept past.
		now := c.Now()
		if !now.Before(nextReload) {
			nextReload = now.Add(s.cfg.ReloadInterval)
			if err := s.reload(ctx); err != nil && ctx.Err() == nil {
				s.metrics.reloadErrors.Inc()
				s.deps.Logger.Error("reload schedule", "error", err)
			}
		}
		if s.emitter != nil && !now.Before(nextEmit) {
			nextEmit = now.Add(s.cfg.EventInterval)
			s.emit(ctx)
		}
	}
}

// Prune deletes, once, the ended overrides and old configuration versions
// older than the retention settings, and returns how many per table. Run
// does it every RetentionInterval; tests call it with a fake clock.
func (s *Service) Prune(ctx context.Context) (map[string]int64, error) {
	return s.pruner.Prune(ctx)
}

// emit writes the schedule events due now to the outbox; tests call it
// with a fake clock.
func (s *Service) emit(ctx context.Context) {
	n, err := s.emitter.Tick(ctx, s.Schedule(), s.deps.Clock.Now())
	if err != nil && ctx.Err() == nil {
		s.deps.Logger.Error("write schedule events", "error", err)
		return
	}
	if n > 0 {
		s.deps.Logger.Info("schedule events written", "count", n)
	}
}

// RegisterGRPC registers RotationService.
func (s *Service) RegisterGRPC(r grpc.ServiceRegistrar) {
	rotationv1.RegisterRotationServiceServer(r, s.api)
}

// Register mounts the iCalendar feeds.
func (s *Service) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /ical/rotations/{id}", s.serveICal(func(sc *schedule.Schedule, id string, from, to, now time.Time) ([]byte, error) {
		return sc.ICalRotation(id, from, to, now)
	}))
	mux.HandleFunc("GET /ical/people/{id}", s.serveICal(func(sc *schedule.Schedule, id string, from, to, now time.Time) ([]byte, error) {
		return sc.ICalPerson(id, from, to, now)
	}))
}

func (s *Service) serveICal(render func(sc *schedule.Schedule, id string, from, to, now time.Time) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if len(id) > 4 && id[len(id)-4:] == ".ics" {
			id = id[:len(id)-4]
		}
		sc := s.Schedule()
		if sc == nil {
			http.Error(w, "no configuration applied yet", http.StatusServiceUnavailable)
			return
		}
		now := s.deps.Clock.Now()
		body, err := render(sc, id, now.AddDate(0, 0, -28), now.AddDate(0, 0, 90), now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
		_, _ = w.Write(body)
	}
}
