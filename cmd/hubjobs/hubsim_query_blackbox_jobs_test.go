package main

// Black-box checks of the simulator's query surface, continued: the
// 8,192-character limit, the queries throttle, job queryConditions in the
// same grammar, twin-update jobs changing twins and the registry's device
// behaviours. The rules of hubsim_query_blackbox_test.go apply.

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bbPadded returns "prefix'xxx…'suffix" exactly n characters long (n
// counted in characters: pad is repeated inside the string literal).
func bbPadded(t *testing.T, prefix, suffix, pad string, n int) string {
	t.Helper()
	fixed := len([]rune(prefix)) + len([]rune(suffix)) + 2
	if n < fixed {
		t.Fatalf("cannot pad to %d", n)
	}
	return prefix + "'" + strings.Repeat(pad, n-fixed) + "'" + suffix
}

func TestBlackboxQueryLengthLimit(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t)
	const prefix = "SELECT deviceId FROM devices WHERE deviceId = "
	for _, c := range []struct {
		name string
		n    int
		pad  string
		ok   bool
	}{
		{"8,192 characters", 8192, "x", true},
		// Reference §2: the limit is in characters; 'é' is two bytes, so this is ~16 KB.
		{"8,192 characters of two bytes each", 8192, "é", true},
		{"8,193 characters", 8193, "x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.query(t, bbPadded(t, prefix, "", c.pad, c.n), nil)
			if c.ok {
				if r.status != http.StatusOK || strings.TrimSpace(string(r.raw)) != "[]" {
					t.Errorf("%d characters: %d %s, want 200 []", c.n, r.status, r.raw)
				}
				return
			}
			// The status is [UNVERIFIED] (412 reported, 400 plausible); the README documents 412 PreconditionFailed.
			r.wantError(t, http.StatusPreconditionFailed, "PreconditionFailed")
		})
	}

	t.Run("a job condition", func(t *testing.T) {
		long := bbPadded(t, "deviceId = ", "", "x", 8193)
		r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-long"), body: bbMethodJob("bb-long", long, nil, 60)})
		r.wantError(t, http.StatusPreconditionFailed, "PreconditionFailed")
		h.create(t, bbMethodJob("bb-long-ok", bbPadded(t, "deviceId = ", "", "x", 8192), nil, 60))
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-long")}); r.status != http.StatusNotFound {
			t.Errorf("the refused job exists: GET %d", r.status)
		}
	})
}

func TestBlackboxQueriesThrottle(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--registry", bbWriteRegistry(t, bbFleet), "--queries-per-minute", "3")
	var throttled *bbResp
	served := 0
	for range 10 {
		r := h.query(t, "SELECT COUNT() AS numberOfDevices FROM devices", nil)
		if r.status == http.StatusTooManyRequests {
			throttled = &r
			break
		}
		if r.status != http.StatusOK {
			t.Fatalf("status %d; body %s", r.status, r.raw)
		}
		served++
	}
	if throttled == nil {
		t.Fatal("10 queries with a budget of 3 per minute were never throttled")
	}
	if served < 3 {
		t.Errorf("throttled after %d queries, want at least the 3 of the budget", served)
	}
	throttled.wantError(t, http.StatusTooManyRequests, "ThrottlingException")
	// Retry-After is [UNVERIFIED] on the real hub; the README documents it in seconds.
	if secs, err := strconv.Atoi(throttled.header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds for 3 queries a minute", throttled.header.Get("Retry-After"))
	}
	// The jobs operations bucket is separate (reference §5 lists the throttles apart).
	if r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query"}); r.status != http.StatusOK {
		t.Errorf("a jobs query while device queries are throttled: %d", r.status)
	}
	// devices.jobs is a query too (the README counts it).
	if r := h.query(t, "SELECT * FROM devices.jobs", nil); r.status != http.StatusTooManyRequests {
		t.Errorf("a devices.jobs query while queries are throttled: %d, want 429", r.status)
	}
}

