package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
)

func needNATS(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing the test after a generous
// deadline. It asserts an outcome, not how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamMsgs(ctx context.Context, t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

func lastMsg(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, subject string) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("last message on %s: %v", subject, err)
	}
	return m
}

// settled reports whether the consumer has been delivered everything in
// the stream and has nothing pending or unacked.
func settled(ctx context.Context, t *testing.T, js jetstream.JetStream, stream, durable string) bool {
	t.Helper()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return false
	}
	c, err := s.Consumer(ctx, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false
	}
	return info.Delivered.Stream >= s.CachedInfo().State.LastSeq &&
		info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

func TestPublishDuplicateStoredOnce(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	p := bus.NewPublisher(js, "sidekick/test")
	e := bus.Event{Subject: bus.InboundSubject("slack"), ID: "Ev01", Message: wrapperspb.String("hello")}

	first, err := p.Publish(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate || first.Stream != bus.StreamInbound {
		t.Fatalf("first ack %+v", first)
	}
	second, err := p.Publish(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second ack %+v, want a duplicate of seq %d", second, first.Sequence)
	}
	if n := streamMsgs(ctx, t, js, bus.StreamInbound); n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
}

func TestPublishHeadersAndDecode(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	at := time.Date(2025, 6, 1, 9, 30, 0, 123456789, time.UTC)
	p := bus.NewPublisher(js, "sidekick/ingest-github", bus.WithClock(func() time.Time { return at }))
	payload, err := structpb.NewStruct(map[string]any{"delivery": "72d3162e", "action": "opened"})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := p.Publish(ctx, bus.Event{Subject: bus.InboundSubject("github"), ID: "72d3162e", Message: payload,
		Header: nats.Header{"x-trace": {"abc"}}})
	if err != nil {
		t.Fatal(err)
	}

	stored := lastMsg(ctx, t, js, bus.StreamInbound, bus.InboundSubject("github"))
	if stored.Sequence != ack.Sequence {
		t.Fatalf("stored seq %d, ack seq %d", stored.Sequence, ack.Sequence)
	}
	want := map[string]string{
		"ce-specversion": "1.0",
		"ce-type":        "google.protobuf.Struct",
		"ce-source":      "sidekick/ingest-github",
		"ce-id":          "72d3162e",
		"ce-time":        "2025-06-01T09:30:00.123456789Z",
		"content-type":   "application/protobuf",
		"Nats-Msg-Id":    "72d3162e",
		"x-trace":        "abc",
	}
	for k, v := range want {
		if got := stored.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, stored.Header.Get(bus.HeaderTime)); err != nil {
		t.Errorf("ce-time is not RFC 3339: %v", err)
	}

	// Decode through a real consumer.
	cons, err := js.CreateConsumer(ctx, bus.StreamInbound, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got structpb.Struct
	if err := bus.Decode(msg, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, payload) {
		t.Errorf("decoded %v, want %v", &got, payload)
	}

	// A message without the protobuf content-type is refused, permanently.
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.InboundSubject("email"), Data: []byte(`{"a":1}`),
		Header: nats.Header{"content-type": {"application/json"}}}); err != nil {
		t.Fatal(err)
	}
	msg, err = cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = bus.Decode(msg, &got)
	if !errors.Is(err, bus.ErrContentType) || !bus.IsPermanent(err) {
		t.Errorf("decode of JSON: %v", err)
	}

	// A MarshalVT encoder does not check that strings are UTF-8; Decode
	// does, and refuses such a message permanently, so it is dead-lettered.
	latin1 := rawVT{StringValue: wrapperspb.String(""), data: protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "caf\xe9")}
	if _, err := p.Publish(ctx, bus.Event{Subject: bus.InboundSubject("email"), ID: "latin1", Message: latin1}); err != nil {
		t.Fatal(err)
	}
	msg, err = cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Decode(msg, &wrapperspb.StringValue{}); !bus.IsPermanent(err) || !strings.Contains(err.Error(), "UTF-8") {
		t.Errorf("decode of a string that is not UTF-8: %v", err)
	}
}

// rawVT is a message whose MarshalVT returns data as it is.
type rawVT struct {
	*wrapperspb.StringValue
	data []byte
}

func (r rawVT) MarshalVT() ([]byte, error) { return r.data, nil }

