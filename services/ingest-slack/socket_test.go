package ingestslack

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/services/ingest-slack/internal/slackfake"
)

// runSocketFixture starts the service in Socket Mode against the fake and
// returns the connection it opened.
func runSocketFixture(t *testing.T, cfg Config) (*fixture, *slackfake.Conn) {
	t.Helper()
	cfg.Mode, cfg.AppToken = ModeSocket, "xapp-1-A0MDYCDME-1-test"
	f := newFixture(t, cfg, Deps{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f, f.slack.Accept(t, 20*time.Second)
}

func waitAck(t *testing.T, c *slackfake.Conn) slackfake.Ack {
	t.Helper()
	a, ok := c.Ack(20 * time.Second)
	if !ok {
		t.Fatal("no ack")
	}
	return a
}

func TestSocketModeEvents(t *testing.T) {
	f, conn := runSocketFixture(t, Config{})
	if f.slack.Calls("apps.connections.open") != 1 {
		t.Fatal("apps.connections.open not called")
	}
	if err := conn.Send("env-msg-1", "events_api", payload(t, "message.json"), 0); err != nil {
		t.Fatal(err)
	}
	if a := waitAck(t, conn); a.EnvelopeID != "env-msg-1" {
		t.Fatalf("ack %+v", a)
	}
	// Acknowledged only after the PubAck: the message is there already.
	msgs := f.inbound(t)
	if len(msgs) != 1 || msgs[0].GetId() != "slack:Ev0PV52K21" || msgs[0].GetThreadKey() != "slack:T061EG9R6/C0LAN2Q65/1700000000.000100" {
		t.Fatalf("messages %v", msgs)
	}
	// Slack redelivers with retry_attempt; stored once.
	if err := conn.Send("env-msg-1b", "events_api", payload(t, "message.json"), 1); err != nil {
		t.Fatal(err)
	}
	waitAck(t, conn)
	if n := len(f.inbound(t)); n != 1 {
		t.Fatalf("redelivery stored again: %d", n)
	}
	// Ignored events are acknowledged too, or Slack would keep sending them.
	if err := conn.Send("env-join", "events_api", payload(t, "channel_join.json"), 0); err != nil {
		t.Fatal(err)
	}
	if a := waitAck(t, conn); a.EnvelopeID != "env-join" || len(f.inbound(t)) != 1 {
		t.Fatalf("join: ack %+v", a)
	}
	// A payload slack-go's own types refuse (blocks not a list) still
	// goes through ours and is acknowledged.
	odd := strings.Replace(string(payload(t, "thread_reply.json")), `"team": "T061EG9R6",`, `"team": "T061EG9R6", "blocks": "unexpected",`, 1)
	if err := conn.Send("env-odd", "events_api", json.RawMessage(odd), 0); err != nil {
		t.Fatal(err)
	}
	if a := waitAck(t, conn); a.EnvelopeID != "env-odd" || len(f.inbound(t)) != 2 {
		t.Fatalf("odd payload: ack %+v, %d messages", a, len(f.inbound(t)))
	}
}

func TestSocketModeInteractionsAndCommands(t *testing.T) {
	f, conn := runSocketFixture(t, Config{})
	form, err := url.ParseQuery(string(blockActions(ActionAck, "conv:c-42|notif:n-7", "1700000600.100000")))
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Send("env-click", "interactive", json.RawMessage(form.Get("payload")), 0); err != nil {
		t.Fatal(err)
	}
	if a := waitAck(t, conn); a.EnvelopeID != "env-click" {
		t.Fatalf("ack %+v", a)
	}
	if n := len(stored(t, f.js, bus.StreamActions, bus.ActionSubject("ack"))); n != 1 {
		t.Fatalf("%d acks stored", n)
	}

	cmd := `{"token":"gIkuvaNzQIHg97ATvDxqgjtO","team_id":"T061EG9R6","team_domain":"acme","channel_id":"C0LAN2Q65","channel_name":"support",
		"user_id":"U024BE7LH","user_name":"alice","command":"/hero","text":"","api_app_id":"A0MDYCDME","is_enterprise_install":"false",
		"response_url":"https://hooks.slack.com/commands/T061EG9R6/1/x","trigger_id":"1.2.3"}`
	if err := conn.Send("env-cmd", "slash_commands", json.RawMessage(cmd), 0); err != nil {
		t.Fatal(err)
	}
	a := waitAck(t, conn)
	var answer map[string]string
	if err := json.Unmarshal(a.Payload, &answer); err != nil || a.EnvelopeID != "env-cmd" {
		t.Fatalf("ack %+v: %v", a, err)
	}
	if answer["response_type"] != "ephemeral" || !strings.Contains(answer["text"], "rotation service is not configured") {
		t.Fatalf("command answer %v", answer)
	}
}

func TestSocketModeLeavesFailedPublishUnacknowledged(t *testing.T) {
	f, conn := runSocketFixture(t, Config{Timeout: 500 * time.Millisecond})
	f.nats.Shutdown()
	if err := conn.Send("env-down", "events_api", payload(t, "message.json"), 0); err != nil {
		t.Fatal(err)
	}
	failed := f.svc.metrics.requests.WithLabelValues(routeSocketEvents, "503")
	deadline := time.Now().Add(20 * time.Second)
	for testutil.ToFloat64(failed) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the failed publish was never reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.nats.Restart(t)
	// Slack delivers the unacknowledged envelope again; it may take a
	// moment for the client to reconnect to NATS.
	for attempt := 1; ; attempt++ {
		if err := conn.Send("env-down", "events_api", payload(t, "message.json"), attempt); err != nil {
			t.Fatal(err)
		}
		a, ok := conn.Ack(3 * time.Second)
		if ok {
			if a.EnvelopeID != "env-down" {
				t.Fatalf("ack %+v", a)
			}
			break
		}
		if attempt > 10 {
			t.Fatal("never acknowledged after NATS came back")
		}
	}
	if n := len(f.inbound(t)); n != 1 {
		t.Fatalf("want 1 message, got %d", n)
	}
	if n := testutil.ToFloat64(f.svc.metrics.requests.WithLabelValues(routeSocketEvents, "200")); n != 1 {
		t.Fatalf("acknowledged %v times, want 1", n)
	}
}
