// Command chaos runs Sidekick the way it is deployed, on one machine, and
// breaks it while customers write in: every service of services/*/cmd as
// its own process configured by SIDEKICK_* variables, nats-server (one
// server, or three with R3 streams), PostgreSQL, and fake Slack and
// PagerDuty recording what the notifier sends. It drives signed Slack
// events and a Sentry storm at a steady rate with Slack's retries, kills
// services, restarts nats-server, stops PostgreSQL, kills the R3 stream
// leader, and counts, per scenario run, what was lost, stored twice, and
// notified never or more than once. docs/reliability.md says how to run it
// and what it found; `make chaos` runs it, `make chaos-short` is CI's
// variant.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sidekickhq/sidekick/platform/run"
)

// harness runs scenarios and keeps their results.
type harness struct {
	logger  *slog.Logger
	load    load
	retries retryPolicy
	quiet   time.Duration

	mu sync.Mutex
	// run numbers scenario runs across stacks, in the order they start.
	run     int
	results []result
}

func main() {
	run.Main(func(ctx context.Context) error {
		return Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	})
}

// errFailed is returned when a required property did not hold.
var errFailed = errors.New("chaos: required properties did not hold (see above)")

// Main runs the harness with the command-line args; it prints the
// results table on stdout and its progress on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		short        = fs.Bool("short", false, "CI's variant: one run that kills each service once, a small count, Slack's retries compressed to 0s, 2s, 10s")
		repeat       = fs.Int("repeat", envInt("CHAOS_REPEAT", 1), "runs of every scenario (CHAOS_REPEAT)")
		stacks       = fs.Int("stacks", envInt("CHAOS_STACKS", 1), "stacks running scenarios side by side, each with its own processes, nats-server(s) and PostgreSQL (CHAOS_STACKS)")
		only         = fs.String("scenarios", os.Getenv("CHAOS_SCENARIOS"), "regular expression choosing scenarios by name (CHAOS_SCENARIOS)")
		messages     = fs.Int("messages", 300, "Slack messages per run")
		rate         = fs.Float64("rate", 10, "Slack messages a second")
		pingShare    = fs.Float64("ping-share", 0.05, "share of messages from Subscribers (pinged; the rest go into digests)")
		sentryEvents = fs.Int("sentry-events", 100, "Sentry error webhooks per run")
		sentryIssues = fs.Int("sentry-issues", 3, "Sentry issues the storm is about")
		seed         = fs.Uint64("seed", 1, "seed of who writes each message")
		lease        = fs.Duration("lease", 20*time.Second, "SIDEKICK_NOTIFIER_LEASE: when a send cut short by a crash is resumed")
		digestEvery  = fs.Duration("digest-every", 10*time.Second, "interval of the Community digest")
		quiet        = fs.Duration("quiet", 0, "nothing new at the fakes for this long ends a run (default: lease + digest interval + 5s)")
		restartDelay = fs.Duration("restart-delay", time.Second, "how long a killed service stays down")
		pgDown       = fs.Duration("pg-down", 20*time.Second, "how long PostgreSQL is stopped")
		natsDown     = fs.Duration("nats-down", 5*time.Second, "how long nats-server is down before it restarts on its store")
		leaderDown   = fs.Duration("leader-down", 20*time.Second, "how long the killed R3 leader stays down")
		notifierDown = fs.Duration("notifier-down", 20*time.Second, "how long the notifier stays down in its own scenario")
		bin          = fs.String("bin", "", "directory with the service binaries and nats-server (default: build them into a temp dir)")
		keep         = fs.Bool("keep", false, "keep each stack's directory (logs, stores) instead of removing it")
		out          = fs.String("out", "", "also write the results table to this file")
		requireFlag  = fs.String("require", "messages,notified", "properties whose failure fails the run: messages (nothing lost or duplicated), notified (every conversation notified exactly once, no duplicate ping)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *short {
		// A small count, unless asked otherwise: CI adds minutes, not tens.
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["messages"] {
			*messages = 300
		}
		if !set["rate"] {
			*rate = 20
		}
		if !set["sentry-events"] {
			*sentryEvents = 60
		}
	}
	require := map[string]bool{}
	for _, p := range strings.Split(*requireFlag, ",") {
		switch p = strings.TrimSpace(p); p {
		case "":
		case "messages", "notified":
			require[p] = true
		default:
			return fmt.Errorf("-require: unknown property %q (want messages, notified)", p)
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	h := &harness{
		logger:  logger,
		retries: slackRetries,
		load: load{messages: *messages, rate: *rate, pingShare: *pingShare, sentryEvents: *sentryEvents,
			sentryRate: *rate * float64(*sentryEvents) / float64(max(*messages, 1)), sentryIssues: *sentryIssues, seed: *seed},
		quiet: *quiet,
	}
	if h.quiet == 0 {
		h.quiet = *lease + *digestEvery + 5*time.Second
	}
	all := scenarios(*pgDown, *natsDown, *leaderDown, *notifierDown)
	if *short {
		all = []scenario{killEach(500 * time.Millisecond)}
		h.retries = retryPolicy{timeout: slackRetries.timeout, after: []time.Duration{0, 2 * time.Second, 10 * time.Second}}
		*repeat = 1
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return fmt.Errorf("-scenarios: %w", err)
		}
		var chosen []scenario
		for _, sc := range all {
			if re.MatchString(sc.name) {
				chosen = append(chosen, sc)
			}
		}
		all = chosen
	}
	if len(all) == 0 {
		return errors.New("no scenario chosen")
	}
	if *stacks < 1 {
		return fmt.Errorf("-stacks: %d, want at least 1", *stacks)
	}

	meta := reportMeta{
		Command: "go run ./bench/chaos " + strings.Join(args, " "),
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Commit:  commit(),
		Machine: fmt.Sprintf("%d CPUs, %s, %s/%s (shared with other work: figures are not timings)", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH),
		Settings: fmt.Sprintf("%d Slack messages a run at %g/s, %.0f%% from Subscribers; %d Sentry webhooks over %d issues; Slack retries after %v (3 s for a 2xx); notifier lease %s; digest every %s; quiet period %s; restart after %s; seed %d; %d stack(s) side by side",
			*messages, *rate, 100**pingShare, *sentryEvents, *sentryIssues, h.retries.after, *lease, *digestEvery, h.quiet, *restartDelay, *seed, *stacks),
	}
	loadStart := loadAverages()

	binDir := *bin
	if binDir == "" {
		tmp, err := os.MkdirTemp("", "sidekick-chaos-bin-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		repo, err := repoRoot()
		if err != nil {
			return err
		}
		began := time.Now()
		logger.Info("building the services and nats-server", "into", tmp)
		if err := buildBinaries(ctx, repo, tmp); err != nil {
			return err
		}
		logger.Info("built", "took", time.Since(began).Round(time.Second))
		binDir = tmp
	}
	opts := stackOptions{bin: binDir, restartDelay: *restartDelay, lease: *lease, digestEvery: *digestEvery, keep: *keep}

	var runErr error
	for _, cluster := range []bool{false, true} {
		var these []scenario
		for _, sc := range all {
			if sc.cluster == cluster {
				these = append(these, sc)
			}
		}
		if len(these) == 0 {
			continue
		}
		opts.natsServers = 1
		if cluster {
			opts.natsServers = 3
		}
		if runErr = h.onStacks(ctx, opts, these, *repeat, *stacks); runErr != nil {
			break
		}
	}
	meta.LoadAvg = loadStart + " → " + loadAverages()
	if len(h.results) > 0 {
		var b strings.Builder
		markdown(&b, meta, h.results)
		fmt.Fprintln(stdout)
		fmt.Fprint(stdout, b.String())
		if *out != "" {
			if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", *out, err)
			}
		}
	}
	if runErr != nil {
		return runErr
	}
	if fails := failures(h.results, require); len(fails) > 0 {
		fmt.Fprintln(stderr, "\nRequired (-require "+*requireFlag+") and not met:")
		for _, f := range fails {
			fmt.Fprintln(stderr, "  "+f)
		}
		return errFailed
	}
	return nil
}