func TestPublishAll(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	p := bus.NewPublisher(js, "sidekick/triage")
	var events []bus.Event
	for i := range 50 {
		events = append(events, bus.Event{Subject: bus.ConversationSubject("opened"), ID: fmt.Sprintf("c-%d", i), Message: wrapperspb.Int64(int64(i))})
	}
	events = append(events, bus.Event{Subject: bus.ConversationSubject("opened"), Message: wrapperspb.Int64(1)}) // no id
	events = append(events, events[0])                                                                           // duplicate
	acks, err := p.PublishAll(ctx, events)
	if err == nil || !strings.Contains(err.Error(), "no id") {
		t.Fatalf("want the event without id reported, got %v", err)
	}
	for i := range 50 {
		if acks[i] == nil || acks[i].Duplicate {
			t.Fatalf("ack %d: %+v", i, acks[i])
		}
	}
	if acks[50] != nil || acks[51] == nil || !acks[51].Duplicate {
		t.Fatalf("acks of the bad and the duplicate event: %+v %+v", acks[50], acks[51])
	}
	if n := streamMsgs(ctx, t, js, bus.StreamConversations); n != 50 {
		t.Fatalf("stream holds %d, want 50", n)
	}
}

// consumerRun starts c.Run in the background and returns a stop function
// that cancels it and returns Run's error.
func consumerRun(t *testing.T, c *bus.Consumer, h bus.Handler) (stop func() error) {
	t.Helper()
	return runUntilStopped(t, func(ctx context.Context) error { return c.Run(ctx, h) })
}

// runUntilStopped runs run in the background until stop is called or the
// test ends.
func runUntilStopped(t *testing.T, run func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				err = errors.New("Run did not return after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
	return stop
}

func newConsumer(t *testing.T, js jetstream.JetStream, cfg bus.ConsumerConfig, reg prometheus.Registerer) *bus.Consumer {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	if cfg.Stream == "" {
		cfg.Stream = bus.StreamInbound
	}
	if cfg.Backoff == nil {
		cfg.Backoff = []time.Duration{10 * time.Millisecond, 20 * time.Millisecond}
	}
	c, err := bus.NewConsumer(js, cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func publish(ctx context.Context, t *testing.T, js jetstream.JetStream, subject, id, text string) {
	t.Helper()
	if _, err := bus.NewPublisher(js, "sidekick/test").Publish(ctx, bus.Event{Subject: subject, ID: id, Message: wrapperspb.String(text)}); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerDeadLettersAfterMaxDeliver(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	reg := prometheus.NewRegistry()
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "failing", MaxDeliver: 3}, reg)
	var calls atomic.Int32
	consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		calls.Add(1)
		return bus.AtLocation("store.apply", errors.New("database said no\nsecond line"))
	})
	publish(ctx, t, js, bus.InboundSubject("slack"), "Ev-fail", "help me")

	eventually(t, "a dead letter", func() bool { return streamMsgs(ctx, t, js, bus.StreamDeadLetter) == 1 })
	eventually(t, "the original acked", func() bool { return settled(ctx, t, js, bus.StreamInbound, "failing") })
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want MaxDeliver = 3", n)
	}

	dl := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("test"))
	checks := map[string]string{
		bus.HeaderErrorLocation:    "test/failing/store.apply",
		bus.HeaderError:            "database said no second line",
		bus.HeaderOriginalSubject:  "support.inbound.slack",
		bus.HeaderOriginalStream:   bus.StreamInbound,
		bus.HeaderOriginalSequence: "1",
		bus.HeaderDeliveryCount:    "3",
		bus.HeaderID:               "Ev-fail",
		bus.HeaderType:             "google.protobuf.StringValue",
	}
	for k, v := range checks {
		if got := dl.Header.Get(k); got != v {
			t.Errorf("dead letter header %s = %q, want %q", k, got, v)
		}
	}
	var s wrapperspb.StringValue
	if err := proto.Unmarshal(dl.Data, &s); err != nil || s.GetValue() != "help me" {
		t.Errorf("dead letter data %q (%v), want the original", s.GetValue(), err)
	}
	if got := counter(t, reg, "sidekick_bus_handled_total", "deadletter"); got != 1 {
		t.Errorf("deadletter count %v", got)
	}
	if got := counter(t, reg, "sidekick_bus_handled_total", "retry"); got != 2 {
		t.Errorf("retry count %v", got)
	}
}

