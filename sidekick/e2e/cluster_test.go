package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	ingestemail "github.com/sidekickhq/sidekick/services/ingest-email"
	"github.com/sidekickhq/sidekick/services/triage"
)

// natsChildEnv, set in the environment of this test binary, makes it run
// one NATS server described by the variable's JSON (a natsSpec) instead of
// the tests: TestClusterLeaderLoss runs each cluster member as such a child
// process so that it can kill one the way a crash would.
const natsChildEnv = "SIDEKICK_E2E_NATS_SERVER"

// TestMain runs a NATS child server when asked to; otherwise it gives the
// package's database tests one throwaway PostgreSQL server (pgtest;
// SIDEKICK_TEST_DATABASE_URL points them at another). The devstack tests
// start their own.
func TestMain(m *testing.M) {
	if spec := os.Getenv(natsChildEnv); spec != "" {
		os.Exit(runNATSChild(spec))
	}
	pgtest.Main(m)
}

// TestClusterLeaderLoss is issue 8: three NATS servers form a JetStream
// cluster on loopback, the streams have three replicas, and the server
// leading SUPPORT_INBOUND goes away while relays keep posting emails to
// ingest-email and triage keeps consuming them; later it comes back.
// Every email ingest-email accepted (200) becomes exactly one message and
// one conversation in triage's tables, the inbound stream holds each email
// once on every server, triage publishes one opened event per
// conversation, and nothing is dead-lettered.
//
// "shutdown" stops the leader the way a pod deletion does: nats-server
// hands its Raft leaderships to the other servers before it exits. "kill"
// sends SIGKILL, as an OOM kill or a lost node does: nothing is handed
// over, and the others must notice and elect a new leader.
//
// The relays behave like a mail relay or Slack: they retry a 503 or a
// dropped connection with the same message, so the Nats-Msg-Id (the
// email's Message-ID) lets JetStream drop a retry of a publish it had
// stored but whose acknowledgement was lost.
//
// The test logs what the relays and triage saw of the leader change
// (503s, waits, pauses); it asserts outcomes only, never durations.
func TestClusterLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-server NATS cluster, PostgreSQL, ingest-email and triage")
	}
	// Each has its own cluster, database and services; they run side by
	// side to keep the wall time down, since most of it is waiting.
	t.Run("shutdown", func(t *testing.T) { t.Parallel(); clusterLeaderLoss(t, false) })
	t.Run("kill", func(t *testing.T) { t.Parallel(); clusterLeaderLoss(t, true) })
}

