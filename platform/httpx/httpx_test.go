package httpx

import (
	"context"
	"errors"
	"io"
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
	// Without a declared length (chunked), the limit still holds.
	chunked := func(body string, max int64) ([]byte, *BodyError) {
		req := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader(body)))
		req.ContentLength = -1
		return ReadBody(httptest.NewRecorder(), req, max)
	}
	if b, err := chunked("hello", 5); err != nil || string(b) != "hello" {
		t.Fatalf("chunked at the limit: %q %v", b, err)
	}
	if _, err := chunked("hello!", 5); err == nil || err.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked over the limit: %+v", err)
	}
	// A body shorter than its declared length is malformed.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("hel"))
	req.ContentLength = 5
	if _, err := ReadBody(httptest.NewRecorder(), req, 10); err == nil || err.Status != http.StatusBadRequest || err.Result != "malformed" {
		t.Fatalf("truncated body: %+v", err)
	}
	// A declared length over the limit is refused before anything is read.
	r := &countingReader{r: strings.NewReader(strings.Repeat("x", 100))}
	req = httptest.NewRequest(http.MethodPost, "/", r)
	req.ContentLength = 100
	if _, err := ReadBody(httptest.NewRecorder(), req, 10); err == nil || err.Status != http.StatusRequestEntityTooLarge || r.n != 0 {
		t.Fatalf("declared too large: %+v, %d bytes read", err, r.n)
	}
}

func TestReadBodyIntoReusesTheBuffer(t *testing.T) {
	buf := make([]byte, 0, 16)
	for _, chunked := range []bool{false, true} {
		req := httptest.NewRequest(http.MethodPost, "/", io.NopCloser(strings.NewReader("hello")))
		req.ContentLength = 5
		if chunked {
			req.ContentLength = -1
		}
		b, err := ReadBodyInto(httptest.NewRecorder(), req, 10, buf)
		if err != nil || string(b) != "hello" {
			t.Fatalf("chunked %v: %q %v", chunked, b, err)
		}
		if &b[0] != &buf[:1][0] {
			t.Errorf("chunked %v: read into a new array although the body fits", chunked)
		}
	}
	// A body larger than the buffer gets an array of its own; the limit
	// still holds.
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 20)))
	b, err := ReadBodyInto(httptest.NewRecorder(), req, 30, buf)
	if err != nil || len(b) != 20 || &b[0] == &buf[:1][0] {
		t.Fatalf("larger body: %d bytes, %v", len(b), err)
	}
	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 20)))
	if _, err := ReadBodyInto(httptest.NewRecorder(), req, 10, buf); err == nil || err.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit: %+v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
