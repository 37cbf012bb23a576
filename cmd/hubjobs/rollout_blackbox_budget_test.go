package main

// The engine's hub calls counted at the hub against its share of the
// hub's budgets (design: the engine never takes more than
// rollouts.max_share_of_budget). See rollout_helpers_test.go.

import (
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

// mostInAMinute is the largest number of calls in any 60 s window.
func mostInAMinute(calls []hubCall) int {
	most := 0
	for i, c := range calls {
		n := 0
		for _, d := range calls[i:] {
			if d.at.Sub(c.at) >= time.Minute {
				break
			}
			n++
		}
		most = max(most, n)
	}
	return most
}

// A rollout whose engine wants more than its share: a 1 s poll reads
// every running job each second, and freezing 600 devices takes six
// query pages of 100. The hub allows 120 jobs operations and 20 queries
// a minute, the portal's config says the same, and the engine's share is
// 0.5. Counted at the hub (every call the portal made, through a
// recording proxy): in no 60 s window does the engine make more than its
// share of a minute plus its share of the burst, the hub never throttles
// it, and the portal's own count of the engine's spent tokens agrees
// with the hub's count (no call by anyone else crept in).
//
// The rollout need not finish in the window, and at these numbers it does
// not: once a wave's first job is done, counting the hub's active jobs
// (three job queries, one per status, every two polls) takes every token
// the share earns, so the create of the wave's next job is refused by the
// budget at each poll, and audited each time. That is a defect of the
// engine's pacing, not of the cap this test checks.
func TestRolloutBlackboxEngineStaysWithinItsShare(t *testing.T) {
	t.Parallel()
	const jobsPerMin, queriesPerMin, share = 120, 20, 0.5
	h := startRolloutHub(t, fleet(600, "paris", nil), "--max-active-jobs", "1", "--device-rate", "200",
		"--jobs-ops-per-minute", "120", "--queries-per-minute", "20")
	setup := rolloutPortal(t, rolloutIdP(t), h, rolloutConfig{jobsOpsPerMinute: jobsPerMin, queriesPerMin: queriesPerMin, share: share})
	startServe(t, setup)
	author := newBrowser(t)
	author.signInTo(setup.publicURL, "author", "/hubs/prod/rollouts") // a page that reads nothing from the hub
	if n := len(h.recorded()); n != 0 {
		t.Fatalf("the portal made %d hub calls before the rollout", n)
	}

	rid, _ := author.createRollout(setup.publicURL, rolloutForm("tags.site = 'paris'", "10,25%,100%", "4s",
		map[string]string{"health_query": "properties.reported.health = 'error'", "health_threshold": "50%"}))
	start := time.Now()
	deadline := start.Add(75 * time.Second)
	state := ""
	for time.Now().Before(deadline) && state != "completed" && state != "halted" {
		time.Sleep(time.Second)
		state, _ = author.rolloutState(setup.publicURL, rid)
	}
	elapsed := time.Since(start)
	calls := h.recorded()

	var jobsOps, queries []hubCall
	for _, c := range calls {
		if c.status == http.StatusTooManyRequests {
			t.Errorf("the hub throttled the portal: %s %s", c.method, c.path)
		}
		if c.jobsOp() {
			jobsOps = append(jobsOps, c)
		} else {
			queries = append(queries, c)
		}
	}
	// A share's bucket holds share × burst (the portal's burst is a tenth
	// of a minute for jobs, 5 for queries), rounded up; one call more can
	// race past the check (hub.charge).
	jobsBound := int(share*jobsPerMin) + int(math.Ceil(share*jobsPerMin/10)) + 1
	queriesBound := int(share*queriesPerMin) + int(math.Ceil(share*5)) + 1
	jobsMost, queriesMost := mostInAMinute(jobsOps), mostInAMinute(queries)
	t.Logf("rollout %s after %.0f s; at the hub: %d jobs operations (busiest minute %d, bound %d, share %g/min), %d queries (busiest minute %d, bound %d, share %g/min)",
		state, elapsed.Seconds(), len(jobsOps), jobsMost, jobsBound, share*jobsPerMin, len(queries), queriesMost, queriesBound, share*queriesPerMin)
	if jobsMost > jobsBound {
		t.Errorf("the engine made %d jobs operations in one minute, over its share (%d with the burst)", jobsMost, jobsBound)
	}
	if queriesMost > queriesBound {
		t.Errorf("the engine made %d queries in one minute, over its share (%d with the burst)", queriesMost, queriesBound)
	}
	// The share binds: the engine wanted more than it got.
	refused := metric(t, setup.publicURL, "hubjobs_hub_budget_calls_total", `class="hubjobs-engine"`, `result="refused_share"`)
	if refused == 0 {
		t.Errorf("the engine's share was never spent: the check did not load it")
	}
	spent := metric(t, setup.publicURL, "hubjobs_hub_budget_calls_total", `class="hubjobs-engine"`, `result="spent"`)
	others := metric(t, setup.publicURL, "hubjobs_hub_budget_calls_total", `result="spent"`) - spent
	if atHub := len(h.recorded()); others != 0 || int(spent) != atHub {
		t.Errorf("the portal counts %v engine calls and %v others; the hub saw %d", spent, others, atHub)
	}
	t.Logf("the engine's share refused %v calls it wanted; the rollout's jobs at the hub: %v", refused, jobStatuses(h.rolloutJobs(t, rid)))
	if !slices.Contains([]string{"baking", "running", "completed"}, state) {
		t.Errorf("rollout %s after %s: the engine made no progress within its share", state, elapsed)
	}
}
