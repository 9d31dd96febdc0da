package triage

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/content"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type harness struct {
	js    jetstream.JetStream
	pool  *pgxpool.Pool
	clock *clock.Fake
	deps  Deps
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("needs NATS and Postgres")
	}
	_, js := bustest.StartJetStream(t)
	h := &harness{js: js, pool: triagetest.Database(t, Schema, Migrations()), clock: triagetest.NewClock()}
	h.deps = Deps{Logger: triagetest.Logger(t), JS: js, Pool: h.pool, Clock: h.clock, Registry: prometheus.NewRegistry(),
		People: people.Static{D: people.FromProto(testPeople())}}
	return h
}

func testConfig() Config {
	return Config{
		ConsoleURL: "https://sidekick.example.com/console", PriorityRevenueCents: 200000, Concurrency: 1,
		RelayInterval: 50 * time.Millisecond, RelayBatch: 100,
		ConsumerBackoff: []time.Duration{20 * time.Millisecond}, ConsumerMaxDeliver: 5,
		InboundBatch: 200, TimerInterval: 10 * time.Millisecond, TimerBatch: 500, BusinessTeam: "business", HandoffMaxOpen: 200,
	}
}

// start runs a service until the returned stop is called or the test ends.
func (h *harness) start(t testing.TB, deps Deps) (*Service, func()) {
	t.Helper()
	return h.startConfig(t, testConfig(), deps)
}

