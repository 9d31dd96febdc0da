// Package promreg registers Prometheus collectors on a passed-in
// registry the way every Sidekick package needs: several services,
// engines or consumers share one registry (the all-in-one dev stack,
// tests), so registering a collector whose description is already there
// returns the collector that was registered first instead of failing.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns the collector to use: c itself,
// or the one already registered under the same description. A nil reg
// leaves c unregistered (tests, benchmarks).
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
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
		return c, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

// MustRegister is Register for collectors whose descriptions are fixed in
// code, where a clash is a programming error: it panics instead.
func MustRegister[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	got, err := Register(reg, c)
	if err != nil {
		panic(err)
	}
	return got
}
