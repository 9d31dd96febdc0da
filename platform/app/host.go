package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/sidekickhq/sidekick/platform/buildinfo"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/natsauth"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/outbound"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/sentryx"
	"github.com/sidekickhq/sidekick/platform/telemetry"
)

// Host runs one or more services in one process. Run reads the
// configuration, builds each service's Kit and the service, serves HTTP and
// gRPC for all of them, and returns when ctx is done (after a graceful
// shutdown) or when a service or a server fails.
//
// What is decided here is decided once for every process: authentication
// (a gRPC token, when set, is always required; without one gRPC is open
// only in dev mode), panic reporting on the gRPC server, liveness (the
// process serves: /healthz, gRPC health "") apart from readiness (every
// dependency answers: /readyz, gRPC health Readiness), the metric labels.
type Host struct {
	// Name names the process in logs, its NATS connection and Sentry;
	// empty: the service's name for a Host of one, else "sidekick".
	Name string
	// Specs are the services, built in this order.
	Specs []Spec
	// Environ is the environment every configuration is read from.
	Environ []string
	// Clock is every service's clock; nil: the wall clock.
	Clock clock.Clock
	// Logs receives the JSON logs.
	Logs io.Writer
	// Console receives what would be sent to Slack or email (`sidekick
	// dev`); nil in production.
	Console io.Writer
	// Registry receives every metric and is served on /metrics; nil: a new
	// one with the Go and process collectors.
	Registry *prometheus.Registry
	// HTTPListener and GRPCListener, when set, are served instead of
	// listening on SIDEKICK_HTTP_ADDR and SIDEKICK_GRPC_ADDR (the dev stack
	// listens first, to learn the free ports it was given).
	HTTPListener, GRPCListener net.Listener
	// ServiceRoles gives each service with a schema its own
	// least-privilege Postgres role, created through SIDEKICK_DATABASE_URL
	// with the password "dev-<service>": the dev stack's stand-in for the
	// per-service database users of production.
	ServiceRoles bool
	// MemoryLimit reports the container's memory limit, which the Go soft
	// memory limit then follows (see setMemoryLimit); nil leaves the
	// runtime's limit alone, as a process that hosts tests must.
	MemoryLimit memlimit.Provider
	// Ready, when set, is called once every service is built and the
	// listeners accept connections.
	Ready func()
	// Tracing, when set, is the process's OpenTelemetry tracing (a test's
	// in-memory exporter); nil: what the OTEL_* variables of Environ ask
	// for, by default none (platform/telemetry).
	Tracing *telemetry.Tracing
}

func (h *Host) name() string {
	switch {
	case h.Name != "":
		return h.Name
	case len(h.Specs) == 1:
		return h.Specs[0].Name
	default:
		return "sidekick"
	}
}

