package ingestsentry

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/loadgen"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/sentryhook"
)

// alertmanagerVersion is what BenchmarkStormVsAlertmanager compares with.
const alertmanagerVersion = "v0.28.1"

var (
	amBinary = flag.String("sentry.alertmanager", "", "BenchmarkStormVsAlertmanager: the alertmanager binary; empty builds "+alertmanagerVersion+" with go install into the user cache directory")
	amRounds = flag.Int("sentry.am-rounds", 3, "BenchmarkStormVsAlertmanager: rounds")
	amEvents = flag.Int("sentry.am-events", 3000, "BenchmarkStormVsAlertmanager: events per storm")
	amIssues = flag.Int("sentry.am-issues", 5, "BenchmarkStormVsAlertmanager: issues (alert groups) per storm")
	amCeil   = flag.Bool("sentry.am-ceiling", false, "BenchmarkStormVsAlertmanager: also send each round's webhooks to a bare handler that only stores what ingest-sentry stores and waits for the PubAck (the ceiling of a path that stores before it answers) and to one that only reads them")
)

// BenchmarkStormVsAlertmanager ignores b.N (run it with -benchtime 1x).
// It sends the same storm, -sentry.am-events events over -sentry.am-issues
// issues from 32 senders with one Go client in a child process, to
// ingest-sentry (signed error.created webhooks, NATS in its own process,
// the default 1-minute coalescing) and to Alertmanager v0.28.1 in its own
// process (one alert per request on POST /api/v2/alerts, grouped by issue,
// group_wait 1s, group_interval 1m, a webhook receiver), taking turns for
// -sentry.am-rounds rounds, each round with issues of its own and the
// order turned, after a warm-up storm of 500 to each. It reports
// each side's requests/s and p99 (medians of the rounds) with the
// per-round ratios, and the time from a round's first request to its
// first notification: for Sidekick the first coalesced message stored on
// support.inbound.sentry (triage and the notifier come after it), for
// Alertmanager the first webhook its receiver gets. Issue 19's targets:
// at least 1.0× Alertmanager's rate, a p99 no worse, a first notification
// under 250 ms. With -sentry.am-ceiling each round also goes to two bare
// handlers in the benchmark's process: one that stores what ingest-sentry
// stores and waits for the PubAck (the most a path that stores every
// webhook before its answer can reach here), and one that only reads the
// webhook (what the same client sending a 6 kB webhook instead of a small
// alert allows).
//
// Alertmanager is built through the Go module proxy on the first run
// (a few minutes) and kept in the user cache directory.
func BenchmarkStormVsAlertmanager(b *testing.B) {
	bin := *amBinary
	if bin == "" {
		bin = buildAlertmanager(b)
	}
	js := bustest.StartProcess(b)
	svc := newService(b, js, Config{CoalesceInterval: time.Minute})
	stop := run(b, svc)
	defer func() { _ = stop() }()
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// First arrivals: Sidekick's downstream messages by thread key,
	// Alertmanager's webhooks by group.
	var mu sync.Mutex
	first := map[string]time.Time{}
	note := func(key string) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[key]; !ok {
			first[key] = time.Now()
		}
	}
	sub, err := js.Conn().Subscribe(bus.InboundSubject("sentry"), func(m *nats.Msg) {
		note("sidekick:" + m.Header.Get(bus.HeaderID))
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// {"receiver":…,"groupLabels":{"alertname":"round-2-issue-3"},…}
		if _, rest, ok := strings.Cut(string(body), `"groupLabels":{"alertname":"`); ok {
			name, _, _ := strings.Cut(rest, `"`)
			note("alertmanager:" + name)
		}
		w.WriteHeader(http.StatusOK)
	}))
	// Cleanups run last first: Alertmanager is stopped before its receiver.
	b.Cleanup(hook.Close)
	amURL := startAlertmanager(b, bin, hook.URL)
	targets := map[string]string{"sidekick": srv.URL + "/sentry/webhook", "alertmanager": amURL + "/api/v2/alerts"}
	names := []string{"sidekick", "alertmanager"}
	if *amCeil {
		targets["ceiling"], targets["bare"] = ceilingServer(b, js, svc), loadgen.BareHTTP(b)
		names = append(names, "ceiling", "bare")
	}

	// A warm-up storm to each (a round number no measured round uses):
	// connections, JetStream's files and Go's heaps are set up before the
	// first measured round, for both sides alike.
	for _, target := range names {
		in := compareLoad{Target: target, URL: targets[target], Events: 500, Issues: *amIssues, Senders: stormConc, Round: *amRounds}
		var res stormResult
		if err := loadgen.Spawn(context.Background(), generatorCompare, in, &res); err != nil {
			b.Fatal(err)
		}
	}

	type side struct{ rate, p99, firstMs []float64 }
	var sk, am, ceil, bare side
	var rateRatios, p99Ratios, ceilRatios, bareRatios, shareRatios []float64
	for round := range *amRounds {
		res := map[string]stormResult{}
		// The order turns each round, so neither side always follows the
		// other (and the coalescer's or Alertmanager's work after a storm).
		for k := range names {
			target := names[(k+round)%len(names)]
			in := compareLoad{Target: target, URL: targets[target], Events: *amEvents, Issues: *amIssues, Senders: stormConc, Round: round}
			var r stormResult
			if err := loadgen.Spawn(context.Background(), generatorCompare, in, &r); err != nil {
				b.Fatal(err)
			}
			res[target] = r
		}
		// Wait for the round's first notifications (Alertmanager's after
		// its group wait) before the next round takes the machine.
		start := [2]time.Time{time.Unix(0, res["sidekick"].StartUnixNano), time.Unix(0, res["alertmanager"].StartUnixNano)}
		var firstAt [2]time.Time
		waitFor(b, "the round's first notifications", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for k, t := range first {
				prefix := fmt.Sprintf("round-%d-", round)
				switch {
				case strings.HasPrefix(k, "alertmanager:"+prefix):
					if firstAt[1].IsZero() || t.Before(firstAt[1]) {
						firstAt[1] = t
					}
				case strings.HasPrefix(k, "sidekick:") && sidekickRound(k) == round:
					if firstAt[0].IsZero() || t.Before(firstAt[0]) {
						firstAt[0] = t
					}
				}
			}
			return !firstAt[0].IsZero() && !firstAt[1].IsZero()
		})
		for j, s := range []*side{&sk, &am} {
			r := res[names[j]]
			s.rate = append(s.rate, float64(*amEvents)/r.Seconds)
			s.p99 = append(s.p99, r.P99Millis)
			s.firstMs = append(s.firstMs, float64(firstAt[j].Sub(start[j]).Microseconds())/1000)
		}
		rateRatios = append(rateRatios, sk.rate[round]/am.rate[round])
		p99Ratios = append(p99Ratios, sk.p99[round]/am.p99[round])
		b.Logf("round %d: sidekick %.0f/s p99 %.1f ms first %.0f ms (503s %d); alertmanager %.0f/s p99 %.1f ms first %.0f ms",
			round+1, sk.rate[round], sk.p99[round], sk.firstMs[round], res["sidekick"].Retries, am.rate[round], am.p99[round], am.firstMs[round])
		if *amCeil {
			r := res["ceiling"]
			ceil.rate = append(ceil.rate, float64(*amEvents)/r.Seconds)
			ceil.p99 = append(ceil.p99, r.P99Millis)
			ceilRatios = append(ceilRatios, ceil.rate[round]/am.rate[round])
			shareRatios = append(shareRatios, sk.rate[round]/ceil.rate[round])
			b.Logf("round %d: ceiling %.0f/s p99 %.1f ms (503s %d): %.2f of alertmanager, sidekick %.2f of it",
				round+1, ceil.rate[round], ceil.p99[round], r.Retries, ceilRatios[round], shareRatios[round])
			r = res["bare"]
			bare.rate = append(bare.rate, float64(*amEvents)/r.Seconds)
			bare.p99 = append(bare.p99, r.P99Millis)
			bareRatios = append(bareRatios, bare.rate[round]/am.rate[round])
			b.Logf("round %d: bare %.0f/s p99 %.1f ms: %.2f of alertmanager", round+1, bare.rate[round], bare.p99[round], bareRatios[round])
		}
	}
	med := func(v []float64) float64 {
		s := slices.Clone(v)
		slices.Sort(s)
		return s[len(s)/2]
	}
	b.ReportMetric(med(sk.rate), "sidekick-events/s")
	b.ReportMetric(med(am.rate), "alertmanager-alerts/s")
	b.ReportMetric(med(rateRatios), "rate-ratio")
	b.ReportMetric(med(sk.p99), "sidekick-p99-ms")
	b.ReportMetric(med(am.p99), "alertmanager-p99-ms")
	b.ReportMetric(med(p99Ratios), "p99-ratio")
	b.ReportMetric(med(sk.firstMs), "sidekick-first-ms")
	b.ReportMetric(med(am.firstMs), "alertmanager-first-ms")
	if *amCeil {
		b.ReportMetric(med(ceil.rate), "ceiling-events/s")
		b.ReportMetric(med(ceil.p99), "ceiling-p99-ms")
		b.ReportMetric(med(ceilRatios), "ceiling-rate-ratio")
		b.ReportMetric(med(shareRatios), "sidekick/ceiling")
		b.ReportMetric(med(bare.rate), "bare-events/s")
		b.ReportMetric(med(bare.p99), "bare-p99-ms")
		b.ReportMetric(med(bareRatios), "bare-rate-ratio")
	}
	b.Logf("rate ratio per round %.2f, p99 ratio per round %.2f; load average %s", rateRatios, p99Ratios, loadgen.LoadAverage())
}

