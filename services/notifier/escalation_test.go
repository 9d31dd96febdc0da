package notifier

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/webhook"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// stack is the notifier wired to every channel, each a fake at the wire
// that records what it got: Slack's Web API, an SMTP server, PagerDuty's
// Events API and a webhook receiver. Rotation is a fake gRPC server; NATS
// and Postgres are real; the clock is fake and only moves when told.
type stack struct {
	*harness
	cfg   Config
	deps  Deps
	reg   *prometheus.Registry
	slack *notifiertest.Slack
	smtp  *notifiertest.SMTP
	pd    *notifiertest.PagerDuty
	hook  *notifiertest.Webhook
}

// threeSteps pings the hero at once, pages the team's secondary 10
// minutes later and mails Carol 5 minutes after that.
const threeSteps = `
escalation:
  policies:
    - id: priority-new
      match: {kind: new_conversation, tier: priority}
      steps:
        - {notify: hero, via: ping}
        - {notify: team_secondary, via: page, after: 10m}
        - {notify: "person:carol", via: ping, after: 5m}
`

func newStack(t *testing.T, orgYAML string) *stack {
	t.Helper()
	h := newHarness(t)
	h.rot.AddPerson(notifiertest.Carol)
	st := &stack{
		harness: h, reg: prometheus.NewRegistry(),
		slack: notifiertest.StartSlack(t), smtp: notifiertest.StartSMTP(t), pd: notifiertest.StartPagerDuty(t),
		hook: notifiertest.StartWebhook(t, h.clock.Now),
	}
	st.cfg = testConfig()
	st.cfg.SlackBotToken, st.cfg.SlackAPIURL = "xoxb-test", st.slack.URL()
	st.cfg.SMTPURL = st.smtp.URL()
	st.cfg.PagerDutyRoutingKey, st.cfg.PagerDutyURL = st.pd.RoutingKey, st.pd.URL()
	st.cfg.WebhookURL, st.cfg.WebhookSecret = st.hook.URL(), st.hook.Secret
	// Only the test moves escalations along (Tick), besides the start-up
	// tick and hurried steps.
	st.cfg.TickInterval = time.Hour
	st.cfg.RefreshInterval = time.Minute
	st.deps = h.deps
	if orgYAML != "" {
		org, err := orgfile.Parse([]byte(orgYAML))
		if err != nil {
			t.Fatal(err)
		}
		st.deps.Org = org
	}
	st.deps.Console = nil
	st.deps.Registry = st.reg
	st.deps.Rand = func() float64 { return 0 }
	return st
}

