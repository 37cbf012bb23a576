package rollout

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/internal/promreg"

	"github.com/hubjobs/hubjobs/hub"
)

// metrics are the engine's: what it does each poll and what it asks of
// each hub, so that its share of a hub's budget can be watched beside the
// budget's own counters.
type metrics struct {
	steps    *prometheus.CounterVec // kind: poll, a state's step, halt
	hubCalls *prometheus.CounterVec // hub, kind, outcome
	leader   prometheus.Gauge
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_rollout_engine_steps_total",
			Help: "Rollout engine steps by kind: poll, the state a rollout was stepped in, halt.",
		}, []string{"kind"}),
		hubCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_rollout_engine_hub_calls_total",
			Help: "Hub calls the rollout engine asked for, by hub, kind and outcome (budget answers included).",
		}, []string{"hub", "kind", "outcome"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubjobs_rollout_engine_leader",
			Help: "1 while this replica holds the lease on driving rollouts.",
		}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.steps, err = promreg.RegisterOrReuse(r, m.steps); err != nil {
		return nil, fmt.Errorf("rollout: register metrics: %w", err)
	}
	if m.hubCalls, err = promreg.RegisterOrReuse(r, m.hubCalls); err != nil {
		return nil, fmt.Errorf("rollout: register metrics: %w", err)
	}
	if m.leader, err = promreg.RegisterOrReuse(r, m.leader); err != nil {
		return nil, fmt.Errorf("rollout: register metrics: %w", err)
	}
	return m, nil
}

// call counts one hub call the engine asked for. Hub names are the
// configured ones, never request text.
func (m *metrics) call(hubName, kind string, err error) {
	outcome := "ok"
	if err != nil {
		outcome = hub.Outcome(err)
	}
	m.hubCalls.WithLabelValues(hubName, kind, outcome).Inc()
}
