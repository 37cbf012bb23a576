package rollout

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// A manual halt while wave 1 runs: the running job cannot be cancelled and
// is left to finish (the page says by when), nothing more is created.
func TestManualHaltLeavesARunningJobToFinish(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(40, nil, nil), rate: 0.05, maxActive: 10}) // 20 s a device
	e := f.engine("a")
	f.create(e, "run1", methodSpec("*", "10"))
	f.until(e, 3, func() bool {
		j, ok := f.hubJobs("prod")["hj-run1-w1-1"]
		return ok && j.Status == hub.StatusRunning
	})
	ro, err := e.Halt(context.Background(), person("olga"), "prod", "run1", "wrong firmware")
	if err != nil {
		t.Fatal(err)
	}
	if ro.Status.Halt != HaltManual || ro.Status.Note != "wrong firmware" || ro.HaltedBy.Name != "olga" ||
		!strings.Contains(ro.Next, "hj-run1-w1-1 is running and cannot be cancelled, it stops by itself by") {
		t.Fatalf("status %+v, next %q", ro.Status, ro.Next)
	}
	f.until(e, 30, func() bool { return f.hubJobs("prod")["hj-run1-w1-1"].Status == hub.StatusCompleted })
	f.until(e, 2, func() bool { return f.get(e, "run1").Next == "halted: nothing more is sent" })
	if _, ok := f.hubJobs("prod")["hj-run1-w2-1"]; ok {
		t.Fatal("a halted rollout created its next wave")
	}
	es, _ := f.audit.List(context.Background(), audit.Filter{JobID: "run1", Action: audit.RolloutHalted})
	if len(es) != 1 || es[0].Actor.Name != "olga" || es[0].Reason != "wrong firmware" {
		t.Fatalf("halt entry %+v", es)
	}
}

// A manual halt during the bake cancels the scheduled next wave on the
// hub before Halt returns; the cancel is the engine's, audited.
func TestManualHaltDuringTheBakeCancelsTheScheduledWave(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(40, nil, nil), maxActive: 10})
	e := f.engine("a")
	f.create(e, "bake1", methodSpec("*", "10"))
	f.until(e, 10, func() bool {
		j, ok := f.hubJobs("prod")["hj-bake1-w2-1"]
		return ok && j.Status == hub.StatusScheduled
	})
	if _, err := e.Halt(context.Background(), person("olga"), "prod", "bake1", "stop"); err != nil {
		t.Fatal(err)
	}
	if st := f.hubJobs("prod")["hj-bake1-w2-1"].Status; st != hub.StatusCancelled {
		t.Fatalf("scheduled wave is %s after Halt returned, want cancelled", st)
	}
	if got := f.trail("hj-bake1-w2-1"); !slices.Equal(got, []string{"job.create.intent", "job.create.succeeded",
		"job.cancel.intent", "job.cancel.succeeded"}) {
		t.Fatalf("job trail %v", got)
	}
	rest, err := e.Remaining(context.Background(), "prod", "bake1")
	if err != nil || len(rest) != 30 {
		t.Fatalf("remaining %d (%v), want the 30 devices of wave 2", len(rest), err)
	}
}

// Approving a gated wave during the bake saves the wait: its jobs are
// scheduled for the bake's end and it runs without awaiting approval.
func TestApprovalDuringTheBake(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(50, nil, nil), maxActive: 10})
	e := f.engine("a")
	s := methodSpec("*", "5")
	s.Rules.ApprovalWaves = []int{2}
	f.create(e, "early1", s)
	f.until(e, 10, func() bool { return f.get(e, "early1").Status.State == Baking })
	ro := f.get(e, "early1")
	if !strings.Contains(ro.Next, "needs an approver") {
		t.Fatalf("next %q", ro.Next)
	}
	if _, err := e.Approve(context.Background(), person("bob"), "prod", "early1"); err != nil {
		t.Fatal(err)
	}
	if err := f.poll(e); err != nil {
		t.Fatal(err)
	}
	ends, _ := Machine{Bake: s.Bake}.BakeEnds(ro.Status)
	if j := f.hubJobs("prod")["hj-early1-w2-1"]; j.Status != hub.StatusScheduled || !j.StartTime.Equal(ends) {
		t.Fatalf("wave 2 job %s at %v, want scheduled at %v", j.Status, j.StartTime, ends)
	}
	var seen []State
	f.until(e, 60, func() bool {
		st := f.get(e, "early1").Status.State
		seen = append(seen, st)
		return st == Completed
	})
	if slices.Contains(seen, AwaitingApproval) {
		t.Fatalf("states %v: an approved wave waited for approval", seen)
	}
}

// A halt never makes a "creating" row final before the create grace has
// passed, even one this process sent: the PUT whose answer was lost may
// land at the hub after the halt. Once the grace is over the engine looks,
// cancels what landed, and only then is the row final.
func TestHaltWaitsOutALostCreate(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxActive: 10})
	e := f.engine("a")
	s := methodSpec("*", "")
	s.Start = f.now().Add(time.Hour)
	f.create(e, "lost1", s)
	// The create gets no answer and this process stops right there: the
	// row stays "creating", marked as this process's own.
	f.sims["prod"].Inject(hubsim.Fault{Op: hubsim.OpCreateJob, Kind: hubsim.Fault5xx, Times: 1})
	e.crash = func(point string) bool { return point == "create.sent" }
	if err := f.poll(e); !errors.Is(err, errCrashed) {
		t.Fatalf("poll: %v, want the crash after the create", err)
	}
	e.crash = nil
	if _, err := e.Halt(context.Background(), person("olga"), "prod", "lost1", "stop"); err != nil {
		t.Fatal(err)
	}
	if got := f.get(e, "lost1").Waves[0].Jobs[0].State; got == string(jobCancelled) {
		t.Fatal("the row was made final at once; a late create would run unwatched")
	}
	// The lost PUT lands now.
	if _, err := f.direct["prod"].CreateJob(context.Background(), s.request("hj-lost1-w1-1", "*", s.Start)); err != nil {
		t.Fatal(err)
	}
	f.until(e, int(createGrace/testPoll)+3, func() bool {
		return f.hubJobs("prod")["hj-lost1-w1-1"].Status == hub.StatusCancelled
	})
	f.until(e, 2, func() bool { return f.get(e, "lost1").Waves[0].Jobs[0].State == string(hub.StatusCancelled) })
}
