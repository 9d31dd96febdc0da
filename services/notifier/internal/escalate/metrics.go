package escalate

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

type metrics struct {
	started     *prometheus.CounterVec
	steps       *prometheus.CounterVec
	unmatched   *prometheus.CounterVec
	digestItems *prometheus.CounterVec
	digests     *prometheus.CounterVec
	errors      prometheus.Counter
	// reEscalations counts acknowledgements that timed out into an
	// escalation again.
	reEscalations prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_escalations_started_total",
			Help: "Escalations started, by event kind and policy.",
		}, []string{"kind", "policy"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_escalation_steps_total",
			Help: "Escalation steps fired, by event kind and urgency (ping, page).",
		}, []string{"kind", "urgency"}),
		unmatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_events_unmatched_total",
			Help: "Events no escalation policy matched (nobody was told), by kind.",
		}, []string{"kind"}),
		digestItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_digest_items_total",
			Help: "Conversations collected for a digest, by policy.",
		}, []string{"policy"}),
		digests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_digests_total",
			Help: "Digests sent, by policy.",
		}, []string{"policy"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_notifier_escalation_errors_total",
			Help: "Escalation steps that could not be fired (retried).",
		}),
		reEscalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_notifier_ack_timeouts_total",
			Help: "Acknowledged conversations escalated again: no staff reply within the policy's ack_timeout.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	// Several runners may share a registry (tests): each uses the
	// collector registered first.
	for _, c := range []**prometheus.CounterVec{&m.started, &m.steps, &m.unmatched, &m.digestItems, &m.digests} {
		got, err := promreg.Register(reg, *c)
		if err != nil {
			return nil, err
		}
		*c = got
	}
	var err error
	for _, c := range []*prometheus.Counter{&m.errors, &m.reEscalations} {
		if *c, err = promreg.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
