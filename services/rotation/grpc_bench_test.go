package rotation

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/grpcx"
	"github.com/sidekickhq/sidekick/platform/loadgen"
	"github.com/sidekickhq/sidekick/platform/logging"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// Knobs of BenchmarkGRPCOpenLoop (go test -args -rotation.rate=2000 …).
var (
	loadRate   = flag.Int("rotation.rate", 1000, "BenchmarkGRPCOpenLoop: requests a second offered to each method")
	loadRounds = flag.Int("rotation.rounds", 10, "BenchmarkGRPCOpenLoop: rounds; each round runs every method for -rotation.round")
	loadRound  = flag.Duration("rotation.round", time.Second, "BenchmarkGRPCOpenLoop: how long each method runs per round")
)

// BenchmarkGRPCOpenLoop measures WhoIsOnCall over real gRPC at a fixed
// rate, beside grpc.health.v1.Health/Check (a no-op) on the same server and
// connection, and reports the latency percentiles of both. It ignores b.N;
// run it with -benchtime 1x:
//
//	go test -run '^$' -bench GRPCOpenLoop -benchtime 1x ./services/rotation/
//
// The server is the production one (grpcx.NewServer: bearer-token
// authentication, logging and recovery interceptors, the services' JSON
// logger writing to io.Discard) on loopback TCP; the schedule is the
// handbook organisation plus 18 swaps stored through the API in Postgres.
// The queries alternate hero and team-secondary at random instants over a
// year, like BenchmarkWhoIsOnCall in internal/schedule.
//
// The load is an open loop: a 1/rate ticker; on every tick each request
// whose scheduled time has come leaves in its own goroutine, whether or not
// earlier ones have answered, and its latency counts from its scheduled
// time, so a late tick or a stalled client is charged to the latency
// instead of hidden (no coordinated omission). The methods take turns in
// rounds (-rotation.rounds of -rotation.round each, 10 x 1 s by default),
// so each sees the offered rate alone and both see the same background.
func BenchmarkGRPCOpenLoop(b *testing.B) {
	ctx := context.Background()
	targets := benchTargets(b)
	load0 := loadgen.LoadAverage()
	b.ResetTimer()
	cpu0 := loadgen.CPUTime()
	results := openLoop(ctx, *loadRate, *loadRounds, *loadRound, targets)
	cpu := loadgen.CPUTime() - cpu0
	b.StopTimer()

	var total int
	b.Logf("open loop: %d req/s offered to each method, %d rounds of %s each; GOMAXPROCS %d; load average before %s, after %s",
		*loadRate, *loadRounds, *loadRound, runtime.GOMAXPROCS(0), load0, loadgen.LoadAverage())
	b.Logf("%-13s %6s %4s %6s %7s %7s %7s %7s %8s | %-7s %7s | %7s", "method", "sent", "errs", "rate/s", "p50", "p90", "p99", "p99.9", "max", "on-wire p50", "p99", "lag p99")
	for _, r := range results {
		total += len(r.latency)
		lat, wire, lag := loadgen.Percentiles(r.latency), loadgen.Percentiles(r.wire), loadgen.Percentiles(r.lag)
		b.Logf("%-13s %6d %4d %6.0f %7s %7s %7s %7s %8s | %11s %7s | %7s", r.name, len(r.latency), r.errors,
			float64(len(r.latency))/r.active.Seconds(), us(lat.P50), us(lat.P90), us(lat.P99), us(lat.P999), us(lat.Max),
			us(wire.P50), us(wire.P99), us(lag.P99))
		key := strings.ToLower(strings.SplitN(r.name, "/", 2)[0])
		b.ReportMetric(loadgen.Micros(lat.P50), key+"-p50-us")
		b.ReportMetric(loadgen.Micros(lat.P90), key+"-p90-us")
		b.ReportMetric(loadgen.Micros(lat.P99), key+"-p99-us")
		b.ReportMetric(loadgen.Micros(lat.Max), key+"-max-us")
		if r.errors > 0 {
			b.Errorf("%s: %d errors, first: %v", r.name, r.errors, r.firstErr)
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-us/req")
	b.Logf("process CPU (client and server): %s for %d requests, %.0f µs a request", cpu.Round(time.Millisecond), total, float64(cpu.Microseconds())/float64(total))
}

// BenchmarkGRPCClosedLoop is the capacity beside the latency: each method
// as fast as 32 callers per GOMAXPROCS on the one connection can go (b.N
// requests), in requests a second.
func BenchmarkGRPCClosedLoop(b *testing.B) {
	ctx := context.Background()
	for _, t := range benchTargets(b) {
		b.Run(strings.ReplaceAll(t.name, "/", "-"), func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := t.call(ctx, int(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// benchTargets starts the service behind the production gRPC server and
// returns two request kinds on one client connection: WhoIsOnCall (hero
// and team-secondary queries at random instants over a year) and
// grpc.health.v1.Health/Check, the no-op baseline.
func benchTargets(b *testing.B) []target {
	b.Helper()
	url := pgtest.NewDatabase(b)
	ctx := context.Background()
	now := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	svc := newService(b, url, clock.NewFake(now))
	if _, err := svc.Apply(ctx, handbookOrg(b), false, "bench"); err != nil {
		b.Fatal(err)
	}
	// 18 one-day swaps across the year, stored in Postgres.
	week := 7 * 24 * time.Hour
	for i := range 18 {
		rot := "hero"
		if i%2 == 1 {
			rot = "platform-secondary"
		}
		day := time.Date(2026, 1, 7, 18, 0, 0, 0, time.UTC).Add(time.Duration(2*i) * week)
		a, err1 := svc.Schedule().BaseShiftAt(rot, day)
		c, err2 := svc.Schedule().BaseShiftAt(rot, day.Add(week))
		if err1 != nil || err2 != nil {
			b.Fatal(err1, err2)
		}
		if _, err := svc.api.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{
			Rotation: rot, PersonA: a.Person, ShiftAStart: timestamppb.New(day), ShiftAEnd: timestamppb.New(day.Add(24 * time.Hour)),
			PersonB: c.Person, ShiftBStart: timestamppb.New(day.Add(week)), ShiftBEnd: timestamppb.New(day.Add(week + 24*time.Hour)),
		}); err != nil {
			b.Fatal(err)
		}
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs, err := grpcx.NewServer(grpcx.ServerOptions{Logger: logging.New(io.Discard, "info", "rotation"), Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	svc.RegisterGRPC(gs)
	go func() { _ = gs.Server.Serve(lis) }()
	b.Cleanup(gs.Stop)
	cc, err := grpcx.Dial(lis.Addr().String(), grpcx.DialOptions{Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	rot, health := rotationv1.NewRotationServiceClient(cc), healthpb.NewHealthClient(cc)

	rng := rand.New(rand.NewSource(1))
	teams := []string{"platform", "core-experience", "core-analytics"}
	queries := make([]*rotationv1.WhoIsOnCallRequest, 4096)
	for i := range queries {
		at := timestamppb.New(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour)))))
		if i%2 == 0 {
			queries[i] = &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: at}
		} else {
			queries[i] = &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: teams[rng.Intn(len(teams))], At: at}
		}
	}
	targets := []target{
		{name: "WhoIsOnCall", call: func(ctx context.Context, i int) error {
			resp, err := rot.WhoIsOnCall(ctx, queries[i%len(queries)])
			if err == nil && resp.GetOnCall().GetPerson().GetId() == "" && !resp.GetGap() {
				err = fmt.Errorf("empty answer to %v", queries[i%len(queries)])
			}
			return err
		}},
		{name: "Health/Check", call: func(ctx context.Context, _ int) error {
			_, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
	}
	// Warm up: connection, code paths, allocator.
	for i := range 2000 {
		for _, t := range targets {
			if err := t.call(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	return targets
}

// target is one kind of request of an open-loop run; call sends request i.
type target struct {
	name string
	call func(ctx context.Context, i int) error
}

// loadResult is what one target measured.
type loadResult struct {
	name string
	// latency runs from the scheduled send time to the answer; wire from
	// the actual send; lag from the scheduled to the actual send.
	latency, wire, lag []time.Duration
	errors             int
	firstErr           error
	// active is how long this target was offered load.
	active time.Duration
}

// openLoop offers each target rate requests a second for rounds x round,
// the targets taking turns each round (in alternating order).
func openLoop(ctx context.Context, rate, rounds int, round time.Duration, targets []target) []*loadResult {
	perRound := int(round.Seconds() * float64(rate))
	out := make([]*loadResult, len(targets))
	for i, t := range targets {
		out[i] = &loadResult{name: t.name}
	}
	for r := range rounds {
		for j := range targets {
			i := j
			if r%2 == 1 {
				i = len(targets) - 1 - j
			}
			res := loadgen.OpenLoop(ctx, float64(rate), perRound, r*perRound, targets[i].call)
			o := out[i]
			o.latency, o.wire, o.lag = append(o.latency, res.Latency...), append(o.wire, res.Wire...), append(o.lag, res.Lag...)
			o.active += res.Elapsed
			if res.Errors > 0 && o.errors == 0 {
				o.firstErr = res.FirstErr
			}
			o.errors += res.Errors
		}
	}
	return out
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", loadgen.Micros(d)) }
