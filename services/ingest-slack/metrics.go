package ingestslack

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Route labels of sidekick_ingest_slack_requests_total.
const (
	routeEvents       = "events"
	routeInteractions = "interactions"
	routeCommands     = "commands"
	routeSocketEvents = "socket_events"
	routeSocketInter  = "socket_interactive"
	routeSocketCmds   = "socket_commands"
)

type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	lookups  *prometheus.CounterVec
	// lookupCached is lookups' users.info/cached, resolved once: it is
	// counted for most events.
	lookupCached prometheus.Counter
}

// newMetrics registers the service's metrics on reg (nil: unregistered),
// reusing collectors already there so several services can share one
// registry.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_slack_requests_total",
			Help: "Requests from Slack by route (events, interactions, commands, and their socket_ forms) and answer code (HTTP status; for Socket Mode the status the same input gets over HTTP).",
		}, []string{"route", "code"})),
		events: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_slack_events_total",
			Help: "Slack events, interactions and commands by type and result (published, duplicate, deadletter, ignored_<reason>, unauthorized, malformed, too_large, error, answered).",
		}, []string{"type", "result"})),
		lookups: promreg.MustRegister(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_ingest_slack_lookups_total",
			Help: "Slack Web API lookups of senders (users.info) by result: on the request path cached (a profile past its TTL included), fetched (a sender not seen within the TTL and the stale window), error (the event's own facts were used); after the answer refreshed, refresh_error (a profile past its TTL looked up again in the background).",
		}, []string{"lookup", "result"})),
	}
	m.lookupCached = m.lookups.WithLabelValues("users.info", "cached")
	return m
}
