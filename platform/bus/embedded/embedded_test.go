package embedded_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
)

func TestOptions(t *testing.T) {
	if _, err := embedded.Options(embedded.Config{}); err == nil {
		t.Error("missing StoreDir accepted")
	}
	if _, err := embedded.Options(embedded.Config{StoreDir: "x", Cluster: &embedded.Cluster{}}); err == nil {
		t.Error("cluster without name accepted")
	}
	o, err := embedded.Options(embedded.Config{StoreDir: "x", Port: -1, Cluster: &embedded.Cluster{Name: "c", Port: -1, Routes: []string{"nats-route://127.0.0.1:6222"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.JetStream || o.Host != "127.0.0.1" || o.ServerName == "" || o.Cluster.Name != "c" || len(o.Routes) != 1 || !o.NoSigs {
		t.Errorf("options %+v", o)
	}
}

// TestCluster: three embedded servers form a JetStream cluster on which the
// streams provision with three replicas.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three embedded NATS servers")
	}
	ports := freePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	var servers []*server.Server
	for i, p := range ports {
		s, err := embedded.Start(embedded.Config{
			Port: -1, StoreDir: t.TempDir(), ServerName: fmt.Sprintf("n%d", i),
			Cluster: &embedded.Cluster{Name: "sidekick", Port: p, Routes: routes},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers = append(servers, s)
	}
	nc, err := nats.Connect(servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The cluster elects its JetStream leader after the servers start.
	var perr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		perr = bus.Provision(pctx, js, bus.StreamsConfig{Replicas: 3})
		pcancel()
		if perr == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if perr != nil {
		t.Fatalf("provision on the cluster: %v", perr)
	}
	s, err := js.Stream(ctx, bus.StreamInbound)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream not replicated: %+v %+v", info.Config, info.Cluster)
	}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
