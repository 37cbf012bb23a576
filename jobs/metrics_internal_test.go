package jobs

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics rule of docs/contract.md: a second Service on the same
// registry shares the first one's series; a foreign metric under the name
// panics, as New has no error to return.
func TestCancelOutcomesReuseTheRegisteredCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	if first, second := newCancelOutcomes(reg), newCancelOutcomes(reg); first != second {
		t.Error("the second service did not reuse the registered counter")
	}
	if c := newCancelOutcomes(nil); c == nil {
		t.Error("without a registry the counter must still exist (kept private)")
	}
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hubjobs_cancels_total", Help: "not ours"}))
	defer func() {
		if recover() == nil {
			t.Error("a foreign metric of the same name did not panic")
		}
	}()
	newCancelOutcomes(other)
}
