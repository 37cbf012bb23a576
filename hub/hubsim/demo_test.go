package hubsim

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSeedDemo(t *testing.T) {
	h := newHarness(t, Options{Devices: DefaultDevices, DeviceRate: DefaultDeviceRate, FailureRate: 0.05, MaxActiveJobs: 1})
	h.sim.SeedDemo()
	want := map[string]string{
		DemoQueuedJobID:    "queued",
		DemoScheduledJobID: "scheduled",
		DemoLiveJobID:      "running",
		DemoShortJobID:     "queued", // created at seed time: still in its queued second
		DemoCompletedJobID: "completed",
		DemoFailedJobID:    "failed",
		DemoCancelledJobID: "cancelled",
		DemoTimedOutJobID:  "completed",
		DemoLongIDJobID:    "completed",
	}
	types := map[string]bool{}
	for id, status := range want {
		job := h.get(id)
		if job["status"] != status {
			t.Errorf("%s: status %v, want %s", id, job["status"], status)
		}
		types[job["type"].(string)] = true
		checkConsistent(t, h, id)
	}
	if !types["scheduleDeviceMethod"] || !types["scheduleUpdateTwin"] {
		t.Errorf("job types %v", types)
	}
	if st := stats(t, h.get(DemoLiveJobID)); st["deviceCount"] != 1500 || st["succeededCount"] == 0 || st["pendingCount"] < 1000 {
		t.Errorf("live job statistics %v", st)
	}
	if st := stats(t, h.get(DemoCompletedJobID)); st["deviceCount"] < 1000 {
		t.Errorf("completed job targets %d devices, want ≥ 1000", st["deviceCount"])
	}
	if st := stats(t, h.get(DemoTimedOutJobID)); st["failedCount"] == 0 || st["succeededCount"] <= st["failedCount"] {
		t.Errorf("timed-out job statistics %v", st)
	}
	if len(DemoLongIDJobID) < 100 || !validJobID(DemoLongIDJobID) {
		t.Errorf("long id %d chars", len(DemoLongIDJobID))
	}
	twin := h.get(DemoScheduledJobID)["updateTwin"].(map[string]any)
	if twin["tags"] == nil || twin["properties"].(map[string]any)["desired"] == nil {
		t.Errorf("scheduled twin job lacks tags or desired: %v", twin)
	}
	if h.get(DemoLiveJobID)["cloudToDeviceMethod"].(map[string]any)["payload"] == nil {
		t.Error("live method job without payload")
	}

	// The short job completes within seconds; the live one keeps going for
	// minutes.
	h.clock.Advance(10 * time.Second)
	if got := h.get(DemoShortJobID)["status"]; got != "completed" {
		t.Errorf("short job after 10 s: %v", got)
	}
	h.clock.Advance(4 * time.Minute)
	if got := h.get(DemoLiveJobID)["status"]; got != "running" {
		t.Errorf("live job after 4 min: %v", got)
	}
	h.clock.Advance(3 * time.Minute)
	if got := h.get(DemoLiveJobID)["status"]; got != "completed" {
		t.Errorf("live job after 7 min: %v", got)
	}
	// Cancellable demo jobs really are.
	wantOK(t, h.do(http.MethodPost, "/jobs/v2/"+url.PathEscape(DemoQueuedJobID)+"/cancel", ""))
	wantOK(t, h.do(http.MethodPost, "/jobs/v2/"+url.PathEscape(DemoScheduledJobID)+"/cancel", ""))
}

func TestSeedDemoIsDeterministic(t *testing.T) {
	a := newHarness(t, Options{Devices: 300})
	b := newHarness(t, Options{Devices: 300})
	a.sim.SeedDemo()
	b.sim.SeedDemo()
	a.clock.Advance(30 * time.Second)
	b.clock.Advance(30 * time.Second)
	for _, path := range []string{"/jobs/v2/query"} {
		ra, rb := a.do(http.MethodGet, path, ""), b.do(http.MethodGet, path, "")
		if string(ra.body) != string(rb.body) {
			t.Fatalf("two seeded hubs differ:\n%s\n%s", ra.body, rb.body)
		}
	}
	for _, id := range []string{DemoFailedJobID, DemoLiveJobID} {
		ra, rb := a.deviceRecords(id, "failed"), b.deviceRecords(id, "failed")
		if len(ra) != len(rb) || len(ra) == 0 {
			t.Errorf("%s: %d and %d failed devices", id, len(ra), len(rb))
		}
	}
}