// run starts a notifier process; stop ends it as a kill would (in-flight
// sends are abandoned, the leases left to expire).
func (st *stack) run(t *testing.T) (*Service, func()) {
	t.Helper()
	s, err := New(st.cfg, st.deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return s, stop
}

func (st *stack) tick(t *testing.T, s *Service) {
	t.Helper()
	if _, err := s.Tick(context.Background()); err != nil {
		t.Fatalf("Tick: %v", err)
	}
}

// posts returns the chat.postMessage calls, optionally to one channel.
func (st *stack) posts(channel string) []notifiertest.SlackCall {
	var out []notifiertest.SlackCall
	for _, c := range st.slack.Calls("chat.postMessage") {
		if channel == "" || c.Form.Get("channel") == channel {
			out = append(out, c)
		}
	}
	return out
}

func (st *stack) escalation(t *testing.T, key string) store.Escalation {
	t.Helper()
	esc, err := store.New(st.pool).EscalationByKey(context.Background(), key)
	if err != nil {
		t.Fatalf("escalation %s: %v", key, err)
	}
	return esc
}

func openedFor(eventID, conversationID, team string, at time.Time) *supportv1.ConversationEvent {
	ev := notifiertest.Opened(eventID, conversationID, at)
	ev.Conversation.Team = team
	return ev
}

var notifValue = regexp.MustCompile(`notif:([0-9a-f-]{36})`)

// notificationOf returns the notification id carried by a Slack post's
// buttons.
func notificationOf(t *testing.T, c notifiertest.SlackCall) string {
	t.Helper()
	m := notifValue.FindStringSubmatch(c.Form.Get("blocks"))
	if m == nil {
		t.Fatalf("no notification id in the buttons of %s", c.Form.Get("blocks"))
	}
	return m[1]
}

func TestEscalationFiresTheNextStepAfterExactlyItsDelay(t *testing.T) {
	st := newStack(t, threeSteps)
	s, _ := st.run(t)

	st.publish(t, bus.ConversationSubject("opened"), "ev-e1", openedFor("ev-e1", "conv-e1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping and its webhook", func() bool {
		return len(st.posts("U0ALICE")) == 1 && len(st.hook.Payloads(webhook.EventNotification)) == 1
	})
	if p := st.posts("")[0]; !strings.Contains(p.Form.Get("text"), "ping: new Priority conversation") {
		t.Errorf("ping text = %q", p.Form.Get("text"))
	}
	if n := len(st.pd.Events("")); n != 0 {
		t.Errorf("a ping reached PagerDuty (%d events)", n)
	}

	st.advance(t, 10*time.Minute-time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 1 {
		t.Fatalf("%d Slack posts a second before the page is due, want 1", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "the secondary's page on Slack and PagerDuty", func() bool {
		return len(st.posts("U0BOB")) == 1 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1 &&
			len(st.hook.Payloads(webhook.EventNotification)) == 2
	})
	pd := st.pd.Events("")[0]
	if pd.DedupKey != "sidekick-conv-conv-e1-bob" || pd.Payload.Severity != "critical" {
		t.Errorf("PagerDuty event = %+v", pd)
	}
	if !strings.Contains(st.posts("U0BOB")[0].Form.Get("text"), "page: still unacknowledged: new Priority conversation") {
		t.Errorf("page text = %q", st.posts("U0BOB")[0].Form.Get("text"))
	}

	st.advance(t, 5*time.Minute-time.Second)
	st.tick(t, s)
	if n := len(st.smtp.Mail("")); n != 0 {
		t.Fatalf("%d mails a second before the third step is due", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "Carol's email", func() bool { return len(st.smtp.Mail("carol@example.com")) == 1 })
	if m := st.smtp.Mail("")[0]; !strings.Contains(m.Subject, "still unacknowledged") {
		t.Errorf("subject = %q", m.Subject)
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-e1")); esc.Status != store.EscalationDone || esc.NextStep != 3 {
		t.Errorf("escalation %s at step %d, want done after 3", esc.Status, esc.NextStep)
	}
	notifiertest.Eventually(t, "three webhooks", func() bool { return len(st.hook.Payloads(webhook.EventNotification)) == 3 })
	if st.hook.Rejected() != 0 {
		t.Errorf("%d webhooks failed verification", st.hook.Rejected())
	}
	// Nothing more, ever.
	st.advance(t, 24*time.Hour)
	st.tick(t, s)
	if len(st.posts("")) != 2 || len(st.pd.Events("")) != 1 || len(st.smtp.Mail("")) != 1 {
		t.Errorf("after the plan: %d posts, %d PagerDuty events, %d mails", len(st.posts("")), len(st.pd.Events("")), len(st.smtp.Mail("")))
	}
}

func TestAcknowledgementStopsTheEscalation(t *testing.T) {
	st := newStack(t, threeSteps)
	s, _ := st.run(t)
	client := st.grpcClient(t, s)
	ctx := context.Background()

	// Acknowledged from the Slack button (ingest-slack publishes the
	// click as support.action.ack).
	st.publish(t, bus.ConversationSubject("opened"), "ev-a1", openedFor("ev-a1", "conv-a1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
	id := notificationOf(t, st.posts("U0ALICE")[0])
	st.advance(t, 3*time.Minute)
	act := &supportv1.Action{Id: "act-a1", Type: supportv1.ActionType_ACTION_TYPE_ACK, ConversationId: "conv-a1", NotificationId: id,
		Actor: "alice", Source: "slack", OccurredAt: timestamppb.New(st.clock.Now())}
	if _, err := st.pub.Publish(ctx, bus.Event{Subject: bus.ActionSubject("ack"), ID: act.GetId(), Message: act}); err != nil {
		t.Fatal(err)
	}
	notifiertest.Eventually(t, "the message showing the acknowledgement", func() bool {
		u := st.slack.Calls("chat.update")
		return len(u) == 1 && strings.Contains(u[0].Form.Get("text"), "acknowledged by alice")
	})

	// Acknowledged over gRPC (`sidekick ack`).
	st.publish(t, bus.ConversationSubject("opened"), "ev-a2", openedFor("ev-a2", "conv-a2", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the second ping", func() bool { return len(st.posts("U0ALICE")) == 2 })
	resp, err := client.Acknowledge(ctx, &notifyv1.AcknowledgeRequest{ConversationId: "conv-a2", Actor: "alice"})
	if err != nil || resp.GetAcknowledged() != 1 {
		t.Fatalf("Acknowledge = %v, %v", resp, err)
	}

	st.advance(t, time.Hour)
	st.tick(t, s)
	if len(st.posts("")) != 2 || len(st.pd.Events(pagerduty.ActionTrigger)) != 0 || len(st.smtp.Mail("")) != 0 {
		t.Fatalf("after acknowledgements: %d posts, %d pages, %d mails; want the two pings only",
			len(st.posts("")), len(st.pd.Events(pagerduty.ActionTrigger)), len(st.smtp.Mail("")))
	}
	for _, key := range []string{consume.OpenedKey("ev-a1"), consume.OpenedKey("ev-a2")} {
		if esc := st.escalation(t, key); esc.Status != store.EscalationAcked || esc.NextStep != 1 {
			t.Errorf("%s: %s at step %d, want acked at 1", key, esc.Status, esc.NextStep)
		}
	}
	got, err := client.GetNotification(ctx, &notifyv1.GetNotificationRequest{Id: id})
	if err != nil || got.GetNotification().GetAcknowledgedBy() != "alice" {
		t.Errorf("GetNotification = %v, %v", got, err)
	}
}

func TestAnsweredConversationStopsTheEscalation(t *testing.T) {
	st := newStack(t, threeSteps)
	s, _ := st.run(t)
	st.publish(t, bus.ConversationSubject("opened"), "ev-r1", openedFor("ev-r1", "conv-r1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })
	st.advance(t, 4*time.Minute)
	st.handled(t, bus.ConversationSubject("responded"), "ev-r2", &supportv1.ConversationEvent{
		Id: "ev-r2", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, Actor: "bob",
		OccurredAt: timestamppb.New(st.clock.Now()), Conversation: &supportv1.Conversation{Id: "conv-r1"},
	})
	st.advance(t, time.Hour)
	st.tick(t, s)
	if len(st.posts("")) != 1 || len(st.pd.Events("")) != 0 {
		t.Fatalf("%d posts and %d pages after the answer, want the first ping only", len(st.posts("")), len(st.pd.Events("")))
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-r1")); esc.Status != store.EscalationStopped || esc.StopReason != "answered by bob" {
		t.Errorf("escalation %s (%s)", esc.Status, esc.StopReason)
	}
}

// A Sentry issue storms: 1,000 events about one issue make one Slack
// message (and one PagerDuty alert), updated in place.
func TestStormOfOneSentryIssueMakesOneMessagePlusUpdates(t *testing.T) {
	st := newStack(t, "")
	s, _ := st.run(t)
	base := st.clock.Now()
	sentry := func(id string, typ supportv1.ConversationEventType, i int) *supportv1.ConversationEvent {
		return &supportv1.ConversationEvent{
			Id: id, Type: typ, OccurredAt: timestamppb.New(base.Add(time.Duration(i) * time.Millisecond)),
			Conversation: &supportv1.Conversation{
				Id: "conv-sentry", Channel: supportv1.Channel_CHANNEL_SENTRY, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
				Tier: supportv1.Tier_TIER_COMMUNITY, Subject: "TypeError: cannot read properties of undefined", Team: "platform",
				ThreadKey: "sentry:4711", MessageCount: int32(i + 1), Permalink: "https://sentry.io/organizations/acme/issues/4711/",
			},
			Message: &supportv1.InboundMessage{Id: "in-" + id, Text: fmt.Sprintf("occurrence %d", i),
				Attributes: map[string]string{"occurrences": "1"}},
		}
	}
	st.publish(t, bus.ConversationSubject("opened"), "sentry-0", sentry("sentry-0", supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED, 0))
	notifiertest.Eventually(t, "the alert to the secondary", func() bool { return len(st.posts("U0BOB")) == 1 })
	// Recorded as sent, not just received by Slack: an update finds the
	// messages to rewrite in the delivery log.
	st.settled(t)

	const storm = 1000
	var last uint64
	for i := 1; i < storm; i++ {
		typ := supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE
		if i%100 == 0 {
			// Now and then the issue is reported as new again (a replayed
			// opening, an alert rule firing): still the same group.
			typ = supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED
		}
		id := fmt.Sprintf("sentry-%d", i)
		last = st.publish(t, bus.ConversationSubject(strings.ToLower(strings.TrimPrefix(typ.String(), "CONVERSATION_EVENT_TYPE_"))), id, sentry(id, typ, i))
	}
	notifiertest.AckedThrough(t, st.js, bus.StreamConversations, DurableConversations, last)
	if n := len(st.posts("")); n != 1 {
		t.Fatalf("%d Slack messages for one issue, want 1", n)
	}
	if n := len(st.pd.Events(pagerduty.ActionTrigger)); n != 1 {
		t.Fatalf("%d PagerDuty triggers for one issue, want 1", n)
	}
	// The first update went out at once, the rest wait for the interval.
	if n := len(st.slack.Calls("chat.update")); n != 1 {
		t.Fatalf("%d updates before the interval passed, want 1", n)
	}
	st.advance(t, time.Minute)
	st.tick(t, s)
	updates := st.slack.Calls("chat.update")
	if len(updates) != 2 {
		t.Fatalf("%d updates after the interval, want 2", len(updates))
	}
	final := updates[1]
	if final.Form.Get("ts") != "1700000000.000001" || !strings.Contains(final.Form.Get("blocks"), fmt.Sprintf("occurrence %d", storm-1)) ||
		!strings.Contains(final.Form.Get("blocks"), "sidekick_ack") {
		t.Errorf("last update = ts %s, blocks %s", final.Form.Get("ts"), final.Form.Get("blocks"))
	}
	var escalations int
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*) FROM escalations`).Scan(&escalations); err != nil {
		t.Fatal(err)
	}
	if escalations != 1 {
		t.Errorf("%d escalations, want 1", escalations)
	}
	if v := testutil.ToFloat64(counterVec(t, st.reg, "sidekick_notifier_refreshes_total")); v != 2 {
		t.Errorf("refreshes metric = %v, want 2", v)
	}
}

func counterVec(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var sum float64
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(sum)
			return c
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}

// deliveryCount reads sidekick_notifier_deliveries_total{channel,result}.
func deliveryCount(t *testing.T, g prometheus.Gatherer, channel, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sidekick_notifier_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["channel"] == channel && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// The notifier dies mid-escalation, with a step recorded but its messages
// not yet out, and the next step coming due while it is down. The next
// process sends the interrupted messages once and fires the next step
// once: nothing twice, nothing skipped.
func TestKilledMidEscalationSendsNothingTwiceAndSkipsNothing(t *testing.T) {
	st := newStack(t, threeSteps)
	s1, kill := st.run(t)
	st.publish(t, bus.ConversationSubject("opened"), "ev-k1", openedFor("ev-k1", "conv-k1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's ping", func() bool { return len(st.posts("U0ALICE")) == 1 })

	// Bob's page never reaches Slack: the process dies while sending it.
	st.slack.SetStall(func(method string, form url.Values) bool {
		return method == "chat.postMessage" && form.Get("channel") == "U0BOB"
	})
	st.advance(t, 10*time.Minute)
	tickCtx, cancelTick := context.WithCancel(context.Background())
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		_, _ = s1.Tick(tickCtx)
	}()
	notifiertest.Eventually(t, "the page in flight", func() bool { return st.slack.Stalled() == 1 })
	kill()
	cancelTick()
	<-ticked
	st.slack.SetStall(nil)

	var recorded int
	if err := st.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE n.step = 1 AND d.status <> 'delivered'`).Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded == 0 {
		t.Fatal("the page's deliveries were not recorded before the kill")
	}

	// Down past the lease and past the third step's due time. (The clock
	// moves with the page's Slack delivery still claimed: that is the
	// point.)
	st.clock.Advance(15 * time.Minute)
	st.run(t)
	notifiertest.Eventually(t, "the page and the third step", func() bool {
		return len(st.posts("U0BOB")) == 1 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1 &&
			len(st.smtp.Mail("carol@example.com")) == 1 && len(st.hook.Payloads(webhook.EventNotification)) == 3
	})
	// Give a duplicate every chance to show up, then count (once the
	// last sends are recorded: the fakes see a message before its
	// delivery is marked delivered).
	s3, _ := st.run(t)
	st.tick(t, s3)
	st.settled(t)
	if len(st.posts("U0ALICE")) != 1 || len(st.posts("U0BOB")) != 1 || len(st.pd.Events("")) != 1 ||
		len(st.smtp.Mail("")) != 1 || len(st.hook.Payloads("")) != 3 {
		t.Fatalf("sent: Alice %d, Bob %d, PagerDuty %d, mail %d, webhook %d; want one each (webhook 3)",
			len(st.posts("U0ALICE")), len(st.posts("U0BOB")), len(st.pd.Events("")), len(st.smtp.Mail("")), len(st.hook.Payloads("")))
	}
	rows, err := st.pool.Query(context.Background(), `SELECT dedup_key, status, attempts FROM deliveries ORDER BY created_at, dedup_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	interrupted := 0
	for rows.Next() {
		var key, status string
		var attempts int
		if err := rows.Scan(&key, &status, &attempts); err != nil {
			t.Fatal(err)
		}
		if status != "delivered" {
			t.Errorf("delivery %s is %s", key, status)
		}
		if strings.HasSuffix(key, "|person:bob|1") {
			interrupted++
			if attempts != 2 {
				t.Errorf("delivery %s took %d attempts, want 2 (one cut short by the kill)", key, attempts)
			}
		}
	}
	if interrupted != 1 {
		t.Errorf("found %d Slack deliveries of the page, want 1", interrupted)
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-k1")); esc.Status != store.EscalationDone {
		t.Errorf("escalation %s, want done", esc.Status)
	}
}

func TestSlack429IsRetriedAfterRetryAfter(t *testing.T) {
	st := newStack(t, threeSteps)
	s, _ := st.run(t)
	var limited atomic.Bool
	st.slack.SetReply(func(c notifiertest.SlackCall, w http.ResponseWriter) bool {
		if c.Method != "chat.postMessage" || !limited.CompareAndSwap(false, true) {
			return false
		}
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	})
	st.publish(t, bus.ConversationSubject("opened"), "ev-l1", openedFor("ev-l1", "conv-l1", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the rate-limited attempt recorded", func() bool {
		return len(notifiertest.NotifyEvents(t, st.js, bus.NotifySubject("failed"))) == 1
	})
	// The exponential backoff alone would retry after 10s; Slack said 30.
	st.advance(t, 29*time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 1 {
		t.Fatalf("%d attempts before Retry-After passed, want 1", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "the retry delivered", func() bool {
		return len(notifiertest.NotifyEvents(t, st.js, bus.NotifySubject("delivered"))) >= 1 && len(st.posts("")) == 2
	})
	failed := notifiertest.NotifyEvents(t, st.js, bus.NotifySubject("failed"))[0]
	if failed.GetChannel() != "slack" || failed.GetAttempt() != 1 || !strings.Contains(failed.GetError(), "retry after 30s") {
		t.Errorf("failed event = %v", failed)
	}
	if got := deliveryCount(t, st.reg, "slack", "retry"); got != 1 {
		t.Errorf("deliveries_total{slack,retry} = %v", got)
	}
	// The fake records the post before the sender marks it delivered: wait
	// for the mark, not just the post.
	notifiertest.Eventually(t, "the Slack delivery counted", func() bool {
		return deliveryCount(t, st.reg, "slack", "delivered") == 1
	})
}

// Slack says the hero does not exist: the ping fails for good, is dead-
// lettered and counted, and the next step runs at once instead of ten
// minutes later.
func TestPermanentFailureMovesOnToTheNextStep(t *testing.T) {
	st := newStack(t, threeSteps)
	st.run(t)
	st.slack.SetReply(func(c notifiertest.SlackCall, w http.ResponseWriter) bool {
		if c.Method != "chat.postMessage" || c.Form.Get("channel") != "U0ALICE" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":false,"error":"user_not_found"}`))
		return true
	})
	st.publish(t, bus.ConversationSubject("opened"), "ev-p1", openedFor("ev-p1", "conv-p1", "platform", st.clock.Now()))
	// The clock does not move: the page to Bob is hurried.
	notifiertest.Eventually(t, "the next step's page", func() bool {
		return len(st.posts("U0BOB")) == 1 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1
	})
	if n := len(st.posts("U0ALICE")); n != 1 {
		t.Errorf("%d attempts at the unknown user, want 1 (permanent)", n)
	}
	if got := deliveryCount(t, st.reg, "slack", "failed"); got != 1 {
		t.Errorf("deliveries_total{slack,failed} = %v, want 1", got)
	}
	dl := deadLetters(t, st.js)
	if len(dl) != 1 || dl[0].Headers().Get(bus.HeaderErrorLocation) != "notifier/deliver/slack" ||
		!strings.Contains(dl[0].Headers().Get(bus.HeaderError), "user_not_found") {
		t.Fatalf("dead letters = %v", dl)
	}
	esc := st.escalation(t, consume.OpenedKey("ev-p1"))
	if esc.NextStep != 2 || !esc.DueAt.Equal(st.clock.Now().Add(5*time.Minute)) {
		t.Errorf("escalation at step %d due %v; want step 2 due 5m after the hurried page", esc.NextStep, esc.DueAt)
	}
}

func deadLetters(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	var out []jetstream.Msg
	notifiertest.Eventually(t, "a dead letter", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stream, err := js.Stream(ctx, bus.StreamDeadLetter)
		if err != nil {
			return false
		}
		info, err := stream.Info(ctx)
		if err != nil || info.State.Msgs == 0 {
			return false
		}
		c, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.DeadLetterSubject("notifier")}})
		if err != nil {
			return false
		}
		out = nil
		for range info.State.Msgs {
			m, err := c.Next(jetstream.FetchMaxWait(time.Second))
			if err != nil {
				break
			}
			out = append(out, m)
		}
		return len(out) > 0
	})
	return out
}