// bbRecordsByDevice reads a finished job's devices.jobs records keyed by device.
func (h *bbHub) bbRecordsByDevice(t *testing.T, jobID, jobType string, maxSeconds int) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, rec := range h.deviceRecords(t, jobID, 2) {
		checked := rec
		// A device that answered the method with an error status fails with
		// that response as its outcome (the contract's `fail` behaviour); the
		// reference's one failed-record sample, a device never reached,
		// carries `error` instead. Such a record is checked like the others,
		// its response standing in for the error.
		if resp, _ := rec["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any); rec["status"] == "failed" && rec["error"] == nil &&
			resp != nil && resp["status"].(float64) >= 400 {
			checked = maps.Clone(rec)
			checked["error"] = map[string]any{"code": "method status", "description": resp["status"]}
		}
		bbCheckDeviceRecord(t, checked, jobID, jobType, maxSeconds)
		id := rec["deviceId"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("job %s: two records for %s", jobID, id)
		}
		out[id] = rec
	}
	return out
}

// twins reads SELECT * FROM devices, keyed by device id.
func (h *bbHub) twins(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, tw := range h.pages(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": "SELECT * FROM devices"}}, 100) {
		out[tw["deviceId"].(string)] = tw
	}
	return out
}

// TestBlackboxJobConditionsSelectLikeQueries: a job's queryCondition and
// the same WHERE in a device query pick the same devices (contract: "job
// queryConditions take the same grammar").
func TestBlackboxJobConditionsSelectLikeQueries(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t, "--device-rate", "50", "--max-active-jobs", "50")
	conditions := []string{
		"*",
		"tags.site = 'paris' OR deviceId IN ['o\\'brien', 'dev-b']",
		"NOT (tags.site = 'paris' OR tags.ring = 'broad')",
		"tags.floor >= 3 AND tags.floor < 12",
		"tags.ring NIN ['broad'] AND IS_DEFINED(properties.reported.fw)",
		"deviceId = \"it's\"",
		"tags.site = 'nowhere'",
		"STARTSWITH(deviceId, 'dev-') AND NOT tags.site = 'paris'",
	}
	for i, cond := range conditions {
		id := "bb-cond-" + strconv.Itoa(i)
		t.Run(cond, func(t *testing.T) {
			t.Parallel()
			want := bbAll()
			if cond != "*" {
				want = h.idsWhere(t, cond)
			}
			h.create(t, bbMethodJob(id, cond, nil, 120))
			job := h.waitStatus(t, id, 30*time.Second, "completed", "failed")
			if got := job["deviceJobStatistics"].(map[string]any)["deviceCount"]; got != float64(len(want)) {
				t.Errorf("deviceCount %v, want %d", got, len(want))
			}
			got := slices.Sorted(maps.Keys(h.bbRecordsByDevice(t, id, "scheduleDeviceMethod", 120)))
			if !slices.Equal(got, want) {
				t.Errorf("job condition %s reached %q; the same WHERE selects %q", cond, got, want)
			}
		})
	}

	t.Run("a condition outside the grammar is refused", func(t *testing.T) {
		t.Parallel()
		for _, cond := range []string{"deviceId = 'o''brien'", "STARTS_WITH(deviceId, 'dev')", "tags.site = 'paris' AND", "(deviceId = 'a'"} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-bad"), body: bbMethodJob("bb-bad", cond, nil, 60)})
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-bad")}); r.status != http.StatusNotFound {
			t.Errorf("a refused job exists: GET %d", r.status)
		}
	})
}

