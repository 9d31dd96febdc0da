package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/natsauth"
	"github.com/sidekickhq/sidekick/platform/pg/pgcluster"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

//go:embed org.yaml
var orgTemplate string

// The secrets and names the stack is configured with.
const (
	grpcToken       = "chaos-grpc-token"
	slackSecret     = "chaos-slack-signing-secret"
	sentrySecret    = "chaos-sentry-client-secret"
	githubSecret    = "chaos-github-webhook-secret"
	emailToken      = "chaos-email-inbound-token"
	pagerDutyKey    = "chaoschaoschaoschaoschaoschaos32"
	ourTeam         = "T0CHAOSHQ"
	customerTeam    = "T0CUSTOMER"
	intakeChannel   = "C0CHAOSSHARED"
	slackAppID      = "A0CHAOSAPP"
	slackBotUserID  = "U0CHAOSBOT"
	database        = "sidekick"
	heroSlackID     = "U0CHAOSADA"
	secondarySlack  = "U0CHAOSBEN"
	serviceStopWait = 10 * time.Second
)

// serviceNames are the services of services/*/cmd, in the order they are
// started: rotation before the notifier that asks it, triage before the
// ingest services feed it.
var serviceNames = []string{"rotation", "triage", "notifier", "ingest-slack", "ingest-sentry", "ingest-email", "ingest-github"}

// stackOptions configure a stack.
type stackOptions struct {
	// bin holds the service binaries and nats-server.
	bin string
	// natsServers is 1 (a single server) or 3 (a cluster with R3 streams).
	natsServers int
	// restartDelay is how long a killed service stays down before it is
	// started again, as a kubelet would.
	restartDelay time.Duration
	// lease is SIDEKICK_NOTIFIER_LEASE; digestEvery the digest policy's
	// interval.
	lease, digestEvery time.Duration
	// keep leaves the directory (logs, stores) behind.
	keep bool
}

// stack is the deployed shape on one machine: PostgreSQL, nats-server,
// every service as its own process, and the fake Slack and PagerDuty
// recording what the notifier sends.
type stack struct {
	opts   stackOptions
	dir    string
	logger *slog.Logger

	pg     *pgcluster.Cluster
	pgDir  string
	pgPort int
	nats   []*natsNode
	// keys are the NATS users: each service connects as its own, with the
	// permissions of production (platform/natsauth); the harness and the
	// provision steps as the admin.
	keys *natsauth.Keys
	svcs map[string]*service

	slack *fakes.Slack
	pd    *fakes.PagerDuty

	// db is a superuser pool on the database, for counting.
	db *pgxpool.Pool
	nc *nats.Conn
	js jetstream.JetStream

	// run is the number of the run going on on this stack: its token is
	// in every id and text the run sends (a stack runs one at a time).
	run int
}

// service is one Sidekick service process and its addresses.
type service struct {
	name     string
	httpAddr string
	grpcAddr string
	proc     *proc
}

