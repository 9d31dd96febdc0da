package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func TestEventsTail(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	srv, js := bustest.StartJetStream(t)
	ctx := context.Background()
	pub := bus.NewPublisher(js, "sidekick/test")
	publish := func(id, text string) {
		t.Helper()
		msg := &supportv1.InboundMessage{Id: id, Channel: supportv1.Channel_CHANNEL_SLACK, Text: text, SentAt: timestamppb.Now()}
		if _, err := pub.Publish(ctx, bus.Event{Subject: bus.InboundSubject("slack"), ID: id, Message: msg}); err != nil {
			t.Fatal(err)
		}
	}
	publish("slack:Ev1", "first")
	publish("slack:Ev2", "second")
	if _, err := pub.Publish(ctx, bus.Event{Subject: bus.ConversationSubject("opened"), ID: "evt-1",
		Message: &supportv1.ConversationEvent{Id: "evt-1", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED}}); err != nil {
		t.Fatal(err)
	}

	// From the first message of one subject, stopping at --count.
	out, err := runCLI(t, "events", "tail", "--json", "--subject", "support.inbound.slack", "--count", "2", "--timeout", "10s", "--nats", srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", out)
	}
	var first eventLine
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	var data struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(first.Data, &data); err != nil {
		t.Fatal(err)
	}
	if first.Stream != bus.StreamInbound || first.ID != "slack:Ev1" || first.Type != "sidekick.support.v1.InboundMessage" || data.Text != "first" {
		t.Fatalf("first line %+v data %+v", first, data)
	}

	// Following: a message published after the command started is printed.
	done := make(chan string, 1)
	go func() {
		out, _ := runCLI(t, "events", "tail", "--json", "--subject", "support.inbound.>", "--count", "3", "--timeout", "20s", "--nats", srv.URL())
		done <- out
	}()
	time.Sleep(200 * time.Millisecond)
	publish("slack:Ev3", "third")
	out = <-done
	if !strings.Contains(out, `"slack:Ev3"`) || strings.Count(out, "\n") != 3 {
		t.Fatalf("follow did not print the new message:\n%s", out)
	}

	// --timeout without reaching --count is an error naming what was seen.
	_, err = runCLI(t, "events", "tail", "--subject", "support.conversation.>", "--count", "5", "--timeout", "1s", "--nats", srv.URL())
	if err == nil || !strings.Contains(err.Error(), "1 of 5") {
		t.Fatalf("want a timeout error with 1 of 5, got %v", err)
	}
}
