// Package devstack runs the whole of Sidekick in one process for `sidekick
// dev` and the end-to-end tests: an embedded NATS server with JetStream, a
// throwaway PostgreSQL cluster started from the machine's server binaries
// (or SIDEKICK_DATABASE_URL), the demo organisation, and every service in
// one app.Host (one HTTP listener for every endpoint, one gRPC server for
// every service).
package devstack

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/pg/pgcluster"
	"github.com/sidekickhq/sidekick/platform/telemetry"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
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
	// The demo organisation's people write from example.com; replies come
	// from the support address and go to the customer inbox (below).
	"SIDEKICK_EMAIL_STAFF_DOMAINS": "example.com",
	"SIDEKICK_EMAIL_FROM":          "Demo Support <support@sidekick.localhost>",
}

// secretNames are printed in the banner so a developer can sign requests.
var secretNames = []string{
	"SIDEKICK_SLACK_SIGNING_SECRET",
	"SIDEKICK_GITHUB_WEBHOOK_SECRET",
	"SIDEKICK_SENTRY_CLIENT_SECRET",
	"SIDEKICK_EMAIL_INBOUND_TOKEN",
}

// plaintextOnly are the variables the dev stack ignores: its gRPC stays
// plaintext, whatever the shell exports.
var plaintextOnly = []string{
	"SIDEKICK_GRPC_TLS_CERT", "SIDEKICK_GRPC_TLS_KEY", "SIDEKICK_GRPC_TLS_CA", "SIDEKICK_GRPC_TLS_SERVER_NAME",
}

// Options configures Run.
type Options struct {
	// Environ is the process environment; SIDEKICK_* variables override the
	// dev defaults.
	Environ []string
	// Services are the services to run, in start order (rotation first:
	// the others ask it who is on call); All() is every one.
	Services []app.Spec
	// Console receives what would be sent to Slack or email, and the banner.
	Console io.Writer
	// Logs receives the services' JSON logs; nil writes them to
	// <data dir>/sidekick.log.
	Logs io.Writer
	// Ephemeral picks free ports and a temporary data directory (tests).
	Ephemeral bool
	// Clock is every service's clock; nil: the wall clock. The end-to-end
	// tests give a clock.Fake and move it forward.
	Clock clock.Clock
	// Tracing, when set, traces every service (a test's in-memory
	// exporter); nil: as the OTEL_* variables say, by default not at all.
	Tracing *telemetry.Tracing
}

