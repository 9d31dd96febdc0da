// Package sentryx reports the services' own errors and panics to Sentry
// when SIDEKICK_SENTRY_DSN is set, and does nothing otherwise. Each service
// gets its own hub, so several services can share one process.
package sentryx

import (
	"fmt"
	"time"

	"github.com/getsentry/sentry-go"
)

// Options configures a Reporter.
type Options struct {
	DSN         string // empty: reporting disabled
	Service     string
	Environment string
	Release     string
	// Transport overrides the HTTP transport (tests).
	Transport sentry.Transport
}

// Reporter sends errors and panics to Sentry. The zero value and a nil
// *Reporter are valid and report nothing.
type Reporter struct {
	hub *sentry.Hub
}

// New builds a Reporter; with an empty DSN it returns a disabled one.
func New(o Options) (*Reporter, error) {
	if o.DSN == "" {
		return &Reporter{}, nil
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:         o.DSN,
		Environment: o.Environment,
		Release:     o.Release,
		ServerName:  o.Service,
		Transport:   o.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("sentry client: %w", err)
	}
	scope := sentry.NewScope()
	scope.SetTag("service", o.Service)
	return &Reporter{hub: sentry.NewHub(client, scope)}, nil
}

// Enabled reports whether errors are sent anywhere.
func (r *Reporter) Enabled() bool { return r != nil && r.hub != nil }

// CaptureError reports err with optional tags.
func (r *Reporter) CaptureError(err error, tags map[string]string) {
	if !r.Enabled() || err == nil {
		return
	}
	r.hub.WithScope(func(s *sentry.Scope) {
		s.SetTags(tags)
		r.hub.CaptureException(err)
	})
}

// CapturePanic reports a recovered panic value.
func (r *Reporter) CapturePanic(p any) {
	if !r.Enabled() {
		return
	}
	r.hub.Recover(p)
}

// Recover is deferred at the top of goroutines: it reports a panic, flushes,
// and re-panics so the process still crashes visibly.
func (r *Reporter) Recover() {
	if p := recover(); p != nil {
		r.CapturePanic(p)
		r.Flush(2 * time.Second)
		panic(p)
	}
}

// Flush waits up to timeout for queued events to be sent.
func (r *Reporter) Flush(timeout time.Duration) {
	if r.Enabled() {
		r.hub.Flush(timeout)
	}
}
