package jobs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/jobs"
)

func TestCreateOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(f *fixture)
		kind     jobs.CreateKind
		trail    string
		result   string // of the last outcome entry
		hubCalls int
		hubGets  int // hub reads of the job, when checked (non-zero)
		hubCode  string
	}{
		{name: "created", setup: func(*fixture) {},
			kind: jobs.Created, trail: "job.create.intent,job.create.succeeded", result: "created", hubCalls: 1},
		{name: "a retried create finds its job",
			setup: func(f *fixture) { f.job("w1", t0.Add(time.Hour)) },
			kind:  jobs.AlreadyCreated, trail: "job.create.intent,job.create.succeeded", result: "already created", hubCalls: 1,
			hubGets: 1}, // the client's read back, taken as it is: never a second read through the budget
		{name: "the id exists but the job cannot be read back",
			setup: func(f *fixture) {
				f.job("w1", t0.Add(time.Hour))
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.Fault5xx}) // every read, until cleared
			},
			kind: jobs.CreateUnknown, trail: "job.create.intent,job.create.unknown",
			result: "the job id exists but reading the job back failed; not reconciled", hubCalls: 1},
		{name: "another job holds the id",
			setup: func(f *fixture) {
				other := methodJob("w1", t0.Add(time.Hour))
				other.QueryCondition = "deviceId = 'elsewhere'"
				if _, err := f.direct.CreateJob(f.t.Context(), other); err != nil {
					f.t.Fatal(err)
				}
			},
			kind: jobs.CreateRefused, trail: "job.create.intent,job.create.refused", hubCalls: 1,
			result: `refused: another job has this id (type scheduleDeviceMethod, condition "deviceId = 'elsewhere'"; this create: type scheduleDeviceMethod, condition "*")`},
		{name: "refused by the hub",
			setup: func(f *fixture) {
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCreateJob, Kind: hubsim.FaultThrottle, RetryAfter: "3", Times: 5})
			},
			kind: jobs.CreateRefused, trail: "job.create.intent,job.create.refused", hubCalls: 1, hubCode: "ThrottlingException"},
		{name: "no answer, the read back finds the job",
			setup: func(f *fixture) {
				f.sim.Inject(hubsim.Fault{Op: hubsim.OpCreateJob, Kind: hubsim.FaultMalformedJSON, Times: 1})
			},
			kind: jobs.Created, trail: "job.create.intent,job.create.succeeded", result: "no answer; the job exists", hubCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			tc.setup(f)
			before, gets := f.sim.Calls(hubsim.OpCreateJob), f.sim.Calls(hubsim.OpGetJob)
			o, err := f.svc.Create(t.Context(), origin("Engine", "req-1"), "prod", methodJob("w1", t0.Add(time.Hour)), "wave 1")
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if o.Kind != tc.kind || o.NotRecorded != nil {
				t.Fatalf("outcome %+v, want kind %d", o, tc.kind)
			}
			if (tc.kind == jobs.Created || tc.kind == jobs.AlreadyCreated) && (o.Job == nil || o.Job.JobID != "w1") {
				t.Errorf("a created job comes back with the hub's answer: %+v", o.Job)
			}
			if n := f.sim.Calls(hubsim.OpCreateJob) - before; n != tc.hubCalls {
				t.Errorf("%d hub create calls, want %d", n, tc.hubCalls)
			}
			if n := f.sim.Calls(hubsim.OpGetJob) - gets; tc.hubGets != 0 && n != tc.hubGets {
				t.Errorf("%d hub reads of the job, want %d", n, tc.hubGets)
			}
			es := f.trail("w1")
			if got := actions(es); got != tc.trail {
				t.Fatalf("trail %s, want %s", got, tc.trail)
			}
			out := es[len(es)-1]
			if tc.result != "" && out.Result != tc.result {
				t.Errorf("outcome result %q, want %q", out.Result, tc.result)
			}
			if out.RequestID != "req-1" || out.Reason != "wave 1" || out.Hub != "prod" {
				t.Errorf("outcome entry %+v does not carry the origin and reason", out)
			}
			if tc.hubCode != "" && (out.HubErrorCode != tc.hubCode || out.HubTrackingID == "") {
				t.Errorf("outcome code/tracking %q/%q, want %s", out.HubErrorCode, out.HubTrackingID, tc.hubCode)
			}
		})
	}
}

func TestCreateWithoutAnAuditTrailSendsNothing(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.store.Close()
	_, err := f.svc.Create(t.Context(), origin("Engine", "req-1"), "prod", methodJob("w1", t0.Add(time.Hour)), "")
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Create = %v, want the audit store's error", err)
	}
	if n := f.sim.Calls(hubsim.OpCreateJob); n != 0 {
		t.Errorf("%d hub create calls without an intent on record", n)
	}
	if _, err := f.direct.GetJob(t.Context(), "w1"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("the job exists: %v", err)
	}
}
