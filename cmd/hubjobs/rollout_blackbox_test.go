package main

// Staged rollouts checked from outside (issue 11, "How it is judged"):
// `hubjobs serve` as a child process, `hubjobs hubsim` over a registry the
// test wrote, a browser with a cookie jar and the pages' CSRF token, the
// hub's jobs read straight from the simulator, and the trail read with
// `hubjobs audit verify|export`. See rollout_helpers_test.go.

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A rollout `10,25%,100%` over the 200 paris devices of a 260-device
// registry, on an S1-like hub (one active job): the hub jobs are
// hj-{rid}-w{n}-{p} with IN lists whose union is exactly the matching
// devices, each once, in the sizes asked for, in the documented keyed-hash
// order (recomputed here from the rollout id) and so not in registry
// order; never more than one unfinished job at the hub; each next wave
// made during the bake as a scheduled job starting when the bake ends.
func TestRolloutBlackboxWavesOnAnS1Hub(t *testing.T) {
	t.Parallel()
	paris := fleet(200, "paris", nil)
	h := startRolloutHub(t, append(paris, fleet(60, "lyon", nil)...), "--max-active-jobs", "1", "--device-rate", "500")
	idp := rolloutIdP(t)
	db := "sqlite://" + t.TempDir() + "/hubjobs.db"
	setup := rolloutPortal(t, idp, h, rolloutConfig{database: db})
	startServe(t, setup)
	author := newBrowser(t)
	author.signIn(setup.publicURL, "author")

	stop := make(chan struct{})
	watch := h.watchJobs(stop)
	const bake = 4 * time.Second
	rid, _ := author.createRollout(setup.publicURL, rolloutForm("tags.site = 'paris'", "10,25%,100%", bake.String(), nil))
	page := author.waitRollout(setup.publicURL, rid, 60*time.Second, "completed", "halted")
	close(stop)
	seen := <-watch
	if state, _ := author.rolloutState(setup.publicURL, rid); state != "completed" {
		t.Fatalf("rollout ended %s:\n%s", state, pageText(page))
	}

	// The hub's jobs and their conditions.
	jobs := h.rolloutJobs(t, rid)
	wantIDs := []string{"hj-" + rid + "-w1-1", "hj-" + rid + "-w2-1", "hj-" + rid + "-w3-1", "hj-" + rid + "-w3-2"}
	if got := slices.Sorted(maps.Keys(jobs)); !slices.Equal(got, wantIDs) {
		t.Fatalf("hub jobs %v, want %v (waves 10, 40, 150; 129 ids of 60 characters fit one condition)", got, wantIDs)
	}
	var delivered []string
	waveDevices := map[string][]string{}
	for _, id := range wantIDs {
		job := h.get(t, id)
		if job["status"] != "completed" {
			t.Errorf("%s is %v at the hub, want completed", id, job["status"])
		}
		ids := inList(t, job["queryCondition"].(string))
		if n := len(job["queryCondition"].(string)); n > 8192 {
			t.Errorf("%s condition is %d characters", id, n)
		}
		wave := id[strings.LastIndex(id[:strings.LastIndex(id, "-")], "-")+1 : strings.LastIndex(id, "-")]
		waveDevices[wave] = append(waveDevices[wave], ids...)
		delivered = append(delivered, ids...)
	}
	for wave, want := range map[string]int{"w1": 10, "w2": 40, "w3": 150} {
		if got := len(waveDevices[wave]); got != want {
			t.Errorf("wave %s targets %d devices, want %d", wave, got, want)
		}
	}
	parisIDs := deviceIDs(paris)
	if got := slices.Sorted(slices.Values(delivered)); !slices.Equal(slices.Compact(slices.Clone(got)), got) || !slices.Equal(got, slices.Sorted(slices.Values(parisIDs))) {
		t.Errorf("the waves' union (%d ids) is not exactly the 200 matching devices, each once", len(delivered))
	}
	// The order is keyed by the rollout id and a secret drawn when the
	// rollout is created, so it cannot be recomputed from outside (an
	// author choosing the id must not predict a wave). Random, not registry order: the first wave is not the registry's
	// first ten, and the first 50 devices reached spread over both halves
	// of the registry (hypergeometric: mean 25, sd 3.1; outside 10..40 is
	// a 5-sd event).
	if slices.Equal(waveDevices["w1"], parisIDs[:10]) {
		t.Errorf("wave 1 is the registry's first ten devices")
	}
	firstHalf := 0
	for _, id := range append(waveDevices["w1"], waveDevices["w2"]...) {
		if slices.Index(parisIDs, id) < 100 {
			firstHalf++
		}
	}
	if firstHalf < 10 || firstHalf > 40 {
		t.Errorf("%d of the first 50 devices reached are in the registry's first half: not a random sample", firstHalf)
	}

	// One active job at a time; no create refused for want of a slot.
	if len(seen.most) > 1 {
		t.Errorf("the hub had %d unfinished jobs at once: %v", len(seen.most), seen.most)
	}
	for _, c := range h.recorded() {
		if c.method == http.MethodPut && c.status == http.StatusTooManyRequests {
			t.Errorf("a create was refused 429 at %s: the engine did not wait for the slot", c.path)
		}
	}
	// The next wave is created during the bake as a scheduled job: its
	// startTime lies ahead of the create by about the bake, and the hub
	// shows it scheduled before it runs. The second part of wave 3 waits
	// for the slot and starts at once.
	for _, c := range h.creates() {
		id, sent := c["jobId"].(string), c["_sentAt"].(time.Time)
		start, hasStart := c["startTime"].(string)
		st, err := bbParseTime(start)
		ahead := st.Sub(sent)
		switch id {
		case wantIDs[1], wantIDs[2]:
			if !hasStart || err != nil || ahead < bake/2 || ahead > bake+2*time.Second {
				t.Errorf("%s sent at %s with startTime %q (%s ahead); want about the %s bake ahead", id, sent.Format(time.StampMilli), start, ahead, bake)
			}
			if !slices.Contains(seen.seen[id], "scheduled") {
				t.Errorf("%s was never seen scheduled at the hub; statuses seen %v", id, seen.seen[id])
			}
		case wantIDs[0], wantIDs[3]:
			if hasStart && ahead > time.Second {
				t.Errorf("%s starts %s after its create, want now", id, ahead)
			}
		}
	}

	// The trail: created, three waves started, one create per hub job,
	// completed; every engine step as actor hubjobs; the chain verifies.
	trail := auditOf(t, db, rid)
	for _, c := range []struct {
		action, job string
		want        int
	}{{"rollout.created", rid, 1}, {"rollout.wave_started", rid, 3}, {"rollout.completed", rid, 1}} {
		if got := countAction(trail, c.action, c.job); got != c.want {
			t.Errorf("%d %s entries, want %d; trail:\n%s", got, c.action, c.want, strings.Join(actions(trail), "\n"))
		}
	}
	for _, id := range wantIDs {
		if countAction(trail, "job.create.intent", id) != 1 || countAction(trail, "job.create.succeeded", id) != 1 {
			t.Errorf("%s: want one job.create.intent and one job.create.succeeded; trail:\n%s", id, strings.Join(actions(trail), "\n"))
		}
	}
	for _, r := range trail {
		if r.Action != "rollout.created" && r.ActorSub != "hubjobs" {
			t.Errorf("%s %s by %q, want the engine (hubjobs)", r.Action, r.JobID, r.ActorSub)
		}
	}
	if first, last := trail[0].Action, trail[len(trail)-1].Action; first != "rollout.created" || last != "rollout.completed" {
		t.Errorf("trail runs from %s to %s", first, last)
	}
}
