package hubsim

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// pageThrough follows continuations, checking each page's headers, and
// returns the items' ids (jobId or jobId/deviceId) and the page sizes.
func pageThrough(t *testing.T, h *harness, method, path, body, itemType string, size int) (ids []string, pages []int) {
	t.Helper()
	token := ""
	for range 100 {
		r := h.do(method, path, body, "x-ms-max-item-count", fmt.Sprint(size), "x-ms-continuation", token)
		wantOK(t, r)
		if got := r.header.Get("x-ms-item-type"); got != itemType {
			t.Errorf("x-ms-item-type = %q, want %q", got, itemType)
		}
		items := r.array(t)
		pages = append(pages, len(items))
		for _, it := range items {
			id := it["jobId"].(string)
			if dev, ok := it["deviceId"].(string); ok {
				id += "/" + dev
			}
			ids = append(ids, id)
		}
		_, present := r.header["X-Ms-Continuation"]
		token = r.header.Get("x-ms-continuation")
		if present && token == "" {
			t.Fatal("x-ms-continuation present but empty: it must be absent on the last page")
		}
		if token == "" {
			return ids, pages
		}
	}
	t.Fatal("paging never ended")
	return nil, nil
}

func TestQueryJobsPaging(t *testing.T) {
	h := newHarness(t, Options{Devices: 3, MaxActiveJobs: 100})
	for i := range 7 {
		body := methodJob(fmt.Sprintf("job-%d", i), "*")
		if i%2 == 1 {
			body = twinJob(fmt.Sprintf("job-%d", i), "*")
		}
		h.create(fmt.Sprintf("job-%d", i), body)
		h.clock.Advance(time.Second)
	}
	ids, pages := pageThrough(t, h, http.MethodGet, "/jobs/v2/query", "", "JobResponse", 3)
	want := []string{"job-6", "job-5", "job-4", "job-3", "job-2", "job-1", "job-0"} // newest first
	if !slices.Equal(ids, want) || !slices.Equal(pages, []int{3, 3, 1}) {
		t.Fatalf("pages %v of %v, want [3 3 1] of %v", pages, ids, want)
	}
	// Exactly one full page: no continuation header at all.
	if _, pages = pageThrough(t, h, http.MethodGet, "/jobs/v2/query", "", "JobResponse", 7); !slices.Equal(pages, []int{7}) {
		t.Errorf("page of exactly 7: %v", pages)
	}
	// Items are full JobResponses, and the body a bare array.
	r := h.do(http.MethodGet, "/jobs/v2/query?jobType=scheduleUpdateTwin", "")
	if !strings.HasPrefix(string(r.body), `[{"jobId":"job-5","queryCondition":"*","createdTime":`) || !strings.Contains(string(r.body), `"deviceJobStatistics"`) {
		t.Errorf("query body %s", r.body)
	}
	if got := len(r.array(t)); got != 3 {
		t.Errorf("twin jobs: %d, want 3", got)
	}
	// A job created between pages does not shift the remaining pages.
	r = h.do(http.MethodGet, "/jobs/v2/query", "", "x-ms-max-item-count", "3")
	h.create("job-new", methodJob("job-new", "*"))
	r = h.do(http.MethodGet, "/jobs/v2/query", "", "x-ms-max-item-count", "3", "x-ms-continuation", r.header.Get("x-ms-continuation"))
	if got := r.array(t)[0]["jobId"]; got != "job-3" {
		t.Errorf("second page starts with %v after a concurrent create, want job-3", got)
	}
}

func TestQueryJobsFilters(t *testing.T) {
	h := newHarness(t, Options{Devices: 3, MaxActiveJobs: 100})
	h.create("m-done", methodJob("m-done", "*"))
	h.create("t-done", twinJob("t-done", "*"))
	h.clock.Advance(time.Minute)
	h.create("m-queued", methodJob("m-queued", "*"))
	h.create("t-sched", twinJob("t-sched", "*", `,"startTime":"2030-06-01T00:00:00Z"`))
	h.create("m-cancel", methodJob("m-cancel", "*"))
	wantOK(t, h.do(http.MethodPost, "/jobs/v2/m-cancel/cancel", ""))
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"m-cancel", "m-queued", "t-sched", "m-done", "t-done"}},
		{"jobType=scheduleDeviceMethod", []string{"m-cancel", "m-queued", "m-done"}},
		{"jobType=ScheduleDeviceMethod", []string{"m-cancel", "m-queued", "m-done"}}, // C# v1 sends PascalCase
		{"jobStatus=completed", []string{"m-done", "t-done"}},
		{"jobStatus=queued", []string{"m-queued", "t-sched"}},
		{"jobStatus=cancelled", []string{"m-cancel"}},
		{"jobType=scheduleUpdateTwin&jobStatus=queued", []string{"t-sched"}},
		{"jobStatus=running", nil},
		{"jobType=export", nil},
	}
	for _, tt := range tests {
		ids, _ := pageThrough(t, h, http.MethodGet, "/jobs/v2/query?"+tt.query, "", "JobResponse", 2)
		if !slices.Equal(ids, tt.want) {
			t.Errorf("%q: %v, want %v", tt.query, ids, tt.want)
		}
	}
	for _, q := range []string{"jobType=reboot", "jobStatus=canceled", "jobStatus=pending"} {
		wantError(t, h.do(http.MethodGet, "/jobs/v2/query?"+q, ""), http.StatusBadRequest, "ArgumentInvalid", "Invalid job")
	}
}

