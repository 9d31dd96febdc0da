package notifier

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type harness struct {
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	rot     *notifiertest.Rotation
	deps    Deps
	console *notifiertest.Buffer
	clock   *clock.Fake
	pub     *bus.Publisher
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	h := &harness{
		js:      js,
		pool:    notifiertest.Database(t, Schema, Migrations()),
		rot:     notifiertest.NewRotation(),
		console: &notifiertest.Buffer{},
		clock:   clock.NewFake(notifiertest.Start),
		pub:     bus.NewPublisher(js, "test"),
	}
	h.deps = Deps{Logger: notifiertest.Logger(t), JS: js, Pool: h.pool, Clock: h.clock, Rotation: h.rot.Serve(t), Console: h.console}
	return h
}

func testConfig() Config {
	return Config{
		MaxAttempts: 5, RetryBase: 10 * time.Second, SendTimeout: 5 * time.Second, Lease: 2 * time.Minute,
		SweepInterval: 20 * time.Millisecond, RelayInterval: 20 * time.Millisecond,
		ConsumerBackoff: []time.Duration{20 * time.Millisecond},
	}
}

// start builds a service and runs it until the returned stop is called (or
// the test ends).
func (h *harness) start(t *testing.T, deps Deps) (*Service, func()) {
	t.Helper()
	s, err := New(testConfig(), deps)
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

// settled waits until no delivery is being sent.
func (h *harness) settled(t *testing.T) {
	t.Helper()
	notifiertest.Eventually(t, "no delivery being sent", func() bool {
		var n int
		err := h.pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE status = 'sending'`).Scan(&n)
		return err == nil && n == 0
	})
}

// advance moves the clock once no delivery is being sent. In real time a
// send takes milliseconds, not the minutes a test skips: moved under a
// send in flight, the clock would expire its lease (the sweeper would
// send it again) and make its webhook timestamp stale at the receiver.
func (h *harness) advance(t *testing.T, d time.Duration) {
	t.Helper()
	h.settled(t)
	h.clock.Advance(d)
}

func (h *harness) grpcClient(t *testing.T, s *Service) notifyv1.NotifierServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	s.RegisterGRPC(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return notifyv1.NewNotifierServiceClient(conn)
}

func (h *harness) publish(t *testing.T, subject, msgID string, ev proto.Message) uint64 {
	t.Helper()
	ack, err := h.pub.Publish(context.Background(), bus.Event{Subject: subject, ID: msgID, Message: ev})
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// handled publishes ev and waits until the notifier handled it and
// everything before it on its stream.
func (h *harness) handled(t *testing.T, subject, msgID string, ev proto.Message) {
	t.Helper()
	seq := h.publish(t, subject, msgID, ev)
	stream, durable := bus.StreamConversations, DurableConversations
	switch {
	case strings.HasPrefix(subject, "support.action."):
		stream, durable = bus.StreamActions, DurableActions
	case strings.HasPrefix(subject, "support.rotation."):
		stream, durable = bus.StreamRotation, DurableRotation
	}
	notifiertest.AckedThrough(t, h.js, stream, durable, seq)
}

func pings(console string) int { return strings.Count(console, "[notify] ping") }

func TestOpenedNotifiesHeroOnceAndRedeliveryChangesNothing(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)

	ev := notifiertest.Opened("ev-1", "conv-1", h.clock.Now())
	h.publish(t, bus.ConversationSubject("opened"), "ev-1", ev)
	notifiertest.Eventually(t, "a delivered event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == 1
	})

	out := h.console.String()
	if pings(out) != 1 {
		t.Fatalf("want one console ping, got:\n%s", out)
	}
	for _, want := range []string{"Alice Liddell (Support Hero)", "new Priority conversation from Jane Doe (Acme Inc)", "https://acme.slack.com/archives/C1/p1700000000000100", "Checkout fails"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q:\n%s", want, out)
		}
	}
	del := notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))[0]
	if del.GetRecipient() != "alice" || del.GetChannel() != "console" || del.GetConversationId() != "conv-1" ||
		del.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED || del.GetAttempt() != 1 {
		t.Errorf("delivered event = %v", del)
	}

	// The same event published again under another Nats-Msg-Id (past the
	// duplicate window), and the very same message handled a second time.
	h.handled(t, bus.ConversationSubject("opened"), "ev-1-republished", ev)
	stream, err := h.js.Stream(context.Background(), bus.StreamConversations)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := raw.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.handler.Conversation(context.Background(), msg); err != nil {
		t.Fatalf("redelivered message: %v", err)
	}

	if out := h.console.String(); pings(out) != 1 {
		t.Fatalf("want still one console ping, got:\n%s", out)
	}
	var notifications, deliveries int
	if err := h.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM deliveries)`).Scan(&notifications, &deliveries); err != nil {
		t.Fatal(err)
	}
	if notifications != 1 || deliveries != 1 {
		t.Errorf("notifications=%d deliveries=%d, want 1 and 1", notifications, deliveries)
	}
	if n := len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))); n != 1 {
		t.Errorf("%d delivered events, want 1", n)
	}
}

