// Package app wires services into a process. A Host runs one or more
// services: it reads the shared configuration, builds each service's Kit
// (its clock, its sections of the organisation file, its metric label, its
// logger, NATS, its own Postgres schema and pool, a gRPC dialer), owns the
// HTTP server (webhooks, /healthz, /readyz, /metrics) and the gRPC server,
// reports panics and errors to Sentry, and stops everything gracefully.
//
// Each cmd main is a Host of one, through Main, which adds what only a
// service's own process does (the migrate and version arguments, the Go
// memory limit from the container's). `sidekick dev` and the end-to-end
// tests run a Host of every service beside an embedded NATS server and a
// throwaway PostgreSQL (sidekick/devstack).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

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
	// LedgerMaxBytes bounds each reply ledger bucket (platform/outbound)
	// of the ingest services, in bytes; it counts in the NATS storage
	// budget beside the streams.
	LedgerMaxBytes int64  `env:"SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES" envDefault:"67108864"`
	OrgConfig      string `env:"SIDEKICK_ORG_CONFIG"`

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

	// NATS authentication, one of them required outside dev mode: the
	// service's NKey seed (a file, "SU…"; its user and permissions are in
	// platform/natsauth) or a credentials file (servers in operator mode).
	NATSNKeySeed string `env:"SIDEKICK_NATS_NKEY_SEED"`
	NATSCreds    string `env:"SIDEKICK_NATS_CREDS"`
	// NATSAnonymous lets a process outside dev mode connect to NATS without
	// authentication: for the dev overlay's single trial server, never for
	// production, where any pod could then forge messages.
	NATSAnonymous bool `env:"SIDEKICK_NATS_ANONYMOUS"`
	// TLS to NATS, off when no file is set: the CA bundle the servers are
	// verified against, and a client certificate when they require one.
	// Read again at each connection, like gRPC's.
	NATSTLSCA         string `env:"SIDEKICK_NATS_TLS_CA"`
	NATSTLSCert       string `env:"SIDEKICK_NATS_TLS_CERT"`
	NATSTLSKey        string `env:"SIDEKICK_NATS_TLS_KEY"`
	NATSTLSServerName string `env:"SIDEKICK_NATS_TLS_SERVER_NAME"`
}

// natsUser reports whether the process connects to NATS as a user of its
// own (an NKey or a credentials file): then it may not create or change
// streams, which its provision step does as the admin user.
func (c Common) natsUser() bool { return c.NATSNKeySeed != "" || c.NATSCreds != "" }

// natsAuthenticated reports whether NATS will know who the process is: a
// user of its own, or a user and password (or token) in SIDEKICK_NATS_URL.
func (c Common) natsAuthenticated() bool {
	return c.natsUser() || strings.Contains(c.NATSURL, "@")
}

// Kit is what a service constructor receives: everything the Host built
// for it.
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
	Org    *orgfile.File
	Logger *slog.Logger
	// Registry labels every metric with the service's name.
	Registry prometheus.Registerer
	// NC and JS are the process's NATS connection; nil for a Spec with
	// NoBus.
	NC *nats.Conn
	JS jetstream.JetStream
	// Pool has search_path set to the service's schema; nil without a schema.
	Pool     *pgxpool.Pool
	Reporter *sentryx.Reporter
	// Health is the process's readiness: a service may add the checks of
	// its own dependencies.
	Health *httpx.Health
	// Dial connects to another service's gRPC address with the bearer
	// token (and the client certificate under TLS).
	Dial func(addr string) (*grpc.ClientConn, error)
	// Console receives human-readable output of what would be sent to Slack
	// or email; set by `sidekick dev`, nil in production.
	Console io.Writer
	// HTTPClient, when not nil, is the client for calls to the outside
	// (Slack, PagerDuty, webhooks): it traces them and sends the trace
	// context (otelhttp). Nil when tracing is off: use a default.
	HTTPClient *http.Client
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

// Spec describes a service to a Host. Each service's root package returns
// its own (for example triage.Spec()), so its cmd main and the dev stack
// declare it once.
type Spec struct {
	Name string
	// Schema and Migrations are set for services that own Postgres state.
	Schema     string
	Migrations fs.FS
	// Settings are PostgreSQL run-time parameters for every connection of
	// the service's pool (pg.ConnectWith): triage turns JIT off.
	Settings map[string]string
	// MaxConns is the size of the service's pool when its database URL
	// does not set pool_max_conns (0: pgxpool's default, the CPUs and at
	// least 4): the notifier's handlers each hold a connection.
	MaxConns int32
	// GRPC says the service serves gRPC: the Host starts the gRPC server.
	GRPC bool
	// NoBus skips NATS for a service that neither publishes nor consumes
	// (the console): no connection, no readiness check on it.
	NoBus bool
	// Org says the service reads the organisation file: the Host reads
	// SIDEKICK_ORG_CONFIG (when set) and hands it over in Kit.Org.
	Org bool
	// Config, when set, points at the service's own Config type. The Host
	// loads it before connecting to anything, so a missing required
	// variable fails at once with its name.
	Config any
	// Build constructs the service from its Kit.
	Build Constructor
	// Provision, when set, creates or updates the JetStream resources the
	// service owns besides the SUPPORT_* streams (a stream, a key-value
	// bucket of its own) through k.JS. It runs wherever the streams are
	// provisioned: at start when the process may change streams (dev mode,
	// no NATS user of its own), else in `<service> provision` as the NATS
	// admin user. It reads the service's settings with config.LoadSettings:
	// the provision step has none of the service's secrets.
	Provision func(ctx context.Context, k *Kit) error
}

