package jobs_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/jobs"
)

func TestCancelOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      fixtureOptions
		setup     func(f *fixture) // creates job "j1" and the hub's mood
		confirm   string
		kind      jobs.CancelKind
		result    string // of the outcome entry
		action    audit.Action
		hubCalls  int // cancel calls that reached the hub
		hubStatus hub.JobStatus
		hubCode   string // in the outcome entry, with a tracking id
	}{
		{name: "scheduled job is cancelled",
			setup: func(f *fixture) { f.job("j1", t0.Add(time.Hour)) },
			kind:  jobs.Cancelled, action: audit.JobCancelSucceeded, result: "cancelled", hubCalls: 1, hubStatus: hub.StatusCancelled},
		{name: "already cancelled is not sent again",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				if _, err := f.direct.CancelJob(f.t.Context(), "j1"); err != nil {
					f.t.Fatal(err)
				}
			},
			kind: jobs.AlreadyCancelled, action: audit.JobCancelSucceeded, result: "already cancelled", hubStatus: hub.StatusCancelled},
		{name: "running job is not cancellable",
			setup: func(f *fixture) { f.job("j1", t0) },
			kind:  jobs.NotCancellable, action: audit.JobCancelRefused, result: "not attempted: job is running", hubStatus: hub.StatusRunning},
		{name: "completed job is not cancellable",
			setup: func(f *fixture) { f.job("j1", t0); f.clock.Advance(2 * time.Hour) },
			kind:  jobs.NotCancellable, action: audit.JobCancelRefused, result: "not attempted: job is completed", hubStatus: hub.StatusCompleted},
		{name: "unknown job is not attempted",
			setup: func(f *fixture) {},
			kind:  jobs.NotAttempted, action: audit.JobCancelRefused, hubCode: "JobNotFound"},
		{name: "large job without its typed id",
			opts:  fixtureOptions{devices: 1200},
			setup: func(f *fixture) { f.job("j1", t0.Add(time.Hour)) },
			kind:  jobs.ConfirmationMismatch, action: audit.JobCancelRefused, result: "not attempted: confirmation did not match the job id", hubStatus: hub.StatusScheduled},
		{name: "large job with its typed id",
			opts:  fixtureOptions{devices: 1200},
			setup: func(f *fixture) { f.job("j1", t0.Add(time.Hour)) }, confirm: "j1",
			kind: jobs.Cancelled, action: audit.JobCancelSucceeded, result: "cancelled", hubCalls: 1, hubStatus: hub.StatusCancelled},
		{name: "hub refuses a job that started after the portal read it",
			opts: fixtureOptions{budgetTTL: time.Hour},
			setup: func(f *fixture) {
				f.job("j1", t0.Add(10*time.Minute))
				f.budget.GetJob(f.t.Context(), "j1") // the portal's copy says scheduled
				f.clock.Advance(11 * time.Minute)
			},
			kind: jobs.Refused, action: audit.JobCancelRefused, result: "refused by IoT Hub", hubCalls: 1, hubStatus: hub.StatusCompleted,
			hubCode: "OperationNotAllowedInCurrentState"},
		{name: "hub throttles the cancel",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultThrottle, RetryAfter: "7", Times: 5})
			},
			kind: jobs.Refused, action: audit.JobCancelRefused, hubCalls: 1, hubStatus: hub.StatusScheduled, hubCode: "ThrottlingException"},
		{name: "no answer, reconciled to cancelled",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultMalformedJSON, Times: 1})
			},
			kind: jobs.Unknown, action: audit.JobCancelUnknown, result: "no answer; reconciled status cancelled", hubCalls: 1, hubStatus: hub.StatusCancelled},
		{name: "no answer, reconciled to still scheduled",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultHang, Times: 2})
			},
			kind: jobs.Unknown, action: audit.JobCancelUnknown, result: "no answer; reconciled status scheduled", hubCalls: 1, hubStatus: hub.StatusScheduled},
		{name: "no answer, not reconciled",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				f.budget.GetJob(f.t.Context(), "j1")
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultHang, Times: 2})
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultHang, Times: 10})
			},
			kind: jobs.Unknown, action: audit.JobCancelUnknown, result: "no answer; not reconciled", hubCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			tc.setup(f)
			before := f.sim.Calls(hubsim.OpCancelJob)
			o, err := f.svc.Cancel(t.Context(), origin("Otto", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1", Reason: "wrong firmware", Confirm: tc.confirm})
			if err != nil {
				t.Fatalf("Cancel: %v", err)
			}
			if o.Kind != tc.kind || o.NotRecorded != nil {
				t.Fatalf("outcome %+v, want kind %d, recorded", o, tc.kind)
			}
			f.sim.ClearFaults()
			if n := f.sim.Calls(hubsim.OpCancelJob) - before; n != tc.hubCalls {
				t.Errorf("%d hub cancel calls, want %d", n, tc.hubCalls)
			}
			if tc.hubStatus != "" {
				if got := f.hubStatus("j1"); got != tc.hubStatus {
					t.Errorf("hub says %s, want %s", got, tc.hubStatus)
				}
			}
			es := f.trail("j1")
			if got, want := actions(es), "job.cancel.intent,"+string(tc.action); got != want {
				t.Fatalf("trail %s, want %s", got, want)
			}
			intent, out := es[0], es[1]
			if tc.result != "" && out.Result != tc.result {
				t.Errorf("outcome result %q, want %q", out.Result, tc.result)
			}
			for _, e := range es {
				if e.RequestID != "req-1" || e.Actor.Name != "Otto" || e.Reason != "wrong firmware" || e.Hub != "prod" || e.ClientIP != "192.0.2.7" {
					t.Errorf("entry %+v does not carry the request's origin and reason", e)
				}
			}
			if intent.Result != "requested" {
				t.Errorf("intent result %q", intent.Result)
			}
			if tc.hubCode != "" && (out.HubErrorCode != tc.hubCode || out.HubTrackingID == "" || out.HubStatus == 0) {
				t.Errorf("outcome entry hub status/code/tracking = %d/%q/%q, want %s with a tracking id", out.HubStatus, out.HubErrorCode, out.HubTrackingID, tc.hubCode)
			}
			if tc.kind == jobs.Refused && !errors.Is(o.Err, hub.ErrThrottled) && !errors.Is(o.Err, hub.ErrNotCancellable) {
				t.Errorf("a refusal's Err %v is not the hub's", o.Err)
			}
			if got := f.cancels(string(tc.action)[len("job.cancel."):]); got != 1 {
				t.Errorf("hubjobs_cancels_total{outcome=%s} = %v, want 1", tc.action, got)
			}
		})
	}
}

