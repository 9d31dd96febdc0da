package notifier

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// benchOpened is conversation i opening: a Subscriber conversation, which
// the default policy answers with one ping to the hero.
func benchOpened(i int, at time.Time) *supportv1.ConversationEvent {
	id := fmt.Sprintf("bench-%d", i)
	ev := notifiertest.Opened("ev-"+id, "conv-"+id, at)
	ev.Conversation.Tier = supportv1.Tier_TIER_SUBSCRIBER
	return ev
}

// countingChannel is the fast fake channel: it counts what it is handed.
type countingChannel struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
	want int
}

func (c *countingChannel) Name() string { return "counting" }

func (c *countingChannel) Send(_ context.Context, m notify.Message) (notify.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == c.want {
		close(c.done)
	}
	return notify.Receipt{Ref: m.DeliveryID}, nil
}

// BenchmarkNotifications measures, in one run, conversation events per
// second turned into delivered notifications beside raw JetStream:
//
//   - raw-jetstream-consume: the same OPENED events pulled from
//     SUPPORT_CONVERSATIONS and acked, nothing else;
//   - notifier: consumed, matched to the Subscriber policy, the escalation
//     recorded with its first step (the hero resolved over gRPC, the
//     notification and delivery recorded), handed to a fast fake channel,
//     the delivery recorded with its support.notify event.
//
// The events are in the stream before the clock starts.
func BenchmarkNotifications(b *testing.B) {
	b.Run("raw-jetstream-consume", benchRawConsume)
	for _, conc := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("notifier/concurrency=%d", conc), func(b *testing.B) { benchNotifier(b, conc) })
	}
}

func publishOpened(b *testing.B, js jetstream.JetStream, n int) {
	b.Helper()
	pub := bus.NewPublisher(js, "bench/triage")
	now := time.Now()
	for i := range n {
		ev := benchOpened(i, now)
		msg, err := pub.Msg(bus.Event{Subject: bus.ConversationSubject("opened"), ID: ev.GetId(), Message: ev})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing the events took over a minute")
	}
}

func benchRawConsume(b *testing.B) {
	if testing.Short() {
		b.Skip("needs NATS")
	}
	_, js := bustest.StartJetStream(b)
	publishOpened(b, js, b.N)
	cons, err := js.CreateOrUpdateConsumer(context.Background(), bus.StreamConversations, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: bus.DefaultMaxAckPending,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	it, err := cons.Messages()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		msg, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		var ev supportv1.ConversationEvent
		if err := bus.Decode(msg, &ev); err != nil {
			b.Fatal(err)
		}
		if err := msg.Ack(); err != nil {
			b.Fatal(err)
		}
	}
	it.Stop()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func benchNotifier(b *testing.B, concurrency int) {
	h := newHarness(b)
	publishOpened(b, h.js, b.N)
	ch := &countingChannel{done: make(chan struct{}), want: b.N}
	cfg := testConfig()
	cfg.Concurrency = concurrency
	cfg.RateLimit = -1 // one hero gets every ping: no limit here
	cfg.SweepInterval, cfg.RelayInterval, cfg.TickInterval = time.Second, time.Second, time.Second
	deps := h.deps
	deps.Clock, deps.Console, deps.Channels = clock.Real(), nil, []Channel{ch}
	deps.Logger = nil
	s, err := New(cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- s.Run(ctx) }()
	select {
	case <-ch.done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("delivered %d of %d", ch.n, b.N)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "notifications/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkEventToSlack publishes OPENED events at a steady rate (100 a
// second) and measures the time from each publish to the fake Slack
// receiving its chat.postMessage: p50, p99 and max, with the real clock.
// b.N events are sent, so -benchtime 500x is five seconds of traffic.
func BenchmarkEventToSlack(b *testing.B) {
	const rate = 100
	h := newHarness(b)
	fake := notifiertest.StartSlack(b)
	cfg := testConfig()
	cfg.SlackBotToken, cfg.SlackAPIURL = "xoxb-bench", fake.URL()
	cfg.Concurrency = 4
	cfg.RateLimit = -1
	cfg.SweepInterval, cfg.RelayInterval, cfg.TickInterval = time.Second, time.Second, time.Second
	deps := h.deps
	deps.Clock, deps.Console, deps.Logger = clock.Real(), nil, nil
	s, err := New(cfg, deps)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	// Warm up: the consumer exists and the connections are open.
	warm := benchOpened(-1, time.Now())
	if _, err := h.pub.Publish(ctx, bus.Event{Subject: bus.ConversationSubject("opened"), ID: warm.GetId(), Message: warm}); err != nil {
		b.Fatal(err)
	}
	notifiertest.Eventually(b, "the warm-up message", func() bool { return len(fake.Calls("chat.postMessage")) == 1 })

	sent := make(map[string]time.Time, b.N)
	tick := time.NewTicker(time.Second / rate)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		ev := benchOpened(i, time.Now())
		ev.OccurredAt = timestamppb.Now()
		sent[ev.GetConversation().GetId()] = time.Now()
		if _, err := h.pub.Publish(ctx, bus.Event{Subject: bus.ConversationSubject("opened"), ID: ev.GetId(), Message: ev}); err != nil {
			b.Fatal(err)
		}
	}
	notifiertest.Eventually(b, "every message on Slack", func() bool { return len(fake.Calls("chat.postMessage")) == b.N+1 })
	b.StopTimer()
	var lat []time.Duration
	for _, c := range fake.Calls("chat.postMessage") {
		blocks := c.Form.Get("blocks")
		i := strings.Index(blocks, "conv:")
		if i < 0 {
			b.Fatalf("no conversation in %s", blocks)
		}
		conv, _, _ := strings.Cut(blocks[i+len("conv:"):], "|")
		if at, ok := sent[conv]; ok {
			lat = append(lat, c.At.Sub(at))
		}
	}
	if len(lat) != b.N {
		b.Fatalf("matched %d of %d messages", len(lat), b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}