// startStack starts everything and returns once every service is ready.
// On error what was started is stopped again.
func startStack(ctx context.Context, opts stackOptions, logger *slog.Logger) (_ *stack, err error) {
	dir, err := os.MkdirTemp("", "sidekick-chaos-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	// PostgreSQL runs as an unprivileged user under root and must reach
	// its data directory inside this one.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	s := &stack{opts: opts, dir: dir, logger: logger, svcs: map[string]*service{}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	for _, d := range []string{"logs", "nats"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("temp dir: %w", err)
		}
	}
	logger.Info("starting the stack", "dir", dir, "nats_servers", opts.natsServers)

	s.pgDir = filepath.Join(dir, "pg")
	if err := s.startPostgres(ctx); err != nil {
		return nil, err
	}
	if err := s.pg.CreateDatabase(ctx, database); err != nil {
		return nil, err
	}
	if s.db, err = pgxpool.New(ctx, s.pg.URL(database)); err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if s.keys, err = natsauth.NewKeys(filepath.Join(dir, "nats")); err != nil {
		return nil, err
	}
	if err := s.startNATS(ctx, opts.natsServers); err != nil {
		return nil, err
	}
	admin, err := nats.NkeyOptionFromSeed(s.keys.SeedFile(natsauth.Admin))
	if err != nil {
		return nil, err
	}
	if s.nc, s.js, err = bus.Connect(ctx, s.natsURL(), "chaos-harness", logger.With("component", "harness-nats"),
		admin, nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond)); err != nil {
		return nil, err
	}
	// In a cluster, /healthz can pass before JetStream has its meta
	// leader; a service started then fails to provision its streams
	// and exits. Wait for JetStream to answer, as an operator would.
	if err := poll(ctx, 2*time.Minute, "JetStream to answer", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := s.js.AccountInfo(actx)
		return err == nil
	}); err != nil {
		return nil, err
	}

	s.slack = fakes.NewSlack("chaos", ourTeam)
	// Slack's pace: about one post a second per channel, short bursts.
	s.slack.LimitPostRate(3)
	s.pd = fakes.NewPagerDuty(pagerDutyKey)

	org := strings.ReplaceAll(orgTemplate, "DIGEST_EVERY", opts.digestEvery.String())
	orgPath := filepath.Join(dir, "org.yaml")
	if err := os.WriteFile(orgPath, []byte(org), 0o644); err != nil {
		return nil, fmt.Errorf("organisation file: %w", err)
	}
	ports, err := freePorts(2*len(serviceNames) + 1)
	if err != nil {
		return nil, err
	}
	for i, name := range serviceNames {
		s.svcs[name] = &service{name: name,
			httpAddr: "127.0.0.1:" + strconv.Itoa(ports[2*i]), grpcAddr: "127.0.0.1:" + strconv.Itoa(ports[2*i+1])}
	}
	smtpAddr := "127.0.0.1:" + strconv.Itoa(ports[len(ports)-1])
	for _, name := range serviceNames {
		// Streams and buckets first, as the admin: the provision init
		// container of production.
		env := append(s.commonEnv(orgPath, s.svcs[name]), s.serviceEnv(name, smtpAddr)...)
		env = append(env, "SIDEKICK_NATS_NKEY_SEED="+s.keys.SeedFile(natsauth.Admin))
		cmd := exec.CommandContext(ctx, filepath.Join(opts.bin, name), "provision")
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s provision: %w\n%s", name, err, out)
		}
	}
	for _, name := range serviceNames {
		svc := s.svcs[name]
		env := append(s.commonEnv(orgPath, svc), s.serviceEnv(name, smtpAddr)...)
		env = append(env, "SIDEKICK_NATS_NKEY_SEED="+s.keys.SeedFile(name))
		svc.proc = &proc{name: name, path: filepath.Join(opts.bin, name), env: env,
			logPath: filepath.Join(dir, "logs", name+".log"), restartDelay: opts.restartDelay, logger: logger}
		if err := startProc(svc.proc); err != nil {
			return nil, err
		}
	}
	for _, name := range serviceNames {
		if err := s.svcs[name].waitReady(ctx, 2*time.Minute); err != nil {
			return nil, fmt.Errorf("%w; the end of its log:\n%s", err, logTail(s.svcs[name].proc.logPath, 15))
		}
	}
	if err := s.importCustomers(ctx); err != nil {
		return nil, err
	}
	logger.Info("stack ready", "nats", s.natsURL(), "postgres", s.pg.URL(database))
	return s, nil
}

// startPostgres starts (or starts again, on the same data and port) the
// PostgreSQL server.
func (s *stack) startPostgres(ctx context.Context) error {
	pg, err := pgcluster.Start(ctx, pgcluster.Options{Dir: s.pgDir, Port: s.pgPort, Fast: true,
		Logger: s.logger.With("component", "postgres")})
	if err != nil {
		return err
	}
	s.pg, s.pgPort = pg, pg.Port()
	return nil
}

