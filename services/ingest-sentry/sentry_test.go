package ingestsentry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/httpx/httpxtest"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/orgfile/orgwatch"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/ingest-sentry/internal/sentryhook"
)

const secret = "test-client-secret"

type fixture struct {
	srv *bustest.Server
	js  jetstream.JetStream
	svc *Service
	mux *http.ServeMux
}

func newService(tb testing.TB, js jetstream.JetStream, cfg Config) *Service {
	tb.Helper()
	return newServiceWith(tb, js, cfg, nil)
}

// newServiceWith is newService with an organisation file.
func newServiceWith(tb testing.TB, js jetstream.JetStream, cfg Config, org *orgfile.File) *Service {
	tb.Helper()
	cfg.ClientSecret = secret
	if cfg.Ownership == "" {
		cfg.Ownership = "frontend=core-experience,api=platform,api[component=billing]=core-analytics"
	}
	ctx := context.Background()
	if err := EnsureStream(ctx, js, cfg); err != nil {
		tb.Fatal(err)
	}
	svc, err := New(cfg, Deps{
		JS:        js,
		Publisher: bus.NewPublisher(js, Source),
		DeadLetter: func(ctx context.Context, location string, data []byte, hdr nats.Header, cause error) error {
			return bus.DeadLetter(ctx, js, Name, location, bus.InboundSubject("sentry"), data, hdr, cause)
		},
		Registry: prometheus.NewRegistry(),
		Org:      org,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return svc
}

func newFixture(tb testing.TB, cfg Config) *fixture {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(tb)
	svc := newService(tb, js, cfg)
	mux := http.NewServeMux()
	svc.Register(mux)
	return &fixture{srv: srv, js: js, svc: svc, mux: mux}
}

// run starts the coalescer; the returned stop cancels it and waits.
func run(tb testing.TB, svc *Service) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	tb.Cleanup(func() { _ = stop() })
	return stop
}

func payload(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("internal/sentryhook/testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

const (
	fixtureIssue    = "1170820242"
	fixtureEvent    = "bb78c1407cea4519aa397afc059c793d"
	fixtureDatetime = "2026-11-20T09:58:37.391000Z"
)

// errorEvent is the error.created fixture for another event id (and issue
// id): distinct events, as a real storm sends.
func errorEvent(base []byte, issue string, event int, at time.Time) []byte {
	b := bytes.ReplaceAll(base, []byte(fixtureEvent), []byte(fmt.Sprintf("%032x", event)))
	b = bytes.ReplaceAll(b, []byte(fixtureDatetime), []byte(at.UTC().Format("2006-01-02T15:04:05.000000Z")))
	return bytes.ReplaceAll(b, []byte(fixtureIssue), []byte(issue))
}

func request(resource, requestID string, body []byte, sig string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/sentry/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Request-ID", requestID)
	req.Header.Set("Sentry-Hook-Resource", resource)
	req.Header.Set("Sentry-Hook-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	switch sig {
	case "":
		req.Header.Set("Sentry-Hook-Signature", sentryhook.Sign([]byte(secret), body))
	case "-":
	default:
		req.Header.Set("Sentry-Hook-Signature", sig)
	}
	return req
}

func (f *fixture) post(t *testing.T, resource, requestID string, body []byte, sig string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, request(resource, requestID, body, sig))
	return rec.Code
}

func stored(t testing.TB, js jetstream.JetStream, stream, subject string) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if subject == "" || m.Subject == subject {
			out = append(out, m)
		}
	}
	return out
}

// downstream returns what ingest-sentry published on support.inbound.sentry.
func downstream(t testing.TB, js jetstream.JetStream) []*supportv1.InboundMessage {
	t.Helper()
	var out []*supportv1.InboundMessage
	for _, raw := range stored(t, js, bus.StreamInbound, bus.InboundSubject("sentry")) {
		m := &supportv1.InboundMessage{}
		if err := proto.Unmarshal(raw.Data, m); err != nil {
			t.Fatal(err)
		}
		if raw.Header.Get(jetstream.MsgIDHeader) != m.GetId() || raw.Header.Get(bus.HeaderSource) != Source {
			t.Fatalf("headers %v", raw.Header)
		}
		out = append(out, m)
	}
	return out
}

