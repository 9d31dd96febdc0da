package grpcx

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/sidekickhq/sidekick/platform/tlstest"
)

func okHandler(context.Context) (any, error) { return &healthpb.HealthCheckResponse{}, nil }

func loadTLS(t *testing.T, f TLSFiles) *TLS {
	t.Helper()
	tl, err := LoadTLS(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func serverConfig(t *testing.T, f TLSFiles) *tls.Config {
	t.Helper()
	c, err := loadTLS(t, f).ServerConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// callTLS dials addr with files (plaintext when none is set) and makes one
// call, returning the server's certificate name when the call succeeded.
func callTLS(t *testing.T, addr string, files TLSFiles, token string, tweak func(*tls.Config)) (string, error) {
	t.Helper()
	c := loadTLS(t, files).ClientConfig()
	if tweak != nil {
		tweak(c)
	}
	cc, err := Dial(addr, DialOptions{Token: token, TLS: c})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var p peer.Peer
	err = cc.Invoke(ctx, "/sidekick.test.v1.Test/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, grpc.Peer(&p))
	if err != nil {
		return "", err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return "", nil
	}
	if info.State.Version != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want 1.3", info.State.Version)
	}
	return info.State.PeerCertificates[0].Subject.CommonName, nil
}

func files(f *tlstest.Files, ca string) TLSFiles {
	return TLSFiles{Cert: f.Cert, Key: f.Key, CA: ca}
}

// TestMTLS: a server with a CA bundle accepts only clients whose
// certificate that CA signed, and still wants the token on top.
func TestMTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	other := tlstest.NewCA(t, "another CA")
	srv := ca.WriteFiles(t, "rotation", "127.0.0.1", "localhost")
	_, addr := serve(t, ServerOptions{Token: "s3cret", TLS: serverConfig(t, files(srv, srv.CAFile))}, okHandler)

	good := ca.WriteFiles(t, "notifier")
	intruder := other.WriteFiles(t, "intruder")
	for _, tc := range []struct {
		name  string
		files TLSFiles
		token string
		tweak func(*tls.Config)
		want  codes.Code
		// why is in the error. The server refuses a client certificate
		// after the TLS 1.3 handshake, racing the client's first write:
		// the client sees either the alert or a reset, so those cases
		// check only the code.
		why string
	}{
		{"plaintext", TLSFiles{}, "s3cret", nil, codes.Unavailable, ""},
		{"no client certificate", TLSFiles{CA: srv.CAFile}, "s3cret", nil, codes.Unavailable, ""},
		{"certificate signed by another CA", files(intruder, srv.CAFile), "s3cret", nil, codes.Unavailable, ""},
		{"server signed by a CA the client does not trust", files(good, intruder.CAFile), "s3cret", nil, codes.Unavailable, "signed by unknown authority"},
		{"TLS 1.1", files(good, srv.CAFile), "s3cret", func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 }, codes.Unavailable, "protocol version"},
		{"right certificate, no token", files(good, srv.CAFile), "", nil, codes.Unauthenticated, ""},
		{"right certificate, wrong token", files(good, srv.CAFile), "nope", nil, codes.Unauthenticated, "invalid bearer token"},
		{"right certificate and token", files(good, srv.CAFile), "s3cret", nil, codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, err := callTLS(t, addr, tc.files, tc.token, tc.tweak)
			if got := status.Code(err); got != tc.want || !strings.Contains(status.Convert(err).Message(), tc.why) {
				t.Fatalf("want %v (%s), got %v", tc.want, tc.why, err)
			}
			if tc.want == codes.OK && name != "rotation" {
				t.Fatalf("server certificate %q, want rotation", name)
			}
		})
	}
}

