package hubsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMaxActiveJobs(t *testing.T) {
	h := newHarness(t, Options{Devices: 4, DeviceRate: 10, MaxActiveJobs: 1}) // an S1 hub
	h.create("first", methodJob("first", "*"))
	r := h.do(http.MethodPut, "/jobs/v2/second", methodJob("second", "*"))
	// The nested variant recorded for this code (C# SDK issue #361).
	text := wantError(t, r, http.StatusTooManyRequests, "ThrottlingMaxActiveJobCountExceeded", "Error: 429 ")
	var inner map[string]string
	if err := json.Unmarshal([]byte(strings.TrimPrefix(text, "Error: 429 ")), &inner); err != nil {
		t.Fatalf("nested body is not JSON: %v: %s", err, text)
	}
	if inner["Message"] != "ErrorCode:ThrottlingMaxActiveJobCountExceeded;429" || !exceptionPattern.MatchString(inner["ExceptionMessage"]) {
		t.Errorf("nested body %v", inner)
	}
	if r.header.Get("Retry-After") != "" {
		t.Errorf("max-active refusal carries Retry-After %q", r.header.Get("Retry-After"))
	}
	wantError(t, h.do(http.MethodGet, "/jobs/v2/second", ""), http.StatusNotFound, "JobNotFound", "second")
	h.clock.Advance(10 * time.Second) // first completes
	h.create("second", methodJob("second", "*"))
	// Cancelling frees the slot too.
	wantOK(t, h.do(http.MethodPost, "/jobs/v2/second/cancel", ""))
	h.create("third", methodJob("third", "*"))
}

func TestJobOperationsThrottle(t *testing.T) {
	h := newHarness(t, Options{Devices: 2, JobOpsPerMinute: 3})
	h.create("a", methodJob("a", "*"))
	h.get("a")
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/query", ""))
	r := h.do(http.MethodPost, "/jobs/v2/a/cancel", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("iothub-errorcode") != "ThrottlingException" {
		t.Fatalf("4th jobs call in a minute: %d %s", r.status, r.body)
	}
	checkCommonHeaders(t, r)
	// Format B: Message is an escaped JSON object with a numeric code.
	var outer map[string]string
	if err := json.Unmarshal(r.body, &outer); err != nil {
		t.Fatal(err)
	}
	var inner map[string]any
	if err := json.Unmarshal([]byte(outer["Message"]), &inner); err != nil {
		t.Fatalf("format B Message is not JSON: %q", outer["Message"])
	}
	if inner["errorCode"] != 429001.0 || !strings.Contains(inner["message"].(string), "3 per minute") ||
		!regexp.MustCompile(`^[0-9a-f]{32}-G:\d+-TimeStamp:`).MatchString(inner["trackingId"].(string)) ||
		inner["timestampUtc"] != "2030-01-01T08:00:00.0000000Z" || outer["ExceptionMessage"] != "" {
		t.Errorf("format B body %s", r.body)
	}
	// One token every 20 s: Retry-After says when the next one is there.
	if got := r.header.Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After %q, want 20", got)
	}
	// The per-device query is not a jobs operation.
	wantOK(t, h.do(http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs"}`))
	h.clock.Advance(20 * time.Second)
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/a", ""))
	if r := h.do(http.MethodGet, "/jobs/v2/a", ""); r.status != http.StatusTooManyRequests {
		t.Errorf("bucket refilled too fast: %d", r.status)
	}
	h.clock.Advance(time.Hour) // the bucket holds at most a minute's worth
	for range 3 {
		wantOK(t, h.do(http.MethodGet, "/jobs/v2/a", ""))
	}
	if r := h.do(http.MethodGet, "/jobs/v2/a", ""); r.status != http.StatusTooManyRequests {
		t.Errorf("bucket over capacity: %d", r.status)
	}
}

func TestCallsCountEveryRequest(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.create("a", methodJob("a", "*"))
	h.get("a")
	h.get("a")
	h.do(http.MethodGet, "/jobs/v2/a", "", "Authorization", "") // refused requests count too
	h.do(http.MethodPost, "/jobs/v2/a/cancel", "")
	h.do(http.MethodGet, "/jobs/v2/query", "")
	h.deviceRecords("a", "")
	h.do(http.MethodDelete, "/jobs/v2/a", "")
	want := map[Op]int{OpCreateJob: 1, OpGetJob: 3, OpCancelJob: 1, OpQueryJobs: 1, OpQueryDevices: 1, OpOther: 1}
	for op, n := range want {
		if got := h.sim.Calls(op); got != n {
			t.Errorf("Calls(%s) = %d, want %d", op, got, n)
		}
	}
	h.sim.ResetCalls()
	if got := h.sim.Calls(OpGetJob); got != 0 {
		t.Errorf("after ResetCalls: %d", got)
	}
}
