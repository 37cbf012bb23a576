package hub

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the hub clients' Prometheus collectors. One *Metrics is shared
// by every hub client of the process; the hub label tells them apart. A nil
// *Metrics records nothing, so tests and tools need not build one.
type Metrics struct {
	calls     *prometheus.CounterVec   // hub, operation, outcome
	latency   *prometheus.HistogramVec // hub, operation
	throttled *prometheus.CounterVec   // hub, operation
	retries   *prometheus.CounterVec   // hub, operation
	reads     *prometheus.CounterVec   // hub, operation, source (budget layer)
	budget    *prometheus.CounterVec   // hub, bucket, class, result (budget layer)
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). A second call on the same registry reuses the collectors
// already registered, so the counts of both land in the same series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_hub_calls_total",
			Help: "IoT Hub calls by hub, operation and outcome (ok, not_found, throttled, …), after retries.",
		}, []string{"hub", "operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hubjobs_hub_call_duration_seconds",
			Help:    "Duration of IoT Hub calls including retries and backoff.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 25},
		}, []string{"hub", "operation"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_hub_throttled_total",
			Help: "HTTP 429 answers from IoT Hub, per attempt.",
		}, []string{"hub", "operation"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_hub_retries_total",
			Help: "Attempts beyond the first, per IoT Hub call.",
		}, []string{"hub", "operation"}),
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_hub_budget_reads_total",
			Help: "Calls through the hub traffic budget by source: hub (a call was made), coalesced (shared another caller's call), cached (fresh within the TTL), stale (budget spent or hub failing, last known data served), refused (budget spent, nothing known; writes too).",
		}, []string{"hub", "operation", "source"}),
		budget: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_hub_budget_calls_total",
			Help: "Tokens asked of the hub traffic budget, by bucket (jobs, queries), caller class (people, anonymous, or a configured caller such as the rollout engine) and result: spent (a hub call was made), refused (the hub's bucket was empty) or refused_share (the caller's own share was).",
		}, []string{"hub", "bucket", "class", "result"}),
	}
	if reg == nil {
		return m
	}
	var errs [6]error
	m.calls, errs[0] = registerOrReuse(reg, m.calls)
	m.latency, errs[1] = registerOrReuse(reg, m.latency)
	m.throttled, errs[2] = registerOrReuse(reg, m.throttled)
	m.retries, errs[3] = registerOrReuse(reg, m.retries)
	m.reads, errs[4] = registerOrReuse(reg, m.reads)
	m.budget, errs[5] = registerOrReuse(reg, m.budget)
	if err := errors.Join(errs[:]...); err != nil {
		// NewMetrics has no error result: a clash with another package's
		// metric is a programming error, seen at start-up.
		panic(fmt.Errorf("hub: register metrics: %w", err))
	}
	return m
}

// registerOrReuse registers c with reg or, when a collector of the same type
// is already registered under the same name, returns that one, so that two
// instances on one registry share their series instead of failing. It is the
// metrics rule of docs/contract.md, which says why each package has a copy.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *Metrics) observeCall(hub, op string, err error, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(hub, op, Outcome(err)).Inc()
	m.latency.WithLabelValues(hub, op).Observe(d.Seconds())
}

func (m *Metrics) observeThrottled(hub, op string) {
	if m != nil {
		m.throttled.WithLabelValues(hub, op).Inc()
	}
}

func (m *Metrics) observeRetry(hub, op string) {
	if m != nil {
		m.retries.WithLabelValues(hub, op).Inc()
	}
}

// Budget read sources.
const (
	sourceHub       = "hub"
	sourceCoalesced = "coalesced"
	sourceCached    = "cached"
	sourceStale     = "stale"
	sourceRefused   = "refused"
)

func (m *Metrics) observeRead(hub, op, source string) {
	if m != nil {
		m.reads.WithLabelValues(hub, op, source).Inc()
	}
}

// Budget results.
const (
	budgetSpent        = "spent"
	budgetRefused      = "refused"
	budgetRefusedShare = "refused_share"
)

func (m *Metrics) observeBudget(hub, bucket, class, result string) {
	if m != nil {
		m.budget.WithLabelValues(hub, bucket, class, result).Inc()
	}
}

// Outcome names err for a metric label or a log field: "ok", "not_found",
// "not_cancellable", "throttled", "unauthorized", "conflict", "timeout",
// "not_attempted", "unavailable", "outcome_unknown", "invalid", "canceled"
// or "error".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrOutcomeUnknown):
		return "outcome_unknown"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrNotCancellable):
		return "not_cancellable"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.Is(err, ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrNotAttempted):
		return "not_attempted"
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrBadResponse), errors.Is(err, ErrResponseTooLarge):
		return "unavailable"
	case errors.Is(err, ErrInvalidJobID), errors.Is(err, ErrInvalidRequest):
		return "invalid"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}