// TestTLSServerName: the server's certificate must name the host dialed,
// or the name set to replace it (a port-forward to 127.0.0.1).
func TestTLSServerName(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	srv := ca.WriteFiles(t, "rotation", "rotation.sidekick.svc")
	_, addr := serve(t, ServerOptions{Token: "s3cret", TLS: serverConfig(t, files(srv, srv.CAFile))}, okHandler)
	cli := ca.WriteFiles(t, "cli")

	if _, err := callTLS(t, addr, files(cli, cli.CAFile), "s3cret", nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("certificate for rotation.sidekick.svc accepted for %s: %v", addr, err)
	}
	f := files(cli, cli.CAFile)
	f.ServerName = "rotation.sidekick.svc"
	if _, err := callTLS(t, addr, f, "s3cret", nil); err != nil {
		t.Fatalf("with the server name set: %v", err)
	}
}

// TestMTLSReplacesTheToken: with client certificates verified a server may
// go without a token; TLS that authenticates only the server may not.
func TestMTLSReplacesTheToken(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	srv := ca.WriteFiles(t, "rotation", "127.0.0.1")
	if _, err := NewServer(ServerOptions{TLS: serverConfig(t, TLSFiles{Cert: srv.Cert, Key: srv.Key})}); !errors.Is(err, ErrNoToken) {
		t.Fatalf("TLS without client certificates and without a token: want ErrNoToken, got %v", err)
	}
	_, addr := serve(t, ServerOptions{TLS: serverConfig(t, files(srv, srv.CAFile))}, okHandler)
	if _, err := callTLS(t, addr, files(ca.WriteFiles(t, "notifier"), srv.CAFile), "", nil); err != nil {
		t.Fatalf("mTLS without a token: %v", err)
	}
}

// TestRotatedCertificatesArePickedUp: when the Secret volume's files
// change (cert-manager renewed them), new connections use the new
// certificates on both sides, with no restart; a pair caught halfway
// through a rotation leaves the previous one in use.
func TestRotatedCertificatesArePickedUp(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	srv := ca.WriteFiles(t, "server-1", "127.0.0.1")
	var (
		mu     sync.Mutex
		client string // name on the last client certificate the server saw
	)
	_, addr := serve(t, ServerOptions{Token: "s3cret", TLS: serverConfig(t, files(srv, srv.CAFile))}, func(ctx context.Context) (any, error) {
		p, _ := peer.FromContext(ctx)
		mu.Lock()
		client = p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Subject.CommonName
		mu.Unlock()
		return &healthpb.HealthCheckResponse{}, nil
	})
	cli := ca.WriteFiles(t, "client-1")
	clientTLS := loadTLS(t, files(cli, cli.CAFile))
	// expect opens a new connection (as a client does after the server
	// closed the old one) and checks the names each side saw.
	expect := func(server, wantClient string) {
		t.Helper()
		cc, err := Dial(addr, DialOptions{Token: "s3cret", TLS: clientTLS.ClientConfig()})
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		var p peer.Peer
		if err := cc.Invoke(context.Background(), "/sidekick.test.v1.Test/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, grpc.Peer(&p)); err != nil {
			t.Fatal(err)
		}
		if got := p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].Subject.CommonName; got != server {
			t.Errorf("server certificate %q, want %q", got, server)
		}
		mu.Lock()
		defer mu.Unlock()
		if client != wantClient {
			t.Errorf("client certificate %q, want %q", client, wantClient)
		}
	}
	expect("server-1", "client-1")

	// kubelet swaps the Secret volume's ..data link.
	cert, key := ca.Issue(t, "server-2", "127.0.0.1")
	srv.Update(t, cert, key, ca.PEM)
	cert, key = ca.Issue(t, "client-2")
	cli.Update(t, cert, key, ca.PEM)
	expect("server-2", "client-2")

	// Written in place, the certificate first: until the key follows, the
	// pair does not match and server-2 stays in use.
	cert, key = ca.Issue(t, "server-3", "127.0.0.1")
	write(t, srv.Cert, cert)
	expect("server-2", "client-2")
	write(t, srv.Key, key)
	expect("server-3", "client-2")
}

