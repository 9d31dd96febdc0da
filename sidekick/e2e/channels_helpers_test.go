package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// api holds gRPC clients of every service of a running stack.
type api struct {
	conv      triagev1.ConversationServiceClient
	customers triagev1.CustomerServiceClient
	notifier  notifyv1.NotifierServiceClient
	rotation  rotationv1.RotationServiceClient
	report    triagev1.ReportServiceClient
}

// dialStack connects to the stack's gRPC server.
func dialStack(t *testing.T, stack *devstack.Stack) api {
	t.Helper()
	cc, err := grpcx.Dial(stack.GRPCAddr, grpcx.DialOptions{Token: stack.Env["SIDEKICK_GRPC_TOKEN"]})
	if err != nil {
		t.Fatalf("dial %s: %v", stack.GRPCAddr, err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return api{
		conv:      triagev1.NewConversationServiceClient(cc),
		customers: triagev1.NewCustomerServiceClient(cc),
		notifier:  notifyv1.NewNotifierServiceClient(cc),
		rotation:  rotationv1.NewRotationServiceClient(cc),
		report:    triagev1.NewReportServiceClient(cc),
	}
}

// rpcCtx bounds one gRPC call.
func rpcCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// heroNow is the Support Hero on duty now, as rotation says.
func (a api) heroNow(t *testing.T) *rotationv1.Person {
	t.Helper()
	resp, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		t.Fatalf("WhoIsOnCall(hero): %v", err)
	}
	p := resp.GetOnCall().GetPerson()
	if p.GetId() == "" || p.GetName() == "" {
		t.Fatalf("no hero on duty: %v", resp)
	}
	return p
}

// addCustomer imports one customer into the directory behind tiers.
func (a api) addCustomer(t *testing.T, c *triagev1.Customer) {
	t.Helper()
	resp, err := a.customers.UpsertCustomers(rpcCtx(t), &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{c}})
	if err != nil || !resp.GetApplied() {
		t.Fatalf("UpsertCustomers(%s): applied=%v err=%v", c.GetId(), resp.GetApplied(), err)
	}
}

// list returns the conversations of a channel.
func (a api) list(t *testing.T, ch supportv1.Channel) []*supportv1.Conversation {
	t.Helper()
	resp, err := a.conv.ListConversations(rpcCtx(t), &triagev1.ListConversationsRequest{Channel: ch, PageSize: 100})
	if err != nil {
		t.Fatalf("ListConversations(%s): %v", ch, err)
	}
	return resp.GetConversations()
}

// byThread returns the conversation of a thread, or nil.
func (a api) byThread(t *testing.T, ch supportv1.Channel, threadKey string) *supportv1.Conversation {
	t.Helper()
	for _, c := range a.list(t, ch) {
		if c.GetThreadKey() == threadKey {
			return c
		}
	}
	return nil
}

// get returns a conversation with its messages.
func (a api) get(t *testing.T, id string) *triagev1.GetConversationResponse {
	t.Helper()
	resp, err := a.conv.GetConversation(rpcCtx(t), &triagev1.GetConversationRequest{Id: id})
	if err != nil {
		t.Fatalf("GetConversation(%s): %v", id, err)
	}
	return resp
}

// awaitSlackPage waits for the Slack message notifier sent about a
// conversation: the one whose Acknowledge button names it.
func awaitSlackPage(t *testing.T, slack *fakes.Slack, conversationID string) fakes.SlackMessage {
	t.Helper()
	var page fakes.SlackMessage
	waitFor(t, time.Minute, "the page in Slack", func() bool {
		for _, m := range slack.Posted() {
			if b, ok := m.Button("sidekick_ack"); ok && strings.Contains(b.Value, "conv:"+conversationID+"|") {
				page = m
				return true
			}
		}
		return false
	})
	return page
}

// consolePing is one notification block the console channel wrote:
//
//	[notify] ping Alice Anders (Support Hero): new … — https://…
//	    …
//	    conversation <id> · notification <id>
type consolePing struct {
	// Line is the block's first line.
	Line string
	// Urgency is "ping" or "page".
	Urgency        string
	ConversationID string
	NotificationID string
}

// awaitHeroPing waits for the console's ping of hero, with the ids a
// Slack button's value is made of.
func awaitHeroPing(t *testing.T, console *syncBuffer, hero string) consolePing {
	t.Helper()
	var ping consolePing
	waitFor(t, 15*time.Second, "the console ping of the hero", func() bool {
		for _, p := range consolePings(console.String()) {
			if strings.HasPrefix(p.Line, "[notify] ping "+hero+" (Support Hero)") && p.NotificationID != "" {
				ping = p
				return true
			}
		}
		return false
	})
	return ping
}

