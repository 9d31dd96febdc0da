package deliver

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

type metrics struct {
	deliveries  *prometheus.CounterVec
	sendSeconds *prometheus.HistogramVec
	rateLimited *prometheus.CounterVec
	refreshes   prometheus.Counter
	bursts      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_deliveries_total",
			Help: "Delivery attempts by channel and result (delivered, retry, failed; paced: handed back by the channel's pace and rescheduled, not counted as an attempt).",
		}, []string{"channel", "result"}),
		sendSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sidekick_notifier_send_duration_seconds",
			Help:    "Time spent in one channel send.",
			Buckets: prometheus.DefBuckets,
		}, []string{"channel"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_rate_limited_total",
			Help: "Deliveries held back by a recipient's rate limit, by channel.",
		}, []string{"channel"}),
		refreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sidekick_notifier_refreshes_total",
			Help: "Sent messages rewritten with a newer state instead of sending another (storm protection).",
		}),
		bursts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_notifier_burst_messages_total",
			Help: "Messages of bursts (pings to one recipient coalesced into one message) posted (post) or rewritten with more members or their new state (update).",
		}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.deliveries, err = promreg.Register(reg, m.deliveries); err != nil {
		return nil, err
	}
	if m.sendSeconds, err = promreg.Register(reg, m.sendSeconds); err != nil {
		return nil, err
	}
	if m.rateLimited, err = promreg.Register(reg, m.rateLimited); err != nil {
		return nil, err
	}
	if m.refreshes, err = promreg.Register(reg, m.refreshes); err != nil {
		return nil, err
	}
	if m.bursts, err = promreg.Register(reg, m.bursts); err != nil {
		return nil, err
	}
	return m, nil
}
