// Package app wires one service into a process: configuration, logging,
// NATS and its streams, Postgres and migrations, the HTTP server with
// health and metrics, the gRPC server, Sentry, and graceful shutdown. Each
// cmd main is one call to Main; the all-in-one dev stack builds a shared Kit
// per service with NewKit and serves them on one listener.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sidekickhq/sidekick/platform/buildinfo"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/sentryx"
)

// Common is the configuration every service shares.
type Common struct {
	NATSURL         string        `env:"SIDEKICK_NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	DatabaseURL     string        `env:"SIDEKICK_DATABASE_URL"`
	HTTPAddr        string        `env:"SIDEKICK_HTTP_ADDR" envDefault:":8080"`
	GRPCAddr        string        `env:"SIDEKICK_GRPC_ADDR" envDefault:":9090"`
	GRPCToken       string        `env:"SIDEKICK_GRPC_TOKEN"`
	RotationAddr    string        `env:"SIDEKICK_ROTATION_ADDR" envDefault:"127.0.0.1:9090"`
	TriageAddr      string        `env:"SIDEKICK_TRIAGE_ADDR" envDefault:"127.0.0.1:9090"`
	NotifierAddr    string        `env:"SIDEKICK_NOTIFIER_ADDR" envDefault:"127.0.0.1:9090"`
	Dev             bool          `env:"SIDEKICK_DEV"`
	Env             string        `env:"SIDEKICK_ENV" envDefault:"production"`
	LogLevel        string        `env:"SIDEKICK_LOG_LEVEL" envDefault:"info"`
	SentryDSN       string        `env:"SIDEKICK_SENTRY_DSN"`
	StreamReplicas  int           `env:"SIDEKICK_STREAM_REPLICAS" envDefault:"1"`
	StreamMaxBytes  string        `env:"SIDEKICK_STREAM_MAX_BYTES"` // bus.ParseStreamMaxBytes; the same in every service
	ShutdownTimeout time.Duration `env:"SIDEKICK_SHUTDOWN_TIMEOUT" envDefault:"20s"`
	OrgConfig       string        `env:"SIDEKICK_ORG_CONFIG"`

	// TLS for gRPC, off when no file is set. Cert and Key are the server's
	// certificate and the client certificate when dialing; CA verifies
	// peers and makes the server require client certificates (mTLS).
	GRPCTLSCert       string `env:"SIDEKICK_GRPC_TLS_CERT"`
	GRPCTLSKey        string `env:"SIDEKICK_GRPC_TLS_KEY"`
	GRPCTLSCA         string `env:"SIDEKICK_GRPC_TLS_CA"`
	GRPCTLSServerName string `env:"SIDEKICK_GRPC_TLS_SERVER_NAME"`
	// GRPCHealthAddr serves grpc.health.v1 in plaintext, for the probes,
	// when the gRPC server uses TLS.
	GRPCHealthAddr string `env:"SIDEKICK_GRPC_HEALTH_ADDR" envDefault:":9091"`
}

// Kit is what a service constructor receives.
type Kit struct {
	Name    string
	Environ []string
	Common  Common
	// Clock is the clock every timer of the service runs on: the wall
	// clock in production, a fake one the end-to-end tests move forward.
	Clock clock.Clock
	// Org is the organisation file (SIDEKICK_ORG_CONFIG), read and parsed
	// once per process for the services whose Spec sets Org; nil without
	// one. Each service takes its own sections from it.
	Org      *orgfile.File
	Logger   *slog.Logger
	Registry prometheus.Registerer
	NC       *nats.Conn
	JS       jetstream.JetStream
	// Pool has search_path set to the service's schema; nil without a schema.
	Pool     *pgxpool.Pool
	Reporter *sentryx.Reporter
	Health   *httpx.Health
	// Dial connects to another service's gRPC address with the bearer token.
	Dial func(addr string) (*grpc.ClientConn, error)
	// Console receives human-readable output of what would be sent to Slack
	// or email; set by `sidekick dev`, nil in production.
	Console io.Writer
}

// Service is what a constructor returns. It may also implement HTTPService
// and GRPCService.
type Service interface {
	Run(ctx context.Context) error
}

// HTTPService registers HTTP routes.
type HTTPService interface {
	Register(mux *http.ServeMux)
}

// GRPCService registers gRPC services.
type GRPCService interface {
	RegisterGRPC(r grpc.ServiceRegistrar)
}

// Constructor builds a service from its kit.
type Constructor func(ctx context.Context, k *Kit) (Service, error)

// Spec describes a service to Main.
type Spec struct {
	Name string
	// Schema and Migrations are set for services that own Postgres state.
	Schema     string
	Migrations fs.FS
	// GRPC starts the gRPC server.
	GRPC bool
	// NoBus skips NATS for a service that neither publishes nor consumes
	// (the console): no connection, no readiness check on it.
	NoBus bool
	// Org says the service reads the organisation file: the process reads
	// SIDEKICK_ORG_CONFIG (when set) and hands it over in Kit.Org.
	Org bool
	// Config, when set, points at the service's own Config type. Main loads
	// it before connecting to anything, so a missing required variable fails
	// at once with its name.
	Config any
}

// LoadCommon reads the shared configuration and checks what the spec needs.
func LoadCommon(spec Spec, environ []string) (Common, error) {
	var c Common
	if err := config.Load(&c, environ); err != nil {
		return c, err
	}
	if spec.Schema != "" && c.DatabaseURL == "" {
		return c, fmt.Errorf("configuration: required environment variable SIDEKICK_DATABASE_URL is not set (%s keeps its state in Postgres)", spec.Name)
	}
	if spec.GRPC && !c.Dev && c.GRPCToken == "" {
		return c, fmt.Errorf("configuration: required environment variable SIDEKICK_GRPC_TOKEN is not set (gRPC needs authentication outside dev mode; set SIDEKICK_DEV=true for local use)")
	}
	return c, nil
}

// loadGRPCTLS loads the gRPC TLS files named by the configuration: nil when
// none is set. A gRPC server (spec.GRPC) needs the certificate and key to
// use TLS at all. Errors name the variables at fault.
func loadGRPCTLS(spec Spec, c Common, logger *slog.Logger) (*grpcx.TLS, error) {
	files := grpcx.TLSFiles{Cert: c.GRPCTLSCert, Key: c.GRPCTLSKey, CA: c.GRPCTLSCA, ServerName: c.GRPCTLSServerName}
	const pair = "SIDEKICK_GRPC_TLS_CERT and SIDEKICK_GRPC_TLS_KEY"
	switch {
	case c.GRPCTLSCert != "" && c.GRPCTLSKey == "":
		return nil, errors.New("configuration: SIDEKICK_GRPC_TLS_CERT is set but SIDEKICK_GRPC_TLS_KEY is not: set both (the certificate and its private key) or neither")
	case c.GRPCTLSKey != "" && c.GRPCTLSCert == "":
		return nil, errors.New("configuration: SIDEKICK_GRPC_TLS_KEY is set but SIDEKICK_GRPC_TLS_CERT is not: set both (the certificate and its private key) or neither")
	case spec.GRPC && files.Enabled() && c.GRPCTLSCert == "":
		return nil, fmt.Errorf("configuration: SIDEKICK_GRPC_TLS_CA is set without %s: %s serves gRPC and needs its own certificate for TLS", pair, spec.Name)
	}
	t, err := grpcx.LoadTLS(files, logger)
	switch {
	case errors.Is(err, grpcx.ErrTLSKeyPair):
		return nil, fmt.Errorf("configuration: %s: %w", pair, err)
	case errors.Is(err, grpcx.ErrTLSCA):
		return nil, fmt.Errorf("configuration: SIDEKICK_GRPC_TLS_CA: %w", err)
	case err != nil:
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return t, nil
}

// Main runs one service as its own process. args are the command-line
// arguments after the program name: "migrate" applies migrations and exits;
// "version" prints the build; no argument runs the service.
func Main(ctx context.Context, spec Spec, args []string, environ []string, build Constructor) error {
	return MainIO(ctx, spec, args, environ, os.Stdout, build)
}

// MainIO is Main with the output stream given, for tests.
func MainIO(ctx context.Context, spec Spec, args []string, environ []string, stdout io.Writer, build Constructor) error {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(stdout, spec.Name, buildinfo.String())
			return nil
		case "migrate":
		case "-h", "--help", "help":
			fmt.Fprintf(stdout, "usage: %s [migrate|version]\n\nConfigured by SIDEKICK_* environment variables; see docs/configuration.md.\n", spec.Name)
			return nil
		default:
			return fmt.Errorf("unknown argument %q (want migrate or version)", args[0])
		}
	}
	if len(args) > 0 && args[0] == "migrate" {
		// A migration Job needs only the database, not the service's secrets.
		var c Common
		if err := config.Load(&c, environ); err != nil {
			return err
		}
		if spec.Schema == "" {
			return fmt.Errorf("%s has no database", spec.Name)
		}
		if c.DatabaseURL == "" {
			return fmt.Errorf("configuration: required environment variable SIDEKICK_DATABASE_URL is not set")
		}
		return pg.Migrate(ctx, c.DatabaseURL, spec.Schema, spec.Migrations, logging.New(stdout, c.LogLevel, spec.Name))
	}
	common, err := LoadCommon(spec, environ)
	if err != nil {
		return err
	}
	if spec.Config != nil {
		if err := config.Load(spec.Config, environ); err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
	}
	logger := logging.New(stdout, common.LogLevel, spec.Name)
	grpcTLS, err := loadGRPCTLS(spec, common, logger)
	if err != nil {
		return err
	}
	logger.Info("starting", "version", buildinfo.String())
	setMemoryLimit(logger, memlimit.FromCgroup)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reporter, err := sentryx.New(sentryx.Options{DSN: common.SentryDSN, Service: spec.Name, Environment: common.Env, Release: buildinfo.Version})
	if err != nil {
		return err
	}
	defer reporter.Flush(2 * time.Second)

	health := httpx.NewHealth(0)
	var (
		nc *nats.Conn
		js jetstream.JetStream
	)
	if !spec.NoBus {
		if nc, js, err = bus.Connect(ctx, common.NATSURL, spec.Name, logger); err != nil {
			return err
		}
		defer nc.Close()
		limits, err := bus.ParseStreamMaxBytes(common.StreamMaxBytes)
		if err != nil {
			return fmt.Errorf("configuration: SIDEKICK_STREAM_MAX_BYTES: %w", err)
		}
		streams := bus.StreamsConfig{Replicas: common.StreamReplicas, StreamMaxBytes: limits}
		if err := bus.Provision(ctx, js, streams); err != nil {
			return err
		}
		if err := bus.RegisterStreamLimits(prometheus.WrapRegistererWith(prometheus.Labels{"service": spec.Name}, reg), streams); err != nil {
			return err
		}
		health.Add(NATSCheck(nc))
	}

	var pool *pgxpool.Pool
	if spec.Schema != "" {
		if err := pg.Migrate(ctx, common.DatabaseURL, spec.Schema, spec.Migrations, logger); err != nil {
			return err
		}
		pool, err = pg.Connect(ctx, common.DatabaseURL, spec.Schema)
		if err != nil {
			return err
		}
		defer pool.Close()
		health.Add(httpx.Check{Name: "postgres", Check: pg.Ready(pool)})
	}

	var org *orgfile.File
	if spec.Org && common.OrgConfig != "" {
		if org, err = orgfile.Read(common.OrgConfig); err != nil {
			return fmt.Errorf("SIDEKICK_ORG_CONFIG: %w", err)
		}
	}
	kit := &Kit{
		Name: spec.Name, Environ: environ, Common: common, Logger: logger, Clock: clock.Real(), Org: org,
		Registry: prometheus.WrapRegistererWith(prometheus.Labels{"service": spec.Name}, reg),
		NC:       nc, JS: js, Pool: pool, Reporter: reporter, Health: health,
		Dial: func(addr string) (*grpc.ClientConn, error) {
			return grpcx.Dial(addr, grpcx.DialOptions{Token: common.GRPCToken, TLS: grpcTLS.ClientConfig(), Roots: grpcTLS.ClientRoots()})
		},
	}
	svc, err := build(ctx, kit)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.Name, err)
	}

	mux := http.NewServeMux()
	health.Register(mux, reg)
	if h, ok := svc.(HTTPService); ok {
		h.Register(mux)
	}
	g, gctx := errgroup.WithContext(ctx)
	httpLis, err := net.Listen("tcp", common.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", common.HTTPAddr, err)
	}
	srv := httpx.NewServer(httpx.NewMetrics(kit.Registry).Wrap(mux))
	g.Go(func() error { return httpx.Serve(gctx, srv, httpLis, common.ShutdownTimeout, logger) })
	if spec.GRPC {
		opts := grpcx.ServerOptions{Logger: logger, Token: common.GRPCToken, Insecure: common.Dev, OnPanic: reporter.CapturePanic}
		if grpcTLS != nil {
			if opts.TLS, err = grpcTLS.ServerConfig(); err != nil {
				return err
			}
		}
		gs, err := grpcx.NewServer(opts)
		if err != nil {
			return err
		}
		if r, ok := svc.(GRPCService); ok {
			r.RegisterGRPC(gs)
		}
		grpcLis, err := net.Listen("tcp", common.GRPCAddr)
		if err != nil {
			return fmt.Errorf("listen grpc %s: %w", common.GRPCAddr, err)
		}
		g.Go(func() error { return gs.Serve(gctx, grpcLis, common.ShutdownTimeout, logger) })
		g.Go(func() error { MirrorHealth(gctx, health, gs.Health, 5*time.Second); return nil })
		if opts.TLS != nil {
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
	g.Go(func() error {
		defer reporter.Recover()
		if err := svc.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
			reporter.CaptureError(err, nil)
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
		return nil
	})
	err = g.Wait()
	logger.Info("stopped", "error", err)
	return err
}

// MirrorHealth keeps the gRPC health status (the overall "" service) in
// step with the readiness checks, so a gRPC readiness probe sees the same
// answer as /readyz. It returns when ctx is done.
func MirrorHealth(ctx context.Context, h *httpx.Health, gh *health.Server, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		status := healthpb.HealthCheckResponse_SERVING
		if len(h.Ready(ctx)) > 0 {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if ctx.Err() != nil {
			return
		}
		gh.SetServingStatus("", status)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NATSCheck is the readiness check for the NATS connection.
func NATSCheck(nc *nats.Conn) httpx.Check {
	return httpx.Check{Name: "nats", Check: func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("nats flush: %w", err)
		}
		return nil
	}}
}

// setMemoryLimit gives the Go runtime a soft memory limit of 90% of what
// provider reports (the container's cgroup limit), so that the garbage
// collector works harder as the heap nears the limit instead of the kernel
// killing the process, and stays relaxed while there is room. GOMEMLIMIT,
// when set, wins; AUTOMEMLIMIT=off turns this off, AUTOMEMLIMIT=0.8 sets
// another ratio. Without a limit nothing changes. It returns the limit in
// force.
func setMemoryLimit(logger *slog.Logger, provider memlimit.Provider) int64 {
	limit, _ := memlimit.Set(memlimit.WithLogger(logger), memlimit.WithProvider(provider)) // failures are logged
	return limit
}
