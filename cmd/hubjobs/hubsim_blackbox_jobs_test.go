package main

// Black-box checks of `hubjobs hubsim`, continued: job builders, shapes,
// lifecycle and failures. See hubsim_blackbox_test.go for the rules these
// checks follow (written from the reference alone, nothing imported from hub/).

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Jobs helpers.

func bbMethodJob(id, condition string, start *time.Time, maxSeconds int) map[string]any {
	j := map[string]any{
		"jobId": id, "type": "scheduleDeviceMethod", "queryCondition": condition,
		"cloudToDeviceMethod": map[string]any{
			"methodName": "reboot", "payload": map[string]any{"delay": 5},
			"responseTimeoutInSeconds": 30, "connectTimeoutInSeconds": 0,
		},
		"maxExecutionTimeInSeconds": maxSeconds,
	}
	if start != nil {
		j["startTime"] = start.UTC().Format(time.RFC3339)
	}
	return j
}

func bbTwinJob(id, condition string, start *time.Time) map[string]any {
	j := map[string]any{
		"jobId": id, "type": "scheduleUpdateTwin", "queryCondition": condition,
		"updateTwin":                map[string]any{"etag": "*", "tags": map[string]any{"ring": "2"}, "properties": map[string]any{"desired": map[string]any{"fw": "1.2"}}},
		"maxExecutionTimeInSeconds": 300,
	}
	if start != nil {
		j["startTime"] = start.UTC().Format(time.RFC3339)
	}
	return j
}

func bbJobPath(id string) string { return "/jobs/v2/" + url.PathEscape(id) }

// create PUTs a job and checks reference §0.5/§3: 200 with exactly
// {"jobId","type","status":"queued"}.
func (h *bbHub) create(t *testing.T, job map[string]any) {
	t.Helper()
	r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath(job["jobId"].(string)), body: job})
	if r.status != http.StatusOK {
		t.Fatalf("PUT %s: status %d, want 200 (not 201); body %s", job["jobId"], r.status, r.raw)
	}
	got := r.object(t)
	want := map[string]any{"jobId": job["jobId"], "type": job["type"], "status": "queued"}
	if !mapsEqualJSON(got, want) {
		t.Fatalf("PUT %s: body %s, want the minimal %v", job["jobId"], r.raw, want)
	}
}

func mapsEqualJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func (h *bbHub) get(t *testing.T, id string) map[string]any {
	t.Helper()
	r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath(id)})
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d; body %s", id, r.status, r.raw)
	}
	return r.object(t)
}

func (h *bbHub) cancel(t *testing.T, id string) bbResp {
	t.Helper()
	return h.do(t, bbReq{method: http.MethodPost, path: bbJobPath(id) + "/cancel"})
}