func clusterLeaderLoss(t *testing.T, kill bool) {
	const (
		total   = 300                    // emails to send
		senders = 4                      // relays posting at once
		pace    = 50 * time.Millisecond  // between one relay's emails
		backoff = 100 * time.Millisecond // before a relay retries
		stopAt  = total / 3              // accepted emails before the leader goes
		startAt = 2 * total / 3          // accepted emails before it comes back
		token   = "cluster-test-token"
	)
	began := time.Now()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", clusterLogTail(logs.String()))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

	// Three servers, one JetStream cluster, streams with three replicas.
	nodes := startNATSCluster(t, 3, logs)
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.clientURL()
	}
	servers := strings.Join(urls, ",")
	connect := func(name string) jetstream.JetStream {
		t.Helper()
		nc, js, err := bus.Connect(ctx, servers, name, logger.With("component", name), nats.ReconnectWait(100*time.Millisecond))
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		t.Cleanup(nc.Close)
		return js
	}
	ctl := connect("cluster-test")
	provisionReplicated(t, ctx, ctl)

	// triage on real Postgres, consuming through its own connection.
	dbURL := pgtest.NewDatabase(t)
	if err := pg.Migrate(ctx, dbURL, triage.Schema, triage.Migrations(), nil); err != nil {
		t.Fatalf("migrate triage: %v", err)
	}
	pool, err := pg.Connect(ctx, dbURL, triage.Schema)
	if err != nil {
		t.Fatalf("connect triage database: %v", err)
	}
	t.Cleanup(pool.Close)
	tjs := connect("triage")
	tsvc, err := triage.New(triage.Config{
		ConsoleURL: "https://sidekick.example.com/console", PriorityRevenueCents: 200000, Concurrency: 1,
		RelayInterval: 50 * time.Millisecond, RelayBatch: 100,
		ConsumerBackoff: []time.Duration{50 * time.Millisecond}, ConsumerMaxDeliver: 20, InboxRetention: 720 * time.Hour,
	}, triage.Deps{Logger: logger.With("component", "triage"), JS: tjs, Pool: pool, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatalf("triage: %v", err)
	}
	tctx, stopTriage := context.WithCancel(context.Background())
	triageDone := make(chan error, 1)
	go func() { triageDone <- tsvc.Run(tctx) }()
	t.Cleanup(func() {
		stopTriage()
		if err := <-triageDone; err != nil {
			t.Errorf("triage stopped with error: %v", err)
		}
	})
	progress := watchTriage(t, pool)

	// ingest-email's HTTP intake, publishing through its own connection.
	ijs := connect("ingest-email")
	ingestReg := prometheus.NewRegistry()
	isvc, err := ingestemail.New(ingestemail.Config{InboundToken: token, MaxBytes: 1 << 20}, ingestemail.Deps{
		Logger:    logger.With("component", "ingest-email"),
		Publisher: bus.NewPublisher(ijs, "sidekick/ingest-email", bus.WithRegisterer(ingestReg)),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, ijs, "ingest-email", location, bus.InboundSubject("email"), data, hdr, cause)
		},
		Registry: ingestReg,
	})
	if err != nil {
		t.Fatalf("ingest-email: %v", err)
	}
	mux := http.NewServeMux()
	isvc.Register(mux)
	intake := httptest.NewServer(mux)
	t.Cleanup(intake.Close)
	ready := time.Now()

	// The relays post at a steady pace; the test takes the leader away
	// after stopAt accepted emails and brings it back after startAt.
	relay := &emailRelay{url: intake.URL + "/email/inbound", token: token, backoff: backoff, client: &http.Client{Timeout: 20 * time.Second}}
	sendCtx, stopSending := context.WithTimeout(ctx, 2*time.Minute)
	defer stopSending()
	accepted := make(chan acceptedEmail, total)
	failed := make(chan error, senders)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := s; i < total; i += senders {
				a, err := relay.send(sendCtx, i)
				if err != nil {
					failed <- err
					return
				}
				accepted <- a
				time.Sleep(pace)
			}
		})
	}
	t.Cleanup(func() { stopSending(); wg.Wait() })

	var (
		emails               []acceptedEmail
		victim               *natsNode
		leaderNow            string
		stoppedAt, electedAt time.Time
		stopTook, startTook  time.Duration
	)
	for len(emails) < total {
		select {
		case a := <-accepted:
			emails = append(emails, a)
		case err := <-failed:
			t.Fatalf("relay: %v", err)
		case <-sendCtx.Done():
			t.Fatalf("only %d of %d emails accepted: %v", len(emails), total, sendCtx.Err())
		}
		switch len(emails) {
		case stopAt:
			victim = nodeNamed(t, nodes, replicatedStreamLeader(t, ctx, ctl, bus.StreamInbound))
			stoppedAt = time.Now()
			if err := victim.stop(kill); err != nil {
				t.Fatal(err)
			}
			stopTook = time.Since(stoppedAt)
			// The test's own view of the election; the relays keep going.
			waitFor(t, time.Minute, "a new leader of "+bus.StreamInbound, func() bool {
				// A short timeout: a request to a stream without a leader
				// goes unanswered, and the wait is what is measured.
				lctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
				defer cancel()
				l, err := tryStreamLeader(lctx, ctl, bus.StreamInbound)
				leaderNow = l
				return err == nil && l != "" && l != victim.spec.Name
			})
			electedAt = time.Now()
		case startAt:
			t0 := time.Now()
			if err := victim.start(); err != nil {
				t.Fatal(err)
			}
			startTook = time.Since(t0)
		}
	}
	wg.Wait()
	lastAccepted := time.Now()

	how := "shut down"
	if kill {
		how = "killed"
	}
	st := relay.stats(emails)
	t.Logf("cluster up and streams provisioned in %s; sending took %s", ms(ready.Sub(began)), ms(lastAccepted.Sub(ready)))
	t.Logf("%s %s, leader of %s, after %d accepted emails (took %s); the test saw %s lead %s after the stop; %s came back after %d accepted emails (start took %s)",
		how, victim.spec.Name, bus.StreamInbound, stopAt, ms(stopTook), leaderNow, ms(electedAt.Sub(stoppedAt)), victim.spec.Name, startAt, ms(startTook))
	if st.unavailable+st.noAnswer > 0 {
		t.Logf("relays: %d POSTs for %d emails: %d answered 503 and %d got no answer, on %d emails, from %s to %s after the stop; longest wait of one email %s, median %s",
			st.attempts, total, st.unavailable, st.noAnswer, st.affected,
			ms(st.firstFailure.Sub(stoppedAt)), ms(st.lastFailure.Sub(stoppedAt)), ms(st.longest), ms(st.median))
	} else {
		t.Logf("relays: %d POSTs for %d emails, none failed; longest wait of one email %s, median %s", st.attempts, total, ms(st.longest), ms(st.median))
	}
	t.Logf("ingest-email: %v published, %v duplicates (a retry of a publish JetStream had stored), %v publish errors",
		counterValue(t, ingestReg, "sidekick_ingest_email_messages_total", "result", "published"),
		counterValue(t, ingestReg, "sidekick_ingest_email_messages_total", "result", "duplicate"),
		counterValue(t, ingestReg, "sidekick_ingest_email_messages_total", "result", "error"))

	// Every accepted email has its own id...
	ids := make(map[string]bool, total)
	for _, a := range emails {
		if ids[a.id] {
			t.Fatalf("ingest-email answered id %s twice", a.id)
		}
		ids[a.id] = true
	}

	// ... and triage stores each once: one message, one conversation.
	waitFor(t, 2*time.Minute, fmt.Sprintf("%d conversations in triage", total), func() bool {
		return queryCount(t, pool, `SELECT count(*) FROM conversations`) >= total
	})
	progress.add(total)
	from, pause := progress.longestPause()
	t.Logf("triage: had every conversation %s after the last email was accepted; its longest pause %s began %s after the stop",
		ms(time.Since(lastAccepted)), ms(pause), ms(from.Sub(stoppedAt)))
	if n := queryCount(t, pool, `SELECT count(*) FROM conversations`); n != total {
		t.Errorf("conversations: %d, want %d", n, total)
	}
	if n := queryCount(t, pool, `SELECT count(*) FROM conversations WHERE message_count <> 1`); n != 0 {
		t.Errorf("%d conversations do not hold exactly one message", n)
	}
	for table, col := range map[string]string{"messages": "id", "inbox": "message_id"} {
		perID := rowsPerID(t, pool, table, col)
		if len(perID) != total {
			t.Errorf("%s holds %d ids, want %d", table, len(perID), total)
		}
		for id := range ids {
			if perID[id] != 1 {
				t.Errorf("%s holds accepted email %s %d times, want once", table, id, perID[id])
			}
		}
	}

	// The inbound stream holds each email once, and so does every server's
	// own copy once the one that came back has caught up.
	info := replicatedStreamInfo(t, ctx, ctl, bus.StreamInbound)
	if info.State.Msgs != total || info.State.LastSeq != total {
		t.Errorf("%s: %d messages, last sequence %d; want %d and %d", bus.StreamInbound, info.State.Msgs, info.State.LastSeq, total, total)
	}
	waitFor(t, time.Minute, "every server's copy of "+bus.StreamInbound, func() bool {
		for _, n := range nodes {
			if st, err := n.localStream(bus.StreamInbound); err != nil || st.Msgs != total || st.LastSeq != total {
				return false
			}
		}
		return true
	})

	// triage publishes one opened event per conversation, and nothing
	// anywhere was dead-lettered.
	unsent := func() int { return queryCount(t, pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`) }
	if !within(time.Minute, func() bool { return unsent() == 0 }) {
		t.Fatalf("triage's outbox still holds %d unsent events a minute after the last email; the relay is at:\n%s",
			unsent(), goroutinesIn("outbox.(*Relay).Flush"))
	}
	conv := replicatedStreamInfo(t, ctx, ctl, bus.StreamConversations, jetstream.WithSubjectFilter("support.conversation.opened"))
	if n := conv.State.Subjects["support.conversation.opened"]; n != total {
		t.Errorf("support.conversation.opened: %d events, want %d", n, total)
	}
	if dl := replicatedStreamInfo(t, ctx, ctl, bus.StreamDeadLetter); dl.State.Msgs != 0 {
		t.Errorf("%d dead letters", dl.State.Msgs)
	}
	t.Logf("test took %s", ms(time.Since(began)))
}

// within polls cond until it holds (true) or d has passed (false).
func within(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// goroutinesIn returns the stacks of this process's goroutines whose stack
// mentions fn, to say where something is stuck.
func goroutinesIn(fn string) string {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		return err.Error()
	}
	var out []string
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		return "(no goroutine in " + fn + ")"
	}
	return strings.Join(out, "\n\n")
}

// clusterLogTail keeps the end of the Sidekick components' log and of the
// NATS servers' log, which is much longer.
func clusterLogTail(all string) string {
	var ours, theirs []string
	for _, l := range strings.Split(all, "\n") {
		if strings.Contains(l, "component=nats-") {
			theirs = append(theirs, l)
		} else if l != "" {
			ours = append(ours, l)
		}
	}
	last := func(ls []string, n int) []string { return ls[max(0, len(ls)-n):] }
	return strings.Join(last(ours, 80), "\n") + "\n--- nats servers ---\n" + strings.Join(last(theirs, 60), "\n")
}

// triageProgress samples how many conversations triage stored, to see it
// pause.
type triageProgress struct {
	mu      sync.Mutex
	samples []progressSample
}

type progressSample struct {
	at time.Time
	n  int
}

// watchTriage samples the conversation count until the test ends.
func watchTriage(t *testing.T, pool *pgxpool.Pool) *triageProgress {
	p := &triageProgress{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM conversations`).Scan(&n); err == nil {
				p.add(n)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// add records that n conversations are stored now.
func (p *triageProgress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, progressSample{time.Now(), n})
}

// longestPause is the longest stretch between two increases of the count
// once it started growing, and when it began.
func (p *triageProgress) longestPause() (time.Time, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		from, last time.Time
		longest    time.Duration
		n          int
	)
	for _, s := range p.samples {
		if s.n == n {
			continue
		}
		if n > 0 && s.at.Sub(last) > longest {
			from, longest = last, s.at.Sub(last)
		}
		n, last = s.n, s.at
	}
	return from, longest
}

