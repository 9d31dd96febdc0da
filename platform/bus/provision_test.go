package bus

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus/embedded"
)

// TestProvisionTwiceChangesNothing: the second run touches no stream and
// the configurations stay as created; a changed setting is applied.
func TestProvisionTwiceChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	changed, err := provision(ctx, js, StreamsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 7 {
		t.Fatalf("first run changed %v, want all seven streams", changed)
	}
	before := streamInfos(ctx, t, js)

	changed, err = provision(ctx, js, StreamsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 0 {
		t.Fatalf("second run changed %v", changed)
	}
	if err := Provision(ctx, js, StreamsConfig{}); err != nil {
		t.Fatal(err)
	}
	after := streamInfos(ctx, t, js)
	for name, b := range before {
		a := after[name]
		if !a.Created.Equal(b.Created) {
			t.Errorf("%s recreated", name)
		}
		if !sameStreamConfig(a.Config, b.Config) || a.Config.MaxMsgs != b.Config.MaxMsgs || a.Config.MaxMsgSize != b.Config.MaxMsgSize {
			t.Errorf("%s config changed:\n%+v\n%+v", name, b.Config, a.Config)
		}
	}

	changed, err = provision(ctx, js, StreamsConfig{MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(changed)
	if len(changed) != 7 {
		t.Fatalf("a new MaxAge changed %v, want all seven", changed)
	}
	if got := streamInfos(ctx, t, js)[StreamInbound].Config.MaxAge; got != time.Hour {
		t.Errorf("MaxAge not updated: %v", got)
	}
}

func streamInfos(ctx context.Context, t *testing.T, js jetstream.JetStream) map[string]*jetstream.StreamInfo {
	t.Helper()
	out := map[string]*jetstream.StreamInfo{}
	for _, c := range StreamConfigs(StreamsConfig{}) {
		s, err := js.Stream(ctx, c.Name)
		if err != nil {
			t.Fatalf("stream %s: %v", c.Name, err)
		}
		out[c.Name] = s.CachedInfo()
	}
	return out
}