// loadCommon reads the shared configuration and checks what the specs
// need.
func loadCommon(specs []Spec, environ []string) (Common, error) {
	var c Common
	if err := config.Load(&c, environ); err != nil {
		return c, err
	}
	for _, spec := range specs {
		if spec.Schema != "" && c.DatabaseURL == "" {
			return c, fmt.Errorf("configuration: required environment variable SIDEKICK_DATABASE_URL is not set (%s keeps its state in Postgres)", spec.Name)
		}
		if spec.GRPC && !c.Dev && c.GRPCToken == "" {
			return c, fmt.Errorf("configuration: required environment variable SIDEKICK_GRPC_TOKEN is not set (gRPC needs authentication outside dev mode; set SIDEKICK_DEV=true for local use)")
		}
	}
	return c, nil
}

// loadGRPCTLS loads the gRPC TLS files named by the configuration: nil when
// none is set. A process serving gRPC (serves) needs the certificate and
// key to use TLS at all. Errors name the variables at fault.
func loadGRPCTLS(name string, serves bool, c Common, logger *slog.Logger) (*grpcx.TLS, error) {
	files := grpcx.TLSFiles{Cert: c.GRPCTLSCert, Key: c.GRPCTLSKey, CA: c.GRPCTLSCA, ServerName: c.GRPCTLSServerName}
	const pair = "SIDEKICK_GRPC_TLS_CERT and SIDEKICK_GRPC_TLS_KEY"
	switch {
	case c.GRPCTLSCert != "" && c.GRPCTLSKey == "":
		return nil, errors.New("configuration: SIDEKICK_GRPC_TLS_CERT is set but SIDEKICK_GRPC_TLS_KEY is not: set both (the certificate and its private key) or neither")
	case c.GRPCTLSKey != "" && c.GRPCTLSCert == "":
		return nil, errors.New("configuration: SIDEKICK_GRPC_TLS_KEY is set but SIDEKICK_GRPC_TLS_CERT is not: set both (the certificate and its private key) or neither")
	case serves && files.Enabled() && c.GRPCTLSCert == "":
		return nil, fmt.Errorf("configuration: SIDEKICK_GRPC_TLS_CA is set without %s: %s serves gRPC and needs its own certificate for TLS", pair, name)
	}
	return loadTLS(files, logger, pair, "SIDEKICK_GRPC_TLS_CA")
}

// loadTLS loads TLS files; an error names the variables at fault: pair
// those of the certificate and key, ca that of the CA bundle.
func loadTLS(files grpcx.TLSFiles, logger *slog.Logger, pair, ca string) (*grpcx.TLS, error) {
	t, err := grpcx.LoadTLS(files, logger)
	switch {
	case errors.Is(err, grpcx.ErrTLSKeyPair):
		return nil, fmt.Errorf("configuration: %s: %w", pair, err)
	case errors.Is(err, grpcx.ErrTLSCA):
		return nil, fmt.Errorf("configuration: %s: %w", ca, err)
	case err != nil:
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return t, nil
}

// Main runs one service as its own process. args are the command-line
// arguments after the program name: "migrate" applies migrations and exits;
// "version" prints the build; no argument runs the service.
func Main(ctx context.Context, spec Spec, args []string, environ []string) error {
	return MainIO(ctx, spec, args, environ, os.Stdout)
}

// MainIO is Main with the output stream given, for tests.
func MainIO(ctx context.Context, spec Spec, args []string, environ []string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(stdout, spec.Name, buildinfo.String())
			return nil
		case "migrate":
			return migrate(ctx, spec, environ, stdout)
		case "provision":
			return provision(ctx, spec, environ, stdout)
		case "-h", "--help", "help":
			fmt.Fprintf(stdout, "usage: %s [migrate|provision|version]\n\nConfigured by SIDEKICK_* environment variables; see docs/configuration.md.\n", spec.Name)
			return nil
		default:
			return fmt.Errorf("unknown argument %q (want migrate, provision or version)", args[0])
		}
	}
	h := &Host{Specs: []Spec{spec}, Environ: environ, Logs: stdout, MemoryLimit: memlimit.FromCgroup}
	return h.Run(ctx)
}