// waitStatus polls GET until the job's status is one of want, checking the
// job's shape and that its status only moves forward on the way.
func (h *bbHub) waitStatus(t *testing.T, id string, limit time.Duration, want ...string) map[string]any {
	t.Helper()
	order := map[string]int{"queued": 0, "scheduled": 1, "running": 2, "completed": 3, "failed": 3, "cancelled": 3}
	deadline := time.Now().Add(limit)
	last := ""
	for {
		job := h.get(t, id)
		bbCheckJobShape(t, job)
		status, _ := job["status"].(string)
		if last != "" && order[status] < order[last] {
			t.Fatalf("job %s went back from %s to %s", id, last, status)
		}
		last = status
		if slices.Contains(want, status) {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %v, want %v", id, status, limit, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bbCheckJobShape checks a JobResponse against reference §2: wire names,
// 7-digit UTC times, enum values, statistics that add up, endTime only once
// finished, and nothing outside the schema.
func bbCheckJobShape(t *testing.T, job map[string]any) {
	t.Helper()
	allowed := []string{"jobId", "queryCondition", "createdTime", "startTime", "endTime", "maxExecutionTimeInSeconds",
		"type", "cloudToDeviceMethod", "updateTwin", "status", "failureReason", "statusMessage", "deviceJobStatistics",
		"deviceId", "parentJobId"}
	for k := range job {
		if !slices.Contains(allowed, k) {
			t.Errorf("job %v: field %q is not a JobResponse wire name", job["jobId"], k)
		}
	}
	for _, k := range []string{"jobId", "createdTime", "startTime", "type", "status", "maxExecutionTimeInSeconds", "queryCondition"} {
		if _, ok := job[k]; !ok {
			t.Errorf("job %v: no %q", job["jobId"], k)
		}
	}
	for _, k := range []string{"createdTime", "startTime", "endTime"} {
		if v, ok := job[k]; ok {
			if s, _ := v.(string); !bbJobTime.MatchString(s) {
				t.Errorf("job %v: %s %q is not yyyy-MM-ddTHH:mm:ss.fffffffZ (reference §0.10)", job["jobId"], k, v)
			}
		}
	}
	status, _ := job["status"].(string)
	if !slices.Contains([]string{"unknown", "enqueued", "running", "completed", "failed", "cancelled", "scheduled", "queued"}, status) {
		t.Errorf("job %v: status %q is not in the JobResponse enum", job["jobId"], status)
	}
	finished := status == "completed" || status == "failed" || status == "cancelled"
	if _, has := job["endTime"]; has != finished {
		t.Errorf("job %v: status %s but endTime present=%v (reference §2: present only once finished)", job["jobId"], status, has)
	}
	switch job["type"] {
	case "scheduleDeviceMethod":
		m, ok := job["cloudToDeviceMethod"].(map[string]any)
		if !ok {
			t.Errorf("method job %v has no cloudToDeviceMethod object", job["jobId"])
		}
		for k := range m {
			if !slices.Contains([]string{"methodName", "payload", "responseTimeoutInSeconds", "connectTimeoutInSeconds"}, k) {
				t.Errorf("cloudToDeviceMethod field %q is not a wire name", k)
			}
		}
		if _, ok := job["updateTwin"]; ok {
			t.Errorf("method job %v carries updateTwin", job["jobId"])
		}
	case "scheduleUpdateTwin":
		if _, ok := job["cloudToDeviceMethod"]; ok {
			t.Errorf("twin job %v carries cloudToDeviceMethod (reference §2: omitted for twin jobs)", job["jobId"])
		}
		tw, ok := job["updateTwin"].(map[string]any)
		if !ok || tw["etag"] != "*" {
			t.Errorf("twin job %v: updateTwin %v, want the echoed twin with etag *", job["jobId"], job["updateTwin"])
		}
	default:
		t.Errorf("job %v: type %v", job["jobId"], job["type"])
	}
	stats, ok := job["deviceJobStatistics"].(map[string]any)
	if !ok {
		// The reference lets old hubs omit it before completion; the simulator documents "always present".
		t.Errorf("job %v: no deviceJobStatistics (the simulator documents it as always present)", job["jobId"])
		return
	}
	count := func(k string) int {
		v, ok := stats[k].(float64)
		if !ok {
			t.Errorf("job %v: deviceJobStatistics.%s = %v, want a number", job["jobId"], k, stats[k])
		}
		return int(v)
	}
	total, parts := count("deviceCount"), count("failedCount")+count("succeededCount")+count("runningCount")+count("pendingCount")
	if status == "cancelled" {
		// Documented simulator choice: cancelled devices count only in deviceCount.
		if parts > total {
			t.Errorf("job %v: statistics parts %d exceed deviceCount %d: %v", job["jobId"], parts, total, stats)
		}
	} else if parts != total {
		t.Errorf("job %v (%s): statistics do not add up to deviceCount: %v", job["jobId"], status, stats)
	}
	if finished && (count("runningCount") != 0 || count("pendingCount") != 0) {
		t.Errorf("job %v is %s with devices still running or pending: %v", job["jobId"], status, stats)
	}
}

// deviceRecords reads every devices.jobs record of a job, page by page.
func (h *bbHub) deviceRecords(t *testing.T, jobID string, pageSize int) []map[string]any {
	t.Helper()
	// The documented form (reference §2): backslash escapes, not SQL doubling.
	quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(jobID) + "'"
	query := map[string]any{"query": "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = " + quoted}
	return h.pages(t, bbReq{method: http.MethodPost, path: "/devices/query", body: query}, pageSize)
}

// pages follows x-ms-continuation until the response header is absent
// (reference §1: absent on the last page; both the token and the page size
// travel in request headers).
func (h *bbHub) pages(t *testing.T, r bbReq, pageSize int) []map[string]any {
	t.Helper()
	all, _ := h.pagesCounted(t, r, pageSize)
	return all
}

// pagesCounted is pages that also says how many requests it took.
func (h *bbHub) pagesCounted(t *testing.T, r bbReq, pageSize int) (all []map[string]any, pagesSeen int) {
	t.Helper()
	token := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("more than 1000 pages")
		}
		r.header = map[string]string{"x-ms-max-item-count": strconv.Itoa(pageSize)}
		if token != "" {
			r.header["x-ms-continuation"] = token
		}
		resp := h.do(t, r)
		if resp.status != http.StatusOK {
			t.Fatalf("%s %s page %d: status %d; body %s", r.method, r.path, page, resp.status, resp.raw)
		}
		items := resp.array(t)
		// Reference §0.3: PascalCase on the wire when present; may be absent.
		if it, ok := resp.header[http.CanonicalHeaderKey("x-ms-item-type")]; ok && !slices.Contains([]string{"Twin", "DeviceJob", "JobResponse", "Raw"}, it[0]) {
			t.Errorf("x-ms-item-type %q is not one of the PascalCase item types", it)
		}
		pagesSeen++
		if len(items) > pageSize {
			t.Fatalf("page %d has %d items, more than x-ms-max-item-count %d", page, len(items), pageSize)
		}
		all = append(all, items...)
		values, present := resp.header[http.CanonicalHeaderKey("x-ms-continuation")]
		if !present {
			return all, pagesSeen
		}
		if len(values) != 1 || values[0] == "" {
			t.Fatalf("page %d: x-ms-continuation %q: present but empty; the simulator should omit it on the last page", page, values)
		}
		if len(items) == 0 {
			t.Fatalf("page %d is empty but carries a continuation", page)
		}
		token = values[0]
	}
}

// bbStatsMatchRecords checks a finished job's statistics against its
// devices.jobs records (issue 2: "statistics always consistent with the
// per-device records").
func (h *bbHub) bbStatsMatchRecords(t *testing.T, job map[string]any) {
	t.Helper()
	records := h.deviceRecords(t, job["jobId"].(string), 100)
	byStatus := map[string]int{}
	for _, r := range records {
		byStatus[r["status"].(string)]++
	}
	stats := job["deviceJobStatistics"].(map[string]any)
	want := map[string]int{"deviceCount": len(records), "succeededCount": byStatus["completed"], "failedCount": byStatus["failed"],
		"runningCount": byStatus["running"], "pendingCount": byStatus["pending"] + byStatus["scheduled"]}
	for k, n := range want {
		if stats[k] != float64(n) {
			t.Errorf("job %v: %s = %v but the devices.jobs records say %d (%v)", job["jobId"], k, stats[k], n, byStatus)
		}
	}
}

func bbIDs(items []map[string]any, key string) []string {
	var ids []string
	for _, it := range items {
		s, _ := it[key].(string)
		ids = append(ids, s)
	}
	return ids
}

// ---------------------------------------------------------------------------
// The checks.

func TestBlackboxCreateAndGetShapes(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "4", "--device-rate", "50", "--failure-rate", "0")
	start := time.Now().Add(time.Hour).Truncate(time.Second)

	// Reference §3: the recorded create answer, byte for byte (Content-Length 65).
	r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("job01"), body: bbMethodJob("job01", "*", &start, 3600)})
	if want := `{"jobId":"job01","type":"scheduleDeviceMethod","status":"queued"}`; r.status != http.StatusOK || string(r.raw) != want || r.header.Get("Content-Length") != "65" {
		t.Errorf("PUT job01: %d %q (Content-Length %s), want 200 %s (65)", r.status, r.raw, r.header.Get("Content-Length"), want)
	}
	h.create(t, bbMethodJob("bb-method", "*", &start, 3600))
	job := h.get(t, "bb-method")
	bbCheckJobShape(t, job)
	if job["jobId"] != "bb-method" || job["queryCondition"] != "*" || job["maxExecutionTimeInSeconds"] != float64(3600) {
		t.Errorf("GET echoes %v", job)
	}
	if ts, _ := bbParseTime(job["startTime"].(string)); !ts.Equal(start) {
		t.Errorf("startTime %v, want the requested %v", job["startTime"], start)
	}
	method := job["cloudToDeviceMethod"].(map[string]any)
	if method["methodName"] != "reboot" || method["responseTimeoutInSeconds"] != float64(30) || method["connectTimeoutInSeconds"] != float64(0) ||
		!mapsEqualJSON(method["payload"].(map[string]any), map[string]any{"delay": 5}) {
		t.Errorf("cloudToDeviceMethod echoed as %v", method)
	}

	h.create(t, bbTwinJob("bb-twin", "*", nil))
	twin := h.get(t, "bb-twin")
	bbCheckJobShape(t, twin)
	// Reference §2: with no startTime the returned startTime equals createdTime.
	if twin["startTime"] != twin["createdTime"] {
		t.Errorf("no startTime requested: startTime %v, createdTime %v, want equal", twin["startTime"], twin["createdTime"])
	}
	tw := twin["updateTwin"].(map[string]any)
	// Reference §8 (CLI fixture): the echoed twin carries "deviceId":null.
	if v, ok := tw["deviceId"]; !ok || v != nil {
		t.Errorf("updateTwin.deviceId = %v (present %v), want null", v, ok)
	}
	if !mapsEqualJSON(tw["tags"].(map[string]any), map[string]any{"ring": "2"}) {
		t.Errorf("updateTwin.tags echoed as %v", tw["tags"])
	}
	if props, _ := tw["properties"].(map[string]any); props == nil || !mapsEqualJSON(props["desired"].(map[string]any), map[string]any{"fw": "1.2"}) {
		t.Errorf("updateTwin.properties echoed as %v", tw["properties"])
	}

	t.Run("the same id again is 409 JobAlreadyExists", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-twin"), body: bbTwinJob("bb-twin", "*", nil)})
		r.wantError(t, http.StatusConflict, "JobAlreadyExists")
	})
	t.Run("an unknown id is not found", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-no-such-job")})
		switch r.status {
		case http.StatusNotFound:
			r.wantError(t, http.StatusNotFound, "JobNotFound")
		case http.StatusOK: // the other shape the reference reports from real hubs
			if job := r.object(t); job["status"] != "unknown" {
				t.Errorf("GET of an unknown id: 200 with status %v", job["status"])
			}
		default:
			t.Errorf("GET of an unknown id: status %d", r.status)
		}
	})
}

