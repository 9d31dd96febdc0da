package bus_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/embedded"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/tlstest"
)

// TestTLSRotationWithoutRestart: a NATS client whose certificate and CA
// bundle are files (a Secret volume cert-manager renews) uses the files as
// they are at each connection: after the server moved to a new CA, the
// same options connect again once the files changed, and a client still
// holding the old CA's certificate is refused. The server here reloads its
// own files the same way (grpcx.TLS); nats-server in Kubernetes does it on
// the config reloader's signal.
func TestTLSRotationWithoutRestart(t *testing.T) {
	ca1 := tlstest.NewCA(t, "nats CA 1")
	srvFiles := ca1.WriteFiles(t, "nats", "127.0.0.1")
	srvTLS, err := grpcx.LoadTLS(grpcx.TLSFiles{Cert: srvFiles.Cert, Key: srvFiles.Key, CA: srvFiles.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	serverConfig, err := srvTLS.ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir(), TLS: serverConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := "tls://" + srv.Addr().(*net.TCPAddr).String()

	auth := func(f *tlstest.Files) bus.ClientAuth {
		t.Helper()
		c, err := grpcx.LoadTLS(grpcx.TLSFiles{Cert: f.Cert, Key: f.Key, CA: f.CAFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return bus.ClientAuth{TLS: c.ClientConfig(), RootCAs: c.ClientRoots()}
	}
	// connect makes a new connection with options made once, as a
	// service's are: each reconnection after a rotation goes through the
	// same path.
	connect := func(a bus.ClientAuth) error {
		t.Helper()
		opts, err := a.Options()
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(url, append(opts, nats.Timeout(5*time.Second))...)
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return nc.FlushWithContext(ctx)
	}
	if err := connect(bus.ClientAuth{}); err == nil {
		t.Fatal("a plaintext client connected to a TLS-only server")
	}
	cliFiles := ca1.WriteFiles(t, "triage")
	client := auth(cliFiles)
	if err := connect(client); err != nil {
		t.Fatalf("mTLS with the first CA: %v", err)
	}
	stale := auth(ca1.WriteFiles(t, "stale"))

	// Both CAs trusted, the server's certificate from the new one: the
	// client must have read the new bundle to accept it.
	ca2 := tlstest.NewCA(t, "nats CA 2")
	both := append(append([]byte(nil), ca1.PEM...), ca2.PEM...)
	cert, key := ca2.Issue(t, "nats", "127.0.0.1")
	srvFiles.Update(t, cert, key, both)
	cert, key = ca1.Issue(t, "triage")
	cliFiles.Update(t, cert, key, both)
	if err := connect(client); err != nil {
		t.Fatalf("server certificate from the new CA, both CAs in the bundles: %v", err)
	}

	// The new CA alone: the client's new certificate is what gets it in.
	cert, key = ca2.Issue(t, "nats", "127.0.0.1")
	srvFiles.Update(t, cert, key, ca2.PEM)
	cert, key = ca2.Issue(t, "triage")
	cliFiles.Update(t, cert, key, ca2.PEM)
	if err := connect(client); err != nil {
		t.Fatalf("everything from the new CA: %v", err)
	}
	if err := connect(stale); err == nil {
		t.Fatal("a client of the old CA connected after the server dropped it")
	}
}
