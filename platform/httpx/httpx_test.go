package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadyzReflectsChecks(t *testing.T) {
	var down atomic.Bool
	h := NewHealth(0, Check{Name: "nats", Check: func(context.Context) error {
		if down.Load() {
			return errors.New("nats: disconnected")
		}
		return nil
	}})
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	h.Register(mux, reg)

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("ready with healthy deps: %d", code)
	}
	down.Store(true)
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "disconnected") {
		t.Fatalf("readyz with NATS down: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz must not depend on deps: %d", code)
	}
	down.Store(false)
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz did not recover: %d", code)
	}
}

func TestMetricsSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /x", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	for _, m := range []*Metrics{a, b} {
		m.Wrap(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/x", nil))
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	for _, mf := range mfs {
		if mf.GetName() == "sidekick_http_requests_total" {
			for _, m := range mf.GetMetric() {
				got += m.GetCounter().GetValue()
			}
		}
	}
	if got != 2 {
		t.Fatalf("want 2 requests counted in the shared registry, got %v", got)
	}
}

func TestReadBody(t *testing.T) {
	read := func(body string, max int64) ([]byte, *BodyError) {
		rec := httptest.NewRecorder()
		return ReadBody(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), max)
	}
	if b, err := read("hello", 5); err != nil || string(b) != "hello" {
		t.Fatalf("at the limit: %q %v", b, err)
	}
	if _, err := read("hello!", 5); err == nil || err.Status != http.StatusRequestEntityTooLarge || err.Result != "too_large" {
		t.Fatalf("over the limit: %+v", err)
	}
}
