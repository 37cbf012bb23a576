package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
)

// A crash between the hub call and the outcome leaves an intent alone on
// the trail; the service's reconciliation settles it from what the hub
// says, and leaves alone what it cannot look up.
func TestReconcileSettlesPendingIntents(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	if _, err := f.direct.CancelJob(t.Context(), "j1"); err != nil { // the hub acted, then the process died
		t.Fatal(err)
	}
	for _, e := range []audit.Entry{
		{Action: audit.JobCancelIntent, Result: "requested", RequestID: "req-crash", Hub: "prod", JobID: "j1", Actor: audit.Actor{Name: "Otto"}},
		{Action: audit.JobCancelIntent, Result: "requested", RequestID: "req-gone", Hub: "gone", JobID: "j9"},
		{Action: audit.JobCreateIntent, Result: "requested", RequestID: "req-made", Hub: "prod", JobID: "j1"},
		{Action: audit.JobCreateIntent, Result: "requested", RequestID: "req-never", Hub: "prod", JobID: "j2"},
	} {
		if _, err := f.store.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.svc.ReconcileOnce(t.Context()); n != 0 {
		t.Fatalf("settled %d intents still within their grace", n)
	}
	f.clock.Advance(3 * time.Minute)
	if n := f.svc.ReconcileOnce(t.Context()); n != 3 {
		t.Fatalf("settled %d, want 3", n)
	}
	es := f.trail("j1")
	if got := actions(es); got != "job.cancel.intent,job.create.intent,job.cancel.reconciled,job.create.succeeded" {
		t.Fatalf("trail %s", got)
	}
	if r := es[2]; r.Result != "cancelled" || r.RequestID != "req-crash" || r.Actor.Name != "Otto" {
		t.Errorf("reconciled entry %+v, want the hub's status under the intent's request id and actor", r)
	}
	if r := es[3]; r.Result != "reconciled: created" || r.RequestID != "req-made" {
		t.Errorf("reconciled create %+v, want created under the intent's request id", r)
	}
	if es := f.trail("j2"); actions(es) != "job.create.intent,job.create.refused" || es[1].Result != "reconciled: not created" {
		t.Errorf("a create the hub never saw: trail %s", actions(es))
	}
	pending, err := f.store.PendingIntents(t.Context())
	if err != nil || len(pending) != 1 || pending[0].Hub != "gone" {
		t.Errorf("pending = %+v, %v; want only the unconfigured hub's intent left", pending, err)
	}
}

func TestRunStopsWithItsContext(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