// TestBlackboxTwinJobsAndBehaviours: a twin-update job merges tags and
// desired properties into the twins it succeeded on and bumps $version; a
// `fail` device fails every job untouched; devices a job reached report
// health "ok", or "error" when `unhealthy`.
func TestBlackboxTwinJobsAndBehaviours(t *testing.T) {
	t.Parallel()
	h := bbStartFleet(t, "--device-rate", "50")
	before := h.twins(t)
	// dev-d has no tags at all: the job creates them.
	const cond = "tags.site = 'paris' OR deviceId IN ['o\\'brien', 'dev-b', 'dev-d']"
	targets := []string{"dev-a", "dev-b", "dev-c", "dev-d", "o'brien"}
	if got := h.idsWhere(t, cond); !slices.Equal(got, targets) {
		t.Fatalf("WHERE %s selects %q, want %q", cond, got, targets)
	}

	job := bbTwinJob("bb-twin-merge", cond, nil)
	job["updateTwin"] = map[string]any{"etag": "*",
		"tags":       map[string]any{"ring": "pilot", "wave": map[string]any{"n": 1}, "floor": nil},
		"properties": map[string]any{"desired": map[string]any{"fw": "3.0", "cfg": map[string]any{"rate": 5}}}}
	h.create(t, job)
	h.waitStatus(t, "bb-twin-merge", 30*time.Second, "completed", "failed")
	records := h.bbRecordsByDevice(t, "bb-twin-merge", "scheduleUpdateTwin", 300)
	if got := slices.Sorted(maps.Keys(records)); !slices.Equal(got, targets) {
		t.Fatalf("devices.jobs rows for %q, want %q", got, targets)
	}
	for id, rec := range records {
		if want := map[bool]string{true: "failed", false: "completed"}[id == "dev-b"]; rec["status"] != want {
			t.Errorf("%s: %v, want %s (behaviour %s)", id, rec["status"], want, bbBehaviour(id))
		}
	}

	after := h.twins(t)
	for _, d := range bbFleet {
		b, a := before[d.DeviceID], after[d.DeviceID]
		bbCheckTwinShape(t, a)
		changed := slices.Contains(targets, d.DeviceID) && d.Behaviour != "fail"
		if !changed {
			if !bbJSONEqual(b["tags"], a["tags"]) || !bbJSONEqual(bbDesired(b), bbDesired(a)) {
				t.Errorf("%s (not changed by the job) tags/desired moved: %v %v → %v %v", d.DeviceID, b["tags"], bbDesired(b), a["tags"], bbDesired(a))
			}
			continue
		}
		wantTags := map[string]any{}
		for k, v := range d.Tags {
			wantTags[k] = v
		}
		// Twin patches merge objects and delete a property set to null.
		wantTags["ring"], wantTags["wave"] = "pilot", map[string]any{"n": 1}
		delete(wantTags, "floor")
		if !bbJSONEqual(a["tags"], wantTags) {
			t.Errorf("%s tags %v, want the registry's merged with the job's: %v", d.DeviceID, a["tags"], wantTags)
		}
		desired := bbDesired(a)
		if desired["fw"] != "3.0" || !bbJSONEqual(desired["cfg"], map[string]any{"rate": 5}) {
			t.Errorf("%s desired %v, want fw 3.0 and cfg.rate 5", d.DeviceID, desired)
		}
		if !(desired["$version"].(float64) > bbDesired(b)["$version"].(float64)) {
			t.Errorf("%s desired $version %v → %v, want bumped", d.DeviceID, bbDesired(b)["$version"], desired["$version"])
		}
		if !(a["version"].(float64) > b["version"].(float64)) || a["etag"] == b["etag"] {
			t.Errorf("%s twin version %v → %v, etag %v → %v: want both changed", d.DeviceID, b["version"], a["version"], b["etag"], a["etag"])
		}
	}
	// Health after the job, per the contract: ok → "ok", unhealthy → "error", fail → untouched.
	wantHealth := map[string]any{"dev-a": "ok", "dev-d": "ok", "o'brien": "ok", "dev-c": "error", "dev-b": nil}
	for id, want := range wantHealth {
		if got := bbReported(after[id])["health"]; got != want {
			t.Errorf("%s (%s) reported.health %v, want %v", id, bbBehaviour(id), got, want)
		}
	}

	// The changed twins are what later queries see: desired paths and the new reported property.
	for where, want := range map[string][]string{
		"properties.desired.fw = '3.0'":                              {"dev-a", "dev-c", "dev-d", "o'brien"},
		"properties.desired.cfg.rate = 5":                            {"dev-a", "dev-c", "dev-d", "o'brien"},
		"tags.wave.n = 1 AND tags.ring = 'pilot'":                    {"dev-a", "dev-c", "dev-d", "o'brien"},
		"properties.reported.health = 'error'":                       {"dev-c"},
		"properties.reported.health = 'ok'":                          {"dev-a", "dev-d", "o'brien"},
		"tags.ring = 'broad'":                                        {"dev-b", "dev-e"},
		"IS_DEFINED(tags.floor)":                                     {"dev-b", "it's"},
		"NOT IS_DEFINED(properties.reported.health) AND version > 0": {"dev-b", "dev-e", "it's"},
	} {
		if got := h.idsWhere(t, where); !slices.Equal(got, want) {
			t.Errorf("after the job, WHERE %s: %q, want %q", where, got, want)
		}
	}

	// A `fail` device fails a method job too (a status-500 response or
	// JobRunPreconditionFailed, per the contract); an ok one succeeds.
	h.create(t, bbMethodJob("bb-method-fail", "deviceId IN ['dev-b', 'dev-e']", nil, 60))
	h.waitStatus(t, "bb-method-fail", 30*time.Second, "completed", "failed")
	recs := h.bbRecordsByDevice(t, "bb-method-fail", "scheduleDeviceMethod", 60)
	if recs["dev-e"]["status"] != "completed" || recs["dev-b"]["status"] != "failed" {
		t.Errorf("method job: dev-e %v, dev-b %v; want completed and failed", recs["dev-e"]["status"], recs["dev-b"]["status"])
	}
	resp, _ := recs["dev-b"]["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)
	errObj, _ := recs["dev-b"]["error"].(map[string]any)
	code, _ := errObj["code"].(string)
	if !(resp != nil && resp["status"] == float64(500)) && code != "JobRunPreconditionFailed" {
		t.Errorf("dev-b failed with outcome %v error %v, want a status-500 method response or JobRunPreconditionFailed", recs["dev-b"]["outcome"], recs["dev-b"]["error"])
	}
	if got := bbReported(h.twins(t)["dev-e"])["health"]; got != "ok" {
		t.Errorf("dev-e after a method job: reported.health %v, want ok", got)
	}
}

func bbBehaviour(id string) string {
	for _, d := range bbFleet {
		if d.DeviceID == id && d.Behaviour != "" {
			return d.Behaviour
		}
	}
	return "ok"
}

func bbDesired(tw map[string]any) map[string]any {
	return tw["properties"].(map[string]any)["desired"].(map[string]any)
}

func bbReported(tw map[string]any) map[string]any {
	return tw["properties"].(map[string]any)["reported"].(map[string]any)
}

// TestBlackboxRegistryIDs: the registry takes the documented id characters,
// the single quote included, and refuses a backslash (not in any of the
// reference's id character sets), naming the device.
func TestBlackboxRegistryIDs(t *testing.T) {
	t.Parallel()
	ok := []bbDevice{{DeviceID: "a-.%_*?!(),:=@$'z"}}
	h := bbStartHubsim(t, "--registry", bbWriteRegistry(t, ok))
	if got := h.idsWhere(t, `deviceId = 'a-.%_*?!(),:=@$\'z'`); !slices.Equal(got, []string{ok[0].DeviceID}) {
		t.Errorf("the id with every documented special character: %q", got)
	}

	bad := bbWriteRegistry(t, []bbDevice{{DeviceID: "fine"}, {DeviceID: `back\slash`}})
	err := run(context.Background(), []string{"hubsim", "--listen", "127.0.0.1:0", "--registry", bad},
		func(string) string { return "" }, io.Discard, io.Discard)
	var usage *usageError
	if !errors.As(err, &usage) || !strings.Contains(err.Error(), "back\\\\slash") && !strings.Contains(err.Error(), `back\slash`) {
		t.Errorf("a registry with a backslash id: %v, want a usage error naming the device", err)
	}
}