func TestBlackboxLifecycleAndDeviceRecords(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "5", "--device-rate", "50", "--failure-rate", "0")

	// A future start: queued first (reference §0.5), then scheduled (§9 CLI live test).
	future := time.Now().Add(time.Hour)
	h.create(t, bbMethodJob("bb-later", "*", &future, 600))
	if job := h.get(t, "bb-later"); job["status"] != "queued" && job["status"] != "scheduled" {
		t.Errorf("just created with a future start: status %v", job["status"])
	}
	h.waitStatus(t, "bb-later", 10*time.Second, "scheduled")

	// Start now: it runs and completes; all devices of `*` are targeted.
	h.create(t, bbMethodJob("bb-now", "*", nil, 600))
	done := h.waitStatus(t, "bb-now", 30*time.Second, "completed")
	stats := done["deviceJobStatistics"].(map[string]any)
	if stats["deviceCount"] != float64(5) || stats["succeededCount"] != float64(5) {
		t.Errorf("`*` over 5 devices with no failures: statistics %v", stats)
	}
	end, _ := bbParseTime(done["endTime"].(string))
	begin, _ := bbParseTime(done["startTime"].(string))
	if !end.After(begin) {
		t.Errorf("endTime %v is not after startTime %v", done["endTime"], done["startTime"])
	}

	h.bbStatsMatchRecords(t, done)
	records := h.deviceRecords(t, "bb-now", 2) // 3 pages of 2, 2, 1
	if len(records) != 5 {
		t.Fatalf("devices.jobs for bb-now: %d records, want 5", len(records))
	}
	devices := bbIDs(records, "deviceId")
	if slices.Sort(devices); len(slices.Compact(slices.Clone(devices))) != 5 {
		t.Errorf("paging repeated a device: %v", devices)
	}
	for _, rec := range records {
		bbCheckDeviceRecord(t, rec, "bb-now", "scheduleDeviceMethod", 600)
		if rec["status"] != "completed" {
			t.Errorf("device %v: status %v, want completed", rec["deviceId"], rec["status"])
		}
		resp, _ := rec["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)
		if resp == nil || resp["status"] == nil {
			t.Errorf("completed method device %v: outcome %v, want deviceMethodResponse{status,payload}", rec["deviceId"], rec["outcome"])
		}
	}

	t.Run("queryCondition selects devices", func(t *testing.T) {
		cases := []struct {
			id, condition string
			want          int
		}{
			{"bb-one", "deviceId = '" + devices[1] + "'", 1},
			{"bb-two", "deviceId IN ['" + devices[0] + "', '" + devices[3] + "']", 2},
			{"bb-and", "deviceId IN ['" + devices[0] + "', '" + devices[3] + "'] AND deviceId = '" + devices[3] + "'", 1},
			{"bb-tag", "tags.bbNoSuchTag = 'x'", 0},
			// The spellings of reference §2 and the CLI fixture of §8: no spaces, a lower-case `in`.
			{"bb-tight", "tags.bbNoSuchTag='y'", 0},
			{"bb-lower-in", "deviceId in ['" + devices[0] + "','" + devices[2] + "']", 2},
		}
		for _, c := range cases {
			h.create(t, bbTwinJob(c.id, c.condition, &future))
			job := h.get(t, c.id)
			if n := job["deviceJobStatistics"].(map[string]any)["deviceCount"]; n != float64(c.want) {
				t.Errorf("%s: deviceCount %v, want %d", c.condition, n, c.want)
			}
			if got := len(h.deviceRecords(t, c.id, 100)); got != c.want {
				t.Errorf("%s: %d devices.jobs records, want %d", c.condition, got, c.want)
			}
		}
	})

	t.Run("a job id with a quote is found through SQL quoting", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-o'brien", "*", &future))
		if got := len(h.deviceRecords(t, "bb-o'brien", 100)); got != 5 {
			t.Errorf("devices.jobs for a quoted id: %d records, want 5", got)
		}
	})
}