func TestConsumerPermanentDeadLettersAtOnce(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "strict", FilterSubjects: []string{bus.InboundSubject("email")}}, nil)
	var calls atomic.Int32
	consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		calls.Add(1)
		var v wrapperspb.Int64Value
		return bus.Decode(msg, &v) // JSON below: permanent
	})
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: bus.InboundSubject("email"), Data: []byte(`{}`),
		Header: nats.Header{"content-type": {"application/json"}, "Nats-Msg-Id": {"m-1"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a dead letter", func() bool { return streamMsgs(ctx, t, js, bus.StreamDeadLetter) == 1 })
	eventually(t, "the original acked", func() bool { return settled(ctx, t, js, bus.StreamInbound, "strict") })
	if n := calls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	dl := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("test"))
	if got := dl.Header.Get(bus.HeaderDeliveryCount); got != "1" {
		t.Errorf("delivery count %q", got)
	}
	if got := dl.Header.Get(bus.HeaderErrorLocation); got != "test/strict" {
		t.Errorf("error_location %q", got)
	}
	if got := dl.Header.Get(bus.HeaderError); !strings.Contains(got, "content-type") {
		t.Errorf("error %q", got)
	}
	if string(dl.Data) != "{}" {
		t.Errorf("data %q", dl.Data)
	}
}

func TestConsumerRetriesThenSucceeds(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	reg := prometheus.NewRegistry()
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "flaky"}, reg)
	var calls atomic.Int32
	consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		switch calls.Add(1) {
		case 1:
			return errors.New("transient")
		case 2:
			panic("also transient")
		}
		return nil
	})
	publish(ctx, t, js, bus.InboundSubject("sentry"), "req-1", "boom")
	eventually(t, "the message acked", func() bool { return settled(ctx, t, js, bus.StreamInbound, "flaky") })
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want 3", n)
	}
	if n := streamMsgs(ctx, t, js, bus.StreamDeadLetter); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
	if got := counter(t, reg, "sidekick_bus_handled_total", "ack"); got != 1 {
		t.Errorf("ack count %v", got)
	}
}

func TestConsumerConcurrencyAndDrain(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	const n = 4
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "parallel", Concurrency: n}, nil)
	started := make(chan struct{}, n)
	release := make(chan struct{})
	var finished atomic.Int32
	stop := consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		started <- struct{}{}
		<-release
		finished.Add(1)
		return nil
	})
	for i := range n {
		publish(ctx, t, js, bus.InboundSubject("slack"), fmt.Sprintf("p-%d", i), "x")
	}
	// All n handlers must be running at once: with less concurrency this
	// would never complete.
	for i := range n {
		select {
		case <-started:
		case <-ctx.Done():
			t.Fatalf("only %d handlers ran concurrently, want %d", i, n)
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while handlers were still in flight", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := finished.Load(); got != n {
		t.Fatalf("%d handlers finished before Run returned, want %d", got, n)
	}
	eventually(t, "all acked", func() bool { return settled(ctx, t, js, bus.StreamInbound, "parallel") })
}

