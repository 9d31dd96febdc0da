package bus

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	published, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_bus_published_total",
		Help: "Messages published to JetStream and acknowledged, by subject.",
	}, []string{"subject"}))
	if err != nil {
		return nil, err
	}
	errs, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
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
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	handled, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidekick_bus_handled_total",
		Help: "Messages handled by a consumer, by result: ack, retry or deadletter.",
	}, []string{"stream", "consumer", "result"}))
	if err != nil {
		return nil, err
	}
	duration, err := register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sidekick_bus_handler_duration_seconds",
		Help:    "Time a consumer's handler took for one message.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"stream", "consumer"}))
	if err != nil {
		return nil, err
	}
	return &consumerMetrics{handled: handled, duration: duration}, nil
}

// register registers c on reg, or returns the collector already registered
// under the same description, so that several publishers and consumers can
// share one registry. A nil reg leaves c unregistered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		var zero C
		return zero, fmt.Errorf("register bus metrics: %w", err)
	}
	return c, nil
}