// sidekickRound is the round of a downstream message id
// (sentry:error.created:<event id>): compareWebhooks numbers the events of
// round r from r*roundEvents+1.
func sidekickRound(key string) int {
	id := key[strings.LastIndexByte(key, ':')+1:]
	n, err := strconv.ParseInt(id, 16, 64)
	if err != nil {
		return -1
	}
	return int((n - 1) / roundEvents)
}

// roundEvents spaces the event numbers of the rounds apart.
const roundEvents = 1_000_000

// generatorCompare sends one storm of BenchmarkStormVsAlertmanager from a
// child process.
const generatorCompare = "sentry-vs-alertmanager"

type compareLoad struct {
	Target, URL                    string
	Events, Issues, Senders, Round int
}

func generateCompare(_ context.Context, in compareLoad) (any, error) {
	var request func(int) ([]byte, http.Header)
	switch in.Target {
	case "sidekick", "ceiling", "bare":
		base, err := os.ReadFile("internal/sentryhook/testdata/error-created.json")
		if err != nil {
			return nil, err
		}
		webhook := sentryWebhooks(base, fmt.Sprintf("round-%d", in.Round), 800000+100*in.Round, in.Issues)
		request = func(i int) ([]byte, http.Header) { return webhook(in.Round*roundEvents + i) }
	case "alertmanager":
		request = alerts(in.Round, in.Issues)
	default:
		return nil, fmt.Errorf("no target %q", in.Target)
	}
	// Every request is made before the storm, so the senders' cost is the
	// same on both sides (HTTP only): building and signing a 6 kB Sentry
	// webhook costs the shared cores more than a small alert would.
	type made struct {
		body []byte
		hdr  http.Header
	}
	reqs := make([]made, in.Events)
	for i := range reqs {
		reqs[i].body, reqs[i].hdr = request(i)
	}
	start := time.Now()
	lat, elapsed, retries, failed := sendStorm(in.URL, in.Events, in.Senders, func(i int) ([]byte, http.Header) { return reqs[i].body, reqs[i].hdr })
	if failed > 0 {
		return nil, fmt.Errorf("%s: %d of %d requests were not accepted", in.Target, failed, in.Events)
	}
	return stormResult{StartUnixNano: start.UnixNano(), Seconds: elapsed.Seconds(), P99Millis: float64(p99(lat).Microseconds()) / 1000, Retries: retries}, nil
}

