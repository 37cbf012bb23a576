package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// Run settles cancel and create intents that never got an outcome (a
// crash or a kill between the intent and the outcome, possibly on another
// replica): a cancel's from the job's status now, a create's from whether
// the job exists (see audit.Store.Reconcile). Once
// at once, then every Config.ReconcileEvery, until ctx ends. A hub that
// cannot be reached leaves its intents pending for the next pass; Run
// never delays readiness, so start it in its own goroutine.
func (s *Service) Run(ctx context.Context) {
	tick := time.NewTicker(s.reconcileEvery)
	defer tick.Stop()
	for {
		s.ReconcileOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ReconcileOnce is one pass of Run; it returns how many intents it settled.
func (s *Service) ReconcileOnce(ctx context.Context) int {
	settled, err := s.audit.Reconcile(ctx, s.currentStatus)
	if settled > 0 {
		s.log.InfoContext(ctx, "reconciled pending intents", "settled", settled)
	}
	if err != nil && ctx.Err() == nil {
		s.log.WarnContext(ctx, "reconciling pending intents", "err", err)
	}
	return settled
}

// currentStatus is the job's status as the hub says it now,
// audit.StatusNotFound when the hub does not have it (a create that never
// happened, or a job the hub has forgotten). Stale data is no answer: a reconciled
// outcome must not claim knowledge nobody has.
func (s *Service) currentStatus(ctx context.Context, hubName, jobID string) (string, error) {
	h, err := s.hub(hubName)
	if err != nil {
		return "", fmt.Errorf("hub %q is no longer configured: %w", hubName, err)
	}
	fresh, err := h.GetJob(ctx, jobID)
	switch {
	case errors.Is(err, hub.ErrNotFound):
		return audit.StatusNotFound, nil
	case err != nil:
		return "", err
	case fresh.Stale:
		return "", fmt.Errorf("only a stale copy of %s/%s: %w", hubName, jobID, fresh.Reason)
	}
	s.forgetHistory(hubName, jobID)
	return string(fresh.Value.Status), nil
}