// Run runs the services until ctx is done.
func (h *Host) Run(ctx context.Context) (err error) {
	name := h.name()
	common, err := loadCommon(h.Specs, h.Environ)
	if err != nil {
		return err
	}
	for _, spec := range h.Specs {
		if spec.Config != nil {
			if err := config.Load(spec.Config, h.Environ); err != nil {
				return fmt.Errorf("%s: %w", spec.Name, err)
			}
		}
	}
	base := logging.New(h.Logs, common.LogLevel, "")
	logger := base.With("service", name)
	serves := h.servesGRPC()
	grpcTLS, err := loadGRPCTLS(name, serves, common, logger)
	if err != nil {
		return err
	}
	org, err := h.readOrg(common)
	if err != nil {
		return err
	}
	streams, err := streamsConfig(common)
	if err != nil {
		return err
	}
	if err := requireNATSAuth(h.Specs, common); err != nil {
		return err
	}
	// A NATS user of its own may subscribe only to its own inbox.
	inbox := ""
	if common.natsUser() {
		inbox = natsauth.InboxPrefix(name)
	}
	natsAuth, err := natsClientAuth(common, inbox, logger)
	if err != nil {
		return err
	}
	natsOpts, err := natsAuth.Options()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	tracing := h.Tracing
	if tracing == nil {
		if tracing, err = telemetry.FromEnv(ctx, h.Environ, name); err != nil {
			return err
		}
		if tracing != nil {
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = tracing.Shutdown(sctx)
			}()
		}
	}
	if tracing != nil {
		tracing.Install()
	}
	logger.Info("starting", "version", buildinfo.String(), "tracing", tracing != nil)
	if h.MemoryLimit != nil {
		setMemoryLimit(logger, h.MemoryLimit)
	}
	clk := clock.OrReal(h.Clock)

	reg := h.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	// One service per process, as in production, labels the process's own
	// metrics (HTTP) with its name; a shared server has no one service to
	// name.
	var processReg prometheus.Registerer = reg
	if len(h.Specs) == 1 {
		processReg = prometheus.WrapRegistererWith(prometheus.Labels{"service": h.Specs[0].Name}, reg)
	}
	reporter, err := sentryx.New(sentryx.Options{DSN: common.SentryDSN, Service: name, Environment: common.Env, Release: buildinfo.Version})
	if err != nil {
		return err
	}
	defer reporter.Flush(2 * time.Second)

	health := httpx.NewHealth(0)
	var (
		nc *nats.Conn
		js jetstream.JetStream
	)
	if h.needsBus() {
		if nc, js, err = bus.Connect(ctx, common.NATSURL, name, logger, natsOpts...); err != nil {
			return err
		}
		defer nc.Close()
		if common.natsUser() {
			// The provision step made them, as the admin user.
			if err := bus.Check(ctx, js, streams); err != nil {
				return fmt.Errorf("%w: run `%s provision` with the NATS admin user's seed (docs/operations.md, NATS users)", err, name)
			}
		} else {
			k := &Kit{Environ: h.Environ, Common: common, Clock: clk, Logger: logger, NC: nc, JS: js}
			if err := provisionAll(ctx, h.Specs, k, streams); err != nil {
				return err
			}
		}
		if err := bus.RegisterStreamLimits(processReg, streams); err != nil {
			return err
		}
		if err := outbound.RegisterLedgerLimits(processReg, common.LedgerMaxBytes); err != nil {
			return err
		}
		health.Add(NATSCheck(nc))
	}
	// gRPC calls are counted and timed on both sides
	// (grpc_server_handled_total, grpc_client_handling_seconds, …), and
	// traced when tracing is on.
	grpcClientMetrics := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram())
	if err := processReg.Register(grpcClientMetrics); err != nil {
		return fmt.Errorf("grpc client metrics: %w", err)
	}
	var grpcClientStats, grpcServerStats stats.Handler
	if tracing != nil {
		grpcClientStats = otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tracing.Provider), otelgrpc.WithPropagators(tracing.Propagator))
		grpcServerStats = otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tracing.Provider), otelgrpc.WithPropagators(tracing.Propagator))
	}
	var httpClient *http.Client
	if tracing != nil {
		httpClient = &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
			otelhttp.WithTracerProvider(tracing.Provider), otelhttp.WithPropagators(tracing.Propagator),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Host + r.URL.Path }))}
	}
	dial := func(addr string) (*grpc.ClientConn, error) {
		return grpcx.Dial(addr, grpcx.DialOptions{Token: common.GRPCToken, TLS: grpcTLS.ClientConfig(), Roots: grpcTLS.ClientRoots(),
			Metrics: grpcClientMetrics, StatsHandler: grpcClientStats})
	}

	httpLis, grpcLis := h.HTTPListener, h.GRPCListener
	if httpLis == nil {
		if httpLis, err = net.Listen("tcp", common.HTTPAddr); err != nil {
			return fmt.Errorf("listen http %s: %w", common.HTTPAddr, err)
		}
	}
	defer httpLis.Close()
	var gs *grpcx.Server
	var grpcServerMetrics *grpcprom.ServerMetrics
	if serves {
		// A token, when set, is always required; LoadCommon refused a
		// server without one outside dev mode.
		grpcServerMetrics = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
		if err := processReg.Register(grpcServerMetrics); err != nil {
			return fmt.Errorf("grpc server metrics: %w", err)
		}
		opts := grpcx.ServerOptions{Logger: logger, Token: common.GRPCToken, Insecure: common.GRPCToken == "", OnPanic: reporter.CapturePanic,
			Metrics: grpcServerMetrics, StatsHandler: grpcServerStats}
		if grpcTLS != nil {
			if opts.TLS, err = grpcTLS.ServerConfig(); err != nil {
				return err
			}
		}
		if gs, err = grpcx.NewServer(opts); err != nil {
			return err
		}
		if grpcLis == nil {
			if grpcLis, err = net.Listen("tcp", common.GRPCAddr); err != nil {
				return fmt.Errorf("listen grpc %s: %w", common.GRPCAddr, err)
			}
		}
		defer grpcLis.Close()
	}

	mux := http.NewServeMux()
	health.Register(mux, reg)
	type running struct {
		name string
		svc  Service
	}
	var services []running
	for _, spec := range h.Specs {
		k := &Kit{
			Name: spec.Name, Environ: h.Environ, Common: common, Clock: clk, Logger: base.With("service", spec.Name),
			Registry: prometheus.WrapRegistererWith(prometheus.Labels{"service": spec.Name}, reg),
			Reporter: reporter, Health: health, Dial: dial, Console: h.Console, HTTPClient: httpClient,
		}
		if spec.Org {
			k.Org = org
		}
		if !spec.NoBus {
			k.NC, k.JS = nc, js
		}
		if spec.Schema != "" {
			if k.Pool, err = h.connectPostgres(ctx, spec, common.DatabaseURL, k.Logger); err != nil {
				return fmt.Errorf("%s: %w", spec.Name, err)
			}
			defer k.Pool.Close()
			health.Add(httpx.Check{Name: "postgres", Check: pg.Ready(k.Pool)})
		}
		svc, err := spec.Build(ctx, k)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		if r, ok := svc.(HTTPService); ok {
			r.Register(mux)
		}
		if r, ok := svc.(GRPCService); ok && gs != nil {
			r.RegisterGRPC(gs)
		}
		services = append(services, running{spec.Name, svc})
	}

	if gs != nil {
		// Every method at zero, so a rate() has a start.
		grpcServerMetrics.InitializeMetrics(gs.Server)
	}
	g, gctx := errgroup.WithContext(ctx)
	var handler http.Handler = mux
	if tracing != nil {
		// A span per request, a child of the caller's traceparent if any:
		// the first span of a Slack message's trace.
		handler = otelhttp.NewHandler(mux, name, otelhttp.WithTracerProvider(tracing.Provider), otelhttp.WithPropagators(tracing.Propagator),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
	}
	srv := httpx.NewServer(httpx.NewMetrics(processReg).Wrap(handler))
	g.Go(func() error { return httpx.Serve(gctx, srv, httpLis, common.ShutdownTimeout, logger) })
	if gs != nil {
		g.Go(func() error { return gs.Serve(gctx, grpcLis, common.ShutdownTimeout, logger) })
		g.Go(func() error { MirrorReadiness(gctx, health, gs.Health, servedNames(gs), 5*time.Second); return nil })
		if grpcTLS != nil {
			// The kubelet's gRPC probe speaks neither TLS nor mTLS: it gets
			// the same health answers in plaintext on a port of their own.
			hs := grpcx.NewHealthServer(gs.Health)
			healthLis, err := net.Listen("tcp", common.GRPCHealthAddr)
			if err != nil {
				return fmt.Errorf("listen grpc health %s: %w", common.GRPCHealthAddr, err)
			}
			g.Go(func() error { return hs.Serve(gctx, healthLis, common.ShutdownTimeout, logger) })
		}
	}
	for _, r := range services {
		g.Go(func() error {
			defer reporter.Recover()
			if err := r.svc.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				reporter.CaptureError(err, nil)
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return nil
		})
	}
	if h.Ready != nil {
		h.Ready()
	}
	err = g.Wait()
	logger.Info("stopped", "error", err)
	return err
}

