package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/rollout"
)

// The demo fleets. Each hub has the same five sites; every site numbers its
// devices {site}-0001…, the first ones the canary ring, the next the early
// ring, the rest the broad ring; models cycle tx100, tx200, rx9; reported
// fw.version is 4.2.1 on canaries, 4.2.0 on early devices, 4.1.3 on broad
// ones. The sites include those SeedDemo's jobs target (berlin, osaka,
// lyon), so that every seeded job has devices.
//
// prod: 240 devices per site, 1,200 in all (canary 40, early 240, broad 920;
// rx9 400). Its fail and unhealthy devices are placed for the demo
// rollouts below and for jobs worth rerunning; eu: 60 per site, 300 in all,
// with two fail devices and one unhealthy one, plain.
//
// The demo rollouts on prod, one per state a visitor should see, each on
// its own devices so that none disturbs another. A rollout orders its
// devices by a keyed hash of the rollout id (rollout.NewPlan), so the
// rollout ids are fixed here and the bad devices were placed where each
// plan puts them; TestDemoRolloutsFitTheRegistry recomputes every plan and
// its rule verdicts against the registry and fails if either side changes.
//
//   - demohalt, halts by itself while you watch: applyFirmware 4.3.0 to
//     tags.ring = 'canary' (40), waves 10,50% (10, 10, 20), bake 2 min,
//     failures above 5 % per wave halt. Wave 1 is clean, wave 2 holds the
//     fail devices porto-0007 and osaka-0006 (2 of 10), so it runs, bakes,
//     runs wave 2 and halts two to three minutes after the start, before
//     wave 3 (which holds the third, porto-0003).
//   - demohealth, halted by health: twin update of tags.ring = 'early' AND
//     tags.site = 'oslo' (48), waves 25% (12, 36), bake 1 min, health query
//     properties.reported.health = 'error' above 5 %. Wave 1 holds the
//     unhealthy oslo-0019 and oslo-0046: both succeed (no failure rule
//     fires), then report health "error", and the bake's health count
//     (2 of 12) halts it.
//   - demoapproval, awaiting approval: twin update of tags.ring = 'broad'
//     AND tags.site = 'lyon' (184, all ok), waves 10 (10, 174), wave 2 gated
//     (Rules.ApprovalWaves), created by the demo user author so that the
//     demo user approver may approve it.
//   - democomplete, completed: reboot of tags.ring = 'early' AND tags.site
//     = 'porto' (48, all ok), waves 10 (10, 38), no bake.
//   - demorunning, running and baking in turn for about ten minutes:
//     setConfig to tags.ring = 'broad' AND tags.site IN ['berlin','osaka']
//     (368), waves 25%,50% (92, 92, 184), bake 3 min, failures above 5 %
//     per wave. Waves 1 and 3 each hold one of the fail devices osaka-0150
//     and osaka-0203, which they tolerate ("wave 1: 1 of 92 failed
//     (1.1 %), threshold 5 %: passed").
//
// The demo starts them once the portal and its engine are up: for each of
// demoRollouts(), Create(ctx, origin, r.rid, r.spec), origin's actor being
// the demo user author (issuer the demo IdP's, subject "demo-author",
// roles viewer and author), so that approver, not author, can approve.
//
// Active-job slots (demoMaxActiveJobs, 10): SeedDemo keeps four jobs
// unfinished at the start and demoSeedJobs one more; the five rollouts'
// first waves fill the rest, so for the first minute a next wave or a
// person's new job may wait for a slot — the demo then shows why and
// who holds it. After about six minutes five or six slots are free.
//
// Jobs worth rerunning on failed devices: demoRerunJobID (the early ring's
// fail devices lyon-0042, berlin-0017 and osaka-0031, plus a few transient
// failures that a rerun fixes), SeedDemo's completed twin update of every
// device (all nine fail devices) and its failed rx9 config push.
var demoFleets = map[string]demoFleet{
	demoProdHub: {perSite: 240, canary: 8, early: 48, behaviours: map[string]hubsim.Behaviour{
		"porto-0007": hubsim.BehaviourFail, "osaka-0006": hubsim.BehaviourFail, "porto-0003": hubsim.BehaviourFail, // canary: demohalt
		"lyon-0042": hubsim.BehaviourFail, "berlin-0017": hubsim.BehaviourFail, "osaka-0031": hubsim.BehaviourFail, // early: demoRerunJobID
		"osaka-0150": hubsim.BehaviourFail, "osaka-0203": hubsim.BehaviourFail, "porto-0099": hubsim.BehaviourFail, // broad
		"oslo-0019": hubsim.BehaviourUnhealthy, "oslo-0046": hubsim.BehaviourUnhealthy, "oslo-0033": hubsim.BehaviourUnhealthy, // early oslo: demohealth
		"porto-0120": hubsim.BehaviourUnhealthy, "porto-0177": hubsim.BehaviourUnhealthy, // broad
	}},
	demoEUHub: {perSite: 60, canary: 2, early: 12, behaviours: map[string]hubsim.Behaviour{
		"lyon-0031": hubsim.BehaviourFail, "berlin-0005": hubsim.BehaviourFail, "osaka-0040": hubsim.BehaviourUnhealthy,
	}},
}

