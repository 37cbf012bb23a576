package hubsim

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCreateJobAnswersMinimalQueuedBody(t *testing.T) {
	h := newHarness(t, Options{})
	r := h.do(http.MethodPut, "/jobs/v2/job01", methodJob("job01", "deviceId IN ['dev-0001','dev-0002']", `,"startTime":"2030-01-01T00:00:00Z","maxExecutionTimeInSeconds":3600`))
	wantOK(t, r)
	// The recorded real response, byte for byte (Content-Length 65).
	if want := `{"jobId":"job01","type":"scheduleDeviceMethod","status":"queued"}`; string(r.body) != want {
		t.Fatalf("body %s, want %s", r.body, want)
	}
	if r.header.Get("Content-Length") != "65" {
		t.Errorf("Content-Length %s", r.header.Get("Content-Length"))
	}
	r = h.do(http.MethodPut, "/jobs/v2/twin01", twinJob("twin01", "*"))
	wantOK(t, r)
	if want := `{"jobId":"twin01","type":"scheduleUpdateTwin","status":"queued"}`; string(r.body) != want {
		t.Fatalf("body %s, want %s", r.body, want)
	}
	// jobId may be left out of the body: it is "ignored at creation".
	wantOK(t, h.do(http.MethodPut, "/jobs/v2/no-body-id", `{"type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"ping"},"queryCondition":"*"}`))
}

func TestCreateJobRejectsBadRequests(t *testing.T) {
	h := newHarness(t, Options{})
	big := `"` + strings.Repeat("x", maxMethodPayload+1) + `"`
	tests := []struct {
		name, id, body, code, text string
	}{
		{"old doc type name", "j", strings.Replace(methodJob("j", "*"), "scheduleDeviceMethod", "scheduleDirectMethod", 1), "GenericBadRequest", "BadRequest"},
		{"import type", "j", strings.Replace(methodJob("j", "*"), "scheduleDeviceMethod", "export", 1), "GenericBadRequest", "BadRequest"},
		{"missing type", "j", `{"jobId":"j","queryCondition":"*"}`, "GenericBadRequest", "BadRequest"},
		{"not JSON", "j", `{"jobId":`, "ArgumentInvalid", "Invalid job request"},
		{"two documents", "j", methodJob("j", "*") + `{}`, "ArgumentInvalid", "after the JSON object"},
		{"timeoutInSeconds is not a field", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"reboot","timeoutInSeconds":30},"queryCondition":"*"}`, "ArgumentInvalid", "timeoutInSeconds"},
		{"bare desired", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","desired":{"a":1}},"queryCondition":"*"}`, "ArgumentInvalid", "desired"},
		{"twin without etag", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"tags":{"a":"1"}},"queryCondition":"*"}`, "ArgumentInvalid", "etag"},
		{"twin with a real etag", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"AAAAAAAAAAc=","tags":{"a":"1"}},"queryCondition":"*"}`, "ArgumentInvalid", "etag"},
		{"empty twin", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*"},"queryCondition":"*"}`, "ArgumentInvalid", "tags or properties.desired"},
		{"reported properties", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","properties":{"reported":{"a":1}}},"queryCondition":"*"}`, "ArgumentInvalid", "Reported"},
		{"tags not an object", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":["a"]},"queryCondition":"*"}`, "ArgumentInvalid", "object"},
		{"dotted tag key", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":{"a.b":"1"}},"queryCondition":"*"}`, "ArgumentInvalid", "invalid property name"},
		{"too deep", "j", `{"jobId":"j","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":` + strings.Repeat(`{"a":`, 11) + `1` + strings.Repeat(`}`, 11) + `},"queryCondition":"*"}`, "ArgumentInvalid", "deeper than 10"},
		{"method job without method", "j", `{"jobId":"j","type":"scheduleDeviceMethod","queryCondition":"*"}`, "ArgumentInvalid", "cloudToDeviceMethod is required"},
		{"method job with twin", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"m"},"updateTwin":{"etag":"*","tags":{"a":"1"}},"queryCondition":"*"}`, "ArgumentInvalid", "updateTwin is not allowed"},
		{"twin job with method", "j", `{"jobId":"j","type":"scheduleUpdateTwin","cloudToDeviceMethod":{"methodName":"m"},"updateTwin":{"etag":"*","tags":{"a":"1"}},"queryCondition":"*"}`, "ArgumentInvalid", "cloudToDeviceMethod is not allowed"},
		{"no method name", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":" "},"queryCondition":"*"}`, "ArgumentInvalid", "methodName"},
		{"response timeout too short", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"m","responseTimeoutInSeconds":2},"queryCondition":"*"}`, "ArgumentInvalid", "responseTimeoutInSeconds"},
		{"connect timeout too long", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"m","connectTimeoutInSeconds":301},"queryCondition":"*"}`, "ArgumentInvalid", "connectTimeoutInSeconds"},
		{"payload over 128 KB", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"m","payload":` + big + `},"queryCondition":"*"}`, "ArgumentInvalid", "payload"},
		{"missing condition", "j", `{"jobId":"j","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"m"}}`, "ArgumentInvalid", "queryCondition"},
		{"bad start time", "j", methodJob("j", "*", `,"startTime":"tomorrow"`), "ArgumentInvalid", "startTime"},
		{"negative max execution", "j", methodJob("j", "*", `,"maxExecutionTimeInSeconds":-1`), "ArgumentInvalid", "maxExecutionTimeInSeconds"},
		{"body id differs from path", "j", methodJob("other", "*"), "ArgumentInvalid", "does not match"},
		{"id too long", strings.Repeat("a", 129), methodJob(strings.Repeat("a", 129), "*"), "ArgumentInvalid", "Invalid job id"},
		{"id with space", "a b", methodJob("a b", "*"), "ArgumentInvalid", "Invalid job id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(http.MethodPut, "/jobs/v2/"+url.PathEscape(tt.id), tt.body)
			wantError(t, r, http.StatusBadRequest, tt.code, tt.text)
		})
	}
	if r := h.do(http.MethodGet, "/jobs/v2/query", ""); string(r.body) != "[]" {
		t.Errorf("refused creates left jobs behind: %s", r.body)
	}
}

