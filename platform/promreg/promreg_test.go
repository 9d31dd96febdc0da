package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterReusesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "sidekick_test_total", Help: "test"}
	a, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("the second registration did not return the first collector")
	}
	// Same name, other help: a real conflict is an error.
	if _, err := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "sidekick_test_total", Help: "other"})); err == nil {
		t.Fatal("a conflicting description was accepted")
	}
	if c, err := Register[prometheus.Counter](nil, a); err != nil || c != a {
		t.Fatalf("nil registry: %v %v", c, err)
	}
}