func TestNotifySameKeyCreatesOneNotification(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	client := h.grpcClient(t, s)
	ctx := context.Background()

	req := &notifyv1.NotifyRequest{
		IdempotencyKey: "deploy-42",
		Recipients:     []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: "bob"}}},
		Urgency:        notifyv1.Urgency_URGENCY_HIGH,
		Title:          "Deploy 42 is stuck",
		Text:           "The migration job has not finished.",
		Links:          []*notifyv1.Link{{Title: "Runbook", Url: "https://runbooks.example.com/deploys"}},
	}
	first, err := client.Notify(ctx, req)
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	second, err := client.Notify(ctx, req)
	if err != nil {
		t.Fatalf("Notify again: %v", err)
	}
	if !first.GetCreated() || second.GetCreated() {
		t.Errorf("created = %v then %v, want true then false", first.GetCreated(), second.GetCreated())
	}
	if first.GetNotification().GetId() != second.GetNotification().GetId() {
		t.Errorf("ids differ: %s vs %s", first.GetNotification().GetId(), second.GetNotification().GetId())
	}
	n := second.GetNotification()
	if n.GetIdempotencyKey() != "deploy-42" || n.GetUrgency() != notifyv1.Urgency_URGENCY_HIGH {
		t.Errorf("notification = %v", n)
	}
	if len(n.GetDeliveries()) != 1 || n.GetDeliveries()[0].GetRecipient() != "bob" {
		t.Fatalf("deliveries = %v", n.GetDeliveries())
	}
	// The send happens after the Notify commits: wait for its outcome.
	var got *notifyv1.GetNotificationResponse
	notifiertest.Eventually(t, "the delivery marked delivered", func() bool {
		got, err = client.GetNotification(ctx, &notifyv1.GetNotificationRequest{Id: n.GetId()})
		return err == nil && len(got.GetNotification().GetDeliveries()) == 1 &&
			got.GetNotification().GetDeliveries()[0].GetStatus() == supportv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED
	})
	if out := h.console.String(); strings.Count(out, "[notify] page Bob Builder") != 1 {
		t.Errorf("want one page to Bob, got:\n%s", out)
	}
	if _, err := client.Notify(ctx, &notifyv1.NotifyRequest{IdempotencyKey: "x", Title: "t",
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Person{Person: "nobody"}}}}); err == nil ||
		!strings.Contains(err.Error(), "NotFound") {
		t.Errorf("unknown person: err = %v, want NotFound", err)
	}
}

func TestAcknowledgeRecordsAndPublishes(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	client := h.grpcClient(t, s)
	ctx := context.Background()

	resp, err := client.Notify(ctx, &notifyv1.NotifyRequest{
		IdempotencyKey: "conv-7-hero", ConversationId: "conv-7", Title: "Please look at conv-7",
		Recipients: []*notifyv1.Recipient{{Target: &notifyv1.Recipient_Role{Role: &notifyv1.RoleTarget{Role: "hero"}}}},
	})
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	id := resp.GetNotification().GetId()
	h.advance(t, 3*time.Minute)
	ack, err := client.Acknowledge(ctx, &notifyv1.AcknowledgeRequest{Id: id, Actor: "alice"})
	if err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	if ack.GetAcknowledged() != 1 {
		t.Errorf("acknowledged = %d, want 1", ack.GetAcknowledged())
	}
	again, err := client.Acknowledge(ctx, &notifyv1.AcknowledgeRequest{ConversationId: "conv-7", Actor: "bob"})
	if err != nil || again.GetAcknowledged() != 0 {
		t.Errorf("second acknowledge = %v, %v; want 0 (already acknowledged)", again, err)
	}
	got, err := client.GetNotification(ctx, &notifyv1.GetNotificationRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	n := got.GetNotification()
	if n.GetAcknowledgedBy() != "alice" || !n.GetAcknowledgedAt().AsTime().Equal(h.clock.Now()) {
		t.Errorf("acknowledged by %q at %v, want alice at %v", n.GetAcknowledgedBy(), n.GetAcknowledgedAt().AsTime(), h.clock.Now())
	}
	notifiertest.Eventually(t, "an acked event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("acked"))) == 1
	})
	ev := notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("acked"))[0]
	if ev.GetNotificationId() != id || ev.GetRecipient() != "alice" || ev.GetConversationId() != "conv-7" ||
		ev.GetStatus() != supportv1.DeliveryStatus_DELIVERY_STATUS_ACKED {
		t.Errorf("acked event = %v", ev)
	}
	if _, err := client.Acknowledge(ctx, &notifyv1.AcknowledgeRequest{Id: "00000000-0000-0000-0000-000000000000"}); err == nil ||
		!strings.Contains(err.Error(), "NotFound") {
		t.Errorf("unknown id: err = %v, want NotFound", err)
	}
}