// commonEnv is what every service is given, as in production: the bus,
// the database, its own listeners, the other services' gRPC addresses
// with the bearer token, and the organisation file. Not dev mode.
func (s *stack) commonEnv(orgPath string, svc *service) []string {
	replicas := 1
	if len(s.nats) > 1 {
		replicas = 3
	}
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.dir,
		"SIDEKICK_ENV=chaos",
		"SIDEKICK_LOG_LEVEL=info",
		"SIDEKICK_NATS_URL=" + s.natsURL(),
		"SIDEKICK_STREAM_REPLICAS=" + strconv.Itoa(replicas),
		"SIDEKICK_DATABASE_URL=" + s.pg.URL(database),
		"SIDEKICK_HTTP_ADDR=" + svc.httpAddr,
		"SIDEKICK_GRPC_ADDR=" + svc.grpcAddr,
		"SIDEKICK_GRPC_TOKEN=" + grpcToken,
		"SIDEKICK_ROTATION_ADDR=" + s.svcs["rotation"].grpcAddr,
		"SIDEKICK_TRIAGE_ADDR=" + s.svcs["triage"].grpcAddr,
		"SIDEKICK_NOTIFIER_ADDR=" + s.svcs["notifier"].grpcAddr,
		"SIDEKICK_ORG_CONFIG=" + orgPath,
		"SIDEKICK_SHUTDOWN_TIMEOUT=5s",
		// Each process would have a container's memory limit; here they
		// share the machine, so none.
		"AUTOMEMLIMIT=off",
	}
}

// serviceEnv is a service's own configuration.
func (s *stack) serviceEnv(name, smtpAddr string) []string {
	switch name {
	case "ingest-slack":
		return []string{
			"SIDEKICK_SLACK_SIGNING_SECRET=" + slackSecret,
			"SIDEKICK_SLACK_CHANNELS=" + intakeChannel,
			"SIDEKICK_SLACK_TEAM_ID=" + ourTeam,
			"SIDEKICK_SLACK_WORKSPACE_URL=https://chaos.slack.com",
		}
	case "ingest-sentry":
		return []string{"SIDEKICK_SENTRY_CLIENT_SECRET=" + sentrySecret}
	case "ingest-email":
		return []string{"SIDEKICK_EMAIL_INBOUND_TOKEN=" + emailToken, "SIDEKICK_SMTP_ADDR=" + smtpAddr, "SIDEKICK_EMAIL_RECIPIENTS=support@chaos.example"}
	case "ingest-github":
		return []string{"SIDEKICK_GITHUB_WEBHOOK_SECRET=" + githubSecret}
	case "triage":
		return []string{"SIDEKICK_CONSOLE_URL=https://sidekick.chaos.example/console"}
	case "notifier":
		return []string{
			"SIDEKICK_SLACK_BOT_TOKEN=xoxb-chaos",
			"SIDEKICK_SLACK_API_URL=" + s.slack.APIURL(),
			"SIDEKICK_PAGERDUTY_ROUTING_KEY=" + pagerDutyKey,
			"SIDEKICK_PAGERDUTY_URL=" + s.pd.URL(),
			// A crashed send is resumed after the lease: shorter than the
			// 2-minute default, so a scenario sees it within its run.
			"SIDEKICK_NOTIFIER_LEASE=" + s.opts.lease.String(),
			// The per-person limit (20 pings in 10 minutes) would hold
			// most pings of a run for minutes; the harness measures
			// delivery, not that limit. Slack's own pace still applies.
			"SIDEKICK_NOTIFIER_RATE_LIMIT=-1",
		}
	}
	return nil
}

