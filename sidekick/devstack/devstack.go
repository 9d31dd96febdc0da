// Package devstack runs the whole of Sidekick in one process for `sidekick
// dev` and the end-to-end tests: an embedded NATS server with JetStream, a
// throwaway PostgreSQL cluster started from the machine's server binaries
// (or SIDEKICK_DATABASE_URL), every service, one HTTP listener for every
// endpoint, one gRPC server for every service, and the demo organisation.
package devstack

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgcluster"
	"github.com/sidekickhq/sidekick/platform/sentryx"
)

// DemoOrg is the demo organisation applied on start unless
// SIDEKICK_ORG_CONFIG names another file.
//
//go:embed demo/sidekick.yaml
var DemoOrg []byte

// Defaults are the documented dev values, used when the variable is not set
// in the environment. The secrets are for local use only.
var Defaults = map[string]string{
	"SIDEKICK_DEV":                   "true",
	"SIDEKICK_ENV":                   "dev",
	"SIDEKICK_LOG_LEVEL":             "info",
	"SIDEKICK_HTTP_ADDR":             "127.0.0.1:8080",
	"SIDEKICK_GRPC_ADDR":             "127.0.0.1:9090",
	"SIDEKICK_SMTP_ADDR":             "127.0.0.1:2525",
	"SIDEKICK_NATS_ADDR":             "127.0.0.1:4222",
	"SIDEKICK_DATA_DIR":              ".sidekick",
	"SIDEKICK_SLACK_SIGNING_SECRET":  "dev-slack-signing-secret",
	"SIDEKICK_GITHUB_WEBHOOK_SECRET": "dev-github-webhook-secret",
	"SIDEKICK_SENTRY_CLIENT_SECRET":  "dev-sentry-client-secret",
	"SIDEKICK_EMAIL_INBOUND_TOKEN":   "dev-email-inbound-token",
}

// secretNames are printed in the banner so a developer can sign requests.
var secretNames = []string{
	"SIDEKICK_SLACK_SIGNING_SECRET",
	"SIDEKICK_GITHUB_WEBHOOK_SECRET",
	"SIDEKICK_SENTRY_CLIENT_SECRET",
	"SIDEKICK_EMAIL_INBOUND_TOKEN",
}

// Component is one service of the stack.
type Component struct {
	Name       string
	Schema     string
	Migrations fs.FS
	Build      app.Constructor
}

// Options configures Run.
type Options struct {
	// Environ is the process environment; SIDEKICK_* variables override the
	// dev defaults.
	Environ []string
	// Components are the services to run, in start order (rotation first:
	// the others ask it who is on call).
	Components []Component
	// Console receives what would be sent to Slack or email, and the banner.
	Console io.Writer
	// Logs receives the services' JSON logs; nil writes them to
	// <data dir>/sidekick.log.
	Logs io.Writer
	// Ephemeral picks free ports and a temporary data directory (tests).
	Ephemeral bool
}

// Stack describes a running stack.
type Stack struct {
	HTTPAddr    string
	GRPCAddr    string
	SMTPAddr    string
	NATSURL     string
	DatabaseURL string
	DataDir     string
	Env         map[string]string
	Registry    *prometheus.Registry
}

