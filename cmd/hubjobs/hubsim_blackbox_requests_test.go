package main

// Black-box checks of `hubjobs hubsim`, continued: paging, cancel,
// authentication, request validation and throttles. See
// hubsim_blackbox_test.go for the rules these checks follow.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBlackboxQueryPagingAndFilters(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--max-active-jobs", "50", "--seed")
	future := time.Now().Add(time.Hour)
	var mine []string
	for i := range 7 {
		id := fmt.Sprintf("bb-page-%d", i)
		if i%2 == 0 {
			h.create(t, bbTwinJob(id, "*", &future))
		} else {
			h.create(t, bbMethodJob(id, "*", &future, 600))
		}
		mine = append(mine, id)
	}
	h.waitStatus(t, mine[len(mine)-1], 10*time.Second, "scheduled") // the others left queued before it
	query := bbReq{method: http.MethodGet, path: "/jobs/v2/query"}

	all := h.pages(t, query, 3)
	ids := bbIDs(all, "jobId")
	for _, id := range mine {
		if !slices.Contains(ids, id) {
			t.Errorf("paging with 3 per page lost %s: %v", id, ids)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Errorf("paging repeated a job: %v", ids)
	}
	if len(all) < 8 {
		t.Errorf("--seed and 7 created jobs gave only %d jobs", len(all))
	}
	statuses := map[string]bool{}
	for _, job := range all {
		bbCheckJobShape(t, job)
		statuses[job["status"].(string)] = true
	}
	// --seed documents "jobs in every state".
	for _, s := range []string{"scheduled", "running", "completed", "failed", "cancelled"} {
		if !statuses[s] {
			t.Errorf("query over a seeded hub has no %s job (statuses %v)", s, statuses)
		}
	}
	// A page size that divides the total exactly: the last full page has no
	// continuation (the header means "another item exists", not "the page was full").
	for _, size := range []int{len(all), len(all) / 2} {
		if len(all)%size != 0 {
			continue
		}
		got, n := h.pagesCounted(t, query, size)
		if len(got) != len(all) || n != len(all)/size {
			t.Errorf("page size %d over %d jobs: %d jobs in %d requests, want %d requests", size, len(all), len(got), n, len(all)/size)
		}
	}

	t.Run("jobType filter", func(t *testing.T) {
		q := query
		q.query = url.Values{"jobType": {"scheduleUpdateTwin"}}
		twins := h.pages(t, q, 2)
		for _, j := range twins {
			if j["type"] != "scheduleUpdateTwin" {
				t.Errorf("jobType=scheduleUpdateTwin returned a %v job", j["type"])
			}
		}
		got := bbIDs(twins, "jobId")
		for i, id := range mine {
			if slices.Contains(got, id) != (i%2 == 0) {
				t.Errorf("jobType=scheduleUpdateTwin: %s included=%v", id, slices.Contains(got, id))
			}
		}
	})
	t.Run("jobStatus filter", func(t *testing.T) {
		for _, status := range []string{"scheduled", "completed", "cancelled", "running"} {
			q := query
			q.query = url.Values{"jobStatus": {status}}
			jobs := h.pages(t, q, 4)
			if len(jobs) == 0 {
				t.Errorf("jobStatus=%s: no jobs on a seeded hub", status)
			}
			for _, j := range jobs {
				if j["status"] != status {
					t.Errorf("jobStatus=%s returned a %v job", status, j["status"])
				}
			}
		}
		q := query
		q.query = url.Values{"jobStatus": {"scheduled"}, "jobType": {"scheduleDeviceMethod"}}
		got := bbIDs(h.pages(t, q, 100), "jobId")
		for i, id := range mine {
			if slices.Contains(got, id) != (i%2 == 1) {
				t.Errorf("scheduled method jobs: %s included=%v", id, slices.Contains(got, id))
			}
		}
	})
	t.Run("the last page has no x-ms-continuation header", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", header: map[string]string{"x-ms-max-item-count": "3"}})
		if r.header.Get("x-ms-continuation") == "" {
			t.Fatal("first page of 3 out of many has no continuation")
		}
		// The token is only honoured from the request header, never the query string.
		again := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query",
			query: url.Values{"continuationToken": {r.header.Get("x-ms-continuation")}}, header: map[string]string{"x-ms-max-item-count": "3"}})
		if !bytes.Equal(again.raw, r.raw) {
			t.Error("a continuation token in the query string changed the page; the reference says it travels in a header")
		}
	})
	t.Run("bad paging headers", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			{"x-ms-continuation": "bm90LWEtdG9rZW4="},
			{"x-ms-continuation": "%%%"},
			{"x-ms-max-item-count": "0"},
			{"x-ms-max-item-count": "-5"},
			{"x-ms-max-item-count": "many"},
		} {
			r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", header: hdr})
			if r.status < 400 || r.status > 499 {
				t.Errorf("%v: status %d, want a 4xx", hdr, r.status)
			} else if e := r.parseError(t); e.code != r.header.Get("iothub-errorcode") {
				t.Errorf("%v: body code %q, header %q", hdr, e.code, r.header.Get("iothub-errorcode"))
			}
		}
	})
}