func TestCreateDuplicateJobIsConflict(t *testing.T) {
	h := newHarness(t, Options{})
	h.create("dup", methodJob("dup", "*"))
	wantError(t, h.do(http.MethodPut, "/jobs/v2/dup", twinJob("dup", "*")), http.StatusConflict, "JobAlreadyExists", "dup")
	if got := h.get("dup")["type"]; got != "scheduleDeviceMethod" {
		t.Errorf("duplicate PUT replaced the job: type %v", got)
	}
	h.sim.AddImportExportJob("export-1")
	wantError(t, h.do(http.MethodPut, "/jobs/v2/export-1", methodJob("export-1", "*")), http.StatusConflict, "JobAlreadyExists", "export-1")
}

func TestGetJobShape(t *testing.T) {
	h := newHarness(t, Options{})
	h.create("m1", methodJob("m1", "deviceId IN ['dev-0001','dev-0002']", `,"maxExecutionTimeInSeconds":300`))
	r := h.do(http.MethodGet, "/jobs/v2/m1", "")
	wantOK(t, r)
	want := `{"jobId":"m1","queryCondition":"deviceId IN ['dev-0001','dev-0002']","createdTime":"2030-01-01T08:00:00.0000000Z","startTime":"2030-01-01T08:00:00.0000000Z","maxExecutionTimeInSeconds":300,"type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"reboot","payload":{"delay":5},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0},"status":"queued","deviceJobStatistics":{"deviceCount":2,"failedCount":0,"succeededCount":0,"runningCount":0,"pendingCount":2}}`
	if string(r.body) != want {
		t.Fatalf("queued method job:\n got %s\nwant %s", r.body, want)
	}
	h.create("t1", `{"jobId":"t1","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":{"ring":"2", "note":"<&>"}},"queryCondition":"deviceId = 'dev-0003'","startTime":"2030-01-01T08:00:00.1234567Z","maxExecutionTimeInSeconds":300}`)
	h.clock.Advance(10 * time.Second)
	r = h.do(http.MethodGet, "/jobs/v2/t1", "")
	// startTime lies inside the 1 s queued phase, so the device runs from
	// 08:00:01 for 2 s.
	wantOK(t, r)
	// The CLI fixture's shape: updateTwin echoed with deviceId null, endTime
	// once finished, HTML characters not escaped (the hub is .NET).
	want = `{"jobId":"t1","queryCondition":"deviceId = 'dev-0003'","createdTime":"2030-01-01T08:00:00.0000000Z","startTime":"2030-01-01T08:00:00.1234567Z","endTime":"2030-01-01T08:00:03.0000000Z","maxExecutionTimeInSeconds":300,"type":"scheduleUpdateTwin","updateTwin":{"deviceId":null,"etag":"*","tags":{"ring":"2","note":"<&>"}},"status":"completed","deviceJobStatistics":{"deviceCount":1,"failedCount":0,"succeededCount":1,"runningCount":0,"pendingCount":0}}`
	if string(r.body) != want {
		t.Fatalf("completed twin job:\n got %s\nwant %s", r.body, want)
	}
}

