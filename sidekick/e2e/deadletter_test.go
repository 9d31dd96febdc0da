package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/sidekick/cli"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// dlqEntry is a line of `sidekick dlq list --json`.
type dlqEntry struct {
	Sequence        uint64 `json:"sequence"`
	Service         string `json:"service"`
	ErrorLocation   string `json:"error_location"`
	Error           string `json:"error"`
	OriginalSubject string `json:"original_subject"`
	ID              string `json:"id"`
}

// dlqList runs `sidekick dlq list --json` against the stack.
func dlqList(t *testing.T, natsURL string) []dlqEntry {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := cli.Run(context.Background(), []string{"dlq", "list", "--json", "--nats", natsURL}, cli.IO{Stdout: &out, Stderr: &errOut}); err != nil {
		t.Fatalf("sidekick dlq list: %v\n%s", err, errOut.String())
	}
	var entries []dlqEntry
	dec := json.NewDecoder(&out)
	for {
		var e dlqEntry
		if err := dec.Decode(&e); err == io.EOF {
			return entries
		} else if err != nil {
			t.Fatalf("dlq list --json: %v\n%s", err, out.String())
		}
		entries = append(entries, e)
	}
}

// TestDeadLetters feeds every stage something well-formed it cannot use:
// bytes that are no protobuf and a message without a thread key published
// straight to support.inbound.slack (triage), a signed Sentry error
// webhook naming no issue (ingest-sentry, answered 200), and a signed
// Slack click on the Acknowledge button of a notification that does not
// exist (notifier). Each ends in SUPPORT_DEADLETTER with error_location
// and error, `sidekick dlq list --json` shows all of them, and none opened
// a conversation.
func TestDeadLetters(t *testing.T) {
	stack, _ := startStack(t)
	a := dialStack(t, stack)
	js := jetStream(t, stack)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inbound := bus.InboundSubject("slack")

	// Not protobuf, though it says so.
	garbage := &nats.Msg{Subject: inbound, Data: []byte("\xff\xff\xff\xff not a protobuf"), Header: nats.Header{}}
	garbage.Header.Set(bus.HeaderContentType, bus.ContentTypeProtobuf)
	garbage.Header.Set(bus.HeaderSpecVersion, bus.SpecVersion)
	garbage.Header.Set(bus.HeaderType, "sidekick.support.v1.InboundMessage")
	garbage.Header.Set(bus.HeaderSource, "e2e/hand-made")
	garbage.Header.Set(bus.HeaderID, "e2e-garbage-1")
	garbage.Header.Set(jetstream.MsgIDHeader, "e2e-garbage-1")
	if _, err := js.PublishMsg(ctx, garbage); err != nil {
		t.Fatalf("publish garbage: %v", err)
	}
	// A proper InboundMessage that names no thread.
	pub := bus.NewPublisher(js, "e2e/hand-made")
	threadless := &supportv1.InboundMessage{
		Id: "e2e-threadless-1", Channel: supportv1.Channel_CHANNEL_SLACK, SourceId: "1700000000.000900",
		Author: &supportv1.Author{Id: "U0CUSTOMER1", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER},
		Text:   "Where does this belong?", Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, SentAt: timestamppb.Now(),
	}
	if _, err := pub.Publish(ctx, bus.Event{Subject: inbound, ID: threadless.GetId(), Message: threadless}); err != nil {
		t.Fatalf("publish a message without a thread key: %v", err)
	}
	// Sentry: an error event without issue_id.
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}
	body := []byte(`{"action":"created","actor":{"id":"sentry","name":"Sentry","type":"application"},
		"data":{"error":{"event_id":"0123456789abcdef0123456789abcdef","title":"Orphan event","level":"error"}},
		"installation":{"uuid":"7a485448-a9e2-4c85-8a3c-4f44175783c9"}}`)
	if code, err := sentry.Send(ctx, "error", "e2e-orphan-1", body); err != nil || code != http.StatusOK {
		t.Fatalf("Sentry webhook without an issue: want 200 (kept as a dead letter), got %d (%v)", code, err)
	}
	// Slack: Acknowledge on a notification nobody sent.
	click := blockActions("T0DEMO", "U0BOB", "bob", "D0BOB", "1700000000.000100", "sidekick_ack",
		"conv:00000000-0000-4000-8000-00000000c0de|notif:00000000-0000-4000-8000-00000000dead", fmt.Sprintf("%d.000001", time.Now().Unix()))
	if code := postInteraction(t, stack.HTTPAddr, stack.Env["SIDEKICK_SLACK_SIGNING_SECRET"], click); code != http.StatusOK {
		t.Fatalf("block_actions: want 200, got %d", code)
	}

	var entries []dlqEntry
	waitFor(t, 15*time.Second, "four dead letters", func() bool {
		entries = dlqList(t, stack.NATSURL)
		return len(entries) >= 4
	})
	find := func(service, subject, errPart string) dlqEntry {
		t.Helper()
		for _, e := range entries {
			if e.Service == service && e.OriginalSubject == subject && strings.Contains(e.Error, errPart) {
				return e
			}
		}
		t.Fatalf("no dead letter of %s for %q with an error containing %q in:\n%+v", service, subject, errPart, entries)
		return dlqEntry{}
	}
	checks := []dlqEntry{
		find("triage", inbound, "decode"),
		find("triage", inbound, "thread key"),
		find("ingest-sentry", bus.InboundSubject("sentry"), "issue_id"),
		find("notifier", bus.ActionSubject("ack"), "not found"),
	}
	for _, e := range checks {
		if e.ErrorLocation == "" || !strings.HasPrefix(e.ErrorLocation, e.Service+"/") {
			t.Errorf("dead letter %d of %s: error_location %q should name the service and the place", e.Sequence, e.Service, e.ErrorLocation)
		}
	}
	if len(entries) != 4 {
		t.Errorf("want exactly 4 dead letters, got %d: %+v", len(entries), entries)
	}

	// The stream itself carries the place and the reason as headers.
	s, err := js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, checks[0].Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != bus.DeadLetterSubject("triage") || raw.Header.Get(bus.HeaderErrorLocation) != checks[0].ErrorLocation ||
		raw.Header.Get(bus.HeaderError) == "" || !bytes.Equal(raw.Data, garbage.Data) {
		t.Errorf("dead letter %d: subject %s, headers %v, data %q", raw.Sequence, raw.Subject, raw.Header, raw.Data)
	}

	for _, ch := range []supportv1.Channel{supportv1.Channel_CHANNEL_SLACK, supportv1.Channel_CHANNEL_SENTRY} {
		if cs := a.list(t, ch); len(cs) != 0 {
			t.Errorf("unusable input opened %d %s conversations", len(cs), ch)
		}
	}
}
