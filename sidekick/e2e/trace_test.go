package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidekickhq/sidekick/platform/telemetry"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestOneTraceAcrossServices: one Slack message is one trace, from
// ingest-slack's webhook through NATS (traceparent in the headers), triage,
// its outbox, the notifier, its gRPC call to rotation, to the Slack post,
// recorded by an in-test collector. With SIDEKICK_TRACE_OUT set, the trace
// is written there as a tree (docs/tracing.md shows one).
func TestOneTraceAcrossServices(t *testing.T) {
	slack := slackWithCustomer(t)
	rec := tracetest.NewSpanRecorder()
	tracing, err := telemetry.New(context.Background(), "sidekick-dev", sdktrace.WithSpanProcessor(rec))
	if err != nil {
		t.Fatal(err)
	}
	stack, _ := startStackWith(t, devstack.Options{Tracing: tracing, Environ: []string{
		"SIDEKICK_SLACK_BOT_TOKEN=xoxb-e2e-0000-token",
		"SIDEKICK_SLACK_API_URL=" + slack.APIURL(),
	}})
	a := dialStack(t, stack)
	a.addCustomer(t, acmeSubscriber)
	hero := a.heroNow(t)
	now := time.Now()
	ts := fmt.Sprintf("%d.000400", now.Unix())
	if code := postSlack(t, stack.HTTPAddr, stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"], now.Unix(), messageEvent("Ev0TRACE01", "U0CUSTOMER1", "Funnels are empty since this morning", ts)); code != http.StatusOK {
		t.Fatalf("Slack message event: want 200, got %d", code)
	}
	waitFor(t, 15*time.Second, "the DM to the hero", func() bool {
		return slices.ContainsFunc(slack.Posted(), func(m fakes.SlackMessage) bool { return m.Target == hero.GetSlackId() })
	})

	// The trace is the webhook request's; wait until its Slack post span
	// has ended (the DM's HTTP call returns after the fake recorded it).
	var spans []sdktrace.ReadOnlySpan
	waitFor(t, 15*time.Second, "the trace to reach the Slack post, every span ended", func() bool {
		spans = traceOf(rec.Ended(), "POST /slack/events")
		return connected(spans) && slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
			return s.SpanKind() == trace.SpanKindClient && strings.Contains(attr(s, "url.full"), "chat.postMessage")
		})
	})
	for _, want := range []struct {
		kind trace.SpanKind
		name string
	}{
		{trace.SpanKindServer, "POST /slack/events"},
		{trace.SpanKindProducer, "publish support.inbound.slack"},
		{trace.SpanKindConsumer, "process support.inbound.slack"},
		{trace.SpanKindProducer, "publish support.conversation.opened"},
		{trace.SpanKindConsumer, "process support.conversation.opened"},
		{trace.SpanKindClient, "sidekick.rotation.v1.RotationService/WhoIsOnCall"},
		{trace.SpanKindServer, "sidekick.rotation.v1.RotationService/WhoIsOnCall"},
	} {
		if !slices.ContainsFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == want.kind && s.Name() == want.name }) {
			t.Errorf("the trace has no %s span %q", want.kind, want.name)
		}
	}
	// gRPC calls are counted on both sides (go-grpc-middleware's
	// Prometheus provider).
	families, err := stack.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"grpc_server_handled_total", "grpc_client_handled_total"} {
		var calls float64
		for _, f := range families {
			for _, m := range f.GetMetric() {
				if f.GetName() != name {
					continue
				}
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["grpc_method"] == "WhoIsOnCall" && labels["grpc_code"] == "OK" {
					calls += m.GetCounter().GetValue()
				}
			}
		}
		if calls == 0 {
			t.Errorf("%s{grpc_method=\"WhoIsOnCall\",grpc_code=\"OK\"} is 0, want the calls made", name)
		}
	}
	tree := spanTree(spans)
	t.Logf("one Slack message, %d spans:\n%s", len(spans), tree)
	if out := os.Getenv("SIDEKICK_TRACE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(tree), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// traceOf returns the spans of the trace whose root span is named root.
func traceOf(spans []sdktrace.ReadOnlySpan, root string) []sdktrace.ReadOnlySpan {
	var id trace.TraceID
	for _, s := range spans {
		if s.Name() == root && !s.Parent().IsValid() {
			id = s.SpanContext().TraceID()
			break
		}
	}
	if !id.IsValid() {
		return nil
	}
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// connected reports whether every span's parent is among spans: none is
// still running.
func connected(spans []sdktrace.ReadOnlySpan) bool {
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && !ids[p.SpanID()] {
			return false
		}
	}
	return len(spans) > 0
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// spanTree prints spans as an indented tree in start order, with each
// span's kind and its start offset from the root.
func spanTree(spans []sdktrace.ReadOnlySpan) string {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	var roots []sdktrace.ReadOnlySpan
	ids := map[trace.SpanID]bool{}
	for _, s := range spans {
		ids[s.SpanContext().SpanID()] = true
	}
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && ids[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) }
	var b strings.Builder
	var walk func(s sdktrace.ReadOnlySpan, depth int, t0 time.Time)
	walk = func(s sdktrace.ReadOnlySpan, depth int, t0 time.Time) {
		fmt.Fprintf(&b, "%s%s [%s] +%s\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind(), s.StartTime().Sub(t0).Round(time.Millisecond))
		kids := children[s.SpanContext().SpanID()]
		slices.SortFunc(kids, byStart)
		for _, k := range kids {
			walk(k, depth+1, t0)
		}
	}
	slices.SortFunc(roots, byStart)
	for _, r := range roots {
		fmt.Fprintf(&b, "trace %s\n", r.SpanContext().TraceID())
		walk(r, 0, r.StartTime())
	}
	return b.String()
}