// natsSpec describes one cluster member for its child process.
type natsSpec struct {
	Name      string   `json:"name"`
	StoreDir  string   `json:"store_dir"`
	Port      int      `json:"port"`
	RoutePort int      `json:"route_port"`
	HTTPPort  int      `json:"http_port"`
	Routes    []string `json:"routes"`
}

// runNATSChild runs the server spec describes, with its monitoring port,
// until SIGTERM (a clean shutdown, in which nats-server hands its
// leaderships over first) or until its standard input closes (the test
// process is gone). It prints "ready" once the server accepts clients and
// logs to standard error.
func runNATSChild(raw string) int {
	var spec natsSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", natsChildEnv, err)
		return 2
	}
	opts, err := embedded.Options(embedded.Config{
		Port: spec.Port, StoreDir: spec.StoreDir, ServerName: spec.Name,
		Cluster: &embedded.Cluster{Name: "sidekick", Port: spec.RoutePort, Routes: spec.Routes},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", spec.HTTPPort
	opts.NoLog = false
	srv, err := server.NewServer(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv.SetLoggerV2(natsChildLog{slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "nats-"+spec.Name)}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		fmt.Fprintf(os.Stderr, "nats %s: not ready after 30s\n", spec.Name)
		return 1
	}
	fmt.Println("ready")
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	orphaned := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(orphaned) }()
	select {
	case <-term:
	case <-orphaned:
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	return 0
}

// natsChildLog writes nats-server's log with slog, naming the server.
type natsChildLog struct{ l *slog.Logger }

func (c natsChildLog) Noticef(format string, v ...any) { c.l.Info(fmt.Sprintf(format, v...)) }
func (c natsChildLog) Warnf(format string, v ...any)   { c.l.Warn(fmt.Sprintf(format, v...)) }
func (c natsChildLog) Fatalf(format string, v ...any)  { c.l.Error(fmt.Sprintf(format, v...)) }
func (c natsChildLog) Errorf(format string, v ...any)  { c.l.Error(fmt.Sprintf(format, v...)) }
func (c natsChildLog) Debugf(format string, v ...any)  { c.l.Debug(fmt.Sprintf(format, v...)) }
func (c natsChildLog) Tracef(format string, v ...any)  { c.l.Debug(fmt.Sprintf(format, v...)) }

// natsNode is one cluster member running as a child process; it can be
// stopped (shut down or killed) and started again with the same name,
// ports and store.
type natsNode struct {
	spec natsSpec
	logs io.Writer

	mu     sync.Mutex
	cmd    *exec.Cmd
	stdin  io.Closer
	exited chan struct{}
}

// startNATSCluster starts n servers that route to each other and returns
// once each accepts clients; they are killed when the test ends.
func startNATSCluster(t *testing.T, n int, logs io.Writer) []*natsNode {
	t.Helper()
	ports := loopbackPorts(t, 3*n) // client, route and monitoring port of each
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+1]))
	}
	nodes := make([]*natsNode, n)
	for i := range nodes {
		nodes[i] = &natsNode{logs: logs, spec: natsSpec{
			Name: fmt.Sprintf("n%d", i+1), StoreDir: t.TempDir(),
			Port: ports[3*i], RoutePort: ports[3*i+1], HTTPPort: ports[3*i+2], Routes: routes,
		}}
		t.Cleanup(func() { _ = nodes[i].stop(true) })
	}
	var g sync.WaitGroup
	errs := make([]error, n)
	for i, node := range nodes {
		g.Go(func() { errs[i] = node.start() })
	}
	g.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return nodes
}

