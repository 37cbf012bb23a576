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
)

func TestOneWaveCreateMakesTheJobBeforeReturning(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.engine("a")
	ro := f.create(e, "onewave1", methodSpec("tags.ring = '1'", ""))

	if ro.Status.State != Running || ro.Devices != 13 {
		t.Fatalf("state %s devices %d, want running over 13", ro.Status.State, ro.Devices)
	}
	j, ok := f.hubJobs("prod")["hj-onewave1-w1-1"]
	if !ok || j.QueryCondition != "tags.ring = '1'" {
		t.Fatalf("hub job %+v (found %v), want the author's condition as is", j, ok)
	}
	if got := ro.Waves[0].Jobs[0].State; got == "pending" {
		t.Fatalf("job state %q: it should have been created", got)
	}
	want := []string{"rollout.created", "rollout.wave_started"}
	if got := f.trail("onewave1"); !slices.Equal(got, want) {
		t.Fatalf("rollout trail %v, want %v", got, want)
	}
	if got := f.trail("hj-onewave1-w1-1"); !slices.Equal(got, []string{"job.create.intent", "job.create.succeeded"}) {
		t.Fatalf("job trail %v", got)
	}
	es, _ := f.audit.List(context.Background(), audit.Filter{JobID: "hj-onewave1-w1-1", Action: audit.JobCreateIntent})
	if es[0].Actor.Name != audit.EngineActor.Name {
		t.Fatalf("create actor %+v, want the engine", es[0].Actor)
	}

	// A double submit returns the stored rollout and creates nothing more.
	again, err := e.Create(context.Background(), person("alice"), "onewave1", methodSpec("*", ""))
	if err != nil || again.Spec.Condition != "tags.ring = '1'" {
		t.Fatalf("double submit: %v, %+v", err, again)
	}
	if n := f.sims["prod"].Calls("createJob"); n != 1 {
		t.Fatalf("%d creates at the hub, want 1", n)
	}
	f.until(e, 10, func() bool { return f.get(e, "onewave1").Status.State == Completed })
	if got := f.trail("onewave1"); got[len(got)-1] != "rollout.completed" {
		t.Fatalf("trail %v, want it to end with completed", got)
	}
}