func TestGetUnknownJob(t *testing.T) {
	h := newHarness(t, Options{})
	wantError(t, h.do(http.MethodGet, "/jobs/v2/nope", ""), http.StatusNotFound, "JobNotFound", "nope")

	h.sim.AddImportExportJob("export-7")
	r := h.do(http.MethodGet, "/jobs/v2/export-7", "")
	wantOK(t, r)
	want := `{"jobId":"export-7","createdTime":"0001-01-01T00:00:00","startTime":"0001-01-01T00:00:00","endTime":"0001-01-01T00:00:00","maxExecutionTimeInSeconds":0,"type":"unknown","status":"unknown"}`
	if string(r.body) != want {
		t.Fatalf("import/export id:\n got %s\nwant %s", r.body, want)
	}
	wantError(t, h.do(http.MethodPost, "/jobs/v2/export-7/cancel", ""), http.StatusNotFound, "JobNotFound", "export-7")

	lenient := newHarness(t, Options{MissingJobsUnknown: true})
	r = lenient.do(http.MethodGet, "/jobs/v2/nope", "")
	wantOK(t, r)
	if got := r.object(t)["status"]; got != "unknown" {
		t.Errorf("MissingJobsUnknown: status %v", got)
	}
	wantError(t, lenient.do(http.MethodPost, "/jobs/v2/nope/cancel", ""), http.StatusNotFound, "JobNotFound", "nope")
}

// checkConsistent compares a job's statistics with its per-device records,
// the invariant the portal relies on.
func checkConsistent(t *testing.T, h *harness, id string) map[string]int {
	t.Helper()
	st := stats(t, h.get(id))
	counts := map[string]int{}
	for _, rec := range h.deviceRecords(id, "") {
		counts[rec["status"].(string)]++
	}
	want := map[string]int{
		"deviceCount":    counts["pending"] + counts["scheduled"] + counts["running"] + counts["completed"] + counts["failed"] + counts["canceled"],
		"pendingCount":   counts["pending"] + counts["scheduled"],
		"runningCount":   counts["running"],
		"succeededCount": counts["completed"],
		"failedCount":    counts["failed"],
	}
	for k, v := range want {
		if st[k] != v {
			t.Fatalf("at %s: %s = %d, but the device records say %d (%v)", h.clock.Now().Format(time.TimeOnly), k, st[k], v, counts)
		}
	}
	return st
}

func TestLifecycleImmediateStart(t *testing.T) {
	h := newHarness(t, Options{Devices: 20, DeviceRate: 4, FailureRate: 0.25})
	h.create("life", methodJob("life", "*", `,"maxExecutionTimeInSeconds":600`))
	created := h.clock.Now()
	// deviceWork 2 s, a device every 250 ms: the last of 20 finishes at
	// 1 s (queued) + 19×0.25 s + 2 s = 7.75 s.
	wantStatus := func(at time.Duration, status string) {
		t.Helper()
		h.clock.Set(created.Add(at))
		if got := h.get("life")["status"]; got != status {
			t.Fatalf("at +%v: status %v, want %s", at, got, status)
		}
	}
	wantStatus(0, "queued")
	wantStatus(999*time.Millisecond, "queued")
	wantStatus(time.Second, "running")
	wantStatus(7749*time.Millisecond, "running")
	wantStatus(7750*time.Millisecond, "completed")

	var last map[string]int
	for at := time.Duration(0); at <= 9*time.Second; at += 125 * time.Millisecond {
		h.clock.Set(created.Add(at))
		st := checkConsistent(t, h, "life")
		if last != nil && st["succeededCount"]+st["failedCount"] < last["succeededCount"]+last["failedCount"] {
			t.Fatalf("progress went backwards at +%v: %v after %v", at, st, last)
		}
		last = st
	}
	if last["failedCount"] == 0 || last["succeededCount"] == 0 || last["failedCount"]+last["succeededCount"] != 20 {
		t.Errorf("final statistics %v: want some failures at 25%%, all 20 finished", last)
	}
	job := h.get("life")
	if job["endTime"] != "2030-01-01T08:00:07.7500000Z" || job["failureReason"] != nil {
		t.Errorf("endTime %v failureReason %v", job["endTime"], job["failureReason"])
	}
}

