// Package promreg holds the one rule by which hubjobs registers its
// Prometheus collectors (docs/contract.md, "Metrics"). It knows nothing of
// hubjobs and imports nothing of it, so every package above the leaves may
// use it; hub, auth and audit, which by the layout import nothing internal,
// keep a copy of the same few lines.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterOrReuse registers c with reg or, when a collector of the same
// type is already registered under the same name, returns that one, so that
// two instances on one registry (two engines in a test, a store reopened)
// share their series instead of failing. Any other clash is an error.
func RegisterOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