// loopbackPorts returns n distinct loopback ports that were free a moment
// ago.
func loopbackPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// start runs the server in a child process of this test binary and waits
// until it accepts clients.
func (n *natsNode) start() error {
	spec, err := json.Marshal(n.spec)
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+string(spec))
	cmd.Stderr = n.logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("nats %s: %w", n.spec.Name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("nats %s: %w", n.spec.Name, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats %s: %w", n.spec.Name, err)
	}
	exited := make(chan struct{})
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()
	n.mu.Lock()
	n.cmd, n.stdin, n.exited = cmd, stdin, exited
	n.mu.Unlock()
	select {
	case l := <-line:
		if l != "ready" {
			return fmt.Errorf("nats %s did not start (said %q; its log is in the test log)", n.spec.Name, l)
		}
		return nil
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		return fmt.Errorf("nats %s not ready after a minute", n.spec.Name)
	}
}

// stop kills the server (SIGKILL) or shuts it down (SIGTERM) and waits
// for its process to exit; the store stays. Harmless when stopped.
func (n *natsNode) stop(kill bool) error {
	n.mu.Lock()
	cmd, stdin, exited := n.cmd, n.stdin, n.exited
	n.cmd = nil
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	defer stdin.Close()
	sig := os.Signal(syscall.SIGTERM)
	if kill {
		sig = os.Kill
	}
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("stop nats %s: %w", n.spec.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("nats %s did not exit within a minute of %v", n.spec.Name, sig)
	}
}