// A batch handler gets the messages in delivery order, up to Batch at a
// time, and each message settles with the outcome reported for it: one
// dead-lettered, one retried alone, a batch that panicked retried whole.
func TestConsumerBatches(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	reg := prometheus.NewRegistry()
	const n, batch = 30, 10
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("m-%02d", i))
		publish(ctx, t, js, bus.InboundSubject("slack"), ids[i], "x")
	}
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "batched", Batch: batch, MaxDeliver: 3}, reg)
	var (
		mu       sync.Mutex
		first    []string // ids on their first delivery, in handling order
		sizes    []int
		panicked bool
		acked    = map[string]int{}
	)
	runUntilStopped(t, func(ctx context.Context) error {
		return c.RunBatch(ctx, func(ctx context.Context, msgs []jetstream.Msg) []error {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(msgs))
			attempts := make([]uint64, len(msgs))
			for i, msg := range msgs {
				md, err := msg.Metadata()
				if err != nil {
					t.Error(err)
					return nil
				}
				if attempts[i] = md.NumDelivered; attempts[i] == 1 {
					first = append(first, msg.Headers().Get(bus.HeaderID))
				}
			}
			errs := make([]error, len(msgs))
			for i, msg := range msgs {
				id := msg.Headers().Get(bus.HeaderID)
				switch {
				case id == "m-03":
					errs[i] = bus.Permanent(errors.New("cannot be handled"))
				case id == "m-05" && attempts[i] == 1:
					errs[i] = errors.New("database unavailable")
				case id == "m-17" && !panicked:
					panicked = true
					panic("handler bug")
				default:
					acked[id]++
				}
			}
			return errs
		})
	})
	eventually(t, "every message settled", func() bool { return settled(ctx, t, js, bus.StreamInbound, "batched") })
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(first, " ") != strings.Join(ids, " ") {
		t.Errorf("first deliveries handled in order\n %v\nwant\n %v", first, ids)
	}
	most := 0
	for _, s := range sizes {
		most = max(most, s)
	}
	if most < 2 || most > batch {
		t.Errorf("batch sizes %v: want batches, none over %d", sizes, batch)
	}
	if len(acked) != n-1 || acked["m-03"] != 0 || acked["m-05"] != 1 {
		t.Errorf("handled successfully: %v; want every message but m-03", acked)
	}
	if n := streamMsgs(ctx, t, js, bus.StreamDeadLetter); n != 1 {
		t.Fatalf("%d dead letters, want m-03's", n)
	}
	if got := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("test")).Header.Get(bus.HeaderID); got != "m-03" {
		t.Errorf("dead letter of %s, want m-03", got)
	}
	if got := counter(t, reg, "sidekick_bus_handled_total", "ack"); got != n-1 {
		t.Errorf("ack count %v, want %d", got, n-1)
	}
}

func TestConsumerSurvivesRestartAndDeletion(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	srv, js := bustest.StartJetStream(t)
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "sturdy"}, nil)
	var mu sync.Mutex
	seen := map[string]bool{}
	consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		mu.Lock()
		defer mu.Unlock()
		seen[msg.Headers().Get(bus.HeaderID)] = true
		return nil
	})
	has := func(id string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return seen[id] }
	}
	publish(ctx, t, js, bus.InboundSubject("slack"), "before", "x")
	eventually(t, "first message handled", has("before"))

	srv.Restart(t)
	eventually(t, "publish after restart", func() bool {
		_, err := bus.NewPublisher(js, "t").Publish(ctx, bus.Event{Subject: bus.InboundSubject("slack"), ID: "after-restart", Message: wrapperspb.String("x")})
		return err == nil
	})
	eventually(t, "message after restart handled", has("after-restart"))

	if err := js.DeleteConsumer(ctx, bus.StreamInbound, "sturdy"); err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, js, bus.InboundSubject("slack"), "after-delete", "x")
	eventually(t, "message after consumer deletion handled", has("after-delete"))
}

func TestRestartKeepsStoredMessages(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	srv, js := bustest.StartJetStream(t)
	for i := range 3 {
		publish(ctx, t, js, bus.ConversationSubject("opened"), fmt.Sprintf("keep-%d", i), "x")
	}
	srv.Shutdown()
	downCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := js.Stream(downCtx, bus.StreamConversations); err == nil {
		t.Fatal("stream reachable while NATS is down")
	}
	srv.Restart(t)
	var n uint64
	eventually(t, "stream back", func() bool {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		s, err := js.Stream(actx, bus.StreamConversations)
		if err != nil {
			return false
		}
		n = s.CachedInfo().State.Msgs
		return true
	})
	if n != 3 {
		t.Fatalf("%d messages after restart, want 3", n)
	}
	// The duplicate window survives too.
	ack, err := bus.NewPublisher(js, "t").Publish(ctx, bus.Event{Subject: bus.ConversationSubject("opened"), ID: "keep-0", Message: wrapperspb.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	if !ack.Duplicate {
		t.Error("re-publish after restart not recognised as a duplicate")
	}
}

func TestDeadLetterDirectIsIdempotent(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	hdr := nats.Header{"X-Slack-Signature": {"v0=abc"}, "Nats-Expected-Stream": {"OTHER"}}
	for range 2 {
		if err := bus.DeadLetter(ctx, js, "ingest-slack", "ingest-slack/normalize", "", []byte(`{"type":"odd"}`), hdr, errors.New("unknown event type")); err != nil {
			t.Fatal(err)
		}
	}
	if n := streamMsgs(ctx, t, js, bus.StreamDeadLetter); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}
	dl := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("ingest-slack"))
	if dl.Header.Get(bus.HeaderErrorLocation) != "ingest-slack/normalize" || dl.Header.Get(bus.HeaderError) != "unknown event type" ||
		dl.Header.Get("X-Slack-Signature") != "v0=abc" || dl.Header.Get("Nats-Expected-Stream") != "" {
		t.Errorf("headers %v", dl.Header)
	}
}

