package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one nats-server process: a single server, or a member of
// the three-server JetStream cluster. Its store and ports stay the same
// across restarts.
type natsNode struct {
	name     string
	port     int // clients
	httpPort int // monitoring: /healthz
	proc     *proc
}

// natsConfig is the server's configuration file: JetStream with its store
// in dir, listening on loopback only; with routes, a member of cluster
// "chaos".
func natsConfig(name, dir string, port, httpPort, routePort int, routes []string, users string) string {
	var b strings.Builder
	b.WriteString(users)
	fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", name, port, httpPort)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", dir)
	if len(routes) > 0 {
		fmt.Fprintf(&b, "cluster {\n  name: chaos\n  listen: 127.0.0.1:%d\n  routes: [\n", routePort)
		for _, r := range routes {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		b.WriteString("  ]\n}\n")
	}
	return b.String()
}

// startNATS starts n servers (one: a single server; three: a cluster)
// and waits until each reports healthy.
func (s *stack) startNATS(ctx context.Context, n int) error {
	ports, err := freePorts(3 * n)
	if err != nil {
		return err
	}
	var routes []string
	if n > 1 {
		for i := range n {
			routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[3*i+2]))
		}
	}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		dir := filepath.Join(s.dir, "nats", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("nats store: %w", err)
		}
		conf := filepath.Join(s.dir, "nats", name+".conf")
		if err := os.WriteFile(conf, []byte(natsConfig(name, dir, ports[3*i], ports[3*i+1], ports[3*i+2], routes, s.keys.ServerConfig())), 0o644); err != nil {
			return fmt.Errorf("nats config: %w", err)
		}
		node := &natsNode{name: name, port: ports[3*i], httpPort: ports[3*i+1], proc: &proc{
			name: "nats-" + name, path: filepath.Join(s.opts.bin, "nats-server"), args: []string{"-c", conf},
			logPath: filepath.Join(s.dir, "logs", "nats-"+name+".log"), restartDelay: time.Second, logger: s.logger,
		}}
		if err := startProc(node.proc); err != nil {
			return err
		}
		s.nats = append(s.nats, node)
	}
	for _, node := range s.nats {
		if err := node.waitHealthy(ctx, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// natsURL is every server's client URL, comma-separated, as
// SIDEKICK_NATS_URL takes them.
func (s *stack) natsURL() string {
	var urls []string
	for _, n := range s.nats {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", n.port))
	}
	return strings.Join(urls, ",")
}

// waitHealthy polls the server's /healthz (which, in a cluster, also
// wants JetStream's meta group current) until it answers 200.
func (n *natsNode) waitHealthy(ctx context.Context, limit time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort)
	return poll(ctx, limit, "nats "+n.name+" healthy", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// streamLeader is the name of the server leading stream, asked of the
// cluster through the harness's own connection.
func (s *stack) streamLeader(ctx context.Context, stream string) (string, error) {
	var leader string
	err := poll(ctx, time.Minute, "the leader of "+stream, func() bool {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := s.js.Stream(sctx, stream)
		if err != nil {
			return false
		}
		info, err := st.Info(sctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader, err
}

// natsNamed returns the node called name.
func (s *stack) natsNamed(name string) (*natsNode, error) {
	for _, n := range s.nats {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no nats server named %q", name)
}

// replicasCurrent reports whether stream has a leader and every replica
// is current: the cluster has healed after a member came back.
func replicasCurrent(ctx context.Context, js jetstream.JetStream, stream string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return false
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
		return false
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current {
			return false
		}
	}
	return len(info.Cluster.Replicas) == info.Config.Replicas-1
}
