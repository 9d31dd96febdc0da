package app

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/bus/bustest"
	"github.com/sidekickhq/sidekick/platform/httpx"
	"github.com/sidekickhq/sidekick/platform/logging"
)

// TestReadyzFollowsNATS: /readyz fails while NATS is down and recovers when
// it is back.
func TestReadyzFollowsNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded NATS server")
	}
	srv := bustest.Start(t)
	ctx := context.Background()
	nc, _, err := bus.Connect(ctx, srv.URL(), "readyz-test", logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	health := httpx.NewHealth(500*time.Millisecond, NATSCheck(nc))
	mux := http.NewServeMux()
	health.Register(mux, prometheus.NewRegistry())
	readyz := func() int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	eventually := func(want int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for readyz() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/readyz never became %d %s", want, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	eventually(http.StatusOK, "with NATS up")
	srv.Shutdown()
	eventually(http.StatusServiceUnavailable, "with NATS down")
	srv.Restart(t)
	eventually(http.StatusOK, "after NATS came back")
}

// TestGRPCReadinessIsNotLiveness: the Readiness health name and the
// served services' names follow /readyz; the overall "" status, which the
// liveness probe asks, stays SERVING while a dependency is down.
func TestGRPCReadinessIsNotLiveness(t *testing.T) {
	var down atomic.Bool
	h := httpx.NewHealth(time.Second, httpx.Check{Name: "dep", Check: func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	}})
	gh := health.NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const served = "sidekick.rotation.v1.RotationService"
	go MirrorReadiness(ctx, h, gh, []string{served}, 10*time.Millisecond)
	status := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		resp, err := gh.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return resp.GetStatus()
	}
	wait := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for status(Readiness) != want || status(served) != want {
			if time.Now().After(deadline) {
				t.Fatalf("gRPC readiness never became %v (%s: %v)", want, served, status(served))
			}
			time.Sleep(5 * time.Millisecond)
		}
		if live := status(""); live != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("liveness (\"\") is %v while readiness is %v: a dependency blip would restart the pod", live, want)
		}
	}
	wait(healthpb.HealthCheckResponse_SERVING)
	down.Store(true)
	wait(healthpb.HealthCheckResponse_NOT_SERVING)
	down.Store(false)
	wait(healthpb.HealthCheckResponse_SERVING)
}
