package notifier

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
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
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// benchOpened is conversation i opening: a Subscriber conversation, which
// the default policy answers with one ping to the hero. Like triage's
// OPENED events it carries its great deadline (next_deadline_at at level
// GREAT), which the notifier records before the escalation starts.
func benchOpened(i int, at time.Time) *supportv1.ConversationEvent {
	id := fmt.Sprintf("bench-%d", i)
	ev := notifiertest.Opened("ev-"+id, "conv-"+id, at)
	ev.Conversation.Tier = supportv1.Tier_TIER_SUBSCRIBER
	ev.Conversation.DeadlineLevel = supportv1.DeadlineLevel_DEADLINE_LEVEL_GREAT
	ev.Conversation.NextDeadlineAt = timestamppb.New(at.Add(15 * time.Minute))
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

var (
	benchRate  = flag.Int("notifier.rate", 500, "BenchmarkEventToSlack: conversations opened a second")
	benchConc  = flag.Int("notifier.concurrency", 0, "BenchmarkEventToSlack: SIDEKICK_NOTIFIER_CONCURRENCY of the notifier variant; 0: the service's default")
	benchPool  = flag.Int("notifier.pool", PoolSize, "BenchmarkEventToSlack: pool_max_conns of the notifier's database URL (default: the service's PoolSize); 0: pgxpool's default (4 on two cores)")
	benchEvery = flag.Duration("notifier.burst-every", time.Second, "BenchmarkEventToSlack: SIDEKICK_NOTIFIER_BURST_EVERY of the notifier variant")
)

// BenchmarkEventToSlack opens b.N conversations at a steady rate
// (-notifier.rate, 500 a second; -benchtime 30000x is a minute of it), each
// pinging the one hero, and measures the first ping of each: the time from
// the publish of its OPENED event to its delivery (the Slack call that
// first showed it returned: the post of its burst's message, or a
// rewrite), p50, p99 and max, with the real clock. Each conversation is
// the two events triage writes for a new one, OPENED and TRIAGED, with
// its great deadline. Beside it, in the same run, the floor: the same
// events at the same rate consumed from the same stream by a bare handler
// that posts each OPENED one to the same fake Slack (chat.postMessage)
// and acknowledges the rest, latency to the fake's receipt.
//
// That floor posts a hundred messages a second into one person's DM,
// which real Slack refuses (about one message a second in a channel,
// https://api.slack.com/methods/chat.postMessage#rate_limiting). The
// second floor keeps to that pace: a bare consumer of the same events
// posts the ids it has collected to the hero's DM at most once per
// -notifier.burst-every, the first at once, and acknowledges each event
// as it collects it (nothing stored): the least any sender can take for
// one hero on real Slack, which the notifier's burst pace is measured
// against.
//
// The notifier coalesces the pings into bursts (SIDEKICK_NOTIFIER_BURST_*,
// rewrites at most once per -notifier.burst-every, a second as deployed:
// Slack's chat.update allows about that), so its latency is about half the
// rewrite interval by design; "drain-ms" is how long after the last publish
// the last delivery came (a backlog that grew shows there). Run it with
// SIDEKICK_TEST_FSYNC=on for PostgreSQL as deployed.
func BenchmarkEventToSlack(b *testing.B) {
	b.Run("floor-bare-consume-post", benchFloor)
	b.Run("floor-slack-pace", benchPacedFloor)
	b.Run("notifier", benchEventToSlack)
}

// publishAtRate publishes conversations 0 to b.N-1 opening, at rate a
// second, and returns when each was published.
func publishAtRate(b *testing.B, pub *bus.Publisher, rate int) map[string]time.Time {
	b.Helper()
	ctx := context.Background()
	sent := make(map[string]time.Time, b.N)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := range b.N {
		<-tick.C
		ev := benchOpened(i, time.Now())
		ev.OccurredAt = timestamppb.Now()
		sent[ev.GetConversation().GetId()] = time.Now()
		if _, err := pub.Publish(ctx, bus.Event{Subject: bus.ConversationSubject("opened"), ID: ev.GetId(), Message: ev}); err != nil {
			b.Fatal(err)
		}
		// Triage writes a TRIAGED event beside every OPENED one (the
		// classifier's suggestion, or why it made none), with the same
		// snapshot of the conversation.
		tr := benchTriaged(ev)
		if _, err := pub.Publish(ctx, bus.Event{Subject: bus.ConversationSubject("triaged"), ID: tr.GetId(), Message: tr}); err != nil {
			b.Fatal(err)
		}
	}
	return sent
}

// benchTriaged is the TRIAGED event triage writes with opened.
func benchTriaged(opened *supportv1.ConversationEvent) *supportv1.ConversationEvent {
	return &supportv1.ConversationEvent{
		Id: "tr-" + opened.GetId(), Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_TRIAGED,
		OccurredAt: opened.GetOccurredAt(), Conversation: opened.GetConversation(), Actor: "system",
		Reason: "no suggestion (unsure)",
	}
}

// reportLatency reports the percentiles of lat and the drain, the time
// from the last publish to the last arrival.
func reportLatency(b *testing.B, lat []time.Duration, lastSent, lastArrived time.Time) {
	b.Helper()
	if len(lat) != b.N {
		b.Fatalf("matched %d of %d conversations", len(lat), b.N)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(lastArrived.Sub(lastSent).Microseconds())/1000, "drain-ms")
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		b.Logf("load average: %s", strings.TrimSpace(string(load)))
	}
}