// alerts makes request i of an Alertmanager storm: one firing alert, a
// distinct event of issue i%issues, as Prometheus or a Sentry bridge would
// post it. It starts when the requests are made, just before the storm:
// Alertmanager flushes a group at once, without its group wait, when the
// alert is older than the wait.
func alerts(round, issues int) func(i int) ([]byte, http.Header) {
	at := time.Now()
	return func(i int) ([]byte, http.Header) {
		body := fmt.Sprintf(`[{"labels":{"alertname":"round-%d-issue-%d","event":"%032x","level":"error","project":"api"},`+
			`"annotations":{"summary":"ZeroDivisionError: division by zero","culprit":"billing.views in charge_card"},`+
			`"startsAt":%q,"generatorURL":"https://sentry.io/organizations/acme/issues/%d/"}]`,
			round, i%issues, i+1, at.Format(time.RFC3339Nano), i%issues)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		return []byte(body), h
	}
}

// buildAlertmanager installs Alertmanager at alertmanagerVersion through
// the Go module proxy into the user cache directory, once.
func buildAlertmanager(b *testing.B) string {
	b.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		b.Skip("no cache directory for the Alertmanager build:", err)
	}
	dir := filepath.Join(cache, "sidekick-bench", "alertmanager-"+alertmanagerVersion)
	bin := filepath.Join(dir, "alertmanager")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	b.Logf("building alertmanager %s with go install (once)", alertmanagerVersion)
	cmd := exec.Command("go", "install", "github.com/prometheus/alertmanager/cmd/alertmanager@"+alertmanagerVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go install alertmanager: %v\n%s", err, out)
	}
	return bin
}