func TestBlackboxCancel(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "40", "--device-rate", "2", "--failure-rate", "0")
	future := time.Now().Add(time.Hour)

	// Reference §0.6: queued or scheduled → 200 with status "cancelled" (two Ls) and the job.
	wantCancelled := func(t *testing.T, id string, r bbResp) {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("cancel %s: status %d, want 200; body %s", id, r.status, r.raw)
		}
		job := r.object(t)
		bbCheckJobShape(t, job)
		if job["jobId"] != id || job["status"] != "cancelled" {
			t.Errorf("cancel %s answered %v", id, job)
		}
		if again := h.get(t, id); again["status"] != "cancelled" {
			t.Errorf("GET after cancel: status %v", again["status"])
		}
		for _, rec := range h.deviceRecords(t, id, 100) {
			// Per-device spelling is [UNVERIFIED]; the simulator documents `canceled`.
			if rec["status"] != "canceled" {
				t.Errorf("device %v of a cancelled job: status %v, want canceled", rec["deviceId"], rec["status"])
			}
		}
	}
	t.Run("queued", func(t *testing.T) {
		h.create(t, bbMethodJob("bb-c-queued", "*", &future, 600))
		before := h.get(t, "bb-c-queued")["status"]
		wantCancelled(t, "bb-c-queued", h.cancel(t, "bb-c-queued"))
		if before != "queued" {
			t.Logf("the job had already left queued (%v) before the cancel; the scheduled path was checked instead", before)
		}
	})
	t.Run("scheduled", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-c-sched", "*", &future))
		h.waitStatus(t, "bb-c-sched", 10*time.Second, "scheduled")
		wantCancelled(t, "bb-c-sched", h.cancel(t, "bb-c-sched"))
		t.Run("a second cancel is an error, not a silent 200", func(t *testing.T) {
			r := h.cancel(t, "bb-c-sched")
			if r.status == http.StatusOK || r.status < 400 {
				t.Fatalf("second cancel: status %d", r.status)
			}
			if e := r.parseError(t); r.header.Get("iothub-errorcode") != e.code {
				t.Errorf("iothub-errorcode %q, body code %q", r.header.Get("iothub-errorcode"), e.code)
			}
		})
	})
	t.Run("running", func(t *testing.T) {
		h.create(t, bbMethodJob("bb-c-running", "*", nil, 600)) // 40 devices at 2/s: running for ~20 s
		h.waitStatus(t, "bb-c-running", 10*time.Second, "running")
		r := h.cancel(t, "bb-c-running")
		// The HTTP status is [UNVERIFIED]; the simulator documents 405 (405102's prefix).
		e := r.wantError(t, http.StatusMethodNotAllowed, "OperationNotAllowedInCurrentState")
		if e.text != "Job cannot be cancelled in 'Running' status." {
			t.Errorf("cancel of a running job: text %q, want the recorded one", e.text)
		}
		if job := h.get(t, "bb-c-running"); job["status"] != "running" {
			t.Errorf("a refused cancel changed the job: %v", job["status"])
		}
	})
	t.Run("finished", func(t *testing.T) {
		quick := bbStartHubsim(t, "--devices", "2", "--device-rate", "50", "--failure-rate", "0")
		quick.create(t, bbTwinJob("bb-c-done", "*", nil))
		quick.waitStatus(t, "bb-c-done", 30*time.Second, "completed")
		r := quick.cancel(t, "bb-c-done")
		if r.status == http.StatusOK || r.status < 400 || r.status > 499 {
			t.Fatalf("cancel of a completed job: status %d, want a 4xx error", r.status)
		}
		if e := r.parseError(t); e.code != r.header.Get("iothub-errorcode") || e.code == "" {
			t.Errorf("cancel of a completed job: code %q, header %q", e.code, r.header.Get("iothub-errorcode"))
		}
		if job := quick.get(t, "bb-c-done"); job["status"] != "completed" {
			t.Errorf("a refused cancel changed the job: %v", job["status"])
		}
	})
	t.Run("unknown", func(t *testing.T) {
		h.cancel(t, "bb-never-created").wantError(t, http.StatusNotFound, "JobNotFound")
	})
}

