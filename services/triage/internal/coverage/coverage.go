// Package coverage tells triage when the person on duty (or anybody on
// the support roster) is within working hours: the working windows
// response clocks run in. The
// rotation service answers that over gRPC (RotationService.WorkingWindows);
// [Cache] keeps its answers per fixed chunk of time so that evaluating a
// deadline rarely leaves the process, and serves a stale chunk when
// rotation cannot be reached rather than stopping every clock.
package coverage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/promreg"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// Source answers the working windows in [from, to).
type Source interface {
	Windows(ctx context.Context, from, to time.Time) (worktime.Windows, error)
}

// WindowsClient is the part of rotation's gRPC client coverage uses;
// rotationv1.RotationServiceClient satisfies it.
type WindowsClient interface {
	WorkingWindows(ctx context.Context, in *rotationv1.WorkingWindowsRequest, opts ...grpc.CallOption) (*rotationv1.WorkingWindowsResponse, error)
}

// Rotation asks the rotation service.
type Rotation struct {
	Client WindowsClient
	// Role ROLE_HERO asks when whoever is on duty as hero (or a catcher
	// covering them) works; unspecified, when anybody on the roster does.
	Role rotationv1.Role
	// Timeout bounds one call; default 5s.
	Timeout time.Duration
}

// Windows calls RotationService.WorkingWindows.
func (r Rotation) Windows(ctx context.Context, from, to time.Time) (worktime.Windows, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := r.Client.WorkingWindows(ctx, &rotationv1.WorkingWindowsRequest{From: timestamppb.New(from), To: timestamppb.New(to), Role: r.Role})
	if err != nil {
		return nil, fmt.Errorf("rotation WorkingWindows [%s, %s): %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	return worktime.FromProto(resp.GetWindows()).Clip(from, to), nil
}

// Always covers all time: deadlines count wall-clock time. It is for
// installations without a rotation (SIDEKICK_TRIAGE_COVERAGE=always).
type Always struct{}

// Windows returns the single window [from, to).
func (Always) Windows(_ context.Context, from, to time.Time) (worktime.Windows, error) {
	if !to.After(from) {
		return nil, nil
	}
	return worktime.Windows{{Start: from.UTC(), End: to.UTC()}}, nil
}

// Func adapts a function to a Source.
type Func func(ctx context.Context, from, to time.Time) (worktime.Windows, error)

// Windows calls f.
func (f Func) Windows(ctx context.Context, from, to time.Time) (worktime.Windows, error) {
	return f(ctx, from, to)
}

// CacheConfig tunes a Cache.
type CacheConfig struct {
	// Chunk is the span fetched at once, aligned on the Unix epoch; default
	// one week.
	Chunk time.Duration
	// TTL is how long a fetched chunk is used before it is fetched again
	// (overrides and swaps change coverage); default 5 minutes.
	TTL time.Duration
	// MaxChunks bounds memory; the least recently used chunk goes first;
	// default 512 (about ten years of weekly chunks).
	MaxChunks int
}

func (c CacheConfig) withDefaults() CacheConfig {
	if c.Chunk <= 0 {
		c.Chunk = 7 * 24 * time.Hour
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Minute
	}
	if c.MaxChunks <= 0 {
		c.MaxChunks = 512
	}
	return c
}

type chunk struct {
	windows worktime.Windows
	fetched time.Time
	used    time.Time
	ok      bool
	// loading is closed when a fetch in progress ends.
	loading chan struct{}
}

// Cache caches another Source per chunk. It is safe for concurrent use;
// concurrent requests for one chunk fetch it once.
type Cache struct {
	src    Source
	cfg    CacheConfig
	clock  clock.Clock
	logger *slog.Logger

	mu     sync.Mutex
	chunks map[int64]*chunk

	fetches *prometheus.CounterVec
}

// NewCache wraps src, timing its chunks on clock c (nil: the wall clock);
// its metrics register on reg.
func NewCache(src Source, cfg CacheConfig, c clock.Clock, logger *slog.Logger, reg prometheus.Registerer) (*Cache, error) {
	if src == nil {
		return nil, errors.New("coverage: source is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fetches := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_triage_windows_fetches_total",
		Help: "Working-window fetches from rotation by result (ok, error, stale: an error answered from an expired chunk).",
	}, []string{"result"})
	fetches, err := promreg.Register(reg, fetches)
	if err != nil {
		return nil, fmt.Errorf("coverage: %w", err)
	}
	return &Cache{src: src, cfg: cfg.withDefaults(), clock: clock.OrReal(c), logger: logger, chunks: map[int64]*chunk{}, fetches: fetches}, nil
}

// Invalidate makes every cached chunk stale, so the next request fetches
// it again (an override changed coverage). A chunk that then fails to
// fetch is still served.
func (c *Cache) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.chunks {
		ch.fetched = time.Time{}
	}
}

// Windows returns the working windows in [from, to), fetching the chunks
// it has not got or holds for longer than the TTL.
func (c *Cache) Windows(ctx context.Context, from, to time.Time) (worktime.Windows, error) {
	if !to.After(from) {
		return nil, nil
	}
	size := c.cfg.Chunk
	var all []worktime.Interval
	for k := chunkIndex(from, size); ; k++ {
		start := time.Unix(0, 0).Add(time.Duration(k) * size)
		if !start.Before(to) {
			break
		}
		w, err := c.chunk(ctx, k, start, start.Add(size))
		if err != nil {
			return nil, err
		}
		all = append(all, w...)
	}
	return worktime.Normalize(all).Clip(from, to), nil
}

func chunkIndex(t time.Time, size time.Duration) int64 {
	d := t.Sub(time.Unix(0, 0))
	k := int64(d / size)
	if d < 0 && d%size != 0 {
		k--
	}
	return k
}

func (c *Cache) chunk(ctx context.Context, k int64, from, to time.Time) (worktime.Windows, error) {
	for {
		now := c.clock.Now()
		c.mu.Lock()
		ch := c.chunks[k]
		switch {
		case ch != nil && ch.loading != nil:
			wait := ch.loading
			c.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case ch != nil && ch.ok && now.Sub(ch.fetched) < c.cfg.TTL && !ch.fetched.IsZero():
			ch.used = now
			w := ch.windows
			c.mu.Unlock()
			return w, nil
		}
		if ch == nil {
			ch = &chunk{}
			c.chunks[k] = ch
			c.evict()
		}
		done := make(chan struct{})
		ch.loading = done
		c.mu.Unlock()

		w, err := c.src.Windows(ctx, from, to)

		c.mu.Lock()
		ch.loading = nil
		close(done)
		switch {
		case err == nil:
			ch.windows, ch.fetched, ch.used, ch.ok = w, now, now, true
			c.mu.Unlock()
			c.fetches.WithLabelValues("ok").Inc()
			return w, nil
		case ch.ok:
			// Serve the expired chunk: coverage rarely changes, and a
			// stopped clock is worse than a slightly stale one.
			stale := ch.windows
			c.mu.Unlock()
			c.fetches.WithLabelValues("stale").Inc()
			c.logger.Warn("working windows unavailable; using the cached ones", "from", from, "to", to, "error", err)
			return stale, nil
		default:
			delete(c.chunks, k)
			c.mu.Unlock()
			c.fetches.WithLabelValues("error").Inc()
			return nil, err
		}
	}
}

// evict drops the least recently used idle chunks above MaxChunks; c.mu
// is held.
func (c *Cache) evict() {
	for len(c.chunks) > c.cfg.MaxChunks {
		var (
			oldest int64
			found  bool
			at     time.Time
		)
		for k, ch := range c.chunks {
			if ch.loading != nil || !ch.ok {
				continue
			}
			if !found || ch.used.Before(at) {
				oldest, at, found = k, ch.used, true
			}
		}
		if !found {
			return
		}
		delete(c.chunks, oldest)
	}
}
