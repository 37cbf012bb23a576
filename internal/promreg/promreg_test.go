package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/internal/promreg"
)

func TestRegisterOrReuse(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "hubjobs_test_total", Help: "a test counter"}
	first, err := promreg.RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	second, err := promreg.RegisterOrReuse(reg, prometheus.NewCounter(opts))
	if err != nil || second != first {
		t.Fatalf("a second counter of the same name = %v, %v; want the first one back", second, err)
	}
	if _, err := promreg.RegisterOrReuse(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "hubjobs_test_total", Help: "other"})); err == nil {
		t.Error("a gauge under a counter's name was accepted; want an error")
	}
}
