package hubsim

import (
	"net/http"
	"reflect"
	"slices"
	"testing"
)

func TestQueryConditionGrammar(t *testing.T) {
	registry := []device{
		{id: "d1", tags: map[string]string{"site": "paris", "ring": "canary"}},
		{id: "d2", tags: map[string]string{"site": "paris", "ring": "broad"}},
		{id: "d3", tags: map[string]string{"site": "lyon", "ring": "broad"}},
		{id: "it's", tags: map[string]string{"site": "o'hare"}},
	}
	accepted := []struct {
		cond string
		want []string
	}{
		{"*", []string{"d1", "d2", "d3", "it's"}},
		{"  *  ", []string{"d1", "d2", "d3", "it's"}},
		{"deviceId = 'd1'", []string{"d1"}},
		{"deviceId='d2'", []string{"d2"}},
		{"deviceId = 'it''s'", []string{"it's"}},
		{"deviceId = 'D1'", nil}, // device ids are case-sensitive
		{"deviceId IN ['d1','d3']", []string{"d1", "d3"}},
		{"deviceId in [ 'd1' , 'nope' ]", []string{"d1"}},
		{"tags.site = 'paris'", []string{"d1", "d2"}},
		{"tags.site = 'o''hare'", []string{"it's"}},
		{"tags.site = 'paris' AND tags.ring = 'broad'", []string{"d2"}},
		{"tags.site = 'paris' and deviceId IN ['d1','d3']", []string{"d1"}},
		{"tags.missing = 'x'", nil},
		{"tags.a.b = 'x'", nil},
	}
	for _, tt := range accepted {
		c, err := parseCondition(tt.cond)
		if err != nil {
			t.Errorf("parseCondition(%q): %v", tt.cond, err)
			continue
		}
		var got []string
		for _, d := range registry {
			if c.matches(d) {
				got = append(got, d.id)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q matches %v, want %v", tt.cond, got, tt.want)
		}
	}
	rejected := []string{
		"",
		"   ",
		"* AND deviceId = 'd1'",
		"deviceId = d1",
		`deviceId = "d1"`,
		"deviceId = 'd1",
		"deviceId == 'd1'",
		"deviceId != 'd1'",
		"deviceId = 'd1' OR deviceId = 'd2'",
		"deviceId = 'd1' AND",
		"deviceId IN []",
		"deviceId IN ('d1','d2')",
		"deviceId IN ['d1' 'd2']",
		"DeviceId = 'd1'",
		"tags = 'x'",
		"tags.site = 5",
		"tags.site IN ['paris']",
		"tags..site = 'x'",
		"properties.reported.fw = '1.0'",
		"SELECT * FROM devices WHERE deviceId = 'd1'",
		"NOT deviceId = 'd1'",
		"deviceId = 'd1'; DROP",
	}
	for _, cond := range rejected {
		if _, err := parseCondition(cond); err == nil {
			t.Errorf("parseCondition(%q) accepted, want an error", cond)
		}
	}
}

func TestDeviceJobsQueryGrammar(t *testing.T) {
	accepted := []struct {
		sql  string
		want map[string]string
	}{
		{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1'", map[string]string{"jobId": "j1"}},
		{"select * from devices.jobs where devices.jobs.jobId='j1'", map[string]string{"jobId": "j1"}},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it''s'", map[string]string{"jobId": "it's"}},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'a''''b'", map[string]string{"jobId": "a''b"}},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND devices.jobs.status = 'failed'", map[string]string{"jobId": "j1", "status": "failed"}},
		{"SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'd1' AND devices.jobs.jobType = 'scheduleUpdateTwin'", map[string]string{"deviceId": "d1", "jobType": "scheduleUpdateTwin"}},
		{"SELECT * FROM devices.jobs", map[string]string{}},
		{"SELECT *\n  FROM devices.jobs\n  WHERE devices.jobs.jobId = 'j1'", map[string]string{"jobId": "j1"}},
	}
	for _, tt := range accepted {
		q, err := parseDeviceJobsQuery(tt.sql)
		if err != nil {
			t.Errorf("parseDeviceJobsQuery(%q): %v", tt.sql, err)
			continue
		}
		if !reflect.DeepEqual(q.equals, tt.want) {
			t.Errorf("%q parsed as %v, want %v", tt.sql, q.equals, tt.want)
		}
	}
	rejected := []string{
		"",
		"SELECT deviceId FROM devices.jobs WHERE devices.jobs.jobId = 'j1'",
		"SELECT COUNT() FROM devices.jobs",
		"SELECT * FROM devices WHERE deviceId = 'd1'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' OR 1 = 1",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' OR devices.jobs.jobId = 'j2'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it's'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = j1",
		"SELECT * FROM devices.jobs WHERE jobId = 'j1'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.createdTimeUtc > '2016-09-01'",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND devices.jobs.jobId = 'j2'",
		"SELECT * FROM devices.jobs WHERE",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' AND",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' ORDER BY devices.jobs.deviceId",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j1' -- comment",
		"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'x" + string(make([]byte, maxQueryLength)) + "'",
	}
	for _, sql := range rejected {
		if _, err := parseDeviceJobsQuery(sql); err == nil {
			t.Errorf("parseDeviceJobsQuery(%q) accepted, want an error", sql)
		}
	}
}

// The grammars as the wire sees them: rejected conditions and SQL are 400
// ArgumentInvalid, accepted ones target the registry's devices.
func TestQueryGrammarOnTheWire(t *testing.T) {
	h := newHarness(t, Options{Devices: 12})
	for _, cond := range []string{"deviceId = dev-0001", "tags.ring IN ['x']", "deviceId = 'a' OR deviceId = 'b'"} {
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
	for _, sql := range []string{"SELECT * FROM devices", "SELECT deviceId FROM devices.jobs", "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'pick' OR 1=1"} {
		r := h.do(http.MethodPost, "/devices/query", `{"query":`+quoteJSON(sql)+`}`)
		wantError(t, r, http.StatusBadRequest, "ArgumentInvalid", "Invalid query")
	}
	for _, body := range []string{`{}`, `{"Query":null}`, `not json`, `{"query":5}`} {
		wantError(t, h.do(http.MethodPost, "/devices/query", body), http.StatusBadRequest, "ArgumentInvalid", "query")
	}
}

func TestRegistryIsDeterministic(t *testing.T) {
	a, b, c := newRegistry(300, 7), newRegistry(300, 7), newRegistry(300, 8)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different registries")
	}
	if reflect.DeepEqual(a, c) {
		t.Fatal("different seeds, same registry")
	}
	if a[0].id != "dev-0001" || a[299].id != "dev-0300" {
		t.Errorf("ids %s … %s", a[0].id, a[299].id)
	}
	if got := newRegistry(12000, 1)[11999].id; got != "dev-12000" {
		t.Errorf("id width for large fleets: %s", got)
	}
	rings := map[string]int{}
	for _, d := range newRegistry(1500, 1) {
		rings[d.tags["ring"]]++
		if !slices.Contains(tagSites, d.tags["site"]) || !slices.Contains(tagModels, d.tags["model"]) {
			t.Fatalf("device %s has tags %v", d.id, d.tags)
		}
	}
	if rings["canary"] < 30 || rings["canary"] > 120 || rings["broad"] < 1000 {
		t.Errorf("ring distribution %v is far from 5/20/75 %%", rings)
	}
}
