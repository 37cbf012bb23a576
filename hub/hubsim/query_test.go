package hubsim

import (
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func TestDeviceJobsQueryGrammar(t *testing.T) {
	jobRecord := deviceJobRecord{JobID: "it's", DeviceID: "d1", Status: "failed", JobType: "scheduleUpdateTwin",
		CreatedDateTimeUtc: hubTime(testStart), StartTimeUtc: zonelessTime(testStart)}
	accepted := []struct {
		sql   string
		match bool
	}{
		{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1'", false},
		{`select * from devices.jobs where devices.jobs.jobId='it\'s'`, true},
		{`SELECT * FROM devices.jobs WHERE devices.jobs.jobId = "it's" AND devices.jobs.status = 'failed'`, true},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'd1' AND devices.jobs.jobType = 'scheduleDeviceMethod'", false},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.status = 'completed' OR devices.jobs.status = 'failed'", true},
		{"SELECT * FROM devices.jobs WHERE DEVICES.JOBS.STATUS IN ['failed']", true},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.createdDateTimeUtc > '2029-12-31'", true},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.startTimeUtc < '2030-01-01T08:00:00.0000000'", false},
		{"SELECT * FROM devices.jobs", true},
		{"SELECT *\n  FROM devices.jobs\n  WHERE NOT devices.jobs.jobId = 'j1'", true},
	}
	for _, tt := range accepted {
		q, err := parseDevicesQuery(tt.sql)
		if err != nil {
			t.Errorf("parseDevicesQuery(%q): %v", tt.sql, err)
			continue
		}
		if q.kind != queryDeviceJobs {
			t.Errorf("%q parsed as kind %d", tt.sql, q.kind)
		}
		if got := q.where == nil || q.where.eval(recordDocument{&jobRecord}); got != tt.match {
			t.Errorf("%q matches the record: %v, want %v", tt.sql, got, tt.match)
		}
	}
	rejected := []string{
		"",
		"SELECT deviceId FROM devices.jobs WHERE devices.jobs.jobId = 'j1'",
		"SELECT COUNT() FROM devices.jobs",
		"SELECT * FROM devices.jobs WHERE deviceId = 'd1'",
		"SELECT * FROM devices.modules",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' OR 1 = 1",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it's'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it''s'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = j1",
		"SELECT * FROM devices.jobs WHERE jobId = 'j1'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.createdTimeUtc > '2016-09-01'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.outcome = 'x'",
		"SELECT * FROM devices.jobs WHERE",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' ORDER BY devices.jobs.deviceId",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' -- comment",
		"SELECT * FROM devices.jobs GROUP BY devices.jobs.status",
	}
	for _, sql := range rejected {
		if _, err := parseDevicesQuery(sql); err == nil {
			t.Errorf("parseDevicesQuery(%q) accepted, want an error", sql)
		}
	}
}

// The grammars as the wire sees them: rejected conditions and SQL are 400
// ArgumentInvalid, accepted ones target the registry's devices.
func TestQueryGrammarOnTheWire(t *testing.T) {
	h := newHarness(t, Options{Devices: 12})
	for _, cond := range []string{"deviceId = dev-0001", "tags.ring IN ('x')", "deviceId = 'a''b'", "SELECT * FROM devices"} {
		r := h.do(http.MethodPut, "/jobs/v2/bad", methodJob("bad", cond))
		wantError(t, r, http.StatusBadRequest, "ArgumentInvalid", "Invalid queryCondition")
	}
	h.create("pick", methodJob("pick", "deviceId IN ['dev-0003','dev-0007','unknown']"))
	if got := stats(t, h.get("pick"))["deviceCount"]; got != 2 {
		t.Errorf("deviceCount = %d, want 2", got)
	}
	h.create("by-tag", twinJob("by-tag", "tags.ring = 'broad' AND tags.site = 'paris'"))
	want := 0
	for _, d := range h.sim.registry {
		if d.tags["ring"] == "broad" && d.tags["site"] == "paris" {
			want++
		}
	}
	if got := stats(t, h.get("by-tag"))["deviceCount"]; got != want {
		t.Errorf("deviceCount = %d, want %d", got, want)
	}
	for _, sql := range []string{"SELECT * FROM devices.modules", "SELECT deviceId FROM devices.jobs", "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'pick' OR 1=1"} {
		r := h.do(http.MethodPost, "/devices/query", `{"query":`+quoteJSON(sql)+`}`)
		wantError(t, r, http.StatusBadRequest, "ArgumentInvalid", "Invalid query")
	}
	for _, body := range []string{`{}`, `{"Query":null}`, `not json`, `{"query":5}`} {
		wantError(t, h.do(http.MethodPost, "/devices/query", body), http.StatusBadRequest, "ArgumentInvalid", "query")
	}
}

func TestRegistryIsDeterministic(t *testing.T) {
	a, b, c := generateRegistry(300, 7), generateRegistry(300, 7), generateRegistry(300, 8)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different registries")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same registry")
	}
	if a[0].DeviceID != "dev-0001" || a[299].DeviceID != "dev-0300" {
		t.Errorf("ids %s … %s", a[0].DeviceID, a[299].DeviceID)
	}
	if got := generateRegistry(12000, 1)[11999].DeviceID; got != "dev-12000" {
		t.Errorf("id width for large fleets: %s", got)
	}
	rings := map[string]int{}
	for _, d := range generateRegistry(1500, 1) {
		rings[d.Tags["ring"].(string)]++
		if !slices.Contains(tagSites, d.Tags["site"].(string)) || !slices.Contains(tagModels, d.Tags["model"].(string)) {
			t.Fatalf("device %s has tags %v", d.DeviceID, d.Tags)
		}
	}
	if rings["canary"] < 30 || rings["canary"] > 120 || rings["broad"] < 1000 {
		t.Errorf("ring distribution %v is far from 5/20/75 %%", rings)
	}
}