func TestPagingHeaderErrors(t *testing.T) {
	h := newHarness(t, Options{Devices: 3, MaxActiveJobs: 200})
	for i := range 3 {
		h.create(fmt.Sprintf("j%d", i), methodJob(fmt.Sprintf("j%d", i), "*"))
	}
	for _, n := range []string{"0", "-5", "ten", "1.5"} {
		wantError(t, h.do(http.MethodGet, "/jobs/v2/query", "", "x-ms-max-item-count", n), http.StatusBadRequest, "ArgumentInvalid", "x-ms-max-item-count")
	}
	first := h.do(http.MethodGet, "/jobs/v2/query", "", "x-ms-max-item-count", "1")
	token := first.header.Get("x-ms-continuation")
	if token == "" {
		t.Fatal("no continuation on a first page of 1 of 3")
	}
	for name, bad := range map[string]string{
		"garbage":          "not-a-token",
		"truncated":        token[:len(token)/2],
		"from other query": token,
	} {
		path := "/jobs/v2/query"
		if name == "from other query" {
			path += "?jobStatus=queued"
		}
		wantError(t, h.do(http.MethodGet, path, "", "x-ms-continuation", bad), http.StatusBadRequest, "ArgumentInvalid", "continuation")
	}
	sql := `{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'j0'"}`
	wantError(t, h.do(http.MethodPost, "/devices/query", sql, "x-ms-continuation", token), http.StatusBadRequest, "ArgumentInvalid", "continuation")
	// Requests above the cap get the cap, with a continuation.
	for i := 3; i < 105; i++ {
		h.create(fmt.Sprintf("j%d", i), methodJob(fmt.Sprintf("j%d", i), "*"))
	}
	r := h.do(http.MethodGet, "/jobs/v2/query", "", "x-ms-max-item-count", "1000")
	if got := len(r.array(t)); got != maxPageSize || r.header.Get("x-ms-continuation") == "" {
		t.Errorf("page of 1000 requested: %d items, continuation %q", got, r.header.Get("x-ms-continuation"))
	}
	if r := h.do(http.MethodGet, "/jobs/v2/query", ""); len(r.array(t)) != defaultPageSize {
		t.Errorf("default page size: %d", len(r.array(t)))
	}
}

func TestDevicesQuery(t *testing.T) {
	h := newHarness(t, Options{Devices: 25, DeviceRate: 50, FailureRate: 0.3})
	h.create("it's-a-job", methodJob("it's-a-job", "*"))
	h.create("twin", twinJob("twin", "deviceId IN ['dev-0002','dev-0005']"))
	h.clock.Advance(time.Minute)

	ids, pages := pageThrough(t, h, http.MethodPost, "/devices/query",
		`{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'it\\'s-a-job'"}`, "DeviceJob", 10)
	if !slices.Equal(pages, []int{10, 10, 5}) || ids[0] != "it's-a-job/dev-0001" || ids[24] != "it's-a-job/dev-0025" {
		t.Fatalf("pages %v, ids %v", pages, ids)
	}
	r := h.do(http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'twin'"}`)
	wantOK(t, r)
	want := `[{"deviceId":"dev-0002","jobId":"twin","jobType":"scheduleUpdateTwin","status":"completed","startTimeUtc":"2030-01-01T08:00:00.0000000","endTimeUtc":"2030-01-01T09:00:00.0000000","createdDateTimeUtc":"2030-01-01T08:00:00.0000000Z","lastUpdatedDateTimeUtc":"2030-01-01T08:00:03.0000000Z","outcome":{"deviceMethodResponse":null}}`
	if !strings.HasPrefix(string(r.body), want) {
		t.Fatalf("twin device record:\n got %s\nwant prefix %s", r.body, want)
	}
	succeeded := h.deviceRecords("it's-a-job", "completed")
	failed := h.deviceRecords("it's-a-job", "failed")
	if len(succeeded)+len(failed) != 25 || len(failed) == 0 {
		t.Fatalf("%d completed + %d failed, want 25 with some failures", len(succeeded), len(failed))
	}
	for _, rec := range succeeded {
		resp := rec["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)
		if resp["status"] != 200.0 || rec["error"] != nil || rec["jobType"] != "scheduleDeviceMethod" {
			t.Fatalf("succeeded method device %v", rec)
		}
	}
	// Other filters and the unfiltered collection.
	ids, _ = pageThrough(t, h, http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.deviceId = 'dev-0005'"}`, "DeviceJob", 100)
	if !slices.Equal(ids, []string{"it's-a-job/dev-0005", "twin/dev-0005"}) {
		t.Errorf("by device: %v", ids)
	}
	ids, _ = pageThrough(t, h, http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobType = 'scheduleUpdateTwin'"}`, "DeviceJob", 100)
	if !slices.Equal(ids, []string{"twin/dev-0002", "twin/dev-0005"}) {
		t.Errorf("by type: %v", ids)
	}
	if ids, _ = pageThrough(t, h, http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs"}`, "DeviceJob", 7); len(ids) != 27 {
		t.Errorf("all records: %d, want 27", len(ids))
	}
	r = h.do(http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'none'"}`)
	wantOK(t, r)
	if string(r.body) != "[]" || r.header.Get("x-ms-continuation") != "" {
		t.Errorf("unknown job: %s", r.body)
	}
}
