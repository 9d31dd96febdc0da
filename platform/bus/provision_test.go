package bus

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/bus/embedded"
)

// TestProvisionTwiceChangesNothing: the second run touches no stream and
// the configurations stay as created; a changed setting is applied.
func TestProvisionTwiceChangesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	js := startJetStream(t)
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

// startJetStream starts an embedded server for one test.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
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
	return js
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

// TestFullStreamRefusesNewMessages: a stream at its byte limit refuses a
// publish (the sender retries) and keeps every message it has; the streams
// without a limit of their own take MaxBytes.
func TestFullStreamRefusesNewMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cfg := StreamsConfig{MaxBytes: 1 << 20, StreamMaxBytes: map[string]int64{StreamInbound: 8 << 10}}
	if err := Provision(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	infos := streamInfos(ctx, t, js)
	for name, info := range infos {
		want := int64(1 << 20)
		if name == StreamInbound {
			want = 8 << 10
		}
		if info.Config.MaxBytes != want || info.Config.Discard != jetstream.DiscardNew {
			t.Errorf("%s: MaxBytes %d discard %v, want %d and DiscardNew", name, info.Config.MaxBytes, info.Config.Discard, want)
		}
	}

	payload := make([]byte, 1024)
	accepted := 0
	var refused error
	for i := range 32 {
		if _, err := js.Publish(ctx, InboundSubject("email"), payload, jetstream.WithMsgID(fmt.Sprint("m", i))); err != nil {
			refused = err
			break
		}
		accepted++
	}
	if refused == nil {
		t.Fatalf("32 KiB published into an 8 KiB stream without a refusal")
	}
	t.Logf("accepted %d messages of 1 KiB, then: %v", accepted, refused)
	s, err := js.Stream(ctx, StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq != 1 || info.State.Msgs != uint64(accepted) {
		t.Errorf("stream holds messages %d.. (%d of them), want all %d accepted from 1 on", info.State.FirstSeq, info.State.Msgs, accepted)
	}
}

func TestParseStreamMaxBytes(t *testing.T) {
	got, err := ParseStreamMaxBytes(" SUPPORT_INBOUND=4GiB, SUPPORT_DEADLETTER = 512MiB,SUPPORT_NOTIFY=1000,SUPPORT_ACTIONS=0,")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{StreamInbound: 4 << 30, StreamDeadLetter: 512 << 20, StreamNotify: 1000, StreamActions: 0}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := (StreamsConfig{MaxBytes: 7, StreamMaxBytes: got}); got.maxBytes(StreamActions) != -1 || got.maxBytes(StreamRotation) != 7 {
		t.Errorf("an explicit 0 must mean unlimited (-1), an unnamed stream MaxBytes: %d, %d", got.maxBytes(StreamActions), got.maxBytes(StreamRotation))
	}
	for _, bad := range []string{"SUPPORT_INBOND=1GiB", "SUPPORT_INBOUND", "SUPPORT_INBOUND=1GB", "SUPPORT_INBOUND=-1", "SUPPORT_INBOUND=99999999TiB"} {
		if _, err := ParseStreamMaxBytes(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestRegisterStreamLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterStreamLimits(reg, StreamsConfig{StreamMaxBytes: map[string]int64{StreamInbound: 4 << 30}}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got = append(got, fmt.Sprintf("%s{%s} %g", mf.GetName(), m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
		}
	}
	if want := []string{"sidekick_bus_stream_max_bytes{SUPPORT_INBOUND} 4.294967296e+09"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v (unlimited streams absent)", got, want)
	}
}
