package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
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