func TestCancelWithoutAnAuditTrailSendsNothing(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	f.store.Close()
	f.sim.ResetCalls()
	_, err := f.svc.Cancel(t.Context(), origin("Otto", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1"})
	var nr *jobs.NotRecordedError
	if !errors.As(err, &nr) || !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Cancel = %v, want a NotRecordedError wrapping audit.ErrUnavailable", err)
	}
	if n := f.sim.Calls(hubsim.OpCancelJob) + f.sim.Calls(hubsim.OpGetJob); n != 0 {
		t.Errorf("%d hub calls without an intent on record, want 0", n)
	}
	if f.hubStatus("j1") != hub.StatusScheduled {
		t.Error("the job changed")
	}
	if f.cancels("audit_unavailable") != 1 {
		t.Error("the refusal is not counted as audit_unavailable")
	}
}

func TestConcurrentCancelsMakeOneHubCallAndNameTheLeader(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	f.budget.GetJob(t.Context(), "j1") // both re-reads see it scheduled
	f.sim.ResetCalls()
	f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultLatency, Delay: 150 * time.Millisecond, Times: 1})
	names := []string{"Otto", "Ada"}
	outs := make([]jobs.Outcome, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			o, err := f.svc.Cancel(t.Context(), origin(name, "req-"+name), jobs.CancelRequest{Hub: "prod", JobID: "j1"})
			if err != nil {
				t.Error(err)
			}
			outs[i] = o
		})
	}
	wg.Wait()
	if n := f.sim.Calls(hubsim.OpCancelJob); n != 1 {
		t.Errorf("%d hub cancel calls for two cancels at once, want 1", n)
	}
	leader, follower := outs[0], outs[1]
	if leader.Kind != jobs.Cancelled {
		leader, follower = follower, leader
	}
	if leader.Kind != jobs.Cancelled || follower.Kind != jobs.CancelledByOther {
		t.Fatalf("kinds %d and %d, want one Cancelled and one CancelledByOther", outs[0].Kind, outs[1].Kind)
	}
	if follower.LedBy.Name == "" || follower.Job == nil || follower.Job.Status != hub.StatusCancelled {
		t.Errorf("the follower is not told who cancelled and what the job is: %+v", follower)
	}
	if got := actions(f.trail("j1")); got != "job.cancel.intent,job.cancel.intent,job.cancel.succeeded,job.cancel.succeeded" {
		t.Errorf("trail %s, want two intents then two outcomes", got)
	}
	es, _ := f.store.List(t.Context(), audit.Filter{JobID: "j1", Action: audit.JobCancelSucceeded})
	var results []string
	for _, e := range es {
		results = append(results, e.Result)
	}
	if !contains(results, "cancelled") || !contains(results, "already cancelled by "+follower.LedBy.Name) {
		t.Errorf("outcome results %q, want one cancelled and one naming the leader", results)
	}
}

