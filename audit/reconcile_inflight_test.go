package audit

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestReconcileLeavesInFlightCancelsAlone: the portal calls Reconcile at
// start-up AND every few minutes while it serves. A pass that runs while
// this very process is between a cancel's intent and its outcome (the hub
// call takes up to 25 s) must not settle that intent with the status the
// job has before the cancel lands: the trail would then hold a false
// "reconciled: queued" next to the real outcome. Intents left by a process
// that died before this store was opened are settled at once.
func TestReconcileLeavesInFlightCancelsAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock()
		dsn := b.newDSN(t)
		crashed := openStore(t, dsn, WithClock(clock.Now))
		mustAppend(t, crashed, cancelIntent("crashed", "job-1")) // its process died here
		clock.Advance(3 * time.Minute)                           // restart, past any replica grace

		s := openStore(t, dsn, WithClock(clock.Now)) // default grace for the backend
		mustAppend(t, s, cancelIntent("in-flight", "job-2"))
		clock.Advance(time.Second) // the hub call is still running

		hub := &fakeHub{status: map[string]string{"prod/job-1": "queued", "prod/job-2": "queued", "prod/job-3": "queued"}}
		if n, err := s.Reconcile(ctx, hub.lookup); n != 1 || err != nil {
			t.Fatalf("Reconcile = %d, %v; want the crashed intent only", n, err)
		}
		if got := hub.calls(); !slices.Equal(got, []string{"prod/job-1"}) {
			t.Errorf("looked up %v; the in-flight cancel must not be looked up", got)
		}
		mustAppend(t, s, Entry{Action: JobCancelSucceeded, Result: "cancelled", RequestID: "in-flight", Hub: "prod", JobID: "job-2"})

		// An intent of this process whose outcome never came (the outcome
		// write failed) is settled once it is older than any cancel can take.
		mustAppend(t, s, cancelIntent("lost", "job-3"))
		clock.Advance(3 * time.Minute)
		if n, err := s.Reconcile(ctx, hub.lookup); n != 1 || err != nil {
			t.Fatalf("second Reconcile = %d, %v; want the lost intent settled", n, err)
		}
		reconciled, err := s.List(ctx, Filter{Action: JobCancelReconciled})
		if err != nil {
			t.Fatal(err)
		}
		if got := sorted(requestIDs(reconciled)); !slices.Equal(got, []string{"crashed", "lost"}) {
			t.Errorf("reconciled %v, want crashed and lost (never in-flight)", got)
		}
	})
}
