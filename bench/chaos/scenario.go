package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// scenario is one fault, injected while the load runs.
type scenario struct {
	name string
	// cluster runs it on the three-server NATS cluster with R3 streams;
	// otherwise on a single server.
	cluster bool
	// at is the share of the run's messages sent before the fault starts;
	// zero: a third.
	at float64
	// inject does the fault and returns what it did.
	inject func(ctx context.Context, h *harness, s *stack) (string, error)
}

// killScenario kills one service with SIGKILL; the supervisor starts it
// again after the restart delay, as a kubelet would.
func killScenario(name string) scenario {
	return scenario{name: "kill " + name, inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		if name == "notifier" {
			return killNotifierMidSend(ctx, h, s)
		}
		return killAndWait(ctx, h, s, name, 0)
	}}
}

// downScenario kills one service with SIGKILL and keeps it down for
// down: a crash loop's back-off, or a node drained slowly.
func downScenario(name string, down time.Duration) scenario {
	return scenario{name: fmt.Sprintf("%s down %s", name, down), inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		return killAndWait(ctx, h, s, name, down)
	}}
}

// killAndWait kills a service, keeps it down for down (zero: the
// restart delay) and waits until it is ready again.
func killAndWait(ctx context.Context, h *harness, s *stack, name string, down time.Duration) (string, error) {
	svc := s.svcs[name]
	n := svc.proc.startCount()
	at := time.Now()
	if err := svc.proc.kill(down > 0); err != nil {
		return "", err
	}
	if down > 0 {
		if err := sleep(ctx, down); err != nil {
			return "", err
		}
		svc.proc.release()
	}
	if err := svc.proc.waitStarted(ctx, n); err != nil {
		return "", err
	}
	if err := svc.waitReady(ctx, 2*time.Minute); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL %s; ready again after %s", name, time.Since(at).Round(100*time.Millisecond)), nil
}

// killNotifierMidSend kills the notifier while it waits for Slack's
// answer to a ping Slack has already stored (the fake's OnPost and
// OnUpdate hooks run between storing and answering): the worst moment for
// sending once; the pings of a burst are mostly rewrites of its message. A
// ping, not a digest: a digest over Slack's limits would not count as
// delivered, twice or not. If no ping comes within 30 s it kills it
// anyway.
func killNotifierMidSend(ctx context.Context, h *harness, s *stack) (string, error) {
	svc := s.svcs["notifier"]
	n := svc.proc.startCount()
	var once sync.Once
	killed := make(chan string, 1)
	kill := func(how string) {
		once.Do(func() {
			if err := svc.proc.kill(false); err != nil {
				h.logger.Error("kill notifier", "error", err)
			}
			killed <- how
		})
	}
	run := s.run
	ping := func(m fakes.SlackMessage) bool {
		return !isDigest(m) && !isSentryPage(m) && len(tokensIn(m.Text+" "+string(m.Blocks), run, "N")) > 0
	}
	s.slack.OnPost(func(m fakes.SlackMessage) {
		if ping(m) {
			kill("while Slack held its answer to a ping")
		}
	})
	defer s.slack.OnPost(nil)
	// Pings in a burst are rewrites of its message: one cut short is done
	// again by the next sender, listing nobody twice.
	s.slack.OnUpdate(func(m fakes.SlackMessage) {
		if ping(m) {
			kill("while Slack held its answer to a burst's rewrite listing pings")
		}
	})
	defer s.slack.OnUpdate(nil)
	at := time.Now()
	var how string
	select {
	case how = <-killed:
	case <-time.After(30 * time.Second):
		kill("at a random moment (no ping within 30 s)")
		how = <-killed
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if err := svc.proc.waitStarted(ctx, n); err != nil {
		return "", err
	}
	if err := svc.waitReady(ctx, 2*time.Minute); err != nil {
		return "", err
	}
	return fmt.Sprintf("SIGKILL notifier %s; ready again after %s", how, time.Since(at).Round(100*time.Millisecond)), nil
}

// natsRestart kills the single nats-server and starts it again on its
// store after down.
func natsRestart(down time.Duration) scenario {
	return scenario{name: "nats-server restarted", inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		node := s.nats[0]
		at := time.Now()
		if err := node.proc.kill(true); err != nil {
			return "", err
		}
		if err := sleep(ctx, down); err != nil {
			return "", err
		}
		node.proc.release()
		if err := node.waitHealthy(ctx, 2*time.Minute); err != nil {
			return "", err
		}
		return fmt.Sprintf("SIGKILL nats-server, started again on its store after %s; healthy after %s",
			down, time.Since(at).Round(100*time.Millisecond)), nil
	}}
}