var (
	demoSites  = []string{"lyon", "porto", "oslo", "berlin", "osaka"}
	demoModels = []string{"tx100", "tx200", "rx9"}
)

// Demo hub settings, shared by the simulated hubs and the portal's config
// so that the two agree. The queries budget lets the New job form's plan
// count devices as the author types (a count per change, a few device
// pages) without the portal's pages going stale; real S1 hubs allow 20 a
// minute per unit.
const (
	demoMaxActiveJobs    = hubsim.DefaultMaxActiveJobs // an S3 hub's 10
	demoQueriesPerMinute = 120
	// demoJobsOpsPerMinute is an S3 unit's share, like its active-job
	// limit: five rollouts start with the demo and six users may click
	// around at once, which an S1 unit's 100 a minute would not carry.
	demoJobsOpsPerMinute = 1000
	// demoDeviceRate is slower than the simulator's default so that a wave
	// of a hundred devices stays "running" for close to a minute.
	demoDeviceRate = 2.0
)

// demoFleet describes one hub's registry; see demoFleets.
type demoFleet struct {
	perSite       int // devices per site
	canary, early int // per site: the first canary devices, then early ones; the rest broad
	behaviours    map[string]hubsim.Behaviour
}

// registry lists the fleet's devices site by site, in id order.
func (f demoFleet) registry() []hubsim.Device {
	devices := make([]hubsim.Device, 0, f.perSite*len(demoSites))
	for _, site := range demoSites {
		for i := range f.perSite {
			ring, fw := "broad", "4.1.3"
			switch {
			case i < f.canary:
				ring, fw = "canary", "4.2.1"
			case i < f.canary+f.early:
				ring, fw = "early", "4.2.0"
			}
			id := fmt.Sprintf("%s-%04d", site, i+1)
			devices = append(devices, hubsim.Device{
				DeviceID:  id,
				Tags:      map[string]any{"site": site, "ring": ring, "model": demoModels[i%len(demoModels)]},
				Reported:  map[string]any{"fw": map[string]any{"version": fw}},
				Behaviour: f.behaviours[id],
			})
		}
	}
	return devices
}

// Ids of the jobs demoSeedJobs adds to SeedDemo's.
const (
	demoRerunJobID    = "demo-completed-firmware-early-ring"
	demoLiveTwinJobID = "demo-live-telemetry-interval-broad"
)

// demoSeedJobs are the jobs that depend on the demo registry: a finished
// firmware update of the early ring whose failed devices are worth a rerun
// (the fail devices always fail again; the transient failures pass), and a
// twin update of the broad ring running for about eight minutes (prod).
func demoSeedJobs(now time.Time) []hubsim.SeedJob {
	return []hubsim.SeedJob{
		{ID: demoRerunJobID, Condition: "tags.ring = 'early'", Method: "applyFirmware",
			Payload: `{"version":"4.2.0","url":"https://updates.example.com/fw/4.2.0.bin"}`,
			Created: now.Add(-3 * time.Hour), Rate: 5, FailureRate: 0.03, MaxExecution: time.Hour},
		{ID: demoLiveTwinJobID, Condition: "tags.ring = 'broad'", Desired: `{"telemetry":{"intervalSeconds":30}}`,
			Created: now.Add(-time.Minute), MaxExecution: 2 * time.Hour},
	}
}

// demoRollout is one of the demo rollouts described above: what the
// engine is to be given at start (Create, with the demo user author as the
// actor), and the wave after which its rules halt it (0: never), given
// where the registry's fail and unhealthy devices fall in its plan.
type demoRollout struct {
	rid            string
	spec           rollout.Spec
	haltsAfterWave int
}

