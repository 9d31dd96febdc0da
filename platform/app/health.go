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

// Readiness is the grpc.health.v1 service name whose status follows the
// readiness checks (/readyz): the kubelet's readiness probe asks for it.
// The overall "" status answers liveness: SERVING from the moment the
// server serves until it shuts down, whatever Postgres or NATS do, so a
// blip in either makes pods unready and never restarts them (a restart
// would only block on migrations while the blip lasts).
const Readiness = "readiness"

// MirrorReadiness keeps the readiness answers of the gRPC health service in
// step with the readiness checks: Readiness and each of names (the gRPC
// services served, so a client checking one by name hears the same) are
// SERVING while every check passes and NOT_SERVING otherwise. The ""
// status is left alone. It returns when ctx is done.
func MirrorReadiness(ctx context.Context, h *httpx.Health, gh *health.Server, names []string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	names = append([]string{Readiness}, names...)
	for {
		status := healthpb.HealthCheckResponse_SERVING
		if len(h.Ready(ctx)) > 0 {
			status = healthpb.HealthCheckResponse_NOT_SERVING
		}
		if ctx.Err() != nil {
			return
		}
		for _, n := range names {
			gh.SetServingStatus(n, status)
		}
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
