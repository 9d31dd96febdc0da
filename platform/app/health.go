package app

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sidekickhq/sidekick/platform/httpx"
)

// MirrorHealth keeps the gRPC health status (the overall "" service) in
// step with the readiness checks, so a gRPC readiness probe sees the same
// answer as /readyz. It returns when ctx is done.
func MirrorHealth(ctx context.Context, h *httpx.Health, gh *health.Server, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		status := healthpb.HealthCheckResponse_SERVING
		if len(h.Ready(ctx)) > 0 {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if ctx.Err() != nil {
			return
		}
		gh.SetServingStatus("", status)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NATSCheck is the readiness check for the NATS connection.
func NATSCheck(nc *nats.Conn) httpx.Check {
	return httpx.Check{Name: "nats", Check: func(ctx context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		if err := nc.FlushWithContext(ctx); err != nil {
			return fmt.Errorf("nats flush: %w", err)
		}
		return nil
	}}
}