func (h *harness) startConfig(t testing.TB, cfg Config, deps Deps) (*Service, func()) {
	t.Helper()
	s, err := New(cfg, deps)
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

// serve exposes s over gRPC on a loopback listener and returns clients.
func serve(t *testing.T, s *Service) (triagev1.ConversationServiceClient, triagev1.CustomerServiceClient) {
	t.Helper()
	cc := serveConn(t, s)
	return triagev1.NewConversationServiceClient(cc), triagev1.NewCustomerServiceClient(cc)
}

// serveConn exposes s over gRPC on a loopback listener and returns a
// connection to it.
func serveConn(t testing.TB, s *Service) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	s.RegisterGRPC(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// settled waits until every inbound message is handled and every event
// published.
func (h *harness) settled(t testing.TB) {
	t.Helper()
	triagetest.Drained(t, h.js, bus.StreamInbound, DurableInbound)
	triagetest.Eventually(t, "outbox drained", func() bool {
		return triagetest.Count(t, h.pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`) == 0
	})
}

// deadLetters is how many messages the dead-letter stream holds.
func (h *harness) deadLetters(t testing.TB) uint64 {
	t.Helper()
	ctx := context.Background()
	st, err := h.js.Stream(ctx, bus.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestWalkingSkeleton(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)

	thread := triagetest.Slack("1700000000.000100")
	first := thread.Customer("U0CUSTOMER1", "Our dashboards stopped loading after the upgrade")
	triagetest.PublishInbound(t, h.js, first, "")
	// A quick retry by the ingest service is dropped by JetStream, a later
	// redelivery (another Nats-Msg-Id) by the inbox.
	triagetest.PublishInbound(t, h.js, first, "")
	triagetest.PublishInbound(t, h.js, first, "redelivery-1")
	h.settled(t)

	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatalf("ListConversations: %v", err)
	}
	if n := len(list.GetConversations()); n != 1 {
		t.Fatalf("want 1 conversation, got %d", n)
	}
	c := list.GetConversations()[0]
	if c.GetChannel() != supportv1.Channel_CHANNEL_SLACK || c.GetThreadKey() != thread.ThreadKey ||
		c.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN || c.GetMessageCount() != 1 ||
		c.GetTier() != supportv1.Tier_TIER_COMMUNITY || c.GetTierReason() != "unknown customer" ||
		c.GetSubject() != "Our dashboards stopped loading after the upgrade" ||
		c.GetShareUrl() != "https://sidekick.example.com/console/conversations/"+c.GetId() {
		t.Fatalf("unexpected conversation %v", c)
	}

	events, ids := triagetest.ConversationEvents(t, h.js)
	if len(events) != 2 || events[1].GetType() != supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED {
		t.Fatalf("want OPENED and TRIAGED, got %v", triagetest.Types(events))
	}
	ev := events[0]
	if ev.GetType() != supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED || ev.GetId() != ids[0] ||
		ev.GetConversation().GetId() != c.GetId() || ev.GetMessage().GetId() != first.GetId() || ev.GetActor() != "U0CUSTOMER1" {
		t.Fatalf("unexpected opened event %v (Nats-Msg-Id %s)", ev, ids[0])
	}

	got, err := convs.GetConversation(context.Background(), &triagev1.GetConversationRequest{Id: c.GetId()})
	if err != nil {
		t.Fatalf("GetConversation: %v", err)
	}
	if len(got.GetMessages()) != 1 || got.GetMessages()[0].GetText() != first.GetText() || len(got.GetAudit()) != 2 || got.GetAudit()[0].GetAction() != "opened" || got.GetAudit()[1].GetAction() != "categorised" {
		t.Fatalf("unexpected GetConversation %v", got)
	}
}

// state is everything triage stored, for before/after comparisons.
func state(t *testing.T, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, table := range []string{"inbox", "conversations", "messages", "notes", "audit", "outbox"} {
		out[table] = triagetest.Count(t, pool, `SELECT count(*) FROM `+table)
	}
	return out
}

func snapshot(t *testing.T, convs triagev1.ConversationServiceClient) string {
	t.Helper()
	list, err := convs.ListConversations(context.Background(), &triagev1.ListConversationsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := protojson.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReplayChangesNothing(t *testing.T) {
	h := newHarness(t)
	s, _ := h.start(t, h.deps)
	convs, _ := serve(t, s)

	a, b := triagetest.Slack("A"), triagetest.Slack("B")
	opening := a.Customer("U0CUST", "Exports are empty")
	msgs := []*supportv1.InboundMessage{
		opening,
		b.Customer("U0OTHER", "How do I invite a teammate?"),
		a.Staff("U0HERO", "Looking into it"),
		a.Customer("U0CUST", "Any news?"),
		a.Kind(supportv1.MessageKind_MESSAGE_KIND_EDITED, "U0CUST", opening.GetSourceId(), "Exports are empty since Monday"),
		b.Bot("Reminder: office hours at 3pm"),
		b.Kind(supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED, "U0OTHER", "", ""),
	}
	for _, m := range msgs {
		triagetest.PublishInbound(t, h.js, m, "")
	}
	h.settled(t)
	before, beforeList := state(t, h.pool), snapshot(t, convs)
	beforeEvents, _ := triagetest.ConversationEvents(t, h.js)
	if before["conversations"] != 2 || before["inbox"] != len(msgs) {
		t.Fatalf("unexpected state after the first pass: %v", before)
	}

	for i, m := range msgs {
		triagetest.PublishInbound(t, h.js, m, "replay-"+m.GetId())
		_ = i
	}
	h.settled(t)
	after, afterList := state(t, h.pool), snapshot(t, convs)
	afterEvents, _ := triagetest.ConversationEvents(t, h.js)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %d rows before the replay, %d after", k, v, after[k])
		}
	}
	if beforeList != afterList {
		t.Errorf("conversations changed by the replay:\nbefore %s\nafter  %s", beforeList, afterList)
	}
	if len(afterEvents) != len(beforeEvents) {
		t.Errorf("replay published %d more events", len(afterEvents)-len(beforeEvents))
	}
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_REOPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_MESSAGE,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_CLOSED,
	}
	if got := triagetest.Types(afterEvents); !slices.Equal(got, want) {
		t.Errorf("events:\n got %v\nwant %v", got, want)
	}
}

// downPublisher is a JetStream that refuses every publish.
type downPublisher struct{}

func (downPublisher) PublishAll(_ context.Context, events []bus.Event) ([]*jetstream.PubAck, error) {
	return make([]*jetstream.PubAck, len(events)), errors.New("nats: no responders available for request")
}

func TestEventsCommittedWhileNATSPublishFailsAreRelayedLater(t *testing.T) {
	h := newHarness(t)
	down := h.deps
	down.Publisher = downPublisher{}
	_, stop := h.start(t, down)
	th := triagetest.Slack("outage")
	msgs := []*supportv1.InboundMessage{th.Customer("U0CUST", "Is ingestion down?"), th.Staff("U0HERO", "Checking")}
	for _, m := range msgs {
		triagetest.PublishInbound(t, h.js, m, "")
	}
	triagetest.Drained(t, h.js, bus.StreamInbound, DurableInbound)
	if n := triagetest.Count(t, h.pool, `SELECT count(*) FROM outbox WHERE sent_at IS NULL`); n != 4 {
		t.Fatalf("want 4 events committed and pending, have %d", n)
	}
	stop() // the process dies with events committed but unpublished

	h.deps.Registry = prometheus.NewRegistry()
	h.start(t, h.deps)
	h.settled(t)
	events, ids := triagetest.ConversationEvents(t, h.js)
	want := []supportv1.ConversationEventType{
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED,
		supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_ASSIGNED,
	}
	if got := triagetest.Types(events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i, e := range events {
		if e.GetId() != ids[i] {
			t.Fatalf("event %s published with Nats-Msg-Id %s", e.GetId(), ids[i])
		}
	}
}

// TestLargeInboundIsResolved: a message whose content went to the object
// store arrives as a stub (platform/content); triage stores the whole
// message, not the preview. Before, triage stored the stub as it came.
func TestLargeInboundIsResolved(t *testing.T) {
	h := newHarness(t)
	h.start(t, h.deps)
	ctx := context.Background()
	store, err := content.Ensure(ctx, h.js, content.Config{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	whole := triagetest.Slack("L").Customer("U0CUST", strings.Repeat("the export fails again; ", 30_000))
	stub, err := content.Offload(ctx, store, whole)
	if err != nil {
		t.Fatal(err)
	}
	if stub.GetAttributes()[content.AttrRef] == "" || len(stub.GetText()) >= len(whole.GetText()) {
		t.Fatalf("the %d-byte message was not offloaded", proto.Size(whole))
	}
	triagetest.PublishInbound(t, h.js, stub, "")
	h.settled(t)
	var body []byte
	if err := h.pool.QueryRow(ctx, `SELECT body FROM messages WHERE id = $1`, whole.GetId()).Scan(&body); err != nil {
		t.Fatal(err)
	}
	var stored supportv1.InboundMessage
	if err := proto.Unmarshal(body, &stored); err != nil {
		t.Fatal(err)
	}
	if stored.GetText() != whole.GetText() {
		t.Fatalf("stored text of %d bytes, want the whole %d", len(stored.GetText()), len(whole.GetText()))
	}
}