// consolePings parses the pings and pages of the console output, in order.
// Status lines ("[notify] acknowledged for …") are not pings.
func consolePings(out string) []consolePing {
	var pings []consolePing
	inPing := false // the lines since the last unindented one belong to a ping
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "    ") {
			inPing = strings.HasPrefix(line, "[notify] ping ") || strings.HasPrefix(line, "[notify] page ")
			if inPing {
				urgency, _, _ := strings.Cut(strings.TrimPrefix(line, "[notify] "), " ")
				pings = append(pings, consolePing{Line: line, Urgency: urgency})
			}
			continue
		}
		rest, ok := strings.CutPrefix(line, "    conversation ")
		if !inPing || !ok {
			continue
		}
		if conv, notif, ok := strings.Cut(rest, " · notification "); ok {
			p := &pings[len(pings)-1]
			p.ConversationID, p.NotificationID = strings.TrimSpace(conv), strings.TrimSpace(notif)
		}
	}
	return pings
}

// pingsAbout returns the console pings and pages about one conversation.
func pingsAbout(out, conversationID string) []consolePing {
	var got []consolePing
	for _, p := range consolePings(out) {
		if p.ConversationID == conversationID {
			got = append(got, p)
		}
	}
	return got
}

// conversationPings returns the console pings and pages about any
// conversation, leaving out those about none (a coverage gap ahead, a
// handoff), which rotation may announce at any time.
func conversationPings(out string) []consolePing {
	var got []consolePing
	for _, p := range consolePings(out) {
		if p.ConversationID != "" {
			got = append(got, p)
		}
	}
	return got
}

// orgFile writes the demo organisation plus extra YAML (an escalation
// section, say) to a file for SIDEKICK_ORG_CONFIG.
func orgFile(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sidekick.yaml")
	data := append(append([]byte(nil), devstack.DemoOrg...), "\n"+extra...)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// jetStream connects to the stack's NATS server.
func jetStream(t *testing.T, stack *devstack.Stack) jetstream.JetStream {
	t.Helper()
	nc, js, err := bus.Connect(context.Background(), stack.NATSURL, "e2e-test", nil)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	return js
}

// subjectCount is how many messages a stream holds on subject.
func subjectCount(t *testing.T, js jetstream.JetStream, stream, subject string) uint64 {
	t.Helper()
	s, err := js.Stream(rpcCtx(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(rpcCtx(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Subjects[subject]
}

// lastOn decodes the newest message on subject into m; false when there
// is none.
func lastOn(t *testing.T, js jetstream.JetStream, stream, subject string, m proto.Message) bool {
	t.Helper()
	s, err := js.Stream(rpcCtx(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	raw, err := s.GetLastMsgForSubject(rpcCtx(t), subject)
	if err != nil {
		return false
	}
	if ct := raw.Header.Get(bus.HeaderContentType); ct != bus.ContentTypeProtobuf {
		t.Fatalf("%s: content-type %q, want %s", subject, ct, bus.ContentTypeProtobuf)
	}
	if err := proto.Unmarshal(raw.Data, m); err != nil {
		t.Fatalf("%s: decode %s: %v", subject, proto.MessageName(m), err)
	}
	return true
}

// counter sums a counter's series whose labels include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// blockActions is a Slack interaction payload for a click on one button,
// shaped as Slack documents block_actions.
func blockActions(teamID, userID, userName, channelID, messageTS, actionID, value, actionTS string) []byte {
	return []byte(fmt.Sprintf(`{
  "type": "block_actions",
  "user": {"id": %q, "username": %q, "name": %q, "team_id": %q},
  "api_app_id": "A0SIDEKICK",
  "token": "XXYYZZ",
  "container": {"type": "message", "message_ts": %q, "channel_id": %q, "is_ephemeral": false},
  "trigger_id": "1700000000.1234.abcdef",
  "team": {"id": %q, "domain": "sidekick-demo"},
  "enterprise": null,
  "is_enterprise_install": false,
  "channel": {"id": %q, "name": "directmessage"},
  "message": {"type": "message", "bot_id": "B0SIDEKICK", "text": "ping", "ts": %q},
  "state": {"values": {}},
  "response_url": "https://hooks.slack.com/actions/T0DEMO/1/abc",
  "actions": [{
    "action_id": %q,
    "block_id": "sidekick_actions",
    "text": {"type": "plain_text", "text": "Acknowledge", "emoji": true},
    "value": %q,
    "style": "primary",
    "type": "button",
    "action_ts": %q
  }]
}`, userID, userName, userName, teamID, messageTS, channelID, teamID, channelID, messageTS, actionID, value, actionTS))
}

// postInteraction sends an interaction payload to /slack/interactions the
// way Slack does: a form with one field, payload, signed like every Slack
// request.
func postInteraction(t *testing.T, addr, secret string, payload []byte) int {
	t.Helper()
	return postInteractionAt(t, addr, secret, time.Now(), payload)
}

// postInteractionAt is postInteraction signed at the given time: the time
// of a stack on a fake clock.
func postInteractionAt(t *testing.T, addr, secret string, at time.Time, payload []byte) int {
	t.Helper()
	body := []byte(url.Values{"payload": {string(payload)}}.Encode())
	ts := at.Unix()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/slack/interactions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", fakes.SignSlack(secret, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