func TestSlotBusy(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.engine("a")
	// Someone else's job holds the only slot until it ends at t0+1h.
	holder := hub.JobRequest{JobID: "theirs", Type: hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "x"}, QueryCondition: "*",
		StartTime: hub.Time{Time: t0.Add(time.Hour)}, MaxExecutionTimeInSeconds: 600}
	if _, err := f.direct["prod"].CreateJob(context.Background(), holder); err != nil {
		t.Fatal(err)
	}

	t.Run("refused, nothing stored", func(t *testing.T) {
		_, err := e.Create(context.Background(), person("alice"), "busy1", methodSpec("*", ""))
		busy, ok := errors.AsType[*SlotBusyError](err)
		if !ok || busy.Limit != 1 || len(busy.Holders) != 1 || busy.Holders[0].JobID != "theirs" ||
			!busy.Holders[0].StopsBy.Equal(t0.Add(time.Hour+10*time.Minute)) {
			t.Fatalf("err %v (%+v), want SlotBusyError naming theirs, stopping at t0+1h10", err, busy)
		}
		if _, err := e.Get(context.Background(), "prod", "busy1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get after refusal: %v, want not found", err)
		}
		if got := f.trail("busy1"); len(got) != 0 {
			t.Fatalf("trail %v, want nothing", got)
		}
	})

	t.Run("waits, survives a restart, starts when the slot frees", func(t *testing.T) {
		s := methodSpec("*", "")
		s.WaitForSlot = true
		ro := f.create(e, "wait1", s)
		if ro.Status.State != Running || !strings.Contains(ro.Waiting, "theirs") {
			t.Fatalf("state %s waiting %q, want running and waiting on theirs", ro.Status.State, ro.Waiting)
		}
		restarted := f.engine("b")
		f.clock.Advance(time.Hour + 11*time.Minute) // theirs is over
		f.until(restarted, 3, func() bool { _, ok := f.hubJobs("prod")["hj-wait1-w1-1"]; return ok })
	})

	t.Run("a waiting rollout can be halted", func(t *testing.T) {
		if _, err := f.direct["prod"].CreateJob(context.Background(), hub.JobRequest{JobID: "theirs2", Type: hub.TypeScheduleDeviceMethod,
			CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "x"}, QueryCondition: "*",
			StartTime: hub.Time{Time: f.clock.Now().Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		s := methodSpec("*", "")
		s.WaitForSlot = true
		f.create(e, "wait2", s)
		ro, err := e.Halt(context.Background(), person("olga"), "prod", "wait2", "not today")
		if err != nil || ro.Status.State != Halted || ro.HaltedBy.Name != "olga" {
			t.Fatalf("halt: %v %+v", err, ro)
		}
		if ro.Waves[0].Jobs[0].State != "cancelled" {
			t.Fatalf("job %+v, want cancelled without reaching the hub", ro.Waves[0].Jobs[0])
		}
		if _, ok := f.hubJobs("prod")["hj-wait2-w1-1"]; ok {
			t.Fatal("the halted wait created a job")
		}
	})
}

func TestWavesRunToCompletion(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(100, nil, nil)})
	e := f.engine("a")
	f.create(e, "waves1", methodSpec("*", "10,50%"))
	if err := f.poll(e); err != nil { // freeze, start, create wave 1
		t.Fatal(err)
	}
	ro := f.get(e, "waves1")
	if got := []int{ro.Waves[0].Size, ro.Waves[1].Size, ro.Waves[2].Size}; !slices.Equal(got, []int{10, 40, 50}) {
		t.Fatalf("wave sizes %v", got)
	}
	// Wave 1 finishes within a poll; wave 2 is then created during the
	// bake as a scheduled job starting when the bake ends.
	f.until(e, 5, func() bool { return f.get(e, "waves1").Status.State == Baking })
	f.until(e, 3, func() bool { _, ok := f.hubJobs("prod")["hj-waves1-w2-1"]; return ok })
	ro = f.get(e, "waves1")
	ends, _ := Machine{Bake: 10 * time.Minute}.BakeEnds(ro.Status)
	j := f.hubJobs("prod")["hj-waves1-w2-1"]
	if j.Status != hub.StatusScheduled || !j.StartTime.Equal(ends) {
		t.Fatalf("wave 2 job %s starting %v, want scheduled at the bake's end %v", j.Status, j.StartTime, ends)
	}
	if !strings.Contains(ro.Next, "wave 2 (40 devices) starts at") {
		t.Fatalf("next %q", ro.Next)
	}
	f.until(e, 200, func() bool { return f.get(e, "waves1").Status.State == Completed })

	seen := f.targeted("waves1")
	if len(seen) != 100 {
		t.Fatalf("%d devices targeted, want all 100", len(seen))
	}
	for d, n := range seen {
		if n != 1 {
			t.Fatalf("device %s targeted %d times", d, n)
		}
	}
	want := []string{"rollout.created", "rollout.wave_started", "rollout.wave_started", "rollout.wave_started", "rollout.completed"}
	if got := f.trail("waves1"); !slices.Equal(got, want) {
		t.Fatalf("trail %v, want %v", got, want)
	}
	if n := f.sims["prod"].Calls("createJob"); n != 3 {
		t.Fatalf("%d creates, want 3", n)
	}
}

func TestFailureRuleHaltsAndCancelsTheScheduledWave(t *testing.T) {
	fail := map[int]bool{}
	for i := range 100 {
		fail[i] = i%4 == 0 // 25 % of the fleet fails
	}
	f := newFixture(t, fixtureOptions{devices: registry(100, fail, nil), maxActive: 10})
	e := f.engine("a")
	s := methodSpec("*", "20,60%")
	s.Rules.Failures, s.Rules.MinFinished = Percent(10), 5
	f.create(e, "fails1", s)
	f.until(e, 20, func() bool { return f.get(e, "fails1").Status.State == Halted })
	ro := f.get(e, "fails1")
	if ro.Status.Halt != HaltFailures || ro.Status.Wave != 1 || !strings.Contains(ro.Status.Note, "threshold 10 %: halt") {
		t.Fatalf("status %+v", ro.Status)
	}
	if _, ok := f.hubJobs("prod")["hj-fails1-w2-1"]; ok {
		t.Fatal("wave 2 was created after the rule fired")
	}
	es, _ := f.audit.List(context.Background(), audit.Filter{JobID: "fails1", Action: audit.RolloutHalted})
	if len(es) != 1 || es[0].Actor.Name != "hubjobs" || !strings.Contains(es[0].Result, "failed") {
		t.Fatalf("halt entries %+v", es)
	}
}

