package web

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics rule of docs/contract.md: a second server on the same registry
// shares the first one's series; a foreign metric under one of the names is
// an error.
func TestHTTPMetricsReuseTheRegisteredCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := newHTTPMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newHTTPMetrics(reg)
	if err != nil {
		t.Fatalf("a second set on the same registry: %v", err)
	}
	if second.requests != first.requests || second.duration != first.duration {
		t.Error("the second set did not reuse the registered collectors")
	}
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hubjobs_http_requests_total", Help: "not ours"}))
	if _, err := newHTTPMetrics(other); err == nil || !strings.Contains(err.Error(), "web: register metrics") {
		t.Errorf("foreign metric of the same name: err = %v, want the clash reported", err)
	}
}
