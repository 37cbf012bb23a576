package rollout

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// The engine's performance budgets, measured (the README quotes the logged
// figures): halt latency from a rule firing to the scheduled wave cancelled
// at the hub, and what 20 concurrent rollouts across 4 hubs cost each hub.

// TestFigureHaltLatency runs the engine's real loop on the wall clock with
// a 500 ms poll: wave 1 leaves unhealthy devices, wave 2 waits as a
// scheduled job, the health rule fires near the bake's end, and the
// scheduled job must be cancelled at the hub within one poll + 2 s of the
// bake end that the rule guards.
func TestFigureHaltLatency(t *testing.T) {
	sick := map[int]bool{}
	for i := range 40 {
		sick[i] = i%2 == 0
	}
	const poll = 500 * time.Millisecond
	f := newFixture(t, fixtureOptions{devices: registry(40, nil, sick), maxActive: 10, realClock: true, poll: poll})
	e := f.engine("a")
	s := methodSpec("*", "10")
	s.Bake = 3 * time.Second
	s.Rules.HealthQuery, s.Rules.Health = "properties.reported.health = 'error'", Percent(10)
	f.create(e, "latency1", s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && f.entry(audit.JobCancelSucceeded, "hj-latency1-w2-1").Time.IsZero() {
		time.Sleep(20 * time.Millisecond)
	}
	if j := f.hubJobs("prod")["hj-latency1-w2-1"]; j.Status != hub.StatusCancelled {
		t.Fatalf("wave 2 is %s at the hub, want cancelled", j.Status)
	}
	halted := f.entry(audit.RolloutHalted, "latency1")
	cancelled := f.entry(audit.JobCancelSucceeded, "hj-latency1-w2-1")
	if halted.Time.IsZero() || cancelled.Time.IsZero() {
		t.Fatalf("no halt (%v) or no cancel (%v): job trail %v, rollout %+v", halted.Time, cancelled.Time,
			f.trail("hj-latency1-w2-1"), f.get(e, "latency1").Waves)
	}
	ro := f.get(e, "latency1")
	if ro.Status.Halt != HaltHealth {
		t.Fatalf("halted for %s: %s", ro.Status.Halt, ro.Status.Note)
	}
	// The rule is evaluated at a poll; the worst case adds one poll to the
	// time from the fired verdict to the cancel on record.
	latency := cancelled.Time.Sub(halted.Time)
	if latency > 2*time.Second {
		t.Fatalf("cancel %s after the halt, want ≤ 2 s", latency)
	}
	t.Logf("FIGURE halt latency: rule fired → scheduled wave cancelled at the hub in %s (≤ poll %s + that)", latency.Round(time.Millisecond), poll)
}

// entry is the first audit entry of action about id.
func (f *fixture) entry(action audit.Action, id string) audit.Entry {
	f.t.Helper()
	es, err := f.audit.List(context.Background(), audit.Filter{JobID: id, Action: action, OldestFirst: true})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(es) == 0 {
		return audit.Entry{}
	}
	return es[0]
}

// TestFigureEngineBudget: 20 rollouts, 5 on each of 4 simulated hubs, for
// 30 simulated minutes with the default 15 s poll. Every hub has the
// design's S1 budgets (100 jobs operations and 20 queries a minute) and
// the engine's share is 0.5: the calls counted at each simulator must stay
// under half of each budget, plus the share of the bucket's burst.
func TestFigureEngineBudget(t *testing.T) {
	hubs := []string{"h1", "h2", "h3", "h4"}
	const share, jobsPerMin, queriesPerMin, minutes = 0.5, 100, 20, 30
	// 2 devices a second per job: the waves of 10, 65, 75 and 150 devices
	// run for up to 75 s each, so that jobs are read at every poll.
	f := newFixture(t, fixtureOptions{devices: registry(300, nil, nil), maxActive: 10, hubs: hubs, rate: 2,
		budget: hub.BudgetConfig{JobsOpsPerMinute: jobsPerMin, QueriesPerMinute: queriesPerMin,
			CallerShares: map[string]float64{EngineCaller: share}}})
	e := f.engine("a")
	for _, h := range hubs {
		for i := range 5 {
			s := methodSpec("*", "10,25%,50%")
			s.Hub, s.Bake = h, 2*time.Minute
			s.Rules.HealthQuery, s.Rules.Health = "properties.reported.health = 'error'", Percent(50)
			if _, err := e.Create(context.Background(), person("alice"), fmt.Sprintf("b%s%d", h, i), s); err != nil {
				t.Fatal(err)
			}
		}
	}
	counts := func(h string) (jobsOps, queries int) {
		sim := f.sims[h]
		return sim.Calls(hubsim.OpCreateJob) + sim.Calls(hubsim.OpGetJob) + sim.Calls(hubsim.OpQueryJobs) + sim.Calls(hubsim.OpCancelJob),
			sim.Calls(hubsim.OpQueryDevices)
	}
	peakJobs, peakQueries := map[string]int{}, map[string]int{}
	for range minutes {
		before := map[string][2]int{}
		for _, h := range hubs {
			j, q := counts(h)
			before[h] = [2]int{j, q}
		}
		for range 4 {
			if err := f.poll(e); err != nil {
				t.Logf("poll: %v", err)
			}
		}
		for _, h := range hubs {
			j, q := counts(h)
			peakJobs[h], peakQueries[h] = max(peakJobs[h], j-before[h][0]), max(peakQueries[h], q-before[h][1])
		}
	}
	for _, h := range hubs {
		jobsOps, queries := counts(h)
		jobsCap := share*jobsPerMin*minutes + share*jobsPerMin/10 + 1
		queriesCap := share*queriesPerMin*minutes + share*5 + 1
		completed := 0
		rs, _ := e.List(context.Background(), h, Completed)
		completed = len(rs)
		t.Logf("FIGURE %s: jobs ops %.1f/min on average, %d in the busiest minute (budget %d, engine share %.0f); queries %.1f/min, %d in the busiest minute (budget %d, share %.0f); %d of 5 rollouts completed in %d min",
			h, float64(jobsOps)/minutes, peakJobs[h], jobsPerMin, share*jobsPerMin, float64(queries)/minutes, peakQueries[h],
			queriesPerMin, share*queriesPerMin, completed, minutes)
		if float64(jobsOps) > jobsCap || float64(queries) > queriesCap {
			t.Fatalf("%s: %d jobs ops and %d queries in %d min, over the engine's share (%.0f, %.0f)", h, jobsOps, queries, minutes, jobsCap, queriesCap)
		}
	}
}