func TestLifecycleScheduledStart(t *testing.T) {
	h := newHarness(t, Options{Devices: 5, DeviceRate: 10})
	h.create("later", twinJob("later", "*", `,"startTime":"2030-01-01T10:00:00Z"`))
	steps := []struct {
		at     string
		status string
		device string // status of the per-device records
	}{
		{"08:00:00", "queued", "pending"},
		{"08:00:01", "scheduled", "scheduled"},
		{"09:59:59", "scheduled", "scheduled"},
		{"10:00:00", "running", "running"},
		{"10:00:03", "completed", "completed"},
	}
	for _, s := range steps {
		at, _ := time.Parse(time.DateTime, "2030-01-01 "+s.at)
		h.clock.Set(at)
		job := h.get("later")
		if job["status"] != s.status {
			t.Fatalf("at %s: status %v, want %s", s.at, job["status"], s.status)
		}
		if _, has := job["endTime"]; has != (s.status == "completed") {
			t.Errorf("at %s: endTime present = %v", s.at, has)
		}
		if got := h.deviceRecords("later", "")[0]["status"]; got != s.device {
			t.Errorf("at %s: first device %v, want %s", s.at, got, s.device)
		}
		checkConsistent(t, h, "later")
	}
}

func TestFailedJobAndDeviceErrors(t *testing.T) {
	h := newHarness(t, Options{Devices: 30, DeviceRate: 100, FailureRate: 1})
	h.create("doomed", methodJob("doomed", "*"))
	h.create("doomed-twin", twinJob("doomed-twin", "*"))
	h.clock.Advance(time.Minute)
	for _, id := range []string{"doomed", "doomed-twin"} {
		job := h.get(id)
		if job["status"] != "failed" || job["failureReason"] != "30 of 30 devices failed" {
			t.Errorf("%s: status %v, failureReason %v", id, job["status"], job["failureReason"])
		}
		checkConsistent(t, h, id)
	}
	kinds := map[string]int{}
	for _, rec := range h.deviceRecords("doomed", "") {
		out := rec["outcome"].(map[string]any)
		switch e := rec["error"]; {
		case e != nil:
			if e.(map[string]any)["code"] != "JobRunPreconditionFailed" || e.(map[string]any)["description"] != jobRunPreconditionFailed.Description {
				t.Errorf("device error %v", e)
			}
			if out["deviceMethodResponse"] != nil {
				t.Errorf("unreachable device has a method response: %v", out)
			}
			kinds["unreachable"]++
		default:
			resp := out["deviceMethodResponse"].(map[string]any)
			if resp["status"] != 500.0 || resp["payload"] == nil {
				t.Errorf("failed method response %v", resp)
			}
			kinds["method error"]++
		}
	}
	if kinds["unreachable"] == 0 || kinds["method error"] == 0 {
		t.Errorf("method job failures %v: want both kinds", kinds)
	}
	for _, rec := range h.deviceRecords("doomed-twin", "") {
		if rec["error"].(map[string]any)["code"] != "JobRunPreconditionFailed" {
			t.Errorf("twin device error %v", rec["error"])
		}
		if out := rec["outcome"].(map[string]any); len(out) != 1 || out["deviceMethodResponse"] != nil {
			t.Errorf("twin outcome %v, want {deviceMethodResponse: null}", out)
		}
	}
}