// TestRotatedCAIsPickedUp: moving from one CA to the next the way
// cert-manager does it (a bundle holding both, then the new one alone)
// needs no restart, on either side of a connection.
func TestRotatedCAIsPickedUp(t *testing.T) {
	ca1 := tlstest.NewCA(t, "sidekick CA 1")
	srv := ca1.WriteFiles(t, "server", "127.0.0.1")
	_, addr := serve(t, ServerOptions{Token: "s3cret", TLS: serverConfig(t, files(srv, srv.CAFile))}, okHandler)
	cli := ca1.WriteFiles(t, "client")
	clientTLS := loadTLS(t, files(cli, cli.CAFile))
	// call opens a new connection, as a client does after the server
	// closed the old one, with dial options made once, as a service's are.
	call := func(o DialOptions) error {
		t.Helper()
		cc, err := Dial(addr, o)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return cc.Invoke(ctx, "/sidekick.test.v1.Test/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	}
	client := DialOptions{Token: "s3cret", TLS: clientTLS.ClientConfig(), Roots: clientTLS.ClientRoots()}
	if err := call(client); err != nil {
		t.Fatal(err)
	}
	// A client that keeps a certificate from the first CA.
	staleTLS := loadTLS(t, files(ca1.WriteFiles(t, "stale"), cli.CAFile))
	stale := DialOptions{Token: "s3cret", TLS: staleTLS.ClientConfig(), Roots: staleTLS.ClientRoots()}

	// Both CAs trusted; the server already has its certificate from the
	// new one: the client must take the new bundle to accept it.
	ca2 := tlstest.NewCA(t, "sidekick CA 2")
	both := append(append([]byte(nil), ca1.PEM...), ca2.PEM...)
	cert, key := ca2.Issue(t, "server", "127.0.0.1")
	srv.Update(t, cert, key, both)
	cert, key = ca1.Issue(t, "client")
	cli.Update(t, cert, key, both)
	if err := call(client); err != nil {
		t.Fatalf("server certificate from the new CA, both in the bundles: %v", err)
	}

	// The new CA alone: the server must take the new bundle to refuse a
	// client certificate from the old one.
	cert, key = ca2.Issue(t, "server", "127.0.0.1")
	srv.Update(t, cert, key, ca2.PEM)
	cert, key = ca2.Issue(t, "client")
	cli.Update(t, cert, key, ca2.PEM)
	if err := call(client); err != nil {
		t.Fatalf("everything from the new CA: %v", err)
	}
	if err := call(stale); status.Code(err) != codes.Unavailable {
		t.Fatalf("client of the old CA after the server dropped it: want Unavailable, got %v", err)
	}

	// A bundle that cannot be read is not used: the previous one stays.
	write(t, srv.CAFile, []byte("not PEM"))
	write(t, cli.CAFile, []byte("not PEM"))
	if err := call(client); err != nil {
		t.Fatalf("after the bundles were overwritten with garbage: %v", err)
	}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadTLSErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	f := ca.WriteFiles(t, "rotation", "127.0.0.1")
	other := ca.WriteFiles(t, "other")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	write(t, garbage, []byte("not PEM"))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name  string
		files TLSFiles
		want  error
	}{
		{"certificate without key", TLSFiles{Cert: f.Cert}, ErrTLSKeyPair},
		{"key without certificate", TLSFiles{Key: f.Key, CA: f.CAFile}, ErrTLSKeyPair},
		{"missing certificate", TLSFiles{Cert: missing, Key: f.Key}, ErrTLSKeyPair},
		{"key of another certificate", TLSFiles{Cert: f.Cert, Key: other.Key}, ErrTLSKeyPair},
		{"CA bundle not PEM", TLSFiles{CA: garbage}, ErrTLSCA},
		{"missing CA bundle", TLSFiles{Cert: f.Cert, Key: f.Key, CA: missing}, ErrTLSCA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadTLS(tc.files, nil); !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
		})
	}
	if tl, err := LoadTLS(TLSFiles{}, nil); tl != nil || err != nil || tl.ClientConfig() != nil {
		t.Fatalf("no file set: want plaintext, got %v, %v", tl, err)
	}
	if _, err := loadTLS(t, TLSFiles{CA: f.CAFile}).ServerConfig(); !errors.Is(err, ErrTLSKeyPair) {
		t.Fatalf("server without a certificate: want ErrTLSKeyPair, got %v", err)
	}
}
