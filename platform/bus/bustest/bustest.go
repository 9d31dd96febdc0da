// Package bustest starts a real, embedded NATS server with JetStream for
// tests: a random port, a store in t.TempDir(), stopped on cleanup.
package bustest

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
)

// Server is an embedded NATS server that can be stopped and restarted on
// the same port with the same store, to simulate NATS going down.
type Server struct {
	mu       sync.Mutex
	srv      *server.Server
	host     string
	port     int
	storeDir string
	url      string
	config   string
	tls      *tls.Config
}

// Start starts a server on a random port with its store in t.TempDir();
// it is shut down when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{host: "127.0.0.1", port: -1, storeDir: t.TempDir()}
	s.start(t)
	t.Cleanup(s.Shutdown)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	srv, err := embedded.Start(embedded.Config{Host: s.host, Port: s.port, StoreDir: s.storeDir, ServerName: "bustest", ConfigFile: s.config, TLS: s.tls})
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	addr, ok := srv.Addr().(*net.TCPAddr)
	if !ok {
		srv.Shutdown()
		t.Fatalf("embedded nats listens on %v, not TCP", srv.Addr())
	}
	s.mu.Lock()
	s.srv, s.port, s.url = srv, addr.Port, srv.ClientURL()
	s.mu.Unlock()
}

// URL is the client URL, stable across Restart.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// NATS returns the running nats-server, nil while shut down.
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv
}

// Connect returns a client connection that reconnects forever and a
// JetStream handle on it; the connection is closed when the test ends.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, js, err := dial(s.URL(), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect to embedded nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc, js
}

// Dial connects to the NATS server at url for code that has no testing.TB,
// such as a load generator in a child process (loadgen.Spawn); close the
// connection with nc.Close.
func Dial(url string) (*nats.Conn, jetstream.JetStream, error) { return dial(url) }

func dial(url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// Shutdown stops the server, keeping its store; clients see NATS down.
// Calling it twice is harmless.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts the server again on the same port with the same store,
// shutting it down first if it is running.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Shutdown()
	s.start(t)
}

// StartJetStream starts a server, provisions every Sidekick stream on it
// and returns a JetStream handle from a connection closed when the test
// ends.
func StartJetStream(t testing.TB) (*Server, jetstream.JetStream) {
	t.Helper()
	s := Start(t)
	_, js := s.Connect(t)
	provision(t, js)
	return s, js
}

// provision creates every Sidekick stream.
func provision(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, js, bus.StreamsConfig{}); err != nil {
		t.Fatalf("provision streams: %v", err)
	}
}