func TestMaxExecutionTimeIsEnforced(t *testing.T) {
	h := newHarness(t, Options{Devices: 40, DeviceRate: 1})
	// 40 devices at 1/s would need ~42 s; the job may run 10 s.
	h.create("short", twinJob("short", "*", `,"maxExecutionTimeInSeconds":10`))
	h.clock.Advance(9 * time.Second)
	if st := checkConsistent(t, h, "short"); st["runningCount"] == 0 {
		t.Fatalf("before the deadline: %v", st)
	}
	h.clock.Advance(time.Second)
	job := h.get("short")
	if job["endTime"] != "2030-01-01T08:00:10.0000000Z" {
		t.Errorf("endTime %v, want the deadline", job["endTime"])
	}
	st := checkConsistent(t, h, "short")
	// Devices started at 1, 2, … s and take 2 s: those started by 8 s finished.
	if st["succeededCount"] != 8 || st["failedCount"] != 32 || job["status"] != "failed" {
		t.Errorf("after the deadline: status %v, %v", job["status"], st)
	}
	for _, rec := range h.deviceRecords("short", "failed") {
		if rec["error"].(map[string]any)["code"] != "JobRunPreconditionFailed" || rec["lastUpdatedDateTimeUtc"] != "2030-01-01T08:00:10.0000000Z" {
			t.Fatalf("timed-out device %v", rec)
		}
	}
	// Later requests see the same frozen end state.
	h.clock.Advance(time.Hour)
	if again := checkConsistent(t, h, "short"); fmt.Sprint(again) != fmt.Sprint(st) {
		t.Errorf("finished job changed: %v then %v", st, again)
	}
}

func TestRetentionPurgesFinishedJobs(t *testing.T) {
	h := newHarness(t, Options{Devices: 2, Retention: 30 * 24 * time.Hour})
	h.create("old", methodJob("old", "*"))
	h.create("future", methodJob("future", "*", `,"startTime":"2030-03-01T00:00:00Z"`))
	h.clock.Advance(10 * time.Second)
	end := h.get("old")["endTime"].(string)
	endTime, _ := time.Parse(time.RFC3339Nano, end)
	h.clock.Set(endTime.Add(30*24*time.Hour - time.Nanosecond))
	h.get("old")
	h.clock.Set(endTime.Add(30 * 24 * time.Hour))
	wantError(t, h.do(http.MethodGet, "/jobs/v2/old", ""), http.StatusNotFound, "JobNotFound", "old")
	if r := h.do(http.MethodGet, "/jobs/v2/query", ""); strings.Contains(string(r.body), `"old"`) {
		t.Errorf("expired job still listed: %s", r.body)
	}
	if got := h.get("future")["status"]; got != "scheduled" {
		t.Errorf("an unfinished job must not expire: %v", got)
	}
	h.create("old", methodJob("old", "*")) // the id is free again
}

func TestCancel(t *testing.T) {
	h := newHarness(t, Options{Devices: 6, DeviceRate: 10})
	h.create("q", methodJob("q", "*"))
	h.create("s", twinJob("s", "*", `,"startTime":"2030-01-01T12:00:00Z"`))
	h.create("run", methodJob("run", "*", `,"startTime":"2030-01-01T08:00:03Z"`))
	h.create("done", methodJob("done", "deviceId = 'dev-0001'"))
	h.create("bad", methodJob("bad", "*", `,"maxExecutionTimeInSeconds":1`))

	// queued: 200 with the full job, cancelled, devices canceled.
	r := h.do(http.MethodPost, "/jobs/v2/q/cancel", "")
	wantOK(t, r)
	job := r.object(t)
	if job["status"] != "cancelled" || job["endTime"] != "2030-01-01T08:00:00.0000000Z" || job["cloudToDeviceMethod"] == nil {
		t.Fatalf("cancel of a queued job answered %s", r.body)
	}
	if st := checkConsistent(t, h, "q"); st["deviceCount"] != 6 || st["pendingCount"] != 0 {
		t.Errorf("cancelled statistics %v", st)
	}
	for _, rec := range h.deviceRecords("q", "") {
		if rec["status"] != "canceled" {
			t.Fatalf("device of a cancelled job: %v", rec["status"])
		}
	}

	h.clock.Advance(4 * time.Second) // s scheduled, run running, done and bad finished
	r = h.do(http.MethodPost, "/jobs/v2/s/cancel", "")
	wantOK(t, r)
	if got := r.object(t)["status"]; got != "cancelled" {
		t.Fatalf("cancel of a scheduled job: %v", got)
	}
	if got := h.get("s")["status"]; got != "cancelled" {
		t.Fatalf("GET after cancel: %v", got)
	}
	h.clock.Advance(5 * time.Hour) // past its start time: it must stay cancelled
	if got := h.get("s")["status"]; got != "cancelled" {
		t.Fatalf("cancelled job ran anyway: %v", got)
	}
	h.clock.Advance(-5 * time.Hour)

	refusals := []struct{ id, state string }{
		{"run", "Running"}, {"done", "Completed"}, {"bad", "Failed"}, {"q", "Cancelled"},
	}
	for _, tt := range refusals {
		if got := h.get(tt.id)["status"]; !strings.EqualFold(got.(string), tt.state) {
			t.Fatalf("%s is %v, want %s", tt.id, got, tt.state)
		}
		r := h.do(http.MethodPost, "/jobs/v2/"+tt.id+"/cancel", "")
		text := wantError(t, r, http.StatusMethodNotAllowed, "OperationNotAllowedInCurrentState", "")
		if want := "Job cannot be cancelled in '" + tt.state + "' status."; text != want {
			t.Errorf("%s: text %q, want %q", tt.id, text, want)
		}
	}
	wantError(t, h.do(http.MethodPost, "/jobs/v2/ghost/cancel", ""), http.StatusNotFound, "JobNotFound", "ghost")

	// The refusal status is configurable, for clients tested against 400.
	h400 := newHarness(t, Options{CancelRefusedStatus: http.StatusBadRequest})
	h400.create("run", methodJob("run", "*"))
	h400.clock.Advance(time.Second)
	wantError(t, h400.do(http.MethodPost, "/jobs/v2/run/cancel", ""), http.StatusBadRequest, "OperationNotAllowedInCurrentState", "'Running'")
}