// postgresStopped stops PostgreSQL (fast shutdown) for down, then starts
// it again on the same data and port.
func postgresStopped(down time.Duration) scenario {
	return scenario{name: fmt.Sprintf("postgres stopped %s", down), inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		at := time.Now()
		if err := s.stopPostgres(ctx); err != nil {
			return "", err
		}
		if err := sleep(ctx, down); err != nil {
			return "", err
		}
		if err := s.startPostgres(ctx); err != nil {
			return "", err
		}
		return fmt.Sprintf("pg_ctl stop -m fast; started again after %s", time.Since(at).Round(100*time.Millisecond)), nil
	}}
}

// leaderKilled kills the server leading SUPPORT_INBOUND in the R3
// cluster and starts it again on its store after down.
func leaderKilled(down time.Duration) scenario {
	return scenario{name: "R3 stream leader killed", cluster: true, inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		leader, err := s.streamLeader(ctx, bus.StreamInbound)
		if err != nil {
			return "", err
		}
		node, err := s.natsNamed(leader)
		if err != nil {
			return "", err
		}
		at := time.Now()
		if err := node.proc.kill(true); err != nil {
			return "", err
		}
		newLeader, err := s.streamLeader(ctx, bus.StreamInbound)
		if err != nil {
			return "", err
		}
		elected := time.Since(at)
		if err := sleep(ctx, max(0, down-elected)); err != nil {
			return "", err
		}
		node.proc.release()
		if err := node.waitHealthy(ctx, 2*time.Minute); err != nil {
			return "", err
		}
		if err := poll(ctx, 2*time.Minute, "every replica of "+bus.StreamInbound+" current", func() bool {
			return replicasCurrent(ctx, s.js, bus.StreamInbound)
		}); err != nil {
			return "", err
		}
		return fmt.Sprintf("SIGKILL %s (leader of %s); %s led after %s; started again after %s; replicas current after %s",
			leader, bus.StreamInbound, newLeader, elected.Round(100*time.Millisecond), down, time.Since(at).Round(100*time.Millisecond)), nil
	}}
}

// killEach kills every service once, one after the other, spread over
// the sending: the short variant CI runs.
func killEach(spacing time.Duration) scenario {
	return scenario{name: "kill each service", at: 0.1, inject: func(ctx context.Context, h *harness, s *stack) (string, error) {
		var did []string
		for i, name := range serviceNames {
			if i > 0 {
				if err := sleep(ctx, spacing); err != nil {
					return "", err
				}
			}
			var (
				what string
				err  error
			)
			if name == "notifier" {
				what, err = killNotifierMidSend(ctx, h, s)
			} else {
				what, err = killAndWait(ctx, h, s, name, 0)
			}
			if err != nil {
				return "", err
			}
			did = append(did, what)
		}
		return strings.Join(did, "; "), nil
	}}
}

// scenarios are the full run's, in the order they run.
func scenarios(pgDown, natsDown, leaderDown, notifierDown time.Duration) []scenario {
	var out []scenario
	for _, name := range serviceNames {
		out = append(out, killScenario(name))
	}
	return append(out, downScenario("notifier", notifierDown), natsRestart(natsDown), postgresStopped(pgDown), leaderKilled(leaderDown))
}