func TestBlackboxAuthentication(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2")
	path := "/jobs/v2/query"
	now := time.Now()
	good := h.token(now.Add(time.Hour))
	sig := func(tok string) string { return strings.SplitN(strings.SplitN(tok, "&sig=", 2)[1], "&", 2)[0] }

	rejected := []struct {
		name, auth string
	}{
		{"no Authorization", ""},
		{"expired", h.token(now.Add(-time.Minute))},
		{"wrong key", bbSASToken(h.host, h.keyName, []byte("not the hub's key"), now.Add(time.Hour).Unix())},
		{"another hub's resource", bbSASToken("other.azure-devices.net", h.keyName, h.key, now.Add(time.Hour).Unix())},
		{"signature over another expiry", strings.Replace(good, "&se=", "&se=1", 1)},
		{"unknown policy", strings.Replace(good, "&skn=iothubowner", "&skn=nobody", 1)},
		{"no signature", strings.Replace(good, "&sig="+sig(good), "", 1)},
		{"garbage", "SharedAccessSignature garbage"},
		{"a bearer token", "Bearer eyJhbGciOiJub25lIn0.e30."},
		{"the key itself", "SharedAccessSignature " + base64.StdEncoding.EncodeToString(h.key)},
	}
	for _, c := range rejected {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(c.auth)})
			// Reference §5, format A: ErrorCode:IotHubUnauthorizedAccess;Unauthorized.
			if e := r.wantError(t, http.StatusUnauthorized, "IotHubUnauthorizedAccess"); e.text != "Unauthorized" {
				t.Errorf("text %q, want Unauthorized", e.text)
			}
		})
	}
	t.Run("every operation requires it", func(t *testing.T) {
		for _, r := range []bbReq{
			{method: http.MethodPut, path: bbJobPath("bb-x"), body: bbTwinJob("bb-x", "*", nil)},
			{method: http.MethodGet, path: bbJobPath("bb-x")},
			{method: http.MethodPost, path: bbJobPath("bb-x") + "/cancel"},
			{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": "SELECT * FROM devices.jobs"}},
		} {
			r.auth = bbStr("")
			h.do(t, r).wantError(t, http.StatusUnauthorized, "IotHubUnauthorizedAccess")
		}
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-x")}); r.status != http.StatusNotFound && r.status != http.StatusOK {
			t.Errorf("nothing was created by the refused PUT, GET: %d", r.status)
		}
	})

	accepted := []struct {
		name, auth string
	}{
		{"as signed", good},
		// Reference §4: field order is not significant.
		{"fields reordered", "SharedAccessSignature skn=" + h.keyName + "&se=" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) +
			"&sig=" + sig(good) + "&sr=" + url.QueryEscape(h.host)},
		// Reference §4: Python leaves '/' unescaped in sig; a verifier URL-decodes it.
		{"sig with lower-case escapes", "SharedAccessSignature sr=" + url.QueryEscape(h.host) + "&sig=" +
			regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(sig(good), strings.ToLower) +
			"&se=" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + "&skn=" + h.keyName},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			if r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(c.auth)}); r.status != http.StatusOK {
				t.Errorf("status %d, body %s", r.status, r.raw)
			}
		})
	}
	t.Run("sig with '/' left unescaped", func(t *testing.T) {
		// Find a signature containing '/' by trying expiries; then send it raw.
		for se := now.Add(time.Hour).Unix(); se < now.Add(time.Hour).Unix()+200; se++ {
			tok := bbSASToken(h.host, h.keyName, h.key, se)
			if s := sig(tok); strings.Contains(s, "%2F") {
				raw := strings.Replace(tok, s, strings.ReplaceAll(s, "%2F", "/"), 1)
				if r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(raw)}); r.status != http.StatusOK {
					t.Errorf("sig with a raw '/': status %d, body %s", r.status, r.raw)
				}
				return
			}
		}
		t.Fatal("no signature with '/' in 200 expiries")
	})
}