// migrate applies the service's migrations: a migration Job needs only the
// database, not the service's secrets.
func migrate(ctx context.Context, spec Spec, environ []string, stdout io.Writer) error {
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

// provision creates or updates every SUPPORT_* stream and the service's own
// JetStream resources (Spec.Provision), connected as the user the
// configuration names: in production the NATS admin user, whose seed the
// provision init container alone mounts.
func provision(ctx context.Context, spec Spec, environ []string, stdout io.Writer) error {
	var c Common
	if err := config.Load(&c, environ); err != nil {
		return err
	}
	if spec.NoBus {
		return fmt.Errorf("%s does not use NATS", spec.Name)
	}
	logger := logging.New(stdout, c.LogLevel, spec.Name)
	streams, err := streamsConfig(c)
	if err != nil {
		return err
	}
	// The admin user subscribes to the usual _INBOX: no prefix.
	auth, err := natsClientAuth(c, "", logger)
	if err != nil {
		return err
	}
	opts, err := auth.Options()
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	nc, js, err := bus.Connect(ctx, c.NATSURL, spec.Name+"-provision", logger, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	k := &Kit{Name: spec.Name, Environ: environ, Common: c, Clock: clock.Real(), Logger: logger, NC: nc, JS: js}
	if err := provisionAll(ctx, []Spec{spec}, k, streams); err != nil {
		return err
	}
	logger.Info("streams provisioned")
	return nil
}

// provisionAll creates or updates the SUPPORT_* streams and what each spec
// provisions, through k (whose Name each spec's call replaces).
func provisionAll(ctx context.Context, specs []Spec, k *Kit, streams bus.StreamsConfig) error {
	if err := bus.Provision(ctx, k.JS, streams); err != nil {
		return err
	}
	for _, spec := range specs {
		if spec.Provision == nil || spec.NoBus {
			continue
		}
		sk := *k
		sk.Name = spec.Name
		if err := spec.Provision(ctx, &sk); err != nil {
			return fmt.Errorf("%s: provision: %w", spec.Name, err)
		}
	}
	return nil
}

// streamsConfig is the streams' provisioning configuration.
func streamsConfig(c Common) (bus.StreamsConfig, error) {
	limits, err := bus.ParseStreamMaxBytes(c.StreamMaxBytes)
	if err != nil {
		return bus.StreamsConfig{}, fmt.Errorf("configuration: SIDEKICK_STREAM_MAX_BYTES: %w", err)
	}
	return bus.StreamsConfig{Replicas: c.StreamReplicas, StreamMaxBytes: limits}, nil
}

// requireNATSAuth refuses a process outside dev mode that would connect to
// NATS anonymously.
func requireNATSAuth(specs []Spec, c Common) error {
	for _, spec := range specs {
		if !spec.NoBus && !c.Dev && !c.NATSAnonymous && !c.natsAuthenticated() {
			return fmt.Errorf("configuration: required environment variable SIDEKICK_NATS_NKEY_SEED is not set (NATS needs authentication outside dev mode: %s's NKey seed file, or SIDEKICK_NATS_CREDS; set SIDEKICK_DEV=true for local use, SIDEKICK_NATS_ANONYMOUS=true for a trial NATS)", spec.Name)
		}
	}
	return nil
}

// natsClientAuth is how the process authenticates to NATS and the TLS it
// speaks there; inbox, when set, is the user's inbox prefix. Errors name
// the variables at fault.
func natsClientAuth(c Common, inbox string, logger *slog.Logger) (bus.ClientAuth, error) {
	a := bus.ClientAuth{NKeySeedFile: c.NATSNKeySeed, CredsFile: c.NATSCreds, InboxPrefix: inbox}
	if a.NKeySeedFile != "" && a.CredsFile != "" {
		return a, errors.New("configuration: SIDEKICK_NATS_NKEY_SEED and SIDEKICK_NATS_CREDS are both set: set one")
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return a, errors.New("configuration: SIDEKICK_NATS_TLS_CERT and SIDEKICK_NATS_TLS_KEY: set both (the client certificate and its private key) or neither")
	}
	files := grpcx.TLSFiles{Cert: c.NATSTLSCert, Key: c.NATSTLSKey, CA: c.NATSTLSCA, ServerName: c.NATSTLSServerName}
	t, err := loadTLS(files, logger, "SIDEKICK_NATS_TLS_CERT and SIDEKICK_NATS_TLS_KEY", "SIDEKICK_NATS_TLS_CA")
	if err != nil {
		return a, err
	}
	if t != nil {
		a.TLS, a.RootCAs = t.ClientConfig(), t.ClientRoots()
	}
	return a, nil
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