// waitFor polls cond until it holds or a generous deadline passes; it
// waits for work to happen, it does not assert how fast.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func occurrences(msgs []*supportv1.InboundMessage) int {
	n := 0
	for _, m := range msgs {
		if c, err := strconv.Atoi(m.GetAttributes()["occurrences"]); err == nil {
			n += c
		}
	}
	return n
}

func TestWebhookRefusalsAndIgnored(t *testing.T) {
	f := newFixture(t, Config{MaxBodyBytes: 1 << 20})
	body := payload(t, "error-created.json")
	count := func(resource, result string) float64 {
		return testutil.ToFloat64(f.svc.metrics.webhooks.WithLabelValues(resource, result))
	}
	for name, tc := range map[string]struct {
		resource, id string
		body         []byte
		sig          string
		want         int
	}{
		"no signature":       {"error", "r1", body, "-", http.StatusUnauthorized},
		"bad signature":      {"error", "r2", body, sentryhook.Sign([]byte("other"), body), http.StatusUnauthorized},
		"too large":          {"error", "r3", make([]byte, 1<<20+1), "", http.StatusRequestEntityTooLarge},
		"not JSON":           {"error", "r4", []byte(`{"action"`), "", http.StatusBadRequest},
		"no Request-ID":      {"error", "", body, "", http.StatusBadRequest},
		"no resource":        {"", "r5", body, "", http.StatusBadRequest},
		"unknown resource":   {"preprod_artifact", "r6", []byte(`{"action":"size_analysis_completed"}`), "", http.StatusOK},
		"unknown action":     {"issue", "r7", []byte(`{"action":"deleted","data":{}}`), "", http.StatusOK},
		"installation":       {"installation", "r8", payload(t, "installation-created.json"), "", http.StatusOK},
		"unusable, recorded": {"error", "r9", []byte(`{"action":"created","data":{"error":{"title":"no issue"}}}`), "", http.StatusOK},
	} {
		if code := f.post(t, tc.resource, tc.id, tc.body, tc.sig); code != tc.want {
			t.Errorf("%s: %d, want %d", name, code, tc.want)
		}
	}
	if count("other", "ignored_resource") != 1 || count("issue", "ignored_action") != 1 || count("installation", "installation") != 1 {
		t.Fatal("ignored webhooks not counted")
	}
	if n := len(stored(t, f.js, OccurrenceStream, "")); n != 0 {
		t.Fatalf("%d occurrences stored for refused or ignored webhooks", n)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 || dl[0].Header.Get(bus.HeaderErrorLocation) != "ingest-sentry/webhook/error" ||
		!strings.Contains(dl[0].Header.Get(bus.HeaderError), "issue_id") || dl[0].Header.Get("request-id") != "r9" {
		t.Fatalf("dead letters %v", dl)
	}
}

func TestIssueLifecycle(t *testing.T) {
	f := newFixture(t, Config{CoalesceInterval: time.Hour})
	stop := run(t, f.svc)
	post := func(resource, id, file string) {
		t.Helper()
		if code := f.post(t, resource, id, payload(t, file), ""); code != http.StatusOK {
			t.Fatalf("%s %s: %d", resource, id, code)
		}
	}
	post("issue", "created", "issue-created.json")
	waitFor(t, "the first message", func() bool { return len(downstream(t, f.js)) == 1 })
	// Five events; the first is the one issue.created stood for (same
	// time), so four are new. Each is reported by an error webhook; the
	// third twice with one Request-ID (a Sentry retry) and once more by an
	// issue alert (the same event id): counted once.
	base := payload(t, "error-created.json")
	first, _ := time.Parse(time.RFC3339Nano, fixtureDatetime)
	for i := range 5 {
		body := errorEvent(base, fixtureIssue, i+1, first.Add(time.Duration(i)*time.Second))
		if code := f.post(t, "error", "err-"+strconv.Itoa(i), body, ""); code != http.StatusOK {
			t.Fatalf("error %d: %d", i, code)
		}
		if i == 2 {
			if code := f.post(t, "error", "err-2", body, ""); code != http.StatusOK {
				t.Fatalf("retry: %d", code)
			}
			alert := bytes.ReplaceAll(payload(t, "event_alert-triggered.json"), []byte("e4874d664c3540c1a32eab185f12c5ab"), []byte(fmt.Sprintf("%032x", i+1)))
			if code := f.post(t, "event_alert", "alert-2", alert, ""); code != http.StatusOK {
				t.Fatalf("alert: %d", code)
			}
		}
	}
	post("comment", "comment", "comment-created.json")
	post("issue", "resolved", "issue-resolved.json")
	post("event_alert", "regressed", "event_alert-triggered.json")
	post("metric_alert", "incident", "metric_alert-critical.json")
	waitFor(t, "all messages", func() bool { return len(downstream(t, f.js)) == 6 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	msgs := downstream(t, f.js)
	type row struct {
		id          string
		kind        supportv1.MessageKind
		occurrences string
		team        string
	}
	var got []row
	for _, m := range msgs {
		got = append(got, row{m.GetId(), m.GetKind(), m.GetAttributes()["occurrences"], m.GetTeam()})
	}
	want := []row{
		{"sentry:issue.created:" + fixtureIssue, supportv1.MessageKind_MESSAGE_KIND_POSTED, "1", "platform"},
		// The five errors wait for the interval; the comment flushes them
		// first, so the order downstream is the order received.
		{"sentry:error.created:" + fmt.Sprintf("%032x", 5), supportv1.MessageKind_MESSAGE_KIND_UPDATED, "4", "core-analytics"},
		{"sentry:comment.created:1234", supportv1.MessageKind_MESSAGE_KIND_POSTED, "", "platform"},
		{"sentry:issue.resolved:" + fixtureIssue + ":baa1cd1c36750612c72285f7", supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, "", "platform"},
		// After the resolve, a new occurrence is news: sent at once.
		{"sentry:event_alert.triggered:e4874d664c3540c1a32eab185f12c5ab", supportv1.MessageKind_MESSAGE_KIND_POSTED, "1", "core-analytics"},
		{"sentry:metric_alert.critical:4:492527a5d4eb8e57788e2fa8", supportv1.MessageKind_MESSAGE_KIND_POSTED, "", "core-experience"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("downstream\n got %v\nwant %v", got, want)
	}
	if d := testutil.ToFloat64(f.svc.metrics.duplicates); d != 2 {
		t.Fatalf("%v duplicate reports, want 2 (issue.created's event, the alert)", d)
	}
	upd := msgs[1]
	if upd.GetThreadKey() != "sentry:1170820242" || upd.GetAuthor().GetEmail() != "jane@customer.io" ||
		upd.GetPermalink() != "https://sentry.io/organizations/acme/issues/1170820242/" || upd.GetAttributes()["project"] != "api" ||
		upd.GetAttributes()["level"] != "error" || upd.GetAttributes()["affected_users"] != "1" || upd.GetAttributes()["culprit"] == "" {
		t.Fatalf("update %v", upd)
	}
	if n := len(stored(t, f.js, OccurrenceStream, "")); n != 0 {
		t.Fatalf("%d occurrences left in the work queue after everything was published", n)
	}
}

// storm posts n signed error.created webhooks spread over issues issues
// with conc concurrent senders and returns each response time and how many
// answers were 503. Like Sentry, a sender retries a 503 (a publish that
// did not complete inside the timeout, say on a machine busy with other
// tests); every event must be accepted in the end.
func storm(tb testing.TB, url, prefix string, n, issues, conc int) (lat []time.Duration, elapsed time.Duration, retries int) {
	tb.Helper()
	lat, elapsed, retries, failed := sendStorm(url, n, conc, sentryWebhooks(payload(tb, "error-created.json"), prefix, 900000, issues))
	if failed > 0 {
		tb.Fatalf("%d of %d webhooks were not accepted", failed, n)
	}
	return lat, elapsed, retries
}

// sentryWebhooks makes webhook i of a storm: base (error.created) as
// event i+1 of issue firstIssue + i%issues, signed, with Request-ID
// prefix-i.
func sentryWebhooks(base []byte, prefix string, firstIssue, issues int) func(i int) ([]byte, http.Header) {
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	return func(i int) ([]byte, http.Header) {
		body := errorEvent(base, strconv.Itoa(firstIssue+i%issues), i+1, at.Add(time.Duration(i)*time.Millisecond))
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("Request-ID", fmt.Sprintf("%s-%d", prefix, i))
		h.Set("Sentry-Hook-Resource", "error")
		h.Set("Sentry-Hook-Signature", sentryhook.Sign([]byte(secret), body))
		h.Set("Sentry-Hook-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
		return body, h
	}
}

// sendStorm posts the n requests that request makes to url from conc
// senders, retrying a 503 up to five times; failed counts requests not
// answered 200 in the end.
func sendStorm(url string, n, conc int, request func(i int) ([]byte, http.Header)) (lat []time.Duration, elapsed time.Duration, retries, failed int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	lat = make([]time.Duration, n)
	var next, nfailed, unavailable atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				body, hdr := request(i)
				for attempt := 0; ; attempt++ {
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
					req.Header = hdr.Clone()
					t0 := time.Now()
					resp, err := client.Do(req)
					lat[i] = time.Since(t0)
					code := 0
					if resp != nil {
						code = resp.StatusCode
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					if err == nil && code == http.StatusOK {
						break
					}
					if code != http.StatusServiceUnavailable || attempt == 5 {
						nfailed.Add(1)
						break
					}
					unavailable.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), int(unavailable.Load()), int(nfailed.Load())
}

func p99(lat []time.Duration) time.Duration {
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[len(s)*99/100]
}

// TestStormCountsAddUp sends 50,000 events over 10 issues and checks that
// every accepted event is counted exactly once downstream, in a few
// messages per issue.
func TestStormCountsAddUp(t *testing.T) {
	const n, issues = 50000, 10
	f := newFixture(t, Config{CoalesceInterval: time.Minute})
	var returned atomic.Int64
	f.svc.deps.ReturnMemory = func() { returned.Add(1) }
	stop := run(t, f.svc)
	srv := httptest.NewServer(f.mux)
	defer srv.Close()
	lat, elapsed, retries := storm(t, srv.URL+"/sentry/webhook", "storm", n, issues, 32)
	waitFor(t, "the coalescer to take every occurrence", func() bool {
		return testutil.ToFloat64(f.svc.metrics.received) == n
	})
	// The storm is over once no occurrence came for stormQuiet (or its
	// pending occurrences were sent): its memory is given back then.
	waitFor(t, "the memory to be given back after the storm", func() bool { return returned.Load() > 0 })
	if err := stop(); err != nil { // publishes what is pending
		t.Fatal(err)
	}
	msgs := downstream(t, f.js)
	perIssue := map[string]int{}
	for _, m := range msgs {
		perIssue[m.GetThreadKey()]++
	}
	if got := occurrences(msgs); got != n {
		t.Fatalf("occurrence counts add up to %d, want %d", got, n)
	}
	if len(perIssue) != issues {
		t.Fatalf("%d threads, want %d", len(perIssue), issues)
	}
	for k, c := range perIssue {
		if c > 4 {
			t.Errorf("%s: %d messages, want a few", k, c)
		}
	}
	t.Logf("%d events in %v (%.0f/s), p99 %v, %d answered 503 and retried, %d messages downstream", n, elapsed.Round(time.Millisecond),
		float64(n)/elapsed.Seconds(), p99(lat), retries, len(msgs))
}

// TestCrashLosesNothing stops a coalescer without letting it publish what
// it holds, as a crash would, and checks that the next one accounts for
// every accepted occurrence.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	const n = 2000
	srv, js := bustest.StartJetStream(t)
	cfg := Config{CoalesceInterval: time.Hour, AckWait: time.Second}

	// The first process: its own connection, which "crashes".
	nc1, js1 := srv.Connect(t)
	first := newService(t, js1, cfg)
	firstStop := run(t, first)
	mux := http.NewServeMux()
	first.Register(mux)
	h := httptest.NewServer(mux)
	defer h.Close()
	_, _, _ = storm(t, h.URL+"/sentry/webhook", "crash", n, 2, 8)
	waitFor(t, "the first coalescer to take every occurrence", func() bool {
		return testutil.ToFloat64(first.metrics.received) == n
	})
	nc1.Close() // crash: the pending counts die with the process, unacked
	_ = firstStop()
	firstMsgs := downstream(t, js)
	if len(firstMsgs) != 2 || occurrences(firstMsgs) != 2 {
		t.Fatalf("before the crash: %d messages counting %d", len(firstMsgs), occurrences(firstMsgs))
	}

	// The next process gets the unacknowledged occurrences again.
	second := newService(t, js, cfg)
	secondStop := run(t, second)
	waitFor(t, "redelivery to the second coalescer", func() bool {
		return testutil.ToFloat64(second.metrics.received) == n-2
	})
	if err := secondStop(); err != nil {
		t.Fatal(err)
	}
	if got := occurrences(downstream(t, js)); got != n {
		t.Fatalf("after the crash the counts add up to %d, want %d", got, n)
	}
}

func TestWebhookNATSDown(t *testing.T) {
	f := newFixture(t, Config{PublishTimeout: 200 * time.Millisecond})
	f.srv.Shutdown()
	if code := f.post(t, "error", "down-1", payload(t, "error-created.json"), ""); code != http.StatusServiceUnavailable {
		t.Fatalf("NATS down: %d", code)
	}
	if code := f.post(t, "error", "down-2", []byte(`{"action":"created","data":{"error":{}}}`), ""); code != http.StatusServiceUnavailable {
		t.Fatalf("dead letter with NATS down: %d", code)
	}
}

func TestNewRefusesMissingSecret(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil || !strings.Contains(err.Error(), "SIDEKICK_SENTRY_CLIENT_SECRET") {
		t.Fatalf("want an error naming the variable, got %v", err)
	}
}

func TestOwnershipFromOrgFile(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	org, err := orgfile.Parse([]byte("teams: []\nsentry:\n  ownership:\n    - {project: \"*\", team: platform}\n    - {project: frontend, team: core-experience}\n"))
	if err != nil {
		t.Fatal(err)
	}
	svc := newServiceWith(t, js, Config{Ownership: "api=core-analytics"}, org)
	if svc.owners.Load().Team("api", nil) != "core-analytics" || svc.owners.Load().Team("frontend", nil) != "core-experience" || svc.owners.Load().Team("ios", nil) != "platform" {
		t.Fatalf("rules %v", *svc.owners.Load())
	}
}

// Ownership rules applied through rotation (support.rotation.config_applied)
// are in force in the running service without a restart; a version whose
// sentry section does not read changes nothing.
func TestOwnershipFollowsTheAppliedOrgFile(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	ctx := context.Background()
	if err := bus.Provision(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	const first = "teams: []\nsentry:\n  ownership:\n    - {project: frontend, team: core-experience}\n"
	org, err := orgfile.Parse([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	svc := newServiceWith(t, js, Config{Ownership: "api=core-analytics"}, org)
	run(t, svc)
	if got := svc.owners.Load().Team("frontend", nil); got != "core-experience" {
		t.Fatalf("frontend at start: %q", got)
	}
	apply := func(id, yaml string) {
		t.Helper()
		ev := &supportv1.RotationEvent{
			Id: id, Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED, OccurredAt: timestamppb.Now(),
			ConfigVersion: orgfile.Digest([]byte(yaml)), Config: []byte(yaml),
		}
		if _, err := bus.NewPublisher(js, "test").Publish(ctx, bus.Event{Subject: orgwatch.Subject, ID: id, Message: ev}); err != nil {
			t.Fatal(err)
		}
	}
	moved := strings.Replace(first, "team: core-experience", "team: web", 1)
	apply("config_applied:2", moved)
	waitFor(t, "the applied version in force", func() bool { return svc.OrgVersion() == orgfile.Digest([]byte(moved)) })
	if got := svc.owners.Load().Team("frontend", nil); got != "web" {
		t.Fatalf("frontend after the applied version: %q, want web", got)
	}
	if got := svc.owners.Load().Team("api", nil); got != "core-analytics" {
		t.Fatalf("the environment's rule after the applied version: %q", got)
	}

	apply("config_applied:3", "teams: []\nsentry:\n  ownership: everyone\n")
	apply("config_applied:4", strings.Replace(moved, "team: web", "team: ''", 1))
	reg := svc.deps.Registry.(prometheus.Gatherer)
	// metric is the value of a gauge or of a counter's series whose
	// first label has the value label.
	metric := func(name, label string) float64 {
		mf, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range mf {
			for _, m := range f.GetMetric() {
				if f.GetName() == name && (label == "" || m.GetLabel()[0].GetValue() == label) {
					return m.GetCounter().GetValue() + m.GetGauge().GetValue()
				}
			}
		}
		return 0
	}
	waitFor(t, "both bad versions refused", func() bool { return metric("sidekick_org_config_loads_total", "refused") == 2 })
	if v := metric("sidekick_org_config_stale", ""); v != 1 {
		t.Errorf("sidekick_org_config_stale = %v after a refused version, want 1", v)
	}
	if got := svc.owners.Load().Team("frontend", nil); got != "web" || svc.OrgVersion() != orgfile.Digest([]byte(moved)) {
		t.Fatalf("after refused versions: frontend %q, version %s", got, svc.OrgVersion())
	}
}

func TestFromKit(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	kit := &app.Kit{Name: Name, JS: js, Registry: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}
	if _, err := FromKit(context.Background(), kit); err == nil || !strings.Contains(err.Error(), "SIDEKICK_SENTRY_CLIENT_SECRET") {
		t.Fatalf("without the secret: %v", err)
	}
	kit.Environ = []string{"SIDEKICK_SENTRY_CLIENT_SECRET=" + secret, "SIDEKICK_SENTRY_OWNERSHIP=api=platform"}
	svc, err := FromKit(context.Background(), kit)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), OccurrenceStream)
	if err != nil {
		t.Fatalf("FromKit did not create %s: %v", OccurrenceStream, err)
	}
	info, _ := s.Info(context.Background())
	if info.Config.Retention != jetstream.WorkQueuePolicy || info.Config.Discard != jetstream.DiscardNew || info.Config.Storage != jetstream.FileStorage {
		t.Fatalf("stream config %+v", info.Config)
	}
	if svc.(*Service).owners.Load().Team("api", nil) != "platform" {
		t.Fatal("ownership from the environment not loaded")
	}
	// Twice is fine.
	if _, err := FromKit(context.Background(), kit); err != nil {
		t.Fatal(err)
	}
}

// TestBackpressure: more occurrences than MaxPending wait in the stream
// and flow as updates free the coalescer's slots; none is lost.
func TestBackpressure(t *testing.T) {
	const n = 1000
	f := newFixture(t, Config{CoalesceInterval: 100 * time.Millisecond, MaxPending: 50})
	stop := run(t, f.svc)
	srv := httptest.NewServer(f.mux)
	defer srv.Close()
	_, _, _ = storm(t, srv.URL+"/sentry/webhook", "bp", n, 3, 8)
	waitFor(t, "every occurrence through a 50-slot coalescer", func() bool {
		return testutil.ToFloat64(f.svc.metrics.received) == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := occurrences(downstream(t, f.js)); got != n {
		t.Fatalf("counts add up to %d, want %d", got, n)
	}
}

// TestUnsignedBodyIsNotRead: Sentry signs the body, so a signed webhook is
// read (within the size limit) before its signature is checked; one
// without a well-formed signature is refused from its headers alone.
// Before, every body was read first.
func TestUnsignedBodyIsNotRead(t *testing.T) {
	f := newFixture(t, Config{})
	for name, sig := range map[string]string{"none": "", "short": "00", "not hex": strings.Repeat("zz", 32)} {
		body := httpxtest.NewBody(5 << 20)
		code := httpxtest.Post(f.mux, "/sentry/webhook", body, map[string]string{"Sentry-Hook-Resource": "error", "Request-ID": "r-1", "Sentry-Hook-Signature": sig, "Sentry-Hook-Timestamp": strconv.FormatInt(time.Now().Unix(), 10)})
		if code != http.StatusUnauthorized || body.BytesRead() != 0 {
			t.Errorf("signature %s: status %d after reading %d bytes; want 401 before reading", name, code, body.BytesRead())
		}
	}
}

// TestReplayChangesNothing: a signed webhook replayed under a fresh
// Request-ID is the same message, and one whose Sentry-Hook-Timestamp is
// over five minutes old is refused. Before, both were stored again.
func TestReplayChangesNothing(t *testing.T) {
	f := newFixture(t, Config{})
	resolved := payload(t, "issue-resolved.json")
	for _, id := range []string{"r-1", "r-2", "r-3"} {
		if code := f.post(t, "issue", id, resolved, ""); code != http.StatusOK {
			t.Fatalf("%s: %d", id, code)
		}
	}
	if n := len(stored(t, f.js, OccurrenceStream, "")); n != 1 {
		t.Fatalf("one resolve posted under three Request-IDs stored %d times", n)
	}
	for name, at := range map[string]time.Time{"stale": time.Now().Add(-6 * time.Minute), "future": time.Now().Add(6 * time.Minute)} {
		req := request("issue", "r-"+name, resolved, "")
		req.Header.Set("Sentry-Hook-Timestamp", strconv.FormatInt(at.Unix(), 10))
		rec := httptest.NewRecorder()
		f.mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("%s timestamp: %d, want 401", name, rec.Code)
		}
	}
}

// TestOverMaxPayloadIsDeadLettered: a webhook whose message is over the
// NATS server's max_payload (1 MB by default) can never be stored, so it
// is dead-lettered and acknowledged. Before, the answer was 503 and every
// retry failed the same way.
func TestOverMaxPayloadIsDeadLettered(t *testing.T) {
	f := newFixture(t, Config{})
	body := bytes.Replace(payload(t, "comment-created.json"), []byte("Looking into it"), []byte(strings.Repeat("x", 2<<20)), 1)
	if code := f.post(t, "comment", "big-1", body, ""); code != http.StatusOK {
		t.Fatalf("a 2 MB comment: %d, want 200 (dead-lettered)", code)
	}
	dl := stored(t, f.js, bus.StreamDeadLetter, bus.DeadLetterSubject(Name))
	if len(dl) != 1 || !strings.Contains(dl[0].Header.Get(bus.HeaderError), "maximum payload") {
		t.Fatalf("dead letters %v", dl)
	}
}

// An ingest-level dead letter keeps Sentry's raw webhook and is replayed
// through sentryhook.Parse by the running service; a webhook that still
// cannot be used is refused with the reason.
func TestDeadLetterReplaysThroughTheNormaliser(t *testing.T) {
	f := newFixture(t, Config{})
	// The replay handler alone: a running coalescer would consume the
	// stored occurrence before it could be counted.
	bustest.ServeReplay(t, f.js.Conn(), Name, f.svc.replay)
	hdr := nats.Header{}
	hdr.Set(bus.HeaderRawRequest, Name)
	hdr.Set("sentry-hook-resource", "issue")
	hdr.Set("request-id", "r-replayed")
	ctx := context.Background()
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, payload(t, "issue-resolved.json"), hdr); err != nil {
		t.Fatal(err)
	}
	if n := len(stored(t, f.js, OccurrenceStream, "")); n != 1 {
		t.Fatalf("the replayed webhook stored %d times, want once", n)
	}
	if err := bus.RequestReplay(ctx, f.js.Conn(), Name, []byte(`{"action":"resolved","data":{}}`), hdr); !errors.Is(err, bus.ErrReplayRefused) {
		t.Fatalf("replay of an unusable webhook: %v", err)
	}
}
