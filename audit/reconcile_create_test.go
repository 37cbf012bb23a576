package audit

import (
	"context"
	"slices"
	"testing"
	"time"
)

// A crash between job.create.intent and its outcome leaves the intent
// pending until reconciliation settles it from the hub: the job exists →
// created, not found → not created. A create outcome never settles a
// cancel intent of the same request, nor the other way round.
func TestReconcileSettlesCreateIntents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now), WithReconcileGrace(time.Minute))
		ctx := context.Background()
		intent := func(requestID, jobID string) Entry {
			e := cancelIntent(requestID, jobID)
			e.Action = JobCreateIntent
			return e
		}
		mustAppend(t, s, intent("c1", "made"))
		mustAppend(t, s, intent("c2", "lost"))
		mustAppend(t, s, intent("c3", "done"))
		mustAppend(t, s, Entry{Action: JobCreateSucceeded, RequestID: "c3", Hub: "prod", JobID: "done", Result: "created"})
		mustAppend(t, s, cancelIntent("both", "job-x"))
		mustAppend(t, s, intent("both", "job-y"))
		mustAppend(t, s, Entry{Action: JobCreateSucceeded, RequestID: "both", Hub: "prod", JobID: "job-y", Result: "created"})

		pending, err := s.PendingIntents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestIDs(pending); !slices.Equal(got, []string{"c1", "c2", "both"}) {
			t.Fatalf("PendingIntents = %v, want c1 c2 and the cancel of both", got)
		}
		clock.Advance(2 * time.Minute)
		hub := &fakeHub{status: map[string]string{"prod/made": "scheduled", "prod/lost": StatusNotFound, "prod/job-x": "cancelled"}}
		if n, err := s.Reconcile(ctx, hub.lookup); n != 3 || err != nil {
			t.Fatalf("Reconcile = %d, %v; want 3 settled", n, err)
		}
		for _, want := range []struct {
			requestID string
			action    Action
			result    string
		}{
			{"c1", JobCreateSucceeded, "reconciled: created"},
			{"c2", JobCreateRefused, "reconciled: not created"},
			{"both", JobCancelReconciled, "cancelled"},
		} {
			es, err := s.List(ctx, Filter{Action: want.action})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(es, func(e Entry) bool { return e.RequestID == want.requestID })
			if i < 0 || es[i].Result != want.result || es[i].Actor.Name != "Olive Operator" {
				t.Errorf("%s: no %s %q under the intent's actor in %+v", want.requestID, want.action, want.result, es)
			}
		}
		if pending, _ := s.PendingIntents(ctx); len(pending) != 0 {
			t.Errorf("still pending: %v", requestIDs(pending))
		}
		if err := s.Verify(ctx); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}
