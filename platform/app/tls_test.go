package app

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/tlstest"
)

// TestTLSConfigErrorsNameTheVariables: a TLS mistake stops the service
// before it connects to anything, naming the variables to fix.
func TestTLSConfigErrorsNameTheVariables(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	f := ca.WriteFiles(t, "rotation")
	notPEM := filepath.Join(t.TempDir(), "tls.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.crt")
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"certificate without key", []string{"SIDEKICK_GRPC_TLS_CERT=" + f.Cert}, []string{"SIDEKICK_GRPC_TLS_CERT", "SIDEKICK_GRPC_TLS_KEY"}},
		{"key without certificate", []string{"SIDEKICK_GRPC_TLS_KEY=" + f.Key, "SIDEKICK_GRPC_TLS_CA=" + f.CAFile}, []string{"SIDEKICK_GRPC_TLS_KEY", "SIDEKICK_GRPC_TLS_CERT"}},
		{"a server with only a CA bundle", []string{"SIDEKICK_GRPC_TLS_CA=" + f.CAFile}, []string{"SIDEKICK_GRPC_TLS_CA", "SIDEKICK_GRPC_TLS_CERT", "SIDEKICK_GRPC_TLS_KEY"}},
		{"certificate file not PEM", []string{"SIDEKICK_GRPC_TLS_CERT=" + notPEM, "SIDEKICK_GRPC_TLS_KEY=" + f.Key}, []string{"SIDEKICK_GRPC_TLS_CERT", "SIDEKICK_GRPC_TLS_KEY", notPEM}},
		{"missing CA bundle", []string{"SIDEKICK_GRPC_TLS_CERT=" + f.Cert, "SIDEKICK_GRPC_TLS_KEY=" + f.Key, "SIDEKICK_GRPC_TLS_CA=" + missing}, []string{"SIDEKICK_GRPC_TLS_CA", missing}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// NATS points nowhere: the error must come before connecting.
			env := append([]string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1", "SIDEKICK_GRPC_TOKEN=s3cret"}, tc.env...)
			err := MainIO(context.Background(), Spec{Name: "rotation-test", GRPC: true, Build: never}, nil, env, &bytes.Buffer{})
			if err == nil {
				t.Fatal("started with a bad TLS configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
		})
	}

	// A client-only service (the console) verifies servers with the CA
	// bundle alone.
	tl, err := loadGRPCTLS("console", false, Common{GRPCTLSCA: f.CAFile}, nil)
	if err != nil || tl.ClientConfig() == nil || tl.ClientConfig().RootCAs == nil {
		t.Fatalf("CA bundle alone for a client: %v, %v", tl, err)
	}
}

// whoIsOnCall stands for rotation's service: the test registers it on the
// real server and calls it by name, without the generated code.
const whoIsOnCall = "/sidekick.rotation.v1.RotationService/WhoIsOnCall"

type fakeRotation struct{}

func (fakeRotation) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (fakeRotation) RegisterGRPC(r grpc.ServiceRegistrar) {
	r.RegisterService(&grpc.ServiceDesc{
		ServiceName: "sidekick.rotation.v1.RotationService",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "WhoIsOnCall",
			Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
				req := &healthpb.HealthCheckRequest{}
				if err := dec(req); err != nil {
					return nil, err
				}
				h := func(context.Context, any) (any, error) { return &healthpb.HealthCheckResponse{}, nil }
				return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: whoIsOnCall}, h)
			},
		}},
	}, struct{}{})
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

// TestMTLSServiceWithPlaintextHealthPort runs a gRPC service through Main
// with mTLS on: its port takes only clients with a certificate of the CA
// (Kit.Dial is one), and the health port answers grpc.health.v1 in
// plaintext, the same answer as the main port, and nothing else.
func TestMTLSServiceWithPlaintextHealthPort(t *testing.T) {
	ca := tlstest.NewCA(t, "sidekick CA")
	f := ca.WriteFiles(t, "rotation", "127.0.0.1")
	grpcAddr, healthAddr := freeAddr(t), freeAddr(t)
	env := []string{
		"SIDEKICK_HTTP_ADDR=127.0.0.1:0", "SIDEKICK_GRPC_ADDR=" + grpcAddr, "SIDEKICK_GRPC_HEALTH_ADDR=" + healthAddr,
		"SIDEKICK_GRPC_TOKEN=s3cret", "SIDEKICK_LOG_LEVEL=error",
		"SIDEKICK_GRPC_TLS_CERT=" + f.Cert, "SIDEKICK_GRPC_TLS_KEY=" + f.Key, "SIDEKICK_GRPC_TLS_CA=" + f.CAFile,
	}
	kits := make(chan *Kit, 1)
	build := func(_ context.Context, k *Kit) (Service, error) {
		// Not ready: the health answer must come from readiness, not the
		// default SERVING.
		k.Health.Add(httpx.Check{Name: "dep", Check: func(context.Context) error { return errors.New("down") }})
		kits <- k
		return fakeRotation{}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- MainIO(ctx, Spec{Name: "rotation-test", GRPC: true, NoBus: true, Build: build}, nil, env, &bytes.Buffer{})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Main: %v", err)
		}
	})
	var kit *Kit
	select {
	case kit = <-kits:
	case err := <-done:
		t.Fatalf("Main returned: %v", err)
	}

	dial := func(addr string, o grpcx.DialOptions) *grpc.ClientConn {
		t.Helper()
		cc, err := grpcx.Dial(addr, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	// call waits for the server to listen when wait is set; without, a
	// refused connection fails at once.
	call := func(cc *grpc.ClientConn, wait bool) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return cc.Invoke(ctx, whoIsOnCall, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, grpc.WaitForReady(wait))
	}
	health := func(cc *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
		return resp.GetStatus(), err
	}

	// The kit's dialer presents the certificate and the token.
	mainConn, err := kit.Dial(grpcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer mainConn.Close()
	if err := call(mainConn, true); err != nil {
		t.Fatalf("call with the kit's dialer: %v", err)
	}
	// Without a client certificate, or without TLS, the main port refuses.
	if err := call(dial(grpcAddr, grpcx.DialOptions{Token: "s3cret"}), false); status.Code(err) != codes.Unavailable {
		t.Fatalf("plaintext call to the main port: want Unavailable, got %v", err)
	}
	tl, err := grpcx.LoadTLS(grpcx.TLSFiles{CA: f.CAFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(dial(grpcAddr, grpcx.DialOptions{Token: "s3cret", TLS: tl.ClientConfig()}), false); status.Code(err) != codes.Unavailable {
		t.Fatalf("client without a certificate: want Unavailable, got %v", err)
	}

	// The health port: plaintext, no token, readiness and liveness as on
	// the main port.
	plain := dial(healthAddr, grpcx.DialOptions{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := health(plain, Readiness)
		if err != nil {
			t.Fatalf("health port: %v", err)
		}
		if st == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("health port says %v while a readiness check fails", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st, err := health(mainConn, Readiness); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("main port readiness: %v, %v; want NOT_SERVING as on the health port", st, err)
	}
	for _, cc := range []*grpc.ClientConn{plain, mainConn} {
		if st, err := health(cc, ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness while not ready: %v, %v; want SERVING (the process runs)", st, err)
		}
	}
	// ... and nothing else: neither the services nor reflection.
	if err := call(plain, false); status.Code(err) != codes.Unimplemented {
		t.Fatalf("WhoIsOnCall on the health port: want Unimplemented, got %v", err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(plain).ServerReflectionInfo(context.Background())
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("reflection on the health port: want Unimplemented, got %v", err)
	}
}
