package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