// servedNames are the gRPC services registered on gs, besides health and
// reflection.
func servedNames(gs *grpcx.Server) []string {
	var names []string
	for name := range gs.GetServiceInfo() {
		if name != healthpb.Health_ServiceDesc.ServiceName && !strings.HasPrefix(name, "grpc.reflection.") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (h *Host) servesGRPC() bool {
	for _, s := range h.Specs {
		if s.GRPC {
			return true
		}
	}
	return false
}

func (h *Host) needsBus() bool {
	for _, s := range h.Specs {
		if !s.NoBus {
			return true
		}
	}
	return false
}

// readOrg reads the organisation file once, for every service that reads
// it; nil when none does or none is configured.
func (h *Host) readOrg(c Common) (*orgfile.File, error) {
	if c.OrgConfig == "" {
		return nil, nil
	}
	for _, s := range h.Specs {
		if s.Org {
			f, err := orgfile.Read(c.OrgConfig)
			if err != nil {
				return nil, fmt.Errorf("SIDEKICK_ORG_CONFIG: %w", err)
			}
			return f, nil
		}
	}
	return nil, nil
}

// connectPostgres migrates the service's schema and opens its pool, through
// its own role with ServiceRoles.
func (h *Host) connectPostgres(ctx context.Context, spec Spec, url string, logger *slog.Logger) (*pgxpool.Pool, error) {
	if err := pg.Migrate(ctx, url, spec.Schema, spec.Migrations, logger); err != nil {
		return nil, err
	}
	if h.ServiceRoles {
		var err error
		if url, err = pg.EnsureServiceRole(ctx, url, spec.Name, spec.Schema, "dev-"+spec.Name); err != nil {
			return nil, err
		}
	}
	return pg.ConnectWith(ctx, url, spec.Schema, spec.Settings, spec.MaxConns)
}
