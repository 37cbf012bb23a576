package main

// Crashes from outside: SIGKILL of the portal mid-rollout and a restart
// on the same SQLite file; two replicas on one PostgreSQL, one driving,
// the other taking over when the driver is killed. See
// rollout_helpers_test.go.

import (
	"bufio"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// killWaves is the rollout both crash checks run: three waves of the 200
// paris devices (10, 40, 150 in two hub jobs), a 4 s bake, devices slow
// enough (30/s) that each wave and bake can be caught in the act.
const killWaves = "10,25%,100%"

func killFleet() []bbDevice { return fleet(200, "paris", nil) }

// sigkill kills a serve process as the kernel's OOM killer would.
func (sp *serveProcess) sigkill(t *testing.T) {
	t.Helper()
	if err := sp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sp.wait(t, 10*time.Second)
}

// waitHubStatus waits until some job of rid shows one of statuses at the
// hub (jobs of the waves in waves, e.g. "w1", "w3"), and names it.
func waitHubStatus(t *testing.T, h *rolloutHub, rid string, limit time.Duration, waves []string, statuses ...string) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		for id, j := range h.rolloutJobs(t, rid) {
			if slices.Contains(statuses, fmt.Sprint(j["status"])) && slices.ContainsFunc(waves, func(w string) bool { return strings.Contains(id, "-"+w+"-") }) {
				return id
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no job of waves %v was %v at the hub within %s: %v", waves, statuses, limit, jobStatuses(h.rolloutJobs(t, rid)))
	return ""
}

// checkCompletedOnce checks the end state after crashes: the rollout's
// hub jobs are exactly the planned four, all completed, each device in
// exactly one job's device records at the hub; the trail verifies and
// records each step once, in order.
func checkCompletedOnce(t *testing.T, h *rolloutHub, devices []bbDevice, database, rid string, env ...string) {
	t.Helper()
	jobs := h.rolloutJobs(t, rid)
	want := map[string]string{}
	for _, id := range []string{"w1-1", "w2-1", "w3-1", "w3-2"} {
		want["hj-"+rid+"-"+id] = "completed"
	}
	if got := jobStatuses(jobs); !maps.Equal(got, want) {
		t.Errorf("hub jobs %v, want %v", got, want)
	}
	targeted := map[string]int{}
	for id := range jobs {
		for _, rec := range h.deviceRecords(t, id, 100) {
			targeted[fmt.Sprint(rec["deviceId"])]++
		}
	}
	for _, d := range devices {
		if targeted[d.DeviceID] != 1 {
			t.Errorf("device %s has %d job records at the hub, want 1", d.DeviceID, targeted[d.DeviceID])
		}
	}
	if len(targeted) != len(devices) {
		t.Errorf("%d devices targeted, want %d", len(targeted), len(devices))
	}
	for _, c := range h.creates() {
		if c["_status"] == http.StatusConflict {
			t.Logf("a create of %s met JobAlreadyExists: a retried create, absorbed by the deterministic id", c["jobId"])
		}
	}

	trail := auditOf(t, database, rid, env...)
	var steps []string
	for _, r := range trail {
		if strings.HasPrefix(r.Action, "rollout.") {
			steps = append(steps, r.Action)
		}
	}
	if wantSteps := []string{"rollout.created", "rollout.wave_started", "rollout.wave_started", "rollout.wave_started", "rollout.completed"}; !slices.Equal(steps, wantSteps) {
		t.Errorf("rollout steps in the trail %v, want %v", steps, wantSteps)
	}
	for id := range want {
		if n := countAction(trail, "job.create.succeeded", id); n > 1 {
			t.Errorf("%d job.create.succeeded for %s", n, id)
		}
		first := slices.IndexFunc(trail, func(r auditRecord) bool { return r.JobID == id })
		if first < 0 || trail[first].Action != "job.create.intent" {
			t.Errorf("the trail's first entry about %s is not its create intent", id)
		}
	}
}

// SIGKILL at four moments (just after the create's POST, wave 1 running,
// wave 2 scheduled in the bake, wave 3 running), each time a restart on
// the same database: the rollout completes, no hub job twice, no device
// targeted twice, and the trail is in order and verifies.
func TestRolloutBlackboxSIGKILLAndRestart(t *testing.T) {
	t.Parallel()
	devices := killFleet()
	h := startRolloutHub(t, devices, "--max-active-jobs", "1", "--device-rate", "30")
	idp := rolloutIdP(t)
	db := "sqlite://" + t.TempDir() + "/hubjobs.db"
	setup := rolloutPortal(t, idp, h, rolloutConfig{database: db, listen: portBelowEphemeralRange(t)})
	sp := startServe(t, setup)
	author := newBrowser(t)
	author.signIn(setup.publicURL, "author")

	rid, _ := author.createRollout(setup.publicURL, rolloutForm("tags.site = 'paris'", killWaves, "4s", nil))
	moments := []struct {
		what   string
		waves  []string
		status []string
	}{
		{"right after the create", nil, nil},
		{"wave 1 running", []string{"w1"}, []string{"running"}},
		{"wave 2 scheduled in the bake", []string{"w2"}, []string{"scheduled"}},
		{"wave 3 running", []string{"w3"}, []string{"running"}},
	}
	for _, m := range moments {
		if m.waves != nil {
			t.Logf("%s: %s", m.what, waitHubStatus(t, h, rid, 30*time.Second, m.waves, m.status...))
		}
		sp.sigkill(t)
		sp = startServe(t, setup)
	}
	author.waitRollout(setup.publicURL, rid, 60*time.Second, "completed")
	checkCompletedOnce(t, h, devices, db, rid)
}

// metric sums the series of name whose labels contain every pair in
// labels, from a portal's /metrics.
func metric(t *testing.T, portalURL, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(portalURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		if slices.ContainsFunc(labels, func(l string) bool { return !strings.Contains(series, l) }) {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// leaders reads hubjobs_rollout_engine_leader from each portal.
func leaders(t *testing.T, urls ...string) []float64 {
	t.Helper()
	out := make([]float64, len(urls))
	for i, u := range urls {
		out[i] = metric(t, u, "hubjobs_rollout_engine_leader")
	}
	return out
}

// Two replicas on one PostgreSQL: exactly one holds the lease and makes
// the engine's hub calls; SIGKILL it mid-rollout and the other takes over
// within a minute (the lease is 30 s, not configurable) and completes the
// rollout without a duplicate job or a device targeted twice.
func TestRolloutBlackboxTwoReplicasOneDriverAndTakeover(t *testing.T) {
	t.Parallel()
	dsn := testkit.PostgresSchema(t, "hubjobs_rbb")
	devices := killFleet()
	h := startRolloutHub(t, devices, "--max-active-jobs", "1", "--device-rate", "30")
	idp := rolloutIdP(t)
	setups := make([]portalSetup, 2)
	procs := make([]*serveProcess, 2)
	for i := range setups {
		setups[i] = rolloutPortal(t, idp, h, rolloutConfig{database: "${TEST_AUDIT_DSN}"})
		setups[i].env["TEST_AUDIT_DSN"] = dsn
		procs[i] = startServe(t, setups[i])
	}
	urls := []string{setups[0].publicURL, setups[1].publicURL}
	var lead []float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if lead = leaders(t, urls...); lead[0]+lead[1] == 1 && lead[0]*lead[1] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader gauges %v, want exactly one replica at 1", lead)
		}
	}
	driver := slices.Index(lead, 1)
	other := 1 - driver

	author := newBrowser(t)
	author.signIn(urls[other], "author") // the page may be on either replica
	rid, _ := author.createRollout(urls[other], rolloutForm("tags.site = 'paris'", killWaves, "4s", nil))
	waitHubStatus(t, h, rid, 30*time.Second, []string{"w1", "w2"}, "running")
	engineCalls := func(i int) float64 {
		return metric(t, urls[i], "hubjobs_hub_budget_calls_total", `class="hubjobs-engine"`, `result="spent"`)
	}
	if engineCalls(driver) == 0 || engineCalls(other) != 0 {
		t.Errorf("engine hub calls: driver %v, other %v; want only the driver's", engineCalls(driver), engineCalls(other))
	}
	if l := leaders(t, urls...); l[driver] != 1 || l[other] != 0 {
		t.Errorf("leader gauges %v mid-rollout, want replica %d only", l, driver)
	}

	procs[driver].sigkill(t)
	killed := time.Now()
	for metric(t, urls[other], "hubjobs_rollout_engine_leader") != 1 {
		if time.Since(killed) > time.Minute {
			t.Fatalf("replica %d did not take the lease within a minute of the driver's SIGKILL", other)
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("replica %d took over %.1f s after the driver's SIGKILL", other, time.Since(killed).Seconds())
	author.waitRollout(urls[other], rid, 60*time.Second, "completed")
	checkCompletedOnce(t, h, devices, dsn, rid)
}