// startAlertmanager runs bin with one route, grouped by alertname, to a
// webhook at hook, and waits until it is ready; it returns its URL.
func startAlertmanager(b *testing.B, bin, hook string) string {
	b.Helper()
	dir := b.TempDir()
	config := fmt.Sprintf(`route:
  receiver: bench
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: bench
    webhook_configs:
      - url: %s/hook
        send_resolved: false
`, hook)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(config), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr
	waitFor(b, "alertmanager to be ready", func() bool {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}

// ceilingServer is BenchmarkStormVsAlertmanager's ceiling for a path that
// stores each webhook before it answers: a handler that reads the body
// and stores the message ingest-sentry would store for the fixture (the
// same headers and size, its own Nats-Msg-Id per request) in a stream
// configured as SENTRY_OCCURRENCES is, waiting for the PubAck; no
// signature, no parsing, no coalescer. It returns its URL.
func ceilingServer(b *testing.B, js jetstream.JetStream, svc *Service) string {
	b.Helper()
	ctx := context.Background()
	cfg := StreamConfig(svc.cfg)
	cfg.Name, cfg.Subjects, cfg.Retention = "BENCH_CEILING", []string{"bench.ceiling"}, jetstream.LimitsPolicy
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	body, hdr := sentryWebhooks(payload(b, "error-created.json"), "ceiling", 700000, 1)(0)
	ev, err := sentryhook.Parse(hdr.Get("Sentry-Hook-Resource"), hdr.Get("Request-ID"), body, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	tmpl, err := svc.envelop.Msg(bus.Event{Subject: "bench.ceiling", ID: ev.Message.GetId(), Message: ev.Message})
	if err != nil {
		b.Fatal(err)
	}
	tmpl.Header.Set(headerRole, roleOccurrence)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		msg := nats.NewMsg(tmpl.Subject)
		msg.Data = tmpl.Data
		for k, v := range tmpl.Header {
			msg.Header[k] = v
		}
		msg.Header.Set(jetstream.MsgIDHeader, "ceiling:"+r.Header.Get("Request-ID"))
		if _, err := js.PublishMsg(r.Context(), msg); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}
