package bus_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/logging"
)

// TestRunStoppedBeforeItStartedIsNotAnError: a service stopped while its
// consumer is still being created shuts down cleanly.
func TestRunStoppedBeforeItStartedIsNotAnError(t *testing.T) {
	if testing.Short() {
		t.Skip("needs an embedded NATS server")
	}
	_, js := bustest.StartJetStream(t)
	c, err := bus.NewConsumer(js, bus.ConsumerConfig{Service: "test", Stream: bus.StreamActions, Durable: "stopped-early"}, logging.Discard(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Run(ctx, func(context.Context, jetstream.Msg) error { return nil }); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}