func (n *natsNode) clientURL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.spec.Port) }

// localStream returns this server's own copy of stream's state, from its
// monitoring endpoint.
func (n *natsNode) localStream(stream string) (server.StreamState, error) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz?accounts=true&streams=true", n.spec.HTTPPort))
	if err != nil {
		return server.StreamState{}, err
	}
	defer resp.Body.Close()
	var info server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return server.StreamState{}, fmt.Errorf("decode /jsz of %s: %w", n.spec.Name, err)
	}
	for _, a := range info.AccountDetails {
		for _, s := range a.Streams {
			if s.Name == stream {
				return s.State, nil
			}
		}
	}
	return server.StreamState{}, fmt.Errorf("%s has no stream %s", n.spec.Name, stream)
}

func nodeNamed(t *testing.T, nodes []*natsNode, name string) *natsNode {
	t.Helper()
	for _, n := range nodes {
		if n.spec.Name == name {
			return n
		}
	}
	t.Fatalf("no server named %q", name)
	return nil
}

// provisionReplicated creates the streams with three replicas, retrying
// while the cluster elects its JetStream meta leader, and waits until the
// streams the test reads have a leader and two current replicas.
func provisionReplicated(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	var err error
	for range 150 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = bus.Provision(pctx, js, bus.StreamsConfig{Replicas: 3})
		cancel()
		if err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("provision streams with 3 replicas: %v", err)
	}
	for _, name := range []string{bus.StreamInbound, bus.StreamConversations, bus.StreamDeadLetter} {
		waitFor(t, time.Minute, name+" to have a leader and two current replicas", func() bool {
			info, err := tryStreamInfo(ctx, js, name)
			if err != nil || info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current {
					return false
				}
			}
			return true
		})
	}
}