// Run starts everything, calls ready once every service runs, and blocks
// until ctx is cancelled; then it stops the services, NATS and the database
// server it started.
func Run(ctx context.Context, o Options, ready func(*Stack)) (err error) {
	env := map[string]string{}
	for k, v := range Defaults {
		env[k] = v
	}
	for k, v := range config.Map(o.Environ) {
		env[k] = v
	}
	dataDir := env["SIDEKICK_DATA_DIR"]
	if o.Ephemeral {
		if dataDir, err = os.MkdirTemp("", "sidekick-dev-*"); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		defer os.RemoveAll(dataDir)
		// When run as root, PostgreSQL runs as an unprivileged user that
		// must be able to enter the data dir.
		if err := os.Chmod(dataDir, 0o755); err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		for _, k := range []string{"SIDEKICK_HTTP_ADDR", "SIDEKICK_GRPC_ADDR", "SIDEKICK_SMTP_ADDR", "SIDEKICK_NATS_ADDR"} {
			env[k] = "127.0.0.1:0"
		}
	}
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	env["SIDEKICK_DATA_DIR"] = dataDir
	console := o.Console
	if console == nil {
		console = os.Stdout
	}
	logs := o.Logs
	if logs == nil {
		f, err := os.OpenFile(filepath.Join(dataDir, "sidekick.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		logs = f
	}
	logger := logging.New(logs, env["SIDEKICK_LOG_LEVEL"], "")

	// NATS with JetStream, data under the data dir.
	natsHost, natsPort, err := splitHostPort(env["SIDEKICK_NATS_ADDR"])
	if err != nil {
		return fmt.Errorf("SIDEKICK_NATS_ADDR: %w", err)
	}
	ns, err := embedded.Start(embedded.Config{Host: natsHost, Port: natsPort, StoreDir: filepath.Join(dataDir, "nats"), ServerName: "sidekick-dev", Logger: logger})
	if err != nil {
		return fmt.Errorf("start nats: %w", err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	natsURL := ns.ClientURL()
	env["SIDEKICK_NATS_URL"] = natsURL

	// PostgreSQL: the given server, or a throwaway cluster in the data dir.
	adminURL := env["SIDEKICK_DATABASE_URL"]
	if adminURL == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dataDir, "postgres"), Logger: logger, Fast: o.Ephemeral})
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if serr := cluster.Stop(sctx); serr != nil && err == nil {
				err = fmt.Errorf("stop postgres: %w", serr)
			}
		}()
		if err := cluster.CreateDatabase(ctx, "sidekick"); err != nil {
			return err
		}
		adminURL = cluster.URL("sidekick")
	}

	// The organisation file.
	if env["SIDEKICK_ORG_CONFIG"] == "" {
		path := filepath.Join(dataDir, "sidekick.yaml")
		if err := os.WriteFile(path, DemoOrg, 0o644); err != nil {
			return fmt.Errorf("write demo organisation: %w", err)
		}
		env["SIDEKICK_ORG_CONFIG"] = path
	}
	org, err := orgfile.Read(env["SIDEKICK_ORG_CONFIG"])
	if err != nil {
		return fmt.Errorf("SIDEKICK_ORG_CONFIG: %w", err)
	}

	nc, js, err := bus.Connect(ctx, natsURL, "sidekick-dev", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.Provision(ctx, js, bus.StreamsConfig{}); err != nil {
		return err
	}

	httpLis, err := net.Listen("tcp", env["SIDEKICK_HTTP_ADDR"])
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	defer httpLis.Close()
	grpcLis, err := net.Listen("tcp", env["SIDEKICK_GRPC_ADDR"])
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	defer grpcLis.Close()
	grpcAddr := grpcLis.Addr().String()
	env["SIDEKICK_HTTP_ADDR"] = httpLis.Addr().String()
	env["SIDEKICK_GRPC_ADDR"] = grpcAddr
	for _, k := range []string{"SIDEKICK_ROTATION_ADDR", "SIDEKICK_TRIAGE_ADDR", "SIDEKICK_NOTIFIER_ADDR"} {
		env[k] = grpcAddr
	}
	if o.Ephemeral {
		// The SMTP listener binds its own port; pick a free one now so the
		// address can be reported.
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		env["SIDEKICK_SMTP_ADDR"] = addr
	}
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	sort.Strings(environ)
	common, err := app.LoadCommon(app.Spec{Name: "sidekick-dev"}, environ)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	health := httpx.NewHealth(0, app.NATSCheck(nc))
	gs, err := grpcx.NewServer(grpcx.ServerOptions{Logger: logger, Token: common.GRPCToken, Insecure: common.GRPCToken == ""})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	health.Register(mux, reg)

	type running struct {
		name string
		svc  app.Service
	}
	var services []running
	for _, c := range o.Components {
		k, cleanup, err := kitFor(ctx, c, adminURL, environ, common, logger, reg, nc, js, health, console, grpcAddr)
		if err != nil {
			return err
		}
		k.Clock, k.Org = clock.Real(), org
		defer cleanup()
		svc, err := c.Build(ctx, k)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		if h, ok := svc.(app.HTTPService); ok {
			h.Register(mux)
		}
		if r, ok := svc.(app.GRPCService); ok {
			r.RegisterGRPC(gs)
		}
		services = append(services, running{c.Name, svc})
	}

	g, gctx := errgroup.WithContext(ctx)
	srv := httpx.NewServer(httpx.NewMetrics(reg).Wrap(mux))
	g.Go(func() error { return httpx.Serve(gctx, srv, httpLis, common.ShutdownTimeout, logger) })
	g.Go(func() error { return gs.Serve(gctx, grpcLis, common.ShutdownTimeout, logger) })
	g.Go(func() error { app.MirrorHealth(gctx, health, gs.Health, 5*time.Second); return nil })
	for _, r := range services {
		g.Go(func() error {
			if err := r.svc.Run(gctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			return nil
		})
	}
	stack := &Stack{
		HTTPAddr: env["SIDEKICK_HTTP_ADDR"], GRPCAddr: grpcAddr, SMTPAddr: env["SIDEKICK_SMTP_ADDR"],
		NATSURL: natsURL, DatabaseURL: adminURL, DataDir: dataDir, Env: env, Registry: reg,
	}
	if ready != nil {
		ready(stack)
	}
	return g.Wait()
}

// kitFor builds one service's kit: its own schema, migrated, reached through
// its own least-privilege role; its own metric label; the shared bus, health
// and gRPC address.
func kitFor(ctx context.Context, c Component, adminURL string, environ []string, common app.Common, logger *slog.Logger,
	reg prometheus.Registerer, nc *nats.Conn, js jetstream.JetStream, health *httpx.Health, console io.Writer, grpcAddr string) (*app.Kit, func(), error) {
	l := logger.With("service", c.Name)
	k := &app.Kit{
		Name: c.Name, Environ: environ, Common: common, Logger: l,
		Registry: prometheus.WrapRegistererWith(prometheus.Labels{"service": c.Name}, reg),
		NC:       nc, JS: js, Reporter: &sentryx.Reporter{}, Health: health, Console: console,
		Dial: func(addr string) (*grpc.ClientConn, error) {
			return grpcx.Dial(addr, grpcx.DialOptions{Token: common.GRPCToken})
		},
	}
	cleanup := func() {}
	if c.Schema == "" {
		return k, cleanup, nil
	}
	if err := pg.Migrate(ctx, adminURL, c.Schema, c.Migrations, l); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	serviceURL, err := pg.EnsureServiceRole(ctx, adminURL, c.Name, c.Schema, "dev-"+c.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	var pool *pgxpool.Pool
	if pool, err = pg.Connect(ctx, serviceURL, c.Schema); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", c.Name, err)
	}
	k.Pool = pool
	health.Add(httpx.Check{Name: "postgres", Check: pg.Ready(pool)})
	return k, pool.Close, nil
}

// Banner is what `sidekick dev` prints once the stack is up.
func Banner(w io.Writer, s *Stack) {
	fmt.Fprintf(w, "Sidekick dev stack is running.\n\n")
	fmt.Fprintf(w, "  HTTP (webhooks, /healthz, /readyz, /metrics)  http://%s\n", s.HTTPAddr)
	fmt.Fprintf(w, "  gRPC (every service, reflection on)          %s\n", s.GRPCAddr)
	fmt.Fprintf(w, "  Console                                       http://%s/console/\n", s.HTTPAddr)
	fmt.Fprintf(w, "  SMTP (ingest-email)                           %s\n", s.SMTPAddr)
	fmt.Fprintf(w, "  NATS JetStream                                %s\n", s.NATSURL)
	fmt.Fprintf(w, "  PostgreSQL                                    %s\n", redactURL(s.DatabaseURL))
	fmt.Fprintf(w, "  Data directory                                %s\n\n", s.DataDir)
	fmt.Fprintf(w, "Dev secrets (local use only):\n")
	for _, k := range secretNames {
		fmt.Fprintf(w, "  %s=%s\n", k, s.Env[k])
	}
	fmt.Fprintf(w, "\nTry it: scripts/slack-demo.sh posts a signed Slack message; then\n")
	fmt.Fprintf(w, "  go run ./sidekick/cmd/sidekick conversations list --addr %s\n", s.GRPCAddr)
	fmt.Fprintf(w, "Logs: %s. Ctrl-C stops everything.\n\n", filepath.Join(s.DataDir, "sidekick.log"))
}

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	userinfo := u[scheme+3 : at]
	if name, _, ok := strings.Cut(userinfo, ":"); ok {
		return u[:scheme+3] + name + ":***" + u[at:]
	}
	return u
}

func splitHostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	if p == 0 {
		p = server.RANDOM_PORT
	}
	return host, p, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
