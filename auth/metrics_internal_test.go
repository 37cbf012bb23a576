package auth

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics rule of docs/contract.md: a second Authenticator on the same
// registry shares the first one's series; a foreign metric under one of the
// names is an error.
func TestMetricsReuseTheRegisteredCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("a second set on the same registry: %v", err)
	}
	if second.sessionsStarted != first.sessionsStarted || second.loginFailures != first.loginFailures ||
		second.sessionsRejected != first.sessionsRejected || second.csrfBlocked != first.csrfBlocked {
		t.Error("the second set did not reuse the registered collectors")
	}
}

func TestMetricsRefuseAForeignMetricOfTheSameName(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "hubjobs_auth_csrf_blocked_total", Help: "not ours"}))
	if _, err := newMetrics(reg); err == nil || !strings.Contains(err.Error(), "auth: register metrics") {
		t.Errorf("err = %v, want the clash reported", err)
	}
}