// Seed puts jobs in the past and present of a known registry: fail devices
// fail a job whatever its failure rate, a job runs at its own pace, and a
// job the hub would refuse is refused whole.
func TestSeed(t *testing.T) {
	registry := []Device{
		{DeviceID: "a-1", Tags: map[string]any{"ring": "early"}},
		{DeviceID: "a-2", Tags: map[string]any{"ring": "early"}, Behaviour: BehaviourFail},
		{DeviceID: "a-3", Tags: map[string]any{"ring": "early"}, Behaviour: BehaviourUnhealthy},
		{DeviceID: "a-4", Tags: map[string]any{"ring": "broad"}},
		{DeviceID: "a-5", Tags: map[string]any{"ring": "broad"}, Behaviour: BehaviourFail},
	}
	h := newHarness(t, Options{Registry: registry, MaxActiveJobs: 1})
	now := h.clock.Now()
	err := h.sim.Seed(
		SeedJob{ID: "past-firmware", Condition: "tags.ring = 'early'", Method: "applyFirmware", Payload: `{"version":"4.2.0"}`,
			Created: now.Add(-3 * time.Hour)},
		SeedJob{ID: "live-telemetry", Condition: "*", Desired: `{"telemetry":{"intervalSeconds":30}}`,
			Created: now.Add(-time.Second), Rate: 0.1, MaxExecution: 2 * time.Hour},
	)
	if err != nil {
		t.Fatal(err)
	}
	past := h.get("past-firmware")
	if past["status"] != "completed" || past["type"] != "scheduleDeviceMethod" {
		t.Errorf("past job: %v %v", past["status"], past["type"])
	}
	var failed []string
	for _, r := range h.deviceRecords("past-firmware", "failed") {
		failed = append(failed, r["deviceId"].(string))
	}
	if len(failed) != 1 || failed[0] != "a-2" {
		t.Errorf("failed devices of the past job: %v, want exactly the fail device a-2", failed)
	}
	live := h.get("live-telemetry")
	if live["status"] != "running" || live["maxExecutionTimeInSeconds"] != float64(7200) {
		t.Errorf("live job: %v, maxExecutionTimeInSeconds %v", live["status"], live["maxExecutionTimeInSeconds"])
	}
	// Five devices at one every 10 s: still running after 30 s, done (with
	// the two fail devices failed) after a minute.
	h.clock.Advance(30 * time.Second)
	if got := h.get("live-telemetry")["status"]; got != "running" {
		t.Errorf("live job after 30 s: %v", got)
	}
	h.clock.Advance(time.Minute)
	if st := stats(t, h.get("live-telemetry")); st["failedCount"] != 2 || st["succeededCount"] != 3 {
		t.Errorf("live job statistics at the end: %v", st)
	}

	refused := []struct {
		name string
		job  SeedJob
	}{
		{"BadID", SeedJob{ID: "has/slash", Condition: "*", Method: "reboot"}},
		{"BadCondition", SeedJob{ID: "x", Condition: "tags.ring = ", Method: "reboot"}},
		{"EmptyCondition", SeedJob{ID: "x", Method: "reboot"}},
		{"PayloadNotJSON", SeedJob{ID: "x", Condition: "*", Method: "reboot", Payload: "{"}},
		{"NoChange", SeedJob{ID: "x", Condition: "*"}},
		{"TagsNotObject", SeedJob{ID: "x", Condition: "*", Tags: `["a"]`}},
		{"ConditionTooLong", SeedJob{ID: "x", Condition: "deviceId = '" + strings.Repeat("a", 8200) + "'", Method: "reboot"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			ok := SeedJob{ID: "fine-" + tc.name, Condition: "*", Method: "reboot"}
			if err := h.sim.Seed(ok, tc.job); err == nil {
				t.Fatal("seeded")
			}
			if r := h.do(http.MethodGet, "/jobs/v2/"+ok.ID, ""); r.status != http.StatusNotFound {
				t.Errorf("the valid job of a refused batch was added: %d", r.status)
			}
			if err := h.sim.Seed(ok); err != nil {
				t.Fatal(err)
			}
			if r := h.do(http.MethodGet, "/jobs/v2/"+ok.ID, ""); r.status != http.StatusOK {
				t.Errorf("the valid job alone: %d", r.status)
			}
		})
	}
}
