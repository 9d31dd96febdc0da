package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidekickhq/sidekick/platform/bus"
)

// ServeReplay serves replays for service with replay until the test ends,
// as the running service would (see bus.ServeReplay).
func ServeReplay(t testing.TB, nc *nats.Conn, service string, replay bus.ReplayFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := bus.ServeReplay(ctx, nc, service, time.Second, replay)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sub.Drain()
		cancel()
	})
}