// Stack describes a running stack.
type Stack struct {
	HTTPAddr    string
	GRPCAddr    string
	SMTPAddr    string
	NATSURL     string
	DatabaseURL string
	DataDir     string
	// ConsoleURL is the web console's base, which share links start with.
	ConsoleURL string
	Env        map[string]string
	// Inbox is the customer inbox email replies reach (nil when
	// SIDEKICK_EMAIL_RELAY names a real relay).
	Inbox    *fakes.SMTP
	Registry *prometheus.Registry
	// Clock is the clock every service runs on.
	Clock clock.Clock
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
	for _, k := range plaintextOnly {
		delete(env, k)
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
	env["SIDEKICK_NATS_URL"] = ns.ClientURL()

	// PostgreSQL: the given server, or a throwaway cluster in the data dir.
	if env["SIDEKICK_DATABASE_URL"] == "" {
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
		env["SIDEKICK_DATABASE_URL"] = cluster.URL("sidekick")
	}

	// The organisation file.
	if env["SIDEKICK_ORG_CONFIG"] == "" {
		path := filepath.Join(dataDir, "sidekick.yaml")
		if err := os.WriteFile(path, DemoOrg, 0o644); err != nil {
			return fmt.Errorf("write demo organisation: %w", err)
		}
		env["SIDEKICK_ORG_CONFIG"] = path
	}

	// Listen first: the services are told the addresses they got.
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
	// The customer inbox: unless a relay is configured, email replies go to
	// an SMTP server in this process that prints them on the console, so
	// the demo's replies reach somebody.
	var inbox *fakes.SMTP
	if env["SIDEKICK_EMAIL_RELAY"] == "" {
		if inbox, err = startInbox(console); err != nil {
			return err
		}
		defer inbox.Close()
		env["SIDEKICK_EMAIL_RELAY"], env["SIDEKICK_EMAIL_RELAY_TLS"] = inbox.Addr(), "off"
	}
	// Share links point at this stack's console, wherever it listens.
	ends := ClientEndpoints(env)
	env["SIDEKICK_CONSOLE_URL"] = ends.ConsoleURL
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	sort.Strings(environ)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	clk := clock.OrReal(o.Clock)
	stack := &Stack{
		HTTPAddr: env["SIDEKICK_HTTP_ADDR"], GRPCAddr: grpcAddr, SMTPAddr: env["SIDEKICK_SMTP_ADDR"],
		NATSURL: env["SIDEKICK_NATS_URL"], DatabaseURL: env["SIDEKICK_DATABASE_URL"], DataDir: dataDir,
		ConsoleURL: ends.ConsoleURL, Env: env, Registry: reg, Clock: clk, Inbox: inbox,
	}
	host := &app.Host{
		Name: "sidekick-dev", Specs: o.Services, Environ: environ, Clock: clk,
		Logs: logs, Console: console, Registry: reg,
		HTTPListener: httpLis, GRPCListener: grpcLis, ServiceRoles: true, Tracing: o.Tracing,
		Ready: func() {
			if ready != nil {
				ready(stack)
			}
		},
	}
	return host.Run(ctx)
}

// Endpoints are where a client reaches a Sidekick.
type Endpoints struct {
	GRPCAddr   string
	NATSURL    string
	ConsoleURL string
}

// ClientEndpoints finds a Sidekick from the same variables the dev stack
// reads, so the CLI given the environment `sidekick dev` was started with
// reaches it on whatever ports it uses: gRPC at SIDEKICK_ADDR or else
// SIDEKICK_GRPC_ADDR; NATS at SIDEKICK_NATS_URL or else
// SIDEKICK_NATS_ADDR; the console at SIDEKICK_CONSOLE_URL or else
// /console on SIDEKICK_HTTP_ADDR. Unset, each is the dev default.
func ClientEndpoints(env map[string]string) Endpoints {
	get := func(k string) string {
		if v := env[k]; v != "" {
			return v
		}
		return Defaults[k]
	}
	e := Endpoints{GRPCAddr: env["SIDEKICK_ADDR"], NATSURL: env["SIDEKICK_NATS_URL"], ConsoleURL: env["SIDEKICK_CONSOLE_URL"]}
	if e.GRPCAddr == "" {
		e.GRPCAddr = dialable(get("SIDEKICK_GRPC_ADDR"))
	}
	if e.NATSURL == "" {
		e.NATSURL = "nats://" + dialable(get("SIDEKICK_NATS_ADDR"))
	}
	if e.ConsoleURL == "" {
		e.ConsoleURL = "http://" + dialable(get("SIDEKICK_HTTP_ADDR")) + "/console"
	}
	return e
}

// dialable turns a listen address into one to connect to: a missing or
// wildcard host is this machine.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Banner is what `sidekick dev` prints once the stack is up.
func Banner(w io.Writer, s *Stack) {
	fmt.Fprintf(w, "Sidekick dev stack is running.\n\n")
	fmt.Fprintf(w, "  HTTP (webhooks, /healthz, /readyz, /metrics)  http://%s\n", s.HTTPAddr)
	fmt.Fprintf(w, "  gRPC (every service, reflection on)          %s\n", s.GRPCAddr)
	fmt.Fprintf(w, "  Console                                       %s/\n", s.ConsoleURL)
	fmt.Fprintf(w, "  SMTP (ingest-email)                           %s\n", s.SMTPAddr)
	if s.Inbox != nil {
		fmt.Fprintf(w, "  Customer inbox (email replies, printed here)  %s\n", s.Inbox.Addr())
	}
	fmt.Fprintf(w, "  NATS JetStream                                %s\n", s.NATSURL)
	fmt.Fprintf(w, "  PostgreSQL                                    %s\n", redactURL(s.DatabaseURL))
	fmt.Fprintf(w, "  Data directory                                %s\n\n", s.DataDir)
	fmt.Fprintf(w, "Dev secrets (local use only):\n")
	for _, k := range secretNames {
		fmt.Fprintf(w, "  %s=%s\n", k, s.Env[k])
	}
	fmt.Fprintf(w, "\nTry it: scripts/slack-demo.sh posts a signed Slack message; then\n")
	fmt.Fprintf(w, "  %sbin/sidekick conversations list\n", cliEnv(s))
	fmt.Fprintf(w, "Logs: %s. Ctrl-C stops everything.\n\n", filepath.Join(s.DataDir, "sidekick.log"))
}

// cliEnv is what the CLI needs in its environment to find s: nothing on
// the default ports, else the addresses `sidekick dev` was given.
func cliEnv(s *Stack) string {
	var vars []string
	if s.GRPCAddr != Defaults["SIDEKICK_GRPC_ADDR"] {
		vars = append(vars, "SIDEKICK_GRPC_ADDR="+s.GRPCAddr)
	}
	if nats := strings.TrimPrefix(s.NATSURL, "nats://"); nats != Defaults["SIDEKICK_NATS_ADDR"] {
		vars = append(vars, "SIDEKICK_NATS_ADDR="+nats)
	}
	if len(vars) == 0 {
		return ""
	}
	return strings.Join(vars, " ") + " "
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
