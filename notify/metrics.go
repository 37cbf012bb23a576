package notify

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/internal/promreg"
)

// senderMetrics is nil without a Registerer; its methods accept a nil
// receiver so the sending path needs no branches.
type senderMetrics struct {
	deliveries *prometheus.CounterVec
	pending    prometheus.Gauge
	oldest     prometheus.Gauge
}

func newSenderMetrics(r prometheus.Registerer) (*senderMetrics, error) {
	if r == nil {
		return nil, nil
	}
	m := &senderMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_notify_deliveries_total",
			Help: "Webhook delivery attempts by outcome: delivered, retried (to be tried again), failed (given up).",
		}, []string{"outcome"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubjobs_notify_outbox_pending",
			Help: "Webhook deliveries not yet accepted nor given up.",
		}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hubjobs_notify_outbox_oldest_pending_seconds",
			Help: "Age of the oldest pending webhook delivery; 0 when none is pending.",
		}),
	}
	var errs [3]error
	m.deliveries, errs[0] = promreg.RegisterOrReuse(r, m.deliveries)
	m.pending, errs[1] = promreg.RegisterOrReuse(r, m.pending)
	m.oldest, errs[2] = promreg.RegisterOrReuse(r, m.oldest)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("notify: register metrics: %w", err)
	}
	return m, nil
}

var outcomeLabel = map[Status]string{Delivered: "delivered", Pending: "retried", Failed: "failed"}

func (m *senderMetrics) count(s Status) {
	if m != nil {
		m.deliveries.WithLabelValues(outcomeLabel[s]).Inc()
	}
}

func (m *senderMetrics) backlog(pending, oldestMicros int64, now time.Time) {
	if m == nil {
		return
	}
	m.pending.Set(float64(pending))
	age := 0.0
	if oldestMicros > 0 {
		age = max(now.Sub(time.UnixMicro(oldestMicros)).Seconds(), 0)
	}
	m.oldest.Set(age)
}