func TestHealthRuleHaltsAtTheEndOfTheBake(t *testing.T) {
	sick := map[int]bool{}
	for i := range 60 {
		sick[i] = i%2 == 0
	}
	f := newFixture(t, fixtureOptions{devices: registry(60, nil, sick), maxActive: 10})
	e := f.engine("a")
	s := methodSpec("*", "20")
	s.Rules.HealthQuery, s.Rules.Health = "properties.reported.health = 'error'", Percent(10)
	f.create(e, "health1", s)
	f.until(e, 60, func() bool { return f.get(e, "health1").Status.State == Halted })
	ro := f.get(e, "health1")
	if ro.Status.Halt != HaltHealth || !strings.HasPrefix(ro.Status.Note, "before wave 2:") {
		t.Fatalf("status %+v", ro.Status)
	}
	// Counted from two polls before the bake ends, the rule finds wave 2
	// still scheduled and cancels it.
	if j := f.hubJobs("prod")["hj-health1-w2-1"]; j.Status != hub.StatusCancelled {
		t.Fatalf("wave 2 job status %q, want cancelled", j.Status)
	}
	rest, err := e.Remaining(context.Background(), "prod", "health1")
	if err != nil || len(rest) != 40 {
		t.Fatalf("%d remaining devices (%v), want the 40 of the cancelled wave", len(rest), err)
	}
	wave2 := f.hubJobs("prod")["hj-health1-w2-1"].QueryCondition
	if slices.ContainsFunc(rest, func(d string) bool { return !strings.Contains(wave2, "'"+d+"'") }) {
		t.Fatalf("the remaining devices are not those of the cancelled wave: %v", rest)
	}
}

func TestApprovalGate(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(50, nil, nil), maxActive: 10})
	e := f.engine("a")
	s := methodSpec("*", "5")
	s.Rules.ApprovalOverDevices = 10 // wave 2 (45 devices) is gated
	f.create(e, "gate1", s)
	f.until(e, 60, func() bool { return f.get(e, "gate1").Status.State == AwaitingApproval })
	if _, ok := f.hubJobs("prod")["hj-gate1-w2-1"]; ok {
		t.Fatal("a gated wave was created before its approval")
	}
	if _, err := e.Approve(context.Background(), person("alice"), "prod", "gate1"); !errors.Is(err, ErrSelfApproval) {
		t.Fatalf("the author approving: %v, want ErrSelfApproval", err)
	}
	ro, err := e.Approve(context.Background(), person("bob"), "prod", "gate1")
	if err != nil || ro.Status.State != Running || ro.ApprovedBy[2].Name != "bob" {
		t.Fatalf("approve: %v %+v", err, ro)
	}
	if _, err := e.Approve(context.Background(), person("bob"), "prod", "gate1"); !errors.Is(err, ErrNotAwaitingApproval) {
		t.Fatalf("second approval: %v", err)
	}
	f.until(e, 20, func() bool { return f.get(e, "gate1").Status.State == Completed })
	if _, err := e.Halt(context.Background(), person("olga"), "prod", "gate1", "late"); !errors.Is(err, ErrFinal) {
		t.Fatalf("halting a completed rollout: %v, want ErrFinal", err)
	}
}

func TestListAndFilters(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxActive: 10})
	e := f.engine("a")
	f.create(e, "lista", methodSpec("*", "5"))
	f.clock.Advance(time.Second)
	f.create(e, "listb", methodSpec("*", ""))
	if _, err := e.Halt(context.Background(), person("olga"), "prod", "lista", "stop"); err != nil {
		t.Fatal(err)
	}
	all, err := e.List(context.Background(), "prod", "")
	if err != nil || len(all) != 2 || all[0].ID != "listb" {
		t.Fatalf("list: %v %v", err, all)
	}
	halted, _ := e.List(context.Background(), "prod", Halted)
	if len(halted) != 1 || halted[0].ID != "lista" {
		t.Fatalf("halted: %v", halted)
	}
	if _, err := e.Get(context.Background(), "other", "lista"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another hub's rollout: %v", err)
	}
	if _, err := e.Create(context.Background(), person("a"), "bad", Spec{Hub: "prod"}); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("invalid spec: %v", err)
	}
}