// sep is what joins a parameter to url.
func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}

// consumeOpened consumes the conversation stream with a durable of its own,
// handing each OPENED event's conversation id to opened, which acknowledges
// it when it returns; other events are acknowledged at once.
func consumeOpened(b *testing.B, js jetstream.JetStream, durable string, opened func(id string)) {
	b.Helper()
	cons, err := js.CreateOrUpdateConsumer(context.Background(), bus.StreamConversations, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: bus.DefaultMaxAckPending,
	})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		var ev supportv1.ConversationEvent
		if err := bus.Decode(msg, &ev); err != nil {
			b.Error(err)
			return
		}
		if ev.GetType() == supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED {
			opened(ev.GetConversation().GetId())
		}
		_ = msg.Ack()
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
}

// postToHero posts text to the hero's DM on fake Slack.
func postToHero(client *http.Client, fake *notifiertest.Slack, text string) error {
	resp, err := client.PostForm(fake.URL()+"chat.postMessage", url.Values{
		"token": {"xoxb-floor"}, "channel": {"U0ALICE"}, "text": {text}})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// benchFloor: a bare consumer of the same stream posts each event to the
// fake Slack.
func benchFloor(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	fake := notifiertest.StartSlack(b)
	client := &http.Client{}
	consumeOpened(b, js, "floor", func(id string) {
		if err := postToHero(client, fake, id); err != nil {
			b.Error(err)
		}
	})
	pub := bus.NewPublisher(js, "bench/triage")
	b.ResetTimer()
	sent := publishAtRate(b, pub, *benchRate)
	lastSent := time.Now()
	notifiertest.Eventually(b, "every event posted", func() bool { return len(fake.Calls("chat.postMessage")) == b.N })
	b.StopTimer()
	var lat []time.Duration
	var last time.Time
	for _, c := range fake.Calls("chat.postMessage") {
		lat = append(lat, c.At.Sub(sent[c.Form.Get("text")]))
		last = c.At
	}
	reportLatency(b, lat, lastSent, last)
}

// benchPacedFloor: a bare consumer of the same stream posts what it has
// collected to the hero's DM at most once per -notifier.burst-every.
func benchPacedFloor(b *testing.B) {
	_, js := bustest.StartJetStream(b)
	fake := notifiertest.StartSlack(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu      sync.Mutex
		pending []string
		wake    = make(chan struct{}, 1)
	)
	consumeOpened(b, js, "paced-floor", func(id string) {
		mu.Lock()
		pending = append(pending, id)
		mu.Unlock()
		select {
		case wake <- struct{}{}:
		default:
		}
	})
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		client := &http.Client{}
		var last time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			if wait := time.Until(last.Add(*benchEvery)); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			mu.Lock()
			ids := pending
			pending = nil
			mu.Unlock()
			if len(ids) == 0 {
				continue
			}
			last = time.Now()
			if err := postToHero(client, fake, strings.Join(ids, "\n")); err != nil {
				b.Error(err)
				return
			}
		}
	}()
	pub := bus.NewPublisher(js, "bench/triage")
	b.ResetTimer()
	sent := publishAtRate(b, pub, *benchRate)
	lastSent := time.Now()
	shown := func() (lat []time.Duration, last time.Time) {
		for _, c := range fake.Calls("chat.postMessage") {
			for id := range strings.SplitSeq(c.Form.Get("text"), "\n") {
				lat = append(lat, c.At.Sub(sent[id]))
			}
			last = c.At
		}
		return lat, last
	}
	notifiertest.Eventually(b, "every event posted", func() bool { lat, _ := shown(); return len(lat) == b.N })
	b.StopTimer()
	cancel()
	<-posted
	lat, last := shown()
	b.ReportMetric(float64(len(fake.Calls("chat.postMessage"))), "posts")
	reportLatency(b, lat, lastSent, last)
}

