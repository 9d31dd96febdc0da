package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, IO{Stdout: &out, Stderr: io.Discard})
	return out.String(), err
}

func TestDLQListAndReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(t)
	ctx := context.Background()
	hdr := nats.Header{}
	hdr.Set(bus.HeaderID, "slack:Ev123")
	hdr.Set(bus.HeaderType, "sidekick.support.v1.InboundMessage")
	if err := bus.DeadLetter(ctx, js, "triage", "triage/triage-inbound", "support.inbound.slack", []byte("payload-1"), hdr, errors.New("conversation store: connection refused")); err != nil {
		t.Fatal(err)
	}
	if err := bus.DeadLetter(ctx, js, "ingest-email", "ingest-email/smtp/parse", "support.inbound.email", []byte("payload-2"), nil, errors.New("malformed message")); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "dlq", "list", "--json", "--nats", srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 dead letters, got:\n%s", out)
	}
	var first deadLetter
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Service != "triage" || first.ErrorLocation != "triage/triage-inbound" || !strings.Contains(first.Error, "connection refused") || first.OriginalSubject != "support.inbound.slack" {
		t.Fatalf("dead letter %+v", first)
	}
	out, err = runCLI(t, "dlq", "list", "--service", "ingest-email", "--nats", srv.URL())
	if err != nil || !strings.Contains(out, "malformed message") || strings.Contains(out, "triage") {
		t.Fatalf("--service filter: %v\n%s", err, out)
	}

	inbound, err := js.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := inbound.Info(ctx)
	if out, err = runCLI(t, "dlq", "replay", "--all", "--service", "triage", "--nats", srv.URL()); err != nil || !strings.Contains(out, "replayed 1 of 1") {
		t.Fatalf("replay: %v %s", err, out)
	}
	after, _ := inbound.Info(ctx)
	if after.State.Msgs != before.State.Msgs+1 {
		t.Fatalf("replay did not publish to the inbound stream: %d -> %d", before.State.Msgs, after.State.Msgs)
	}
	m, err := inbound.GetLastMsgForSubject(ctx, "support.inbound.slack")
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "payload-1" || m.Header.Get(bus.HeaderID) != "slack:Ev123" || m.Header.Get(bus.HeaderError) != "" {
		t.Fatalf("replayed message: data %q headers %v", m.Data, m.Header)
	}
	out, err = runCLI(t, "dlq", "list", "--json", "--nats", srv.URL())
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.Contains(out, "triage") {
		t.Fatalf("replayed entry still listed: %v\n%s", err, out)
	}
}

// A provider's raw request goes back through the ingest service that
// dead-lettered it; what cannot be replayed is kept and named with the
// reason, and the command exits non-zero.
func TestDLQReplayRawRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(t)
	ctx := context.Background()
	dead := func(service, location string, data string, hdr nats.Header) {
		t.Helper()
		if err := bus.DeadLetter(ctx, js, service, location, "support.inbound.slack", []byte(data), hdr, errors.New("cannot normalise")); err != nil {
			t.Fatal(err)
		}
	}
	raw := func(service, id string) nats.Header {
		h := nats.Header{}
		h.Set(bus.HeaderRawRequest, service)
		h.Set("slack-event-id", id)
		return h
	}
	dead("ingest-slack", "ingest-slack/events/message", `{"event_id":"Ev1"}`, raw("ingest-slack", "Ev1"))      // 1: replays now
	dead("ingest-slack", "ingest-slack/events/message", `{"event_id":"Ev2"}`, raw("ingest-slack", "Ev2"))      // 2: refused by the service
	dead("ingest-github", "ingest-github/webhook/issues", `{"issue":{}}`, raw("ingest-github", "d1"))          // 3: no ingest-github running
	dead("ingest-slack", "ingest-slack/events/message", `{"event_id":"Ev0"}`, nats.Header{"x": []string{"y"}}) // 4: raw, unmarked

	// A stand-in for ingest-slack's normaliser: it publishes what it
	// makes of Ev1 and refuses Ev2.
	var (
		mu  sync.Mutex
		got []string
	)
	bustest.ServeReplay(t, js.Conn(), "ingest-slack", func(ctx context.Context, data []byte, hdr nats.Header) error {
		if hdr.Get("slack-event-id") == "Ev2" {
			return errors.New("event Ev2: message without a channel")
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(data))
		return nil
	})

	out, err := runCLI(t, "dlq", "replay", "--all", "--nats", srv.URL())
	if err == nil || !strings.Contains(err.Error(), "3 dead letter(s) cannot be replayed") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	for _, want := range []string{
		"not replayed 2: ingest-slack: replay refused: event Ev2: message without a channel\n",
		"not replayed 3: ingest-github: no replica of the service is running to replay it through\n",
		"not replayed 4: it is ingest-slack's raw provider request, not a message, and carries no raw_request",
		"replayed 1 of 4 dead letter(s)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	if len(got) != 1 || got[0] != `{"event_id":"Ev1"}` {
		t.Errorf("the normaliser got %q", got)
	}
	mu.Unlock()
	inbound, err := js.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := inbound.Info(ctx); info.State.Msgs != 0 {
		t.Errorf("raw requests were republished on the inbound stream: %d messages", info.State.Msgs)
	}
	out, err = runCLI(t, "dlq", "list", "--json", "--nats", srv.URL())
	if err != nil || strings.Count(strings.TrimSpace(out), "\n") != 2 || strings.Contains(out, `"sequence":1,`) {
		t.Fatalf("want the three refused entries kept, the replayed one gone: %v\n%s", err, out)
	}
}