func TestBlackboxRequestValidation(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "3", "--max-active-jobs", "1")
	future := time.Now().Add(time.Hour)

	t.Run("api-version", func(t *testing.T) {
		for _, v := range []string{"2021-04-12", "2020-09-30", "2024-03-31"} {
			if r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", apiVersion: bbStr(v)}); r.status != http.StatusOK {
				t.Errorf("api-version %s: status %d", v, r.status)
			}
		}
		for _, v := range []string{"", "1999-01-01", "2021-04-12x", "latest"} {
			r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", apiVersion: bbStr(v)})
			if e := r.wantError(t, http.StatusBadRequest, "InvalidProtocolVersion"); e.text != "BadRequest" {
				t.Errorf("api-version %q: text %q, want the recorded BadRequest", v, e.text)
			}
		}
	})

	t.Run("bad job type is GenericBadRequest", func(t *testing.T) {
		// azure-docs #29484: the old doc names are refused with ErrorCode:GenericBadRequest;BadRequest.
		for _, typ := range []string{"scheduleDirectRequest", "scheduleTwinUpdate", "scheduleDirectMethod", "export", "bogus"} {
			job := bbTwinJob("bb-type", "*", &future)
			job["type"] = typ
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-type"), body: job})
			if e := r.wantError(t, http.StatusBadRequest, "GenericBadRequest"); e.text != "BadRequest" {
				t.Errorf("type %s: text %q", typ, e.text)
			}
		}
	})

	t.Run("bad queryCondition is ArgumentInvalid", func(t *testing.T) {
		for _, cond := range []string{"deviceId LIKE 'd%'", "SELECT * FROM devices", "deviceId = 'it''s'", "deviceId = ", ""} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-cond"), body: bbTwinJob("bb-cond", cond, &future)})
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
	})

	t.Run("wrong shapes are ArgumentInvalid", func(t *testing.T) {
		noEtag := bbTwinJob("bb-shape", "*", &future)
		noEtag["updateTwin"] = map[string]any{"tags": map[string]any{"a": "b"}}
		bareDesired := bbTwinJob("bb-shape", "*", &future)
		bareDesired["updateTwin"] = map[string]any{"etag": "*", "desired": map[string]any{"a": "b"}}
		timeoutField := bbMethodJob("bb-shape", "*", &future, 600)
		timeoutField["cloudToDeviceMethod"] = map[string]any{"methodName": "reboot", "timeoutInSeconds": 30}
		for name, job := range map[string]map[string]any{"no etag": noEtag, "bare desired": bareDesired, "timeoutInSeconds": timeoutField} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-shape"), body: job})
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", name, r.status)
				continue
			}
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
		if r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-shape"), body: `{"jobId":`}); r.status != http.StatusBadRequest {
			t.Errorf("truncated JSON: status %d", r.status)
		} else {
			r.parseError(t)
		}
	})

	t.Run("twin and method limits are ArgumentInvalid", func(t *testing.T) {
		method := func(timeout, connect any, payload any) map[string]any {
			j := bbMethodJob("bb-limits", "*", &future, 600)
			j["cloudToDeviceMethod"] = map[string]any{"methodName": "m", "payload": payload, "responseTimeoutInSeconds": timeout, "connectTimeoutInSeconds": connect}
			return j
		}
		twin := func(tw map[string]any) map[string]any {
			j := bbTwinJob("bb-limits", "*", &future)
			j["updateTwin"] = tw
			return j
		}
		deep := map[string]any{"v": 1}
		for range 11 {
			deep = map[string]any{"n": deep}
		}
		big := strings.Repeat("x", 129*1024)
		for name, job := range map[string]map[string]any{
			"response timeout 4 s":   method(4, 0, nil),
			"response timeout 301 s": method(301, 0, nil),
			"connect timeout 301 s":  method(30, 301, nil),
			"payload over 128 KB":    method(30, 0, map[string]any{"blob": big}),
			"tag key with a dot":     twin(map[string]any{"etag": "*", "tags": map[string]any{"a.b": "x"}}),
			"desired key with $":     twin(map[string]any{"etag": "*", "properties": map[string]any{"desired": map[string]any{"$x": 1}}}),
			"desired deeper than 10": twin(map[string]any{"etag": "*", "properties": map[string]any{"desired": deep}}),
			"etag other than *":      twin(map[string]any{"etag": "AAAA", "tags": map[string]any{"a": "b"}}),
		} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-limits"), body: job})
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400 ArgumentInvalid", name, r.status)
				continue
			}
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
		// The bounds themselves are accepted (5..300 and 0..300 s, reference §2).
		for i, job := range []map[string]any{method(5, 300, nil), method(300, 0, map[string]any{"k": "v"})} {
			job["jobId"] = fmt.Sprintf("bb-bounds-%d", i)
			h.create(t, job)
			if r := h.cancel(t, job["jobId"].(string)); r.status != http.StatusOK { // --max-active-jobs 1
				t.Fatalf("cancel: %d", r.status)
			}
		}
	})

	t.Run("devices.jobs query other than SELECT * is ArgumentInvalid", func(t *testing.T) {
		for _, q := range []string{"SELECT deviceId FROM devices.jobs", "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'a' OR 1=1", "SELECT COUNT() FROM devices.jobs"} {
			r := h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": q}})
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
	})

	t.Run("active jobs limit is 429 ThrottlingMaxActiveJobCountExceeded", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-active-1", "*", &future))
		r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-active-2"), body: bbTwinJob("bb-active-2", "*", &future)})
		e := r.wantError(t, http.StatusTooManyRequests, "ThrottlingMaxActiveJobCountExceeded")
		t.Logf("the limit's error body is format %s", e.format)
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-active-2")}); r.status == http.StatusOK && r.object(t)["status"] != "unknown" {
			t.Error("the refused job was created anyway")
		}
		if r := h.cancel(t, "bb-active-1"); r.status != http.StatusOK {
			t.Fatalf("cancel: %d", r.status)
		}
		h.create(t, bbTwinJob("bb-active-2", "*", &future)) // a cancelled job no longer counts
	})

	t.Run("unknown routes", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v3/nothing"})
		if r.status != http.StatusNotFound {
			t.Errorf("unknown path: %d", r.status)
		}
		r.parseError(t)
		r = h.do(t, bbReq{method: http.MethodDelete, path: bbJobPath("bb-active-2")})
		if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
			t.Errorf("DELETE /jobs/v2/{id}: %d", r.status)
		}
	})
}