func tryStreamInfo(ctx context.Context, js jetstream.JetStream, name string, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.Info(ctx, opts...)
}

func tryStreamLeader(ctx context.Context, js jetstream.JetStream, name string) (string, error) {
	info, err := tryStreamInfo(ctx, js, name)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", errors.New("stream info has no cluster")
	}
	return info.Cluster.Leader, nil
}

// replicatedStreamInfo returns a stream's info, retrying while a leader
// is elected.
func replicatedStreamInfo(t *testing.T, ctx context.Context, js jetstream.JetStream, name string, opts ...jetstream.StreamInfoOpt) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	waitFor(t, time.Minute, "info of stream "+name, func() bool {
		var err error
		info, err = tryStreamInfo(ctx, js, name, opts...)
		return err == nil
	})
	return info
}

// replicatedStreamLeader returns the name of the server leading a stream.
func replicatedStreamLeader(t *testing.T, ctx context.Context, js jetstream.JetStream, name string) string {
	t.Helper()
	var leader string
	waitFor(t, time.Minute, "the leader of stream "+name, func() bool {
		l, err := tryStreamLeader(ctx, js, name)
		leader = l
		return err == nil && l != ""
	})
	return leader
}

// emailRelay posts emails to POST /email/inbound the way a mail relay
// does: a 503 or a dropped connection is retried with the same message.
type emailRelay struct {
	url, token string
	backoff    time.Duration
	client     *http.Client

	mu    sync.Mutex
	posts []relayPost
}