// bbCheckDeviceRecord checks a devices.jobs record against reference §2.
func bbCheckDeviceRecord(t *testing.T, rec map[string]any, jobID, jobType string, maxSeconds int) {
	t.Helper()
	if _, has := rec["type"]; has {
		t.Errorf("devices.jobs record has `type`; the field is `jobType`: %v", rec)
	}
	if rec["jobId"] != jobID || rec["jobType"] != jobType || rec["deviceId"] == "" {
		t.Errorf("record %v: want jobId %s, jobType %s and a deviceId", rec, jobID, jobType)
	}
	if !slices.Contains([]string{"pending", "scheduled", "running", "completed", "failed", "canceled", "cancelled"}, rec["status"].(string)) {
		t.Errorf("device %v: status %v", rec["deviceId"], rec["status"])
	}
	for _, k := range []string{"startTimeUtc", "endTimeUtc", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"} {
		s, _ := rec[k].(string)
		if _, err := bbParseTime(s); err != nil {
			t.Errorf("device %v: %s: %v", rec["deviceId"], k, err)
		}
	}
	st, _ := bbParseTime(rec["startTimeUtc"].(string))
	en, _ := bbParseTime(rec["endTimeUtc"].(string))
	// Reference §2 (inferred from Java fixtures; the simulator documents it): endTimeUtc is the planned deadline.
	if en.Sub(st) != time.Duration(maxSeconds)*time.Second {
		t.Errorf("device %v: endTimeUtc − startTimeUtc = %v, want maxExecutionTimeInSeconds %d s", rec["deviceId"], en.Sub(st), maxSeconds)
	}
	outcome, ok := rec["outcome"].(map[string]any)
	if !ok {
		t.Errorf("device %v: outcome %v, want an object", rec["deviceId"], rec["outcome"])
	}
	if jobType == "scheduleUpdateTwin" && outcome["deviceMethodResponse"] != nil {
		t.Errorf("twin job device %v: outcome %v, want {} or a null deviceMethodResponse", rec["deviceId"], outcome)
	}
	if rec["status"] == "failed" {
		e, _ := rec["error"].(map[string]any)
		if e == nil || e["code"] == "" || e["code"] == nil || e["description"] == nil {
			t.Errorf("failed device %v: error %v, want {code, description}", rec["deviceId"], rec["error"])
		}
	} else if _, has := rec["error"]; has && rec["error"] != nil {
		t.Errorf("%v device %v carries error %v", rec["status"], rec["deviceId"], rec["error"])
	}
}

