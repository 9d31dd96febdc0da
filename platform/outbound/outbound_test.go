package outbound_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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
	srv := bustest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := bus.Provision(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	pub := bus.NewPublisher(js, "test")
	r, err := outbound.New(outbound.Config{Channel: "github", Service: "test", Source: "test", Settle: time.Millisecond,
		MaxDeliver: 2, Backoff: []time.Duration{10 * time.Millisecond}}, ch, outbound.Deps{JS: js, Publisher: pub})
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