// relayPost is one POST.
type relayPost struct {
	email      int
	start, end time.Time
	status     int // 0: no HTTP answer
}

// acceptedEmail is an email the intake accepted.
type acceptedEmail struct {
	email           int
	id              string // the message id ingest-email answered with
	first, accepted time.Time
}

// send posts email i until it is accepted, ctx ends, or the intake
// refuses it for good.
func (r *emailRelay) send(ctx context.Context, i int) (acceptedEmail, error) {
	body := clusterEmail(i)
	first := time.Now()
	for {
		start := time.Now()
		status, id, err := r.post(ctx, body)
		end := time.Now()
		r.mu.Lock()
		r.posts = append(r.posts, relayPost{email: i, start: start, end: end, status: status})
		r.mu.Unlock()
		switch {
		case status == http.StatusOK && id != "":
			return acceptedEmail{email: i, id: id, first: first, accepted: end}, nil
		case status == http.StatusServiceUnavailable, status == 0:
			if ctx.Err() != nil {
				return acceptedEmail{}, fmt.Errorf("email %d not accepted: %w (last error: %v)", i, ctx.Err(), err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(r.backoff):
			}
		default:
			return acceptedEmail{}, fmt.Errorf("email %d: status %d, id %q, error %v", i, status, id, err)
		}
	}
}

// post sends one POST and returns the status (0 without an answer) and
// the id of an accepted email.
func (r *emailRelay) post(ctx context.Context, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "message/rfc822")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return resp.StatusCode, "", fmt.Errorf("decode answer %q: %w", raw, err)
	}
	return resp.StatusCode, out.ID, nil
}

// relayStats sums up what the relays saw.
type relayStats struct {
	attempts, unavailable, noAnswer, affected int
	firstFailure, lastFailure                 time.Time
	longest, median                           time.Duration
}

func (r *emailRelay) stats(emails []acceptedEmail) relayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s relayStats
	hit := map[int]bool{}
	for _, p := range r.posts {
		s.attempts++
		if p.status == http.StatusOK {
			continue
		}
		if p.status == 0 {
			s.noAnswer++
		} else {
			s.unavailable++
		}
		hit[p.email] = true
		if s.firstFailure.IsZero() || p.start.Before(s.firstFailure) {
			s.firstFailure = p.start
		}
		if p.end.After(s.lastFailure) {
			s.lastFailure = p.end
		}
	}
	s.affected = len(hit)
	waits := make([]time.Duration, 0, len(emails))
	for _, a := range emails {
		waits = append(waits, a.accepted.Sub(a.first))
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		s.longest, s.median = waits[len(waits)-1], waits[len(waits)/2]
	}
	return s
}

// clusterEmail is email i of the test: a customer opening a new thread.
func clusterEmail(i int) []byte {
	return []byte(fmt.Sprintf("From: Customer %[1]d <customer%[1]d@acme.example>\r\n"+
		"To: support@sidekick.example\r\n"+
		"Subject: Dashboards stopped loading (%[1]d)\r\n"+
		"Date: Tue, 03 Mar 2026 10:00:00 +0000\r\n"+
		"Message-ID: <cluster-%04[1]d@mail.acme.example>\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"\r\n"+
		"Hi team,\r\n\r\nsince the upgrade our dashboards do not load (report %[1]d).\r\n", i))
}

func queryCount(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// rowsPerID counts the rows of table per value of column.
func rowsPerID(t *testing.T, pool *pgxpool.Pool, table, column string) map[string]int {
	t.Helper()
	sql := fmt.Sprintf(`SELECT %s, count(*) FROM %s GROUP BY 1`, column, table)
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out := map[string]int{}
	for rows.Next() {
		var (
			id string
			n  int
		)
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// counterValue sums the samples of counter name whose label has value.
func counterValue(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