func TestConnectLogsWithoutCredentials(t *testing.T) {
	needNATS(t)
	srv := bustest.Start(t)
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	url := strings.Replace(srv.URL(), "nats://", "nats://alice:hunter2@", 1)
	nc, js, err := bus.Connect(testCtx(t), url, "connect-test", logger)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := js.AccountInfo(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	eventually(t, "reconnect logged", func() bool {
		return nc.IsConnected() && strings.Contains(logs.String(), "nats reconnected")
	})
	nc.Close()
	if !strings.Contains(logs.String(), "nats disconnected") {
		t.Errorf("disconnect not logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("password in logs:\n%s", logs.String())
	}

	// Nothing listening: Connect keeps trying until ctx is done.
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, _, err = bus.Connect(ctx, url, "down", logger)
	if !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("connect to a stopped server: %v", err)
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	needNATS(t)
	_, js := bustest.StartJetStream(t)
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"service": "triage"}, reg)
	for _, d := range []string{"a", "b"} {
		newConsumer(t, js, bus.ConsumerConfig{Durable: d}, wrapped)
		bus.NewPublisher(js, "s"+d, bus.WithRegisterer(wrapped))
	}
	other := prometheus.WrapRegistererWith(prometheus.Labels{"service": "notifier"}, reg)
	newConsumer(t, js, bus.ConsumerConfig{Durable: "c"}, other)
	bus.NewPublisher(js, "sc", bus.WithRegisterer(other))
}

// counter sums a counter family's samples whose result label is result.
func counter(t *testing.T, g prometheus.Gatherer, name, result string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// lockedBuffer is a log sink safe to read while NATS callbacks write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestDeadLetterTooLargeKeepsReason(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	data := bytes.Repeat([]byte("z"), int(js.Conn().MaxPayload())-64)
	if err := bus.DeadLetter(ctx, js, "ingest-email", "ingest-email/parse", "support.inbound.email", data, nil, errors.New("no From header")); err != nil {
		t.Fatal(err)
	}
	dl := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("ingest-email"))
	if len(dl.Data) != 0 || dl.Header.Get(bus.HeaderDataOmitted) != strconv.Itoa(len(data)) || dl.Header.Get(bus.HeaderError) != "no From header" {
		t.Errorf("oversized dead letter: %d bytes, headers %v", len(dl.Data), dl.Header)
	}
}

// A message whose earlier deliveries ended without an outcome (the process
// died mid-handler) is dead-lettered once past MaxDeliver without running
// the handler again.
func TestConsumerDeadLettersUnsettledRedeliveries(t *testing.T) {
	needNATS(t)
	ctx := testCtx(t)
	_, js := bustest.StartJetStream(t)
	c := newConsumer(t, js, bus.ConsumerConfig{Durable: "crashy", MaxDeliver: 2}, nil)
	if _, err := js.CreateOrUpdateConsumer(ctx, bus.StreamInbound, c.JetStreamConfig()); err != nil {
		t.Fatal(err)
	}
	publish(ctx, t, js, bus.InboundSubject("slack"), "poison", "x")
	raw, err := js.Consumer(ctx, bus.StreamInbound, "crashy")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // two deliveries that end without ack: a crash each time
		m, err := raw.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	consumerRun(t, c, func(ctx context.Context, msg jetstream.Msg) error {
		calls.Add(1)
		return nil
	})
	eventually(t, "a dead letter", func() bool { return streamMsgs(ctx, t, js, bus.StreamDeadLetter) == 1 })
	eventually(t, "the original acked", func() bool { return settled(ctx, t, js, bus.StreamInbound, "crashy") })
	if n := calls.Load(); n != 0 {
		t.Errorf("handler called %d times, want 0", n)
	}
	dl := lastMsg(ctx, t, js, bus.StreamDeadLetter, bus.DeadLetterSubject("test"))
	if got := dl.Header.Get(bus.HeaderDeliveryCount); got != "3" {
		t.Errorf("delivery_count %q, want 3", got)
	}
	if got := dl.Header.Get(bus.HeaderError); !strings.Contains(got, "without an outcome") {
		t.Errorf("error %q", got)
	}
}