// HTTP.sys refuses a POST without Content-Length with an HTML 411 before
// the hub sees it; a chunked body is fine.
func TestPostWithoutContentLength(t *testing.T) {
	h := newHarness(t, Options{})
	h.create("q", methodJob("q", "*"))
	raw := func(headers string) (string, string) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /jobs/v2/q/cancel?api-version=2021-04-12 HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n%sConnection: close\r\n\r\n", h.token(), headers)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(res.Body).WriteTo(&b)
		return res.Status + " " + res.Header.Get("Content-Type"), b.String()
	}
	status, body := raw("")
	if status != "411 Length Required text/html; charset=us-ascii" || !strings.Contains(body, "HTTP Error 411. The request must be chunked or have a content length.") {
		t.Fatalf("no Content-Length: %s\n%s", status, body)
	}
	if got := h.get("q")["status"]; got != "queued" {
		t.Fatalf("411 cancel changed the job: %v", got)
	}
	if status, body = raw("Transfer-Encoding: chunked\r\n"); !strings.HasPrefix(status, "200 ") {
		t.Fatalf("chunked POST: %s %s", status, body)
	}
	if status, _ = raw("Content-Length: 0\r\n"); !strings.HasPrefix(status, "405 ") {
		t.Fatalf("second cancel with Content-Length: 0: %s", status)
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	h := newHarness(t, Options{})
	for _, path := range []string{"/", "/jobs", "/jobs/v2", "/jobs/v2/", "/jobs/v2/a/b", "/jobs/v2/a/cancel/x", "/devices"} {
		wantError(t, h.do(http.MethodGet, path, ""), http.StatusNotFound, "GenericNotFound", "")
	}
	tests := []struct{ method, path, allow string }{
		{http.MethodDelete, "/jobs/v2/a", "GET, PUT"},
		{http.MethodPost, "/jobs/v2/a", "GET, PUT"},
		{http.MethodGet, "/jobs/v2/a/cancel", "POST"},
		{http.MethodPut, "/jobs/v2/query", "GET"},
		{http.MethodGet, "/devices/query", "POST"},
	}
	for _, tt := range tests {
		r := h.do(tt.method, tt.path, "")
		wantError(t, r, http.StatusMethodNotAllowed, "GenericMethodNotAllowed", "'"+tt.method+"'")
		if r.header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, r.header.Get("Allow"), tt.allow)
		}
	}
}

// A start in the past, or .NET's zero time, runs the job now with its full
// maxExecutionTimeInSeconds instead of a deadline in year 1.
func TestPastStartTimeMeansNow(t *testing.T) {
	h := newHarness(t, Options{Devices: 3})
	h.create("zero", methodJob("zero", "*", `,"startTime":"0001-01-01T00:00:00","maxExecutionTimeInSeconds":60`))
	if got := h.get("zero")["startTime"]; got != "2030-01-01T08:00:00.0000000Z" {
		t.Errorf("startTime %v, want the creation time", got)
	}
	h.clock.Advance(time.Minute)
	if job := h.get("zero"); job["status"] != "completed" {
		t.Errorf("status %v, statistics %v", job["status"], job["deviceJobStatistics"])
	}
}
