package bustest

import (
	"context"
	"os"
	"testing"

	"github.com/sidekickhq/sidekick/platform/bus"
)

func TestMain(m *testing.M) {
	ServeChild()
	os.Exit(m.Run())
}

func TestStartProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server process")
	}
	js := StartProcess(t)
	if name := js.Conn().ConnectedServerName(); name != "bustest-process" {
		t.Fatalf("connected to %q, not the child's server", name)
	}
	ctx := context.Background()
	if _, err := js.Publish(ctx, bus.InboundSubject("slack"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 1 {
		t.Fatalf("stream %s: %+v %v", bus.StreamInbound, info, err)
	}
}
