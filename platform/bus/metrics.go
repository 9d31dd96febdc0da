package bus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sidekickhq/sidekick/platform/promreg"
)

// Handling results, the values of the result label.
const (
	resultAck        = "ack"
	resultRetry      = "retry"
	resultDeadLetter = "deadletter"
)

type publishMetrics struct {
	published *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

func newPublishMetrics(reg prometheus.Registerer) (*publishMetrics, error) {
	published, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_bus_published_total",
		Help: "Messages published to JetStream and acknowledged, by subject.",
	}, []string{"subject"}))
	if err != nil {
		return nil, err
	}
	errs, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_bus_publish_errors_total",
		Help: "Publishes to JetStream that failed, by subject.",
	}, []string{"subject"}))
	if err != nil {
		return nil, err
	}
	return &publishMetrics{published: published, errors: errs}, nil
}

type consumerMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	batch    *prometheus.HistogramVec
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	handled, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_bus_handled_total",
		Help: "Messages handled by a consumer, by result: ack, retry or deadletter.",
	}, []string{"stream", "consumer", "result"}))
	if err != nil {
		return nil, err
	}
	duration, err := promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sidekick_bus_handler_duration_seconds",
		Help:    "Time a consumer's handler took for one call: one message, or one batch.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"stream", "consumer"}))
	if err != nil {
		return nil, err
	}
	batch, err := promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sidekick_bus_batch_size",
		Help:    "Messages per handler call, for consumers that take batches.",
		Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500},
	}, []string{"stream", "consumer"}))
	if err != nil {
		return nil, err
	}
	return &consumerMetrics{handled: handled, duration: duration, batch: batch}, nil
}