func TestBlackboxJobsThrottle(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2", "--jobs-ops-per-minute", "3")
	var throttled *bbResp
	for range 10 {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query"})
		if r.status == http.StatusTooManyRequests {
			throttled = &r
			break
		}
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	if throttled == nil {
		t.Fatal("10 jobs operations with a budget of 3 per minute were never throttled")
	}
	throttled.wantError(t, http.StatusTooManyRequests, "ThrottlingException")
	// Retry-After is [UNVERIFIED] on the real hub; when sent it must be seconds or an HTTP date.
	if ra := throttled.header.Get("Retry-After"); ra != "" {
		if _, err := strconv.Atoi(ra); err != nil {
			if _, err := http.ParseTime(ra); err != nil {
				t.Errorf("Retry-After %q is neither seconds nor an HTTP date", ra)
			}
		}
	}
	// devices.jobs queries are not jobs operations (reference §6 lists them apart).
	if r := h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": "SELECT * FROM devices.jobs"}}); r.status != http.StatusOK {
		t.Errorf("a devices.jobs query while jobs operations are throttled: %d", r.status)
	}
}

// TestBlackboxLengthRequired sends what a client that forgets
// Content-Length sends (reference §0.11): a POST or PUT with neither
// Content-Length nor a chunked body. net/http always adds the header, so
// this goes over a raw connection.
func TestBlackboxLengthRequired(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2")
	for _, method := range []string{"POST", "PUT"} {
		t.Run(method, func(t *testing.T) {
			path := bbJobPath("bb-len")
			if method == "POST" {
				path += "/cancel"
			}
			conn, err := net.DialTimeout("tcp", strings.TrimPrefix(h.base, "http://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "%s %s?api-version=2021-04-12 HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nConnection: close\r\n\r\n",
				method, path, h.host, h.token(time.Now().Add(time.Hour)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusLengthRequired {
				t.Fatalf("%s without Content-Length: status %d, want 411; body %s", method, resp.StatusCode, body)
			}
			// The reference's 411 is HTTP.sys's own HTML page, not a hub JSON error.
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("411 Content-Type %q, want HTML", ct)
			}
			if resp.Header.Get("x-ms-request-id") == "" {
				t.Error("411 has no x-ms-request-id (issue 2: on every response)")
			}
			if err := json.Unmarshal(body, new(any)); err == nil {
				t.Errorf("411 body is JSON; HTTP.sys answers HTML: %s", body)
			}
		})
	}
	// And the same request with Content-Length: 0 is served: the 411 is about the header, not the cancel.
	if r := h.cancel(t, "bb-len"); r.status != http.StatusNotFound {
		t.Errorf("cancel with Content-Length: 0 of an unknown job: %d, want 404", r.status)
	}
}
