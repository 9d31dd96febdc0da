// Package httpx holds the HTTP pieces every service shares: the operational
// endpoints (/healthz, /readyz, /metrics), request metrics and graceful
// serving.
package httpx

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Check is one readiness dependency, such as NATS or Postgres.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// Health serves /healthz (the process is alive) and /readyz (every
// registered dependency answers). Checks may be added as services start.
type Health struct {
	mu      sync.RWMutex
	checks  []Check
	timeout time.Duration
}

// NewHealth returns a Health with the given checks; each check gets timeout
// (default 2s) per probe.
func NewHealth(timeout time.Duration, checks ...Check) *Health {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &Health{checks: checks, timeout: timeout}
}

// Add registers more checks; a check with a name already present is skipped,
// so services sharing one process can each declare their dependencies.
func (h *Health) Add(checks ...Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range checks {
		dup := false
		for _, have := range h.checks {
			if have.Name == c.Name {
				dup = true
				break
			}
		}
		if !dup {
			h.checks = append(h.checks, c)
		}
	}
}

// Ready runs every check and returns each failure by name.
func (h *Health) Ready(ctx context.Context) map[string]error {
	h.mu.RLock()
	checks := append([]Check(nil), h.checks...)
	h.mu.RUnlock()
	failed := map[string]error{}
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, h.timeout)
		err := c.Check(cctx)
		cancel()
		if err != nil {
			failed[c.Name] = err
		}
	}
	return failed
}

func (h *Health) serveReady(w http.ResponseWriter, r *http.Request) {
	failed := h.Ready(r.Context())
	status := map[string]string{}
	h.mu.RLock()
	for _, c := range h.checks {
		status[c.Name] = "ok"
	}
	h.mu.RUnlock()
	for name, err := range failed {
		status[name] = err.Error()
	}
	code := http.StatusOK
	if len(failed) > 0 {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": len(failed) == 0, "checks": status})
}

// Register mounts GET /healthz, GET /readyz and GET /metrics (from gatherer)
// on mux.
func (h *Health) Register(mux *http.ServeMux, gatherer prometheus.Gatherer) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", h.serveReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
}

// Metrics counts and times HTTP requests by route pattern and status code.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers sidekick_http_requests_total and
// sidekick_http_request_duration_seconds on reg, reusing collectors that are
// already registered (several services share one registry in dev).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidekick_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	m.requests = promreg.MustRegister(reg, m.requests)
	m.duration = promreg.MustRegister(reg, m.duration)
	return m
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Wrap instruments next; the route label is the matched ServeMux pattern.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// Serve runs srv on lis until ctx is done, then shuts it down gracefully
// within grace. It returns nil after a clean shutdown.
func Serve(ctx context.Context, srv *http.Server, lis net.Listener, grace time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	logger.Info("http listening", "addr", lis.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// NewServer returns an http.Server with timeouts suitable for webhooks.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
}

// SortedNames returns the check names, for logs.
func (h *Health) SortedNames() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	names := make([]string, 0, len(h.checks))
	for _, c := range h.checks {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	return names
}
