package outbound_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/outbound"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// channel is a hand-written fake Channel: its function fields decide.
type channel struct {
	mu    sync.Mutex
	send  func(m *supportv1.OutboundMessage) (outbound.Sent, error)
	find  func(m *supportv1.OutboundMessage) (outbound.Sent, bool, error)
	sends int
	finds int
}

var _ outbound.Channel = (*channel)(nil)

func (c *channel) Send(ctx context.Context, m *supportv1.OutboundMessage, reached func(context.Context) error) (outbound.Sent, error) {
	if err := reached(ctx); err != nil {
		return outbound.Sent{}, err
	}
	c.mu.Lock()
	c.sends++
	c.mu.Unlock()
	return c.send(m)
}

func (c *channel) Find(_ context.Context, m *supportv1.OutboundMessage, _ time.Time) (outbound.Sent, bool, error) {
	c.mu.Lock()
	c.finds++
	c.mu.Unlock()
	return c.find(m)
}

func (c *channel) counts() (sends, finds int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sends, c.finds
}

// start runs a Runner for "github" over ch and returns a function that
// publishes a message and waits for the receipt of its retry.
func start(t *testing.T, ch outbound.Channel) (func(m *supportv1.OutboundMessage) *supportv1.OutboundReceipt, jetstream.JetStream, *bus.Publisher) {
	t.Helper()
	return startWith(t, ch, 0)
}

// startWith is start with a ledger of maxBytes (0: the default).
func startWith(t *testing.T, ch outbound.Channel, maxBytes int64) (func(m *supportv1.OutboundMessage) *supportv1.OutboundReceipt, jetstream.JetStream, *bus.Publisher) {
	t.Helper()
	srv := bustest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := bus.Provision(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, "test")
	r, err := outbound.New(outbound.Config{Channel: "github", Service: "test", Source: "test", Settle: time.Millisecond,
		MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}, MaxBytes: maxBytes}, ch, outbound.Deps{JS: js, Publisher: pub})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, bus.StreamOutbound)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return func(m *supportv1.OutboundMessage) *supportv1.OutboundReceipt {
		t.Helper()
		if _, err := pub.Publish(ctx, bus.Event{Subject: bus.OutboundSubject("github"), ID: outbound.RequestID(m), Message: m}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			msg, err := stream.GetLastMsgForSubject(ctx, bus.OutboundReceiptSubject("github"))
			if err == nil && msg.Header.Get(bus.HeaderID) == outbound.ReceiptID(m.GetId(), m.GetRetry()) {
				rc := new(supportv1.OutboundReceipt)
				if err := proto.Unmarshal(msg.Data, rc); err != nil {
					t.Fatal(err)
				}
				return rc
			}
			if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no receipt for %s retry %d", m.GetId(), m.GetRetry())
		return nil
	}, js, pub
}