// waitReady polls the service's /readyz until it answers 200.
func (svc *service) waitReady(ctx context.Context, limit time.Duration) error {
	url := "http://" + svc.httpAddr + "/readyz"
	return poll(ctx, limit, svc.name+" ready", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// importCustomers makes the Subscriber customers known to triage, as an
// operator does with `sidekick customers import`: everyone else writing
// in is Community.
func (s *stack) importCustomers(ctx context.Context) error {
	conn, err := grpcx.Dial(s.svcs["triage"].grpcAddr, grpcx.DialOptions{Token: grpcToken})
	if err != nil {
		return fmt.Errorf("dial triage: %w", err)
	}
	defer conn.Close()
	var customers []*triagev1.Customer
	for _, u := range customerUsers {
		if !u.subscriber {
			continue
		}
		customers = append(customers, &triagev1.Customer{Id: "cust-" + strings.ToLower(u.id), Name: u.name,
			Plan: "cloud", MonthlyRevenueCents: 9900, SlackUserIds: []string{u.id}})
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := triagev1.NewCustomerServiceClient(conn).UpsertCustomers(cctx, &triagev1.UpsertCustomersRequest{Customers: customers}); err != nil {
		return fmt.Errorf("import customers into triage: %w", err)
	}
	return nil
}

// stopPostgres stops the server (pg_ctl stop -m fast); its data stays.
func (s *stack) stopPostgres(ctx context.Context) error {
	return s.pg.Stop(ctx)
}

// stop stops every process, the fakes and the database, and removes the
// directory unless asked to keep it. It is safe on a partly started
// stack.
func (s *stack) stop() {
	for i := len(serviceNames) - 1; i >= 0; i-- {
		if svc := s.svcs[serviceNames[i]]; svc != nil && svc.proc != nil {
			svc.proc.stop(serviceStopWait)
		}
	}
	if s.nc != nil {
		s.nc.Close()
	}
	for _, n := range s.nats {
		n.proc.stop(serviceStopWait)
	}
	if s.db != nil {
		s.db.Close()
	}
	if s.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := s.pg.Stop(ctx); err != nil {
			s.logger.Warn("stop postgres", "error", err)
		}
		cancel()
	}
	if s.slack != nil {
		s.slack.Close()
	}
	if s.pd != nil {
		s.pd.Close()
	}
	if s.opts.keep {
		s.logger.Info("kept the stack's directory (logs, stores)", "dir", s.dir)
		return
	}
	if err := os.RemoveAll(s.dir); err != nil {
		s.logger.Warn("remove the stack's directory", "dir", s.dir, "error", err)
	}
}

// buildBinaries builds every service of services/*/cmd and nats-server
// into dir, once, from the workspace at repo.
func buildBinaries(ctx context.Context, repo, dir string) error {
	pkgs := []string{"build", "-o", dir + "/"}
	for _, name := range serviceNames {
		pkgs = append(pkgs, "./services/"+name+"/cmd/"+name)
	}
	pkgs = append(pkgs, "github.com/nats-io/nats-server/v2")
	cmd := exec.CommandContext(ctx, "go", pkgs...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	// nats-server's package is its module's root: go build names it v2.
	if _, err := os.Stat(filepath.Join(dir, "v2")); err == nil {
		if err := os.Rename(filepath.Join(dir, "v2"), filepath.Join(dir, "nats-server")); err != nil {
			return fmt.Errorf("name nats-server: %w", err)
		}
	}
	for _, name := range append(slices.Clone(serviceNames), "nats-server") {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("go build left no %s in %s: %w", name, dir, err)
		}
	}
	return nil
}

// logTail is the last n lines of the log at path, for an error that
// would otherwise be lost with the stack's directory.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// poll calls cond every 100 ms until it holds, ctx ends or limit passes.
func poll(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

var errNoRepo = errors.New("no go.work found above the current directory: run the harness from the repository (make chaos)")

// repoRoot is the directory of the workspace's go.work.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	w := strings.TrimSpace(string(out))
	if w == "" || w == "off" {
		return "", errNoRepo
	}
	return filepath.Dir(w), nil
}