// benchEventToSlack: the notifier, coalescing the hero's pings.
func benchEventToSlack(b *testing.B) {
	h := newHarness(b)
	fake := notifiertest.StartSlack(b)
	cfg := testConfig()
	cfg.SlackBotToken, cfg.SlackAPIURL = "xoxb-bench", fake.URL()
	cfg.Concurrency = *benchConc
	if cfg.Concurrency == 0 {
		// The service's default, read as the service reads it.
		var defaults Config
		if err := config.Load(&defaults, nil); err != nil {
			b.Fatal(err)
		}
		cfg.Concurrency = defaults.Concurrency
	}
	cfg.RateLimit = -1
	cfg.BurstWindow, cfg.BurstEvery = time.Minute, *benchEvery
	cfg.SweepInterval, cfg.RelayInterval, cfg.TickInterval = time.Second, time.Second, time.Second
	deps := h.deps
	deps.Clock, deps.Console, deps.Logger = clock.Real(), nil, nil
	if *benchPool > 0 {
		url := pgtest.NewDatabase(b)
		if err := pg.Migrate(context.Background(), url, Schema, Migrations(), nil); err != nil {
			b.Fatal(err)
		}
		pool, err := pg.Connect(context.Background(), fmt.Sprintf("%s%spool_max_conns=%d", url, sep(url), *benchPool), Schema)
		if err != nil {
			b.Fatal(err)
		}
		defer pool.Close()
		h.pool, deps.Pool = pool, pool
	}
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
	// The next pings start a burst of their own.
	if _, err := h.pool.Exec(ctx, `UPDATE bursts SET status = 'closed'`); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	sent := publishAtRate(b, h.pub, *benchRate)
	lastSent := time.Now()
	deadline := time.Now().Add(time.Duration(b.N / *benchRate + 1) * 10 * time.Second)
	for {
		var n int
		if err := h.pool.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE status = 'delivered'`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n == b.N+1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivered after %s", n-1, b.N, time.Since(lastSent))
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	rows, err := h.pool.Query(ctx, `SELECT n.conversation_id, d.delivered_at FROM deliveries d JOIN notifications n ON n.id = d.notification_id`)
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	var last time.Time
	for rows.Next() {
		var conv string
		var at time.Time
		if err := rows.Scan(&conv, &at); err != nil {
			b.Fatal(err)
		}
		if t0, ok := sent[conv]; ok {
			lat = append(lat, at.Sub(t0))
			if at.After(last) {
				last = at
			}
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(fake.Calls("chat.postMessage"))-1), "posts")
	b.ReportMetric(float64(len(fake.Calls("chat.update"))), "updates")
	reportLatency(b, lat, lastSent, last)
}