func TestAckActionAcknowledgesConversation(t *testing.T) {
	h := newHarness(t)
	h.start(t, h.deps)

	h.publish(t, bus.ConversationSubject("opened"), "ev-9", notifiertest.Opened("ev-9", "conv-9", h.clock.Now()))
	notifiertest.Eventually(t, "a delivered event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == 1
	})
	// Slack names the clicker by Slack id; the acknowledgement names the person.
	action := &supportv1.Action{Id: "act-1", Type: supportv1.ActionType_ACTION_TYPE_ACK, ConversationId: "conv-9",
		Actor: notifiertest.Alice.GetSlackId(), Source: "slack", OccurredAt: timestamppb.New(h.clock.Now().Add(time.Minute))}
	if _, err := h.pub.Publish(context.Background(), bus.Event{Subject: bus.ActionSubject("ack"), ID: "act-1", Message: action}); err != nil {
		t.Fatal(err)
	}
	notifiertest.Eventually(t, "an acked event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("acked"))) == 1
	})
	var by string
	if err := h.pool.QueryRow(context.Background(), `SELECT acknowledged_by FROM notifications WHERE conversation_id = 'conv-9'`).Scan(&by); err != nil {
		t.Fatal(err)
	}
	if by != "alice" {
		t.Errorf("acknowledged_by = %q", by)
	}
	if ev := notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("acked"))[0]; ev.GetChannel() != "slack" {
		t.Errorf("acked event channel = %q, want the action's source", ev.GetChannel())
	}
}

func TestFailedSendIsResumedAfterRestartAndDeliveredOnce(t *testing.T) {
	h := newHarness(t)
	rec := &notifiertest.Recorder{Fail: notifiertest.FailFirst(1)}
	deps := h.deps
	deps.Console = nil
	deps.Channels = []Channel{rec}
	_, stop := h.start(t, deps)

	h.publish(t, bus.ConversationSubject("opened"), "ev-2", notifiertest.Opened("ev-2", "conv-2", h.clock.Now()))
	notifiertest.Eventually(t, "a failed attempt", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("failed"))) == 1
	})
	stop() // the process goes away with the delivery recorded but not delivered

	var status string
	if err := h.pool.QueryRow(context.Background(), `SELECT status FROM deliveries`).Scan(&status); err != nil {
		t.Fatal(err)
	}
	if status != "pending" {
		t.Fatalf("after the failed attempt the delivery is %q, want pending", status)
	}

	h.advance(t, 11*time.Second) // past the retry delay
	h.start(t, deps)
	notifiertest.Eventually(t, "a delivered event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == 1
	})
	if sent := rec.Sent(); len(sent) != 1 || sent[0].Recipient.PersonID != "alice" || sent[0].Attempt != 2 {
		t.Fatalf("sent = %+v, want one message to alice on attempt 2", sent)
	}
	if rec.Attempts() != 2 {
		t.Errorf("attempts = %d, want 2", rec.Attempts())
	}
	ev := notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("failed"))[0]
	if ev.GetError() == "" || ev.GetAttempt() != 1 {
		t.Errorf("failed event = %v", ev)
	}
}