// onStacks runs the scenarios repeat times each, in turn, on up to n
// stacks side by side: each stack takes the next run when it is done with
// one. The results are kept in the order the runs started.
func (h *harness) onStacks(ctx context.Context, opts stackOptions, scs []scenario, repeat, n int) error {
	type job struct {
		sc     scenario
		repeat int
	}
	jobs := make(chan job, repeat*len(scs))
	for r := 1; r <= repeat; r++ {
		for _, sc := range scs {
			jobs <- job{sc, r}
		}
	}
	close(jobs)
	n = min(n, len(jobs))

	// The stacks start one after the other: each takes its ports from
	// the kernel and must not take another's.
	var stacks []*stack
	defer func() {
		for _, s := range stacks {
			s.stop()
		}
	}()
	for i := range n {
		logger := h.logger
		if n > 1 {
			logger = logger.With("stack", i+1)
		}
		s, err := startStack(ctx, opts, logger)
		if err != nil {
			return err
		}
		stacks = append(stacks, s)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range stacks {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					return
				}
				h.mu.Lock()
				h.run++
				run := h.run
				h.mu.Unlock()
				res, err := h.runOnce(ctx, s, j.sc, j.repeat, run)
				if err != nil {
					cancel(err)
					return
				}
				h.mu.Lock()
				h.results = append(h.results, res)
				h.mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(h.results, func(a, b result) int { return a.Run - b.Run })
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// commit is the repository's HEAD, marked when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// loadAverages is the machine's 1, 5 and 15 minute load averages.
func loadAverages() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// envInt reads an integer from the environment, def when unset or bad.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
