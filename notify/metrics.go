package notify

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	var err error
	if m.deliveries, err = registerOrReuse(r, m.deliveries); err != nil {
		return nil, err
	}
	if m.pending, err = registerOrReuse(r, m.pending); err != nil {
		return nil, err
	}
	if m.oldest, err = registerOrReuse(r, m.oldest); err != nil {
		return nil, err
	}
	return m, nil
}

// registerOrReuse lets several senders (replicas in one test, a restart)
// share one registry.
func registerOrReuse[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("notify: register metrics: %w", err)
	}
	return c, nil
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