func TestBlackboxFailuresAndMaxExecutionTime(t *testing.T) {
	t.Parallel()
	// Every device fails: the job fails and each record carries an error.
	h := bbStartHubsim(t, "--devices", "3", "--device-rate", "50", "--failure-rate", "1")
	h.create(t, bbTwinJob("bb-fails", "*", nil))
	job := h.waitStatus(t, "bb-fails", 30*time.Second, "failed", "completed")
	if job["status"] != "failed" || job["failureReason"] == nil {
		t.Errorf("all devices failing: status %v, failureReason %v", job["status"], job["failureReason"])
	}
	h.bbStatsMatchRecords(t, job)
	for _, rec := range h.deviceRecords(t, "bb-fails", 100) {
		bbCheckDeviceRecord(t, rec, "bb-fails", "scheduleUpdateTwin", 300)
		if rec["status"] != "failed" {
			t.Errorf("device %v: %v, want failed", rec["deviceId"], rec["status"])
		}
	}

	// maxExecutionTimeInSeconds is enforced: a slow job ends at its deadline
	// and the devices it never reached fail with JobRunPreconditionFailed (§2).
	slow := bbStartHubsim(t, "--devices", "50", "--device-rate", "1", "--failure-rate", "0")
	slow.create(t, bbMethodJob("bb-deadline", "*", nil, 2))
	created := time.Now()
	job = slow.waitStatus(t, "bb-deadline", 20*time.Second, "completed", "failed")
	if took := time.Since(created); took > 10*time.Second {
		t.Errorf("a 2 s job took %v to end", took)
	}
	slow.bbStatsMatchRecords(t, job)
	stats := job["deviceJobStatistics"].(map[string]any)
	if stats["failedCount"].(float64) < 40 {
		t.Errorf("50 devices at 1/s with a 2 s limit: statistics %v, want most failed", stats)
	}
	var precondition int
	for _, rec := range slow.deviceRecords(t, "bb-deadline", 100) {
		bbCheckDeviceRecord(t, rec, "bb-deadline", "scheduleDeviceMethod", 2)
		if e, _ := rec["error"].(map[string]any); e != nil && e["code"] == "JobRunPreconditionFailed" {
			precondition++
		}
	}
	if precondition < 40 {
		t.Errorf("%d devices failed with JobRunPreconditionFailed, want the ~48 never reached", precondition)
	}
}