func TestCancelOutlivesTheCallersContext(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	f.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultLatency, Delay: 150 * time.Millisecond, Times: 1})
	ctx, hangUp := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, hangUp) // the browser goes away mid-cancel
	o, err := f.svc.Cancel(ctx, origin("Otto", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1"})
	if err != nil || o.Kind != jobs.Cancelled || o.NotRecorded != nil {
		t.Fatalf("Cancel = %+v, %v; want Cancelled and recorded", o, err)
	}
	if got := actions(f.trail("j1")); got != "job.cancel.intent,job.cancel.succeeded" {
		t.Errorf("trail %s: a hang-up must not leave an intent without its outcome", got)
	}
}

func TestAlreadyCancelledNamesWhoCancelled(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	if o, _ := f.svc.Cancel(t.Context(), origin("Otto", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1"}); o.Kind != jobs.Cancelled {
		t.Fatalf("first cancel %d", o.Kind)
	}
	o, _ := f.svc.Cancel(t.Context(), origin("Ada", "req-2"), jobs.CancelRequest{Hub: "prod", JobID: "j1"})
	if o.Kind != jobs.AlreadyCancelled || o.CancelledBy == nil || o.CancelledBy.Actor.Name != "Otto" {
		t.Fatalf("second cancel %+v, want AlreadyCancelled naming Otto", o)
	}
}

func TestHistoryShowsTheServicesWritesAtOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.job("j1", t0.Add(time.Hour))
	if h, err := f.svc.History(t.Context(), "prod", "j1"); err != nil || len(h) != 0 {
		t.Fatalf("history before = %v, %v", h, err)
	}
	f.svc.Cancel(t.Context(), origin("Otto", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1"})
	h, err := f.svc.History(t.Context(), "prod", "j1")
	if err != nil || actions(h) != "job.cancel.succeeded,job.cancel.intent" {
		t.Fatalf("history after a cancel = %s, %v; want the cancel, newest first, without waiting for the TTL", actions(h), err)
	}
}

func TestDeniedIsRecordedWithValidatedValues(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if err := f.svc.Denied(t.Context(), origin("Vera", "req-1"), jobs.Denial{Hub: "prod", Target: "j1", Why: "cancel needs the operator role on this hub", Cancel: true}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Denied(t.Context(), origin("Vera", "req-2"), jobs.Denial{Why: "creating needs the author role on this hub"}); err != nil {
		t.Fatal(err)
	}
	es, _ := f.store.List(t.Context(), audit.Filter{Action: audit.AuthzDenied})
	if len(es) != 2 || es[1].Hub != "prod" || es[1].JobID != "j1" {
		t.Fatalf("denied entries %+v", es)
	}
	if f.cancels("denied") != 1 || f.sim.Calls(hubsim.OpGetJob)+f.sim.Calls(hubsim.OpCancelJob) != 0 {
		t.Error("a denial must be counted per configured hub and never reach the hub")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
