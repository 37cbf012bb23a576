package jobs

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/internal/promreg"
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
	c, err := promreg.RegisterOrReuse(reg, c)
	if err != nil {
		panic(fmt.Errorf("jobs: register metrics: %w", err))
	}
	return c
}
