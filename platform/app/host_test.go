package app

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/grpcx"
)

// routes is a service that serves one HTTP route and, optionally, the fake
// rotation's gRPC method.
type routes struct {
	fakeRotation
	path string
	grpc bool
}

func (r routes) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+r.path, func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, r.path) })
}

func (r routes) RegisterGRPC(reg grpc.ServiceRegistrar) {
	if r.grpc {
		r.fakeRotation.RegisterGRPC(reg)
	}
}

// TestHostOfTwo: two services in one process each get a Kit of their own
// (name, metric label, the one clock, the organisation file only when they
// read it) and share one HTTP listener and one gRPC server.
func TestHostOfTwo(t *testing.T) {
	org := filepath.Join(t.TempDir(), "sidekick.yaml")
	if err := os.WriteFile(org, []byte("people: []\nescalation: {policies: []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	kits := map[string]*Kit{}
	spec := func(name string, org, grpc bool) Spec {
		return Spec{Name: name, NoBus: true, Org: org, GRPC: grpc, Build: func(_ context.Context, k *Kit) (Service, error) {
			kits[name] = k
			promCounter(k.Registry).Inc()
			return routes{path: "/" + name, grpc: grpc}, nil
		}}
	}
	reg := prometheus.NewRegistry()
	ready := make(chan struct{})
	h := &Host{
		Specs:   []Spec{spec("alpha", true, true), spec("beta", false, false)},
		Environ: []string{"SIDEKICK_DEV=true", "SIDEKICK_LOG_LEVEL=error", "SIDEKICK_ORG_CONFIG=" + org},
		Clock:   fake, Logs: io.Discard, Registry: reg,
		HTTPListener: httpLis, GRPCListener: grpcLis,
		Ready: func() { close(ready) },
	}
	done := runHost(t, h)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before Ready: %v", err)
	}

	a, b := kits["alpha"], kits["beta"]
	if a.Clock != clock.Clock(fake) || b.Clock != clock.Clock(fake) {
		t.Error("the services do not run on the Host's clock")
	}
	if a.Org == nil || a.Org.Path != org || a.Org.Section("escalation") == nil || b.Org != nil {
		t.Errorf("organisation file: alpha %+v, beta %+v; want it for alpha only", a.Org, b.Org)
	}
	if a.NC != nil || a.Pool != nil {
		t.Error("a service without bus or schema got a connection")
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP host_test_built_total Services built.
# TYPE host_test_built_total counter
host_test_built_total{service="alpha"} 1
host_test_built_total{service="beta"} 1
`), "host_test_built_total"); err != nil {
		t.Error(err)
	}
	for _, path := range []string{"/alpha", "/beta", "/healthz"} {
		resp, err := http.Get("http://" + httpLis.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	cc, err := grpcx.Dial(grpcLis.Addr().String(), grpcx.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if err := cc.Invoke(cctx, whoIsOnCall, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}); err != nil {
		t.Errorf("alpha's gRPC method on the shared server: %v", err)
	}
}

// runHost runs h until the test ends, then checks it stopped cleanly; the
// channel delivers Run's result if it returns before.
func runHost(t *testing.T, h *Host) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := make(chan error, 1)
	go func() { err := h.Run(ctx); done <- err; stopped <- err }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return done
}

func promCounter(r prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "host_test_built_total", Help: "Services built."})
	r.MustRegister(c)
	return c
}

// TestHostRefusesABadOrganisationFile: a misspelt section stops the
// process before any service is built, naming the file and the line.
func TestHostRefusesABadOrganisationFile(t *testing.T) {
	org := filepath.Join(t.TempDir(), "sidekick.yaml")
	if err := os.WriteFile(org, []byte("people: []\nescalaton: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1", "SIDEKICK_ORG_CONFIG=" + org}
	err := MainIO(context.Background(), Spec{Name: "notifier-test", NoBus: true, Org: true, Build: never}, nil, env, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), org) || !strings.Contains(err.Error(), `line 2: unknown section "escalaton"`) {
		t.Fatalf("want an error naming %s and line 2, got %v", org, err)
	}
}

// TestNATSBlipMakesUnreadyNotDead: with NATS gone, a Host's gRPC
// readiness turns NOT_SERVING while its liveness stays SERVING (the
// kubelet takes the pod out of the Service and does not restart it), and
// readiness comes back with NATS.
func TestNATSBlipMakesUnreadyNotDead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	srv := bustest.Start(t)
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{
		Specs: []Spec{{Name: "rotation-test", GRPC: true, Build: func(context.Context, *Kit) (Service, error) { return fakeRotation{}, nil }}},
		Environ: []string{"SIDEKICK_DEV=true", "SIDEKICK_LOG_LEVEL=error", "SIDEKICK_HTTP_ADDR=127.0.0.1:0",
			"SIDEKICK_NATS_URL=" + srv.URL()},
		Logs: io.Discard, GRPCListener: grpcLis,
	}
	runHost(t, h)
	ctx := context.Background()
	cc, err := grpcx.Dial(grpcLis.Addr().String(), grpcx.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		defer ccancel()
		resp, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
		if status.Code(err) == codes.NotFound {
			return healthpb.HealthCheckResponse_UNKNOWN // not set yet: the first readiness round runs
		}
		if err != nil {
			t.Fatalf("health check %q: %v", service, err)
		}
		return resp.GetStatus()
	}
	until := func(want healthpb.HealthCheckResponse_ServingStatus, what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for check(Readiness) != want {
			if time.Now().After(deadline) {
				t.Fatalf("readiness never became %v %s", want, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if live := check(""); live != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness %v %s, want SERVING", live, what)
		}
	}
	until(healthpb.HealthCheckResponse_SERVING, "with NATS up")
	srv.Shutdown()
	until(healthpb.HealthCheckResponse_NOT_SERVING, "with NATS down")
	srv.Restart(t)
	until(healthpb.HealthCheckResponse_SERVING, "after NATS came back")
}
