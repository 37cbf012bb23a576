package jobs

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// newCancelOutcomes is hubjobs_cancels_total, registered with reg (nil: kept
// private). New has no error result, so a clash with another package's
// metric panics: a programming error, seen at start-up.
func newCancelOutcomes(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hubjobs_cancels_total",
		Help: "Cancel attempts through the portal by hub and outcome.",
	}, []string{"hub", "outcome"})
	if reg == nil {
		return c
	}
	c, err := registerOrReuse(reg, c)
	if err != nil {
		panic(fmt.Errorf("jobs: register metrics: %w", err))
	}
	return c
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