// settled waits until the runner's consumer has acked everything.
func settled(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	for range 3000 {
		c, err := js.Consumer(ctx, bus.StreamOutbound, "test-outbound-github")
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the runner did not finish its messages")
}

func reply(id string, retry int32) *supportv1.OutboundMessage {
	return &supportv1.OutboundMessage{Id: id, Channel: supportv1.Channel_CHANNEL_GITHUB, Text: "hi", Retry: retry,
		Target: &supportv1.OutboundMessage_Github{Github: &supportv1.GitHubTarget{Repository: "acme/app", Kind: supportv1.GitHubTarget_KIND_ISSUE, Number: 1}}}
}

// TestRetryOfAFailureThatMayHaveArrivedLooksFirst: a reply whose
// attempts timed out (they may have reached GitHub) is reported failed,
// not permanent; the retry a person asks for looks at the provider before
// sending, and finds it there.
func TestRetryOfAFailureThatMayHaveArrivedLooksFirst(t *testing.T) {
	ch := &channel{
		send: func(*supportv1.OutboundMessage) (outbound.Sent, error) {
			return outbound.Sent{}, outbound.Retryable("timeout reading GitHub's answer", nil)
		},
		// GitHub shows the comment only by the time of the retry.
		find: func(m *supportv1.OutboundMessage) (outbound.Sent, bool, error) {
			return outbound.Sent{ProviderID: "77", Permalink: "https://github.com/acme/app/issues/1#issuecomment-77"}, m.GetRetry() == 1, nil
		},
	}
	send, _, _ := start(t, ch)
	rc := send(reply("r1", 0))
	if rc.GetStatus() != supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED || rc.GetPermanent() || rc.GetReason() != "timeout reading GitHub's answer" {
		t.Fatalf("first receipt %v, want a failure that is not permanent", rc)
	}
	// Two deliveries (MaxDeliver 2); the second found the first
	// "reached", asked, found nothing, and sent.
	if sends, finds := ch.counts(); sends != 2 || finds != 1 {
		t.Errorf("after the first request: %d sends, %d finds; want 2 and 1", sends, finds)
	}
	rc = send(reply("r1", 1))
	if rc.GetStatus() != supportv1.OutboundStatus_OUTBOUND_STATUS_SENT || !rc.GetRecovered() || rc.GetProviderId() != "77" || rc.GetRetry() != 1 {
		t.Fatalf("retry receipt %v, want SENT, recovered, comment 77", rc)
	}
	if sends, finds := ch.counts(); sends != 2 || finds != 2 {
		t.Errorf("after the retry: %d sends, %d finds; want it to ask (2) and not send again (2)", sends, finds)
	}
}

// TestRefusalIsRecordedOnce: a permanent refusal is reported at once, and
// a redelivery of the same request reports it again without sending.
func TestRefusalIsRecordedOnce(t *testing.T) {
	ch := &channel{
		send: func(*supportv1.OutboundMessage) (outbound.Sent, error) {
			return outbound.Sent{}, outbound.Permanent("HTTP 410: Gone", nil)
		},
		find: func(*supportv1.OutboundMessage) (outbound.Sent, bool, error) { return outbound.Sent{}, false, nil },
	}
	send, js, pub := start(t, ch)
	rc := send(reply("r2", 0))
	if rc.GetStatus() != supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED || !rc.GetPermanent() || rc.GetReason() != "HTTP 410: Gone" {
		t.Fatalf("receipt %v", rc)
	}
	// The same request delivered again (under another Nats-Msg-Id, so
	// the duplicate window lets it through), as after a lost ack.
	if _, err := pub.Publish(context.Background(), bus.Event{Subject: bus.OutboundSubject("github"), ID: "r2-again", Message: reply("r2", 0)}); err != nil {
		t.Fatal(err)
	}
	settled(t, js)
	if sends, finds := ch.counts(); sends != 1 || finds != 0 {
		t.Errorf("%d sends and %d finds, want the refusal reported from the ledger alone", sends, finds)
	}
}

// TestFullLedgerSendsNothingUnrecorded: the ledger bucket has a byte
// limit; once it is full a reply is not sent (its attempt could not be
// recorded, so a redelivery could not tell it had gone), and it is
// reported failed, with a retry, instead of waiting for ever. No reply is
// sent twice: one whose final record did not fit is found at the provider
// on redelivery.
func TestFullLedgerSendsNothingUnrecorded(t *testing.T) {
	var mu sync.Mutex
	times := map[string]int{} // reply id: how often the provider got it
	ch := &channel{
		send: func(m *supportv1.OutboundMessage) (outbound.Sent, error) {
			mu.Lock()
			defer mu.Unlock()
			times[m.GetId()]++
			return outbound.Sent{ProviderID: "c-" + m.GetId()}, nil
		},
		find: func(m *supportv1.OutboundMessage) (outbound.Sent, bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return outbound.Sent{ProviderID: "c-" + m.GetId()}, times[m.GetId()] > 0, nil
		},
	}
	send, js, _ := startWith(t, ch, 2048)
	var refused string
	for i := 0; refused == "" && i < 100; i++ {
		id := fmt.Sprintf("full-%d", i)
		rc := send(reply(id, 0))
		mu.Lock()
		n := times[id]
		mu.Unlock()
		switch {
		case rc.GetStatus() == supportv1.OutboundStatus_OUTBOUND_STATUS_SENT && n != 1:
			t.Errorf("%s: SENT, and the provider got it %d times", id, n)
		case rc.GetStatus() == supportv1.OutboundStatus_OUTBOUND_STATUS_FAILED:
			refused = id
			if n != 0 || rc.GetPermanent() || rc.GetReason() == "" {
				t.Errorf("%s, refused by the full ledger: provider got it %d times, receipt %v; want not sent, failed with a reason and a retry", id, n, rc)
			}
		}
	}
	if refused == "" || refused == "full-0" {
		t.Fatalf("first refused reply %q: the 2 KiB ledger never filled, or refused from the start", refused)
	}
	// The runner made the bucket (as a provisioning step would) with the
	// limit.
	kv, err := js.KeyValue(context.Background(), "OUTBOUND_GITHUB")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.MaxBytes; got != 2048 {
		t.Fatalf("ledger bucket MaxBytes %d, want 2048", got)
	}
}

// TestLedgerLimitsPublished: every channel's ledger limit is published
// beside the streams', so the alert that warns before a stream is full
// covers the ledgers; unset, it is the default the ledgers get.
func TestLedgerLimitsPublished(t *testing.T) {
	for _, tc := range []struct{ set, want int64 }{{0, outbound.DefaultLedgerMaxBytes}, {2048, 2048}} {
		reg := prometheus.NewRegistry()
		if err := outbound.RegisterLedgerLimits(reg, tc.set); err != nil {
			t.Fatal(err)
		}
		for _, stream := range []string{"KV_OUTBOUND_SLACK", "KV_OUTBOUND_EMAIL", "KV_OUTBOUND_GITHUB"} {
			if got := gauge(t, reg, "sidekick_bus_stream_max_bytes", stream); got != float64(tc.want) {
				t.Errorf("set %d: sidekick_bus_stream_max_bytes{stream=%s} = %v, want %d", tc.set, stream, got, tc.want)
			}
		}
	}
}

// gauge is the value of the gauge name whose one label has value label.
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s} in the registry", name, label)
	return 0
}
