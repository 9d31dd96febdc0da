// Package orgwatch keeps a service's sections of the organisation file in
// step with the version applied through rotation, without a restart.
//
// Rotation stores every applied file as a version and, in the same
// transaction, writes a config_applied event carrying the file to its
// outbox (support.rotation.config_applied). A Watcher, one per service
// replica, reads that event three ways, all ending in the same check: at
// start it reads the last one kept in SUPPORT_ROTATION (a version applied
// while the service was down), while running it watches the subject with
// a plain subscription (every replica must see it: a durable consumer
// would hand it to one), and every Interval it reads the last one again,
// in case a message was missed while disconnected.
//
// A version is loaded once: the file is parsed and handed to the service's
// Load, which reads its sections and swaps them in atomically or returns
// an error. A file Load refuses, or one that cannot be read, changes
// nothing: the service keeps the last good version, logs the error once
// per version and sets sidekick_org_config_stale to 1 until a good one
// comes. Rotation has checked the file with the services' own checks
// before it stored it, so a refusal means a service runs a different
// build than rotation.
package orgwatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/promreg"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Subject is where rotation announces an applied organisation file.
var Subject = bus.RotationSubject("config_applied")

// Config configures a Watcher.
type Config struct {
	// Interval is how often the last announcement is read again, for one
	// missed while disconnected; default one minute.
	Interval time.Duration
	// Load reads the service's sections of an applied file and swaps them
	// in, or returns an error and changes nothing.
	Load func(*orgfile.File) error
}

// Watcher loads the organisation file versions rotation applies.
type Watcher struct {
	cfg    Config
	js     jetstream.JetStream
	clock  clock.Clock
	logger *slog.Logger

	mu      sync.Mutex
	version string // loaded
	refused string // the last version refused, logged once

	loads *prometheus.CounterVec
	stale prometheus.Gauge
}

// New returns a Watcher of the service whose sections come from current
// (the file read at start, nil when none).
func New(js jetstream.JetStream, cfg Config, current *orgfile.File, c clock.Clock, logger *slog.Logger, reg prometheus.Registerer) (*Watcher, error) {
	switch {
	case js == nil:
		return nil, errors.New("orgwatch: JetStream is required")
	case cfg.Load == nil:
		return nil, errors.New("orgwatch: Load is required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, js: js, clock: clock.OrReal(c), logger: logger}
	if current != nil {
		w.version = current.Version
	}
	var err error
	if w.loads, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_org_config_loads_total",
		Help: "Organisation file versions announced by rotation, by result: loaded (in force now), refused (the service's sections did not read; the last good version stays), unreadable (the announcement could not be read).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if w.stale, err = promreg.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidekick_org_config_stale",
		Help: "1 while the newest organisation file rotation announced was refused and the service runs an older one.",
	})); err != nil {
		return nil, err
	}
	return w, nil
}

// Version is the version of the organisation file in force.
func (w *Watcher) Version() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.version
}

// Run watches for applied versions until ctx is done.
func (w *Watcher) Run(ctx context.Context) error {
	got := make(chan []byte, 16)
	wake := make(chan struct{}, 1)
	sub, err := w.js.Conn().Subscribe(Subject, func(m *nats.Msg) {
		select {
		case got <- m.Data:
		default: // the next Interval's read catches up
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("orgwatch: subscribe %s: %w", Subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	next := w.clock.Now()
	for {
	drain:
		for {
			select {
			case data := <-got:
				w.Consider(data)
			default:
				break drain
			}
		}
		if now := w.clock.Now(); !now.Before(next) {
			next = now.Add(w.cfg.Interval)
			w.checkLast(ctx)
		}
		if !clock.WaitUntil(ctx, w.clock, next, wake) {
			return nil
		}
	}
}

// checkLast reads the last announcement kept in the stream.
func (w *Watcher) checkLast(ctx context.Context) {
	s, err := w.js.Stream(ctx, bus.StreamRotation)
	if err == nil {
		var m *jetstream.RawStreamMsg
		m, err = s.GetLastMsgForSubject(ctx, Subject)
		if err == nil {
			w.Consider(m.Data)
			return
		}
	}
	if errors.Is(err, jetstream.ErrMsgNotFound) || ctx.Err() != nil {
		return // nothing applied through rotation yet
	}
	w.loads.WithLabelValues("unreadable").Inc()
	w.logger.Warn("organisation file: cannot read the last version applied; keeping the one in force", "version", w.Version(), "error", err)
}

// Consider loads the file a config_applied event carries unless it is the
// version in force (or one refused already). The subscription and the
// periodic read call it; tests call it with an event's bytes.
func (w *Watcher) Consider(data []byte) {
	ev := &supportv1.RotationEvent{}
	if err := proto.Unmarshal(data, ev); err != nil || ev.GetType() != supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED {
		w.loads.WithLabelValues("unreadable").Inc()
		w.logger.Warn("organisation file: unreadable announcement ignored", "error", err, "type", ev.GetType())
		return
	}
	version := ev.GetConfigVersion()
	w.mu.Lock()
	defer w.mu.Unlock()
	if version == w.version || version == w.refused {
		return
	}
	err := w.load(ev.GetConfig(), version)
	if err != nil {
		w.refused = version
		w.loads.WithLabelValues("refused").Inc()
		w.stale.Set(1)
		w.logger.Error("organisation file: applied version refused; keeping the one in force",
			"version", version, "in_force", w.version, "applied_by", ev.GetDetail(), "error", err)
		return
	}
	w.logger.Info("organisation file: loaded the applied version", "version", version, "previous", w.version, "applied_by", ev.GetDetail())
	w.version, w.refused = version, ""
	w.loads.WithLabelValues("loaded").Inc()
	w.stale.Set(0)
}

func (w *Watcher) load(data []byte, version string) error {
	f, err := orgfile.Parse(data)
	if err != nil {
		return err
	}
	if f.Version != version {
		return fmt.Errorf("the file's digest is %s, the announcement says %s", f.Version, version)
	}
	return w.cfg.Load(f)
}