// runOnce runs the scenario once on s as run number run: the load, the
// fault a third of the way in, the wait until everything settled, and the
// count.
func (h *harness) runOnce(ctx context.Context, s *stack, sc scenario, repeat, run int) (result, error) {
	s.run = run
	l := h.load
	l.run = run
	tr, msgs := l.plan()
	logger := s.logger.With("scenario", sc.name, "repeat", repeat, "run", l.run)
	crashesBefore := s.crashes()
	logger.Info("scenario starts", "messages", l.messages, "rate", l.rate, "sentry_events", l.sentryEvents)

	sendCtx, cancelSend := context.WithCancel(ctx)
	defer cancelSend()
	var wg sync.WaitGroup
	wg.Go(func() {
		driveSlack(sendCtx, "http://"+s.svcs["ingest-slack"].httpAddr+"/slack/events", l, tr, msgs, h.retries)
	})
	wg.Go(func() { driveSentry(sendCtx, "http://"+s.svcs["ingest-sentry"].httpAddr+"/sentry/webhook", l, tr) })

	var fault string
	var faultErr error
	wg.Go(func() {
		at := sc.at
		if at == 0 {
			at = 1.0 / 3
		}
		if err := poll(sendCtx, time.Hour, "the fault's moment", func() bool {
			return tr.sent.Load() >= int64(at*float64(l.messages))
		}); err != nil {
			faultErr = err
			return
		}
		fault, faultErr = sc.inject(sendCtx, h, s)
	})
	wg.Wait()
	if faultErr != nil {
		return result{}, fmt.Errorf("%s: %w", sc.name, faultErr)
	}
	logger.Info("fault done and every delivery settled", "fault", fault)

	if err := h.settle(ctx, s, tr, logger); err != nil {
		return result{}, err
	}
	obs, err := s.observe(ctx, l.run, tr)
	if err != nil {
		return result{}, err
	}
	r := tally(l.run, tr, obs)
	r.Scenario, r.Repeat, r.Fault = sc.name, repeat, fault
	r.Crashes = s.crashes() - crashesBefore
	logger.Info("scenario counted", "sent", r.Sent, "accepted", r.Accepted, "stored", r.Stored, "lost", r.Lost,
		"duplicated", r.Duplicated, "to_notify", r.Expected, "once", r.Once, "never", r.Never, "never_refused", r.Refused, "more_than_once", r.Twice,
		"duplicate_pings", r.DupPings, "over_slack_limits", r.OverLimit, "issues", r.Issues, "issues_paged", r.IssuesPaged,
		"duplicate_pages", r.DupPages, "crashes", r.Crashes)
	for kind, toks := range r.Examples {
		logger.Info("examples", "problem", kind, "tokens", strings.Join(toks, " "))
	}
	return r, nil
}

// settle waits until every service is ready, triage has stored every
// accepted message (or stopped making progress for a minute), and the
// fakes have received nothing new for the quiet period (long enough for a
// digest slot and an abandoned send's lease to pass).
func (h *harness) settle(ctx context.Context, s *stack, tr *traffic, logger *slog.Logger) error {
	for _, name := range serviceNames {
		if err := s.svcs[name].waitReady(ctx, 2*time.Minute); err != nil {
			return err
		}
	}
	accepted := 0
	for _, m := range tr.messages {
		if m.accepted {
			accepted++
		}
	}
	last, lastChange := -1, time.Now()
	for {
		n, err := s.storedCount(ctx, s.run)
		if err != nil {
			return fmt.Errorf("count stored messages: %w", err)
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if n >= accepted {
			break
		}
		if time.Since(lastChange) > time.Minute {
			logger.Warn("triage stopped storing before every accepted message was stored", "stored", n, "accepted", accepted)
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	seen, quietSince := -1, time.Now()
	began := time.Now()
	for {
		n := len(s.slack.Posted()) + len(s.pd.Events()) + len(s.slack.Updated())
		if n != seen {
			seen, quietSince = n, time.Now()
		}
		if time.Since(quietSince) >= h.quiet {
			break
		}
		if time.Since(began) > 15*time.Minute {
			logger.Warn("the notifier was still sending 15 minutes after the load; counting now")
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// crashes counts the exits of every process the harness did not cause.
func (s *stack) crashes() int {
	n := 0
	for _, svc := range s.svcs {
		n += svc.proc.crashCount()
	}
	for _, node := range s.nats {
		n += node.proc.crashCount()
	}
	return n
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