func TestAnsweredConversationCancelsPendingDeliveries(t *testing.T) {
	h := newHarness(t)
	rec := &notifiertest.Recorder{Fail: notifiertest.FailFirst(1)}
	deps := h.deps
	deps.Channels = []Channel{rec}
	s, _ := h.start(t, deps)

	h.publish(t, bus.ConversationSubject("opened"), "ev-3", notifiertest.Opened("ev-3", "conv-3", h.clock.Now()))
	notifiertest.Eventually(t, "a failed attempt", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("failed"))) == 1
	})
	responded := &supportv1.ConversationEvent{
		Id: "ev-4", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, Actor: "bob",
		OccurredAt: timestamppb.New(h.clock.Now().Add(time.Second)), Conversation: &supportv1.Conversation{Id: "conv-3"},
	}
	h.handled(t, bus.ConversationSubject("responded"), "ev-4", responded)

	var status, reason string
	if err := h.pool.QueryRow(context.Background(), `SELECT status, last_error FROM deliveries`).Scan(&status, &reason); err != nil {
		t.Fatal(err)
	}
	if status != "cancelled" || reason != "answered by bob" {
		t.Fatalf("delivery %s (%s), want cancelled (answered by bob)", status, reason)
	}

	// A late duplicate of the opening, handled after the answer, notifies
	// nobody; and once the retry is due there is nothing to send.
	h.handled(t, bus.ConversationSubject("opened"), "ev-3-late", notifiertest.Opened("ev-3-late", "conv-3", h.clock.Now()))
	h.advance(t, time.Minute)
	attempted, err := s.dispatcher.Sweep(context.Background())
	if err != nil || attempted != 0 {
		t.Errorf("sweep attempted %d (%v), want 0", attempted, err)
	}
	if n := rec.Attempts(); n != 1 {
		t.Errorf("send attempts = %d, want only the first", n)
	}
	var count, late int
	if err := h.pool.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM notifications), (SELECT count(*) FROM escalations WHERE key = $1)`,
		consume.OpenedKey("ev-3-late")).Scan(&count, &late); err != nil {
		t.Fatal(err)
	}
	if count != 1 || late != 0 {
		t.Errorf("%d notifications and %d escalations of the late opening, want 1 and 0 (nothing starts for an answered conversation)", count, late)
	}
}

func TestNewNeedsAChannel(t *testing.T) {
	_, err := New(Config{}, Deps{Pool: &pgxpool.Pool{}, JS: struct{ jetstream.JetStream }{}, Rotation: struct{ Rotation }{}})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_SLACK_BOT_TOKEN") {
		t.Fatalf("err = %v, want one naming SIDEKICK_SLACK_BOT_TOKEN", err)
	}
}

func TestSlackDMThenAckUpdatesTheMessage(t *testing.T) {
	h := newHarness(t)
	s, fake := h.startSlack(t, testConfig())

	h.publish(t, bus.ConversationSubject("opened"), "ev-s", notifiertest.Opened("ev-s", "conv-s", h.clock.Now()))
	notifiertest.Eventually(t, "a delivered event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == 1
	})
	posts := fake.Calls("chat.postMessage")
	if len(posts) != 1 || posts[0].Form.Get("channel") != "U0ALICE" {
		t.Fatalf("posts = %+v", posts)
	}
	if pings(h.console.String()) != 0 {
		t.Errorf("the console was used although Slack reaches alice:\n%s", h.console.String())
	}
	del := notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))[0]
	if del.GetChannel() != "slack" {
		t.Errorf("delivered via %q", del.GetChannel())
	}
	if !strings.Contains(posts[0].Form.Get("blocks"), "conv:conv-s|notif:"+del.GetNotificationId()) {
		t.Errorf("button value missing from %s", posts[0].Form.Get("blocks"))
	}

	if _, err := s.dispatcher.Acknowledge(context.Background(), deliver.Ack{ConversationID: "conv-s", Actor: "alice", Source: "slack"}); err != nil {
		t.Fatal(err)
	}
	updates := fake.Calls("chat.update")
	if len(updates) != 1 || updates[0].Form.Get("channel") != "D0ALICE" || updates[0].Form.Get("ts") != "1700000000.000001" {
		t.Fatalf("updates = %+v", updates)
	}
}

func TestRotationDownDelaysButDoesNotLoseTheNotification(t *testing.T) {
	h := newHarness(t)
	h.rot.FailNext(2)
	h.start(t, h.deps)

	h.publish(t, bus.ConversationSubject("opened"), "ev-r", notifiertest.Opened("ev-r", "conv-r", h.clock.Now()))
	notifiertest.Eventually(t, "a delivered event", func() bool {
		return len(notifiertest.NotifyEvents(t, h.js, bus.NotifySubject("delivered"))) == 1
	})
	if got := h.rot.Calls(); got != 3 {
		t.Errorf("WhoIsOnCall calls = %d, want 2 failures and 1 answer", got)
	}
	if out := h.console.String(); pings(out) != 1 {
		t.Errorf("want one ping, got:\n%s", out)
	}
}
