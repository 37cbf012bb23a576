package hubsim

import (
	"net/http"
	"net/url"
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