// demoRollouts are the rollouts of the comment above, on prod.
func demoRollouts() ([]demoRollout, error) {
	type entry struct {
		rid, waves, condition, reason string
		method                        *hub.CloudToDeviceMethod
		twin                          *hub.Twin
		bake                          time.Duration
		rules                         rollout.Rules
		haltsAfterWave                int
	}
	perWave5 := rollout.Rules{Failures: rollout.Percent(5), MinFinished: 5, Scope: rollout.PerWave}
	entries := []entry{
		{rid: "demohalt", waves: "10,50%", condition: "tags.ring = 'canary'", reason: "firmware 4.3.0 to the canaries",
			method: demoMethod("applyFirmware", `{"version":"4.3.0","url":"https://updates.example.com/fw/4.3.0.bin"}`),
			bake:   2 * time.Minute, rules: perWave5, haltsAfterWave: 2},
		{rid: "demohealth", waves: "25%", condition: "tags.ring = 'early' AND tags.site = 'oslo'", reason: "beta channel for Oslo's early ring",
			twin: demoDesired(map[string]any{"fw": map[string]any{"channel": "beta"}}), bake: time.Minute,
			rules: rollout.Rules{HealthQuery: "properties.reported.health = 'error'", Health: rollout.Percent(5)}, haltsAfterWave: 1},
		{rid: "demoapproval", waves: "10", condition: "tags.ring = 'broad' AND tags.site = 'lyon'", reason: "quieter logs in Lyon; wave 2 needs an approver",
			twin: demoDesired(map[string]any{"logLevel": "warning"}), rules: rollout.Rules{ApprovalWaves: []int{2}}},
		{rid: "democomplete", waves: "10", condition: "tags.ring = 'early' AND tags.site = 'porto'", reason: "reboot after the Porto maintenance",
			method: demoMethod("reboot", `{"delaySeconds":0}`), rules: perWave5},
		{rid: "demorunning", waves: "25%,50%", condition: "tags.ring = 'broad' AND tags.site IN ['berlin','osaka']", reason: "MQTT keep-alive 90 s for Berlin and Osaka",
			method: demoMethod("setConfig", `{"mqttKeepAlive":90}`), bake: 3 * time.Minute, rules: perWave5},
	}
	out := make([]demoRollout, len(entries))
	for i, e := range entries {
		waves, err := rollout.ParseWaves(e.waves)
		if err != nil {
			return nil, fmt.Errorf("demo rollout %s: %w", e.rid, err)
		}
		typ := hub.TypeScheduleUpdateTwin
		if e.method != nil {
			typ = hub.TypeScheduleDeviceMethod
		}
		out[i] = demoRollout{rid: e.rid, haltsAfterWave: e.haltsAfterWave, spec: rollout.Spec{
			Hub: demoProdHub, Type: typ, Method: e.method, Twin: e.twin, Condition: e.condition,
			MaxExecution: time.Hour, Waves: waves, Bake: e.bake, Rules: e.rules, Reason: e.reason,
		}}
	}
	return out, nil
}

func demoMethod(name, payload string) *hub.CloudToDeviceMethod {
	return &hub.CloudToDeviceMethod{MethodName: name, Payload: json.RawMessage(payload), ResponseTimeoutInSeconds: 30}
}

func demoDesired(desired map[string]any) *hub.Twin {
	return &hub.Twin{Properties: &hub.TwinProperties{Desired: desired}}
}

// newDemoSim makes one demo hub: its fleet, SeedDemo's jobs in every
// state and demoSeedJobs, with the limits the demo config states.
func newDemoSim(name string, seed uint64, now time.Time) (*hubsim.Sim, error) {
	sim := hubsim.New(hubsim.Options{
		Hostname: name + "-fleet.azure-devices.net", Seed: seed, Registry: demoFleets[name].registry(),
		DeviceRate: demoDeviceRate, MaxActiveJobs: demoMaxActiveJobs, QueriesPerMinute: demoQueriesPerMinute,
	})
	sim.SeedDemo()
	if err := sim.Seed(demoSeedJobs(now)...); err != nil {
		sim.Close()
		return nil, fmt.Errorf("demo: hub %s: %w", name, err)
	}
	return sim, nil
}
