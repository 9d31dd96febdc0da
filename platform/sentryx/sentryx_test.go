package sentryx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/getsentry/sentry-go"
)

type recordingTransport struct {
	mu     sync.Mutex
	events []*sentry.Event
}

func (t *recordingTransport) Configure(sentry.ClientOptions) {}
func (t *recordingTransport) SendEvent(e *sentry.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, e)
}
func (t *recordingTransport) Flush(time.Duration) bool              { return true }
func (t *recordingTransport) FlushWithContext(context.Context) bool { return true }
func (t *recordingTransport) Close()                                {}

func TestDisabledWithoutDSN(t *testing.T) {
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Enabled() {
		t.Fatal("reporter enabled without a DSN")
	}
	r.CaptureError(errors.New("x"), nil) // must not panic
	var nilR *Reporter
	nilR.CaptureError(errors.New("x"), nil)
}

func TestCaptureErrorCarriesServiceTag(t *testing.T) {
	tr := &recordingTransport{}
	r, err := New(Options{DSN: "https://key@sentry.example.com/1", Service: "triage", Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	r.CaptureError(errors.New("outbox relay failed"), map[string]string{"step": "relay"})
	r.CapturePanic("boom")
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.events) != 2 {
		t.Fatalf("want 2 events, got %d", len(tr.events))
	}
	e := tr.events[0]
	if e.Tags["service"] != "triage" || e.Tags["step"] != "relay" {
		t.Fatalf("tags %v", e.Tags)
	}
	if len(e.Exception) == 0 || e.Exception[0].Value != "outbox relay failed" {
		t.Fatalf("exception %+v", e.Exception)
	}
}
