package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/views"
)

var nonceAttr = regexp.MustCompile(`nonce="([^"]+)"`)

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	v := p.as(viewerU)
	nonces := map[string]bool{}
	for _, path := range []string{"/hubs/prod/jobs/job-1", "/hubs/prod/jobs/nope", "/no/such/page", "/static/app.css", "/healthz", "/auth/login"} {
		r := p.get(v, path)
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		m := regexp.MustCompile(`script-src 'self' 'nonce-([^']+)'`).FindStringSubmatch(csp)
		if m == nil || nonces[m[1]] {
			t.Errorf("%s: CSP %q: want a fresh script nonce", path, csp)
		} else {
			nonces[m[1]] = true
		}
		for _, want := range []string{"default-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "style-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP lacks %s", path, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe-*", path)
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"Referrer-Policy": "same-origin", "Cross-Origin-Opener-Policy": "same-origin"} {
			if h.Get(k) != want {
				t.Errorf("%s: %s = %q, want %q", path, k, h.Get(k), want)
			}
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "HX-Request") {
			t.Errorf("%s: no Vary: HX-Request", path)
		}
		if h.Get("X-Request-Id") == "" {
			t.Errorf("%s: no request id", path)
		}
		if ct := h.Get("Content-Type"); r.StatusCode != http.StatusSeeOther && !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
			t.Errorf("%s: Content-Type %q has no charset", path, ct)
		}
		if strings.HasPrefix(path, "/static/") {
			continue
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, h.Get("Cache-Control"))
		}
		// Scripts on the page carry this response's nonce.
		if sm := nonceAttr.FindStringSubmatch(r.body); sm != nil && sm[1] != m[1] {
			t.Errorf("%s: script nonce %q differs from the CSP's %q", path, sm[1], m[1])
		}
	}
	if h := p.get(v, "/auth/callback").Header; h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("callback Referrer-Policy = %q, want no-referrer", h.Get("Referrer-Policy"))
	}
}

func TestWrongMethodsAre405WithAllow(t *testing.T) {
	p := newPortal(t, portalOptions{})
	op := p.as(operatorU)
	for _, path := range []string{"/", "/hubs/prod/jobs/job-1/cancel"} {
		for _, m := range []string{"TRACE", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			r := p.do(op, m, path, nil)
			allow := r.Header.Get("Allow")
			if r.StatusCode != http.StatusMethodNotAllowed || allow == "" || strings.Contains(allow, "OPTIONS") || strings.Contains(allow, m) {
				t.Errorf("%s %s = %d Allow %q, want 405 with the real methods", m, path, r.StatusCode, allow)
			}
			if m == "TRACE" && strings.Contains(r.body, "Cookie") {
				t.Error("TRACE echoed the request")
			}
		}
	}
	if r := p.get(op, "/hubs/prod/jobs/job-1/cancel"); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET cancel = %d, want 405", r.StatusCode)
	}
}

func TestStaticAssets(t *testing.T) {
	p := newPortal(t, portalOptions{})
	page := p.get(p.as(viewerU), "/hubs/prod/jobs").doc(t)
	css, _ := page.Find(`link[rel=stylesheet]`).Attr("href")
	r := p.get(nil, css, "Accept-Encoding", "gzip")
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Cache-Control"), "immutable") || r.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("GET %s = %d %q %q, want immutable gzip", css, r.StatusCode, r.Header.Get("Cache-Control"), r.Header.Get("Content-Encoding"))
	}
	for _, path := range []string{"/static/..%2f..%2fetc/passwd", "/static/%2e%2e/", `/static/..\..\go.mod`, "/static/../go.mod",
		"/static/app.css%00", "/static/", "/static/static.go", "/admin%2fx"} {
		if r := p.get(nil, path); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, r.StatusCode)
		}
	}
}

func TestHealthReadinessAndMetrics(t *testing.T) {
	p := newPortal(t, portalOptions{})
	if r := p.get(nil, "/healthz"); r.StatusCode != 200 {
		t.Errorf("/healthz = %d", r.StatusCode)
	}
	p.sims["prod"].Inject(hubsim.Fault{Kind: hubsim.Fault5xx}) // the hub does not decide readiness
	if r := p.get(nil, "/readyz"); r.StatusCode != 200 {
		t.Errorf("/readyz = %d %s", r.StatusCode, r.body)
	}
	p.get(p.as(viewerU), "/hubs/prod/jobs/job-x")
	m := p.get(nil, "/metrics")
	if !strings.Contains(m.body, `hubjobs_http_requests_total{code="502",method="GET",route="/hubs/:hub/jobs/:id"}`) ||
		!strings.Contains(m.body, "hubjobs_http_request_duration_seconds_bucket") {
		t.Errorf("metrics lack requests by route template:\n%s", m.body)
	}
	p.web.SetDraining()
	if r := p.get(nil, "/readyz"); r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.body, "draining") {
		t.Errorf("/readyz while draining = %d", r.StatusCode)
	}
	if r := p.get(nil, "/healthz"); r.StatusCode != 200 {
		t.Errorf("/healthz while draining = %d", r.StatusCode)
	}
}

func TestBadInputIsA400BeforeAnyHubCall(t *testing.T) {
	p := newPortal(t, portalOptions{})
	v := p.as(viewerU)
	p.sims["prod"].ResetCalls()
	for path, want := range map[string]int{
		"/hubs/PROD/jobs": 400,
		"/hubs/a_b/jobs":  400,
		"/hubs/" + strings.Repeat("a", 33) + "/jobs":              400,
		"/hubs/elsewhere/jobs":                                    404,
		"/hubs/prod/jobs/a%252Fb":                                 400,
		"/hubs/prod/jobs/..%2F..%2Fdevices":                       400,
		"/hubs/prod/jobs/%2e%2e%2f":                               400,
		"/hubs/prod/jobs/a%00b":                                   400,
		"/hubs/prod/jobs/%EF%BC%8Fx":                              400,
		"/hubs/prod/jobs/" + strings.Repeat("x", 129) + "/status": 400,
		"/hubs/prod/jobs?status=finished":                         400,
		"/hubs/prod/jobs?type=export":                             400,
		"/hubs/prod/jobs?q=%3Cscript%3E":                          400,
		"/hubs/prod/jobs?page=%0D%0AX-Evil:1":                     400,
		"/hubs/prod/jobs/job-1/devices?offset=-1":                 400,
	} {
		r := p.get(v, path)
		if r.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, r.StatusCode, want)
		}
		if d := r.doc(t); d.Find("#error-detail").Text() == "" || d.Find("#request-id").Text() == "" {
			t.Errorf("GET %s: the error page has no plain-words detail and request id", path)
		}
	}
	if n := p.sims["prod"].Calls(hubsim.OpGetJob) + p.sims["prod"].Calls(hubsim.OpQueryJobs) + p.sims["prod"].Calls(hubsim.OpQueryDevices); n != 0 {
		t.Errorf("%d hub calls for bad input, want 0", n)
	}
	if r := p.get(v, "/hubs/prod/jobs/unknown-job"); r.StatusCode != http.StatusNotFound || !strings.Contains(r.body, "Job not found") {
		t.Errorf("unknown job = %d, want 404", r.StatusCode)
	}
}

func TestJobPageFullAndFragment(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")
	v := p.as(viewerU)
	full := p.get(v, "/hubs/prod/jobs/job-run")
	d := full.doc(t)
	if d.Find(`meta[name="csrf-token"]`).Length() != 1 || d.Find("#alerts[aria-live]").Length() != 1 || d.Find("a.skip").Length() != 1 {
		t.Error("the full page lacks the CSRF meta, the alert region or the skip link")
	}
	if got, _ := d.Find("#job-status").Attr("data-status"); got != "running" {
		t.Errorf("status %q", got)
	}
	if _, polling := d.Find("#job-status").Attr("hx-get"); !polling {
		t.Error("a running job's status is not polled")
	}
	if d.Find("#progress svg rect").Length() == 0 || !strings.Contains(d.Find("#stat-counts").Text(), "40") {
		t.Error("no progress bar or counts")
	}
	frag := p.get(v, "/hubs/prod/jobs/job-run", "HX-Request", "true")
	if strings.Contains(frag.body, "<html") || !strings.HasPrefix(frag.body, `<article id="job"`) {
		t.Errorf("htmx job page is not the #job fragment: %.80s", frag.body)
	}

	// Live progress: the status fragment follows the hub, and says 286 at the end.
	st := p.get(v, "/hubs/prod/jobs/job-run/status", "HX-Request", "true")
	if st.StatusCode != 200 || !strings.HasPrefix(st.body, `<section id="job-status"`) {
		t.Fatalf("status fragment = %d %.80s", st.StatusCode, st.body)
	}
	p.clock.Advance(20 * time.Second)
	st = p.get(v, "/hubs/prod/jobs/job-run/status", "HX-Request", "true")
	if done, _ := st.doc(t).Find("#progress svg").Attr("data-done"); done == "0" {
		t.Error("progress did not advance with the hub")
	}
	p.clock.Advance(time.Minute)
	st = p.get(v, "/hubs/prod/jobs/job-run/status", "HX-Request", "true")
	if st.StatusCode != 286 {
		t.Errorf("status of a finished job = %d, want 286", st.StatusCode)
	}
	if _, polling := st.doc(t).Find("#job-status").Attr("hx-get"); polling {
		t.Error("a finished job keeps polling")
	}
}

func TestJobListFiltersPagingAndPolling(t *testing.T) {
	p := newPortal(t, portalOptions{})
	for _, id := range []string{"alpha-1", "alpha-2", "beta-1"} {
		p.scheduledJob("prod", id)
	}
	v := p.as(viewerU)
	d := p.get(v, "/hubs/prod/jobs?status=scheduled").doc(t)
	if n := d.Find("tr[data-job-id]").Length(); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
	if _, polling := d.Find("#jobs-table").Attr("hx-get"); !polling {
		t.Error("a list with active jobs does not refresh itself")
	}
	if sel, _ := d.Find(`#f-status option[selected]`).Attr("value"); sel != "scheduled" {
		t.Error("the filter form does not keep the chosen status")
	}
	if d := p.get(v, "/hubs/prod/jobs?status=completed").doc(t); d.Find("#no-jobs").Length() != 1 {
		t.Error("no empty-state message")
	} else if _, polling := d.Find("#jobs-table").Attr("hx-get"); polling {
		t.Error("a list without active jobs keeps polling")
	}
	// An exact id goes straight to the job; a partial one filters.
	if r := p.get(v, "/hubs/prod/jobs?q=beta-1"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/hubs/prod/jobs/beta-1" {
		t.Errorf("exact id search = %d %q", r.StatusCode, r.Header.Get("Location"))
	}
	d = p.get(v, "/hubs/prod/jobs?q=alpha").doc(t)
	if n := d.Find("tr[data-job-id]").Length(); n != 2 || d.Find(".alert.info").Length() != 1 {
		t.Errorf("partial id search: %d rows, want 2 with a notice", n)
	}
	// The hub's continuation token rides in ?page=.
	for i := range 60 {
		p.scheduledJob("eu", "bulk-"+string(rune('a'+i/26))+string(rune('a'+i%26)))
	}
	d = p.get(v, "/hubs/eu/jobs").doc(t)
	next, ok := d.Find("#next-page").Attr("href")
	if !ok || d.Find("tr[data-job-id]").Length() != 50 {
		t.Fatalf("first page: %d rows, next %q", d.Find("tr[data-job-id]").Length(), next)
	}
	d = p.get(v, next).doc(t)
	if n := d.Find("tr[data-job-id]").Length(); n != 10 || d.Find("#next-page").Length() != 0 {
		t.Errorf("second page: %d rows, want the last 10", n)
	}
}

func TestHubFaultsBecomePlainWords(t *testing.T) {
	p := newPortal(t, portalOptions{})
	v := p.as(viewerU)
	for _, tc := range []struct {
		fault  hubsim.Fault
		status int
		words  string
	}{
		{hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.Fault5xx, Status: 503}, 502, "ServiceUnavailable"},
		{hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultHTMLError}, 502, "could not be reached"},
		{hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultThrottle, RetryAfter: "5"}, 503, "ThrottlingException"},
		{hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultHang}, 504, "did not answer in time"},
	} {
		t.Run(tc.fault.Kind.String(), func(t *testing.T) {
			p.sims["prod"].ClearFaults()
			p.sims["prod"].Inject(tc.fault)
			r := p.get(v, "/hubs/prod/jobs/fault-"+tc.fault.Kind.String(), "HX-Request", "true")
			if r.StatusCode != tc.status || !strings.Contains(r.body, tc.words) {
				t.Errorf("= %d, want %d with %q\n%s", r.StatusCode, tc.status, tc.words, r.body)
			}
			if tc.status == 503 && r.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if strings.Contains(r.body, "goroutine") || strings.Contains(r.body, ".go:") {
				t.Error("the error shows a stack trace")
			}
		})
	}
	p.sims["prod"].ClearFaults()
	// The hubs page says which hub fails, in words, and still shows the others.
	p.sims["eu"].Inject(hubsim.Fault{Kind: hubsim.Fault5xx})
	d := p.get(v, "/hubs").doc(t)
	if !strings.Contains(d.Find(`tr[data-hub="eu"]`).Text(), "could not be reached") || !strings.Contains(d.Find(`tr[data-hub="prod"]`).Text(), "Yes") {
		t.Errorf("hubs page: %q", d.Find("#hubs").Text())
	}
}

func TestThrottledWithCachedDataShowsStalePage(t *testing.T) {
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "prod", devices: 40, opsPerMin: 10}}})
	p.runningJob("prod", "job-run")
	v := p.as(viewerU)
	p.get(v, "/hubs/prod/jobs/job-run") // cached
	p.clock.Advance(3 * time.Second)    // TTL over…
	for range 3 {                       // …and the bucket (burst 1) spent
		p.get(v, "/hubs/prod/jobs/job-run/status")
	}
	r := p.get(v, "/hubs/prod/jobs/job-run/status", "HX-Request", "true")
	if r.StatusCode != 200 || r.doc(t).Find(`[data-stale="true"]`).Length() != 1 {
		t.Fatalf("throttled poll = %d, want 200 with the stale marker\n%s", r.StatusCode, r.body)
	}
	if !strings.Contains(r.body, "3 s ago") {
		t.Errorf("the stale marker does not give the age: %s", r.doc(t).Find(`[data-stale]`).Text())
	}
}

func TestArchivedJobFromSnapshot(t *testing.T) {
	p := newPortal(t, portalOptions{})
	body, _ := json.Marshal(hub.Job{JobID: "old-job", Type: hub.TypeScheduleUpdateTwin, Status: hub.StatusCompleted,
		QueryCondition: "tags.site = 'lyon'", CreatedTime: hub.Time{Time: t0.AddDate(0, -2, 0)},
		DeviceJobStatistics: &hub.DeviceJobStatistics{DeviceCount: 10, SucceededCount: 9, FailedCount: 1},
		UpdateTwin:          &hub.Twin{Properties: &hub.TwinProperties{Desired: map[string]any{"logLevel": "debug"}}}})
	if err := p.store.SaveSnapshot(t.Context(), audit.Snapshot{Hub: "prod", JobID: "old-job", Body: body, LastSeen: t0.AddDate(0, -1, -15)}); err != nil {
		t.Fatal(err)
	}
	r := p.get(p.as(operatorU), "/hubs/prod/jobs/old-job")
	d := r.doc(t)
	if r.StatusCode != 200 || !strings.Contains(d.Find("#archived").Text(), "Archived — last seen") {
		t.Fatalf("archived job = %d\n%s", r.StatusCode, r.body)
	}
	if !strings.Contains(d.Find("#twin-desired").Text(), `"logLevel": "debug"`) || d.Find("#cancel-open").Length() != 0 {
		t.Error("the archived page lacks the twin patch or offers Cancel")
	}
	if st := p.get(p.as(viewerU), "/hubs/prod/jobs/old-job/status", "HX-Request", "true"); st.StatusCode != 286 {
		t.Errorf("archived status = %d, want 286", st.StatusCode)
	}
}

func TestJobPageSavesSnapshots(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	p.get(p.as(viewerU), "/hubs/prod/jobs/job-1")
	snap, err := p.store.Snapshot(t.Context(), "prod", "job-1")
	if err != nil || !strings.Contains(string(snap.Body), `"status":"scheduled"`) {
		t.Fatalf("snapshot = %s, %v", snap.Body, err)
	}
}

func TestDevicesFailedFirstAndCSV(t *testing.T) {
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "prod", devices: 80, failures: 0.3}}})
	p.runningJob("prod", "job-run")
	p.clock.Advance(200 * time.Second)
	v := p.as(viewerU)
	d := p.get(v, "/hubs/prod/jobs/job-run/devices", "HX-Request", "true").doc(t)
	rows := d.Find("tr[data-device-id]")
	if rows.Length() != 50 {
		t.Fatalf("%d device rows, want a page of 50", rows.Length())
	}
	statuses := rows.Map(func(_ int, s *goquerySelection) string { v, _ := s.Attr("data-status"); return v })
	seenOther := false
	for _, s := range statuses {
		if s != "failed" {
			seenOther = true
		} else if seenOther {
			t.Fatalf("a failed device after a non-failed one: %v", statuses)
		}
	}
	if statuses[0] != "failed" {
		t.Fatalf("first row is %s, want failed", statuses[0])
	}
	ids, _ := d.Find("#copy-failed").Attr("data-copy")
	if ids == "" || d.Find("#devices-next").Length() != 1 {
		t.Error("no copy-failed-ids button or next page")
	}
	r := p.get(v, "/hubs/prod/jobs/job-run/devices.csv")
	if r.StatusCode != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("csv = %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 81 || recs[0][0] != "device_id" {
		t.Fatalf("csv: %d records, %v", len(recs), err)
	}
}

func TestAuditPageAndExport(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	p.cancel(p.as(operatorU), "prod", "job-1", nil)
	a := p.as(auditorU)
	d := p.get(a, "/audit?job=job-1&action=job.cancel.succeeded").doc(t)
	if n := d.Find(`#audit-table tr[data-action="job.cancel.succeeded"]`).Length(); n != 1 {
		t.Errorf("%d filtered rows, want 1", n)
	}
	for _, bad := range []string{"/audit?action=rm-rf", "/audit?since=yesterday", "/audit?before=-3"} {
		if r := p.get(a, bad); r.StatusCode != 400 {
			t.Errorf("GET %s = %d, want 400", bad, r.StatusCode)
		}
	}
	r := p.get(a, "/audit.csv?hub=prod")
	recs, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
	if err != nil || len(recs) != 3 || strings.Join(recs[0], ",") != "seq,time,action,result,actor_iss,actor_sub,actor_name,actor_email,actor_roles,client_ip,user_agent,request_id,hub,job_id,reason,hub_status,hub_error_code,hub_tracking_id,prev_hash,hash" {
		t.Fatalf("audit csv: %v %v", recs, err)
	}
}

// A device export outlives the server's write timeout as long as it makes
// progress: IoT Hub allows only a few device queries a minute, so a large
// export takes minutes, and cutting it at the timeout loses the file.
func TestDevicesCSVOutlivesTheWriteTimeoutWhileItProgresses(t *testing.T) {
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "prod", devices: 250}}})
	p.runningJob("prod", "job-big")
	p.clock.Advance(time.Hour)
	// The simulator pages devices.jobs by 100: three slow pages take longer
	// than the server's whole write timeout.
	p.sims["prod"].Inject(hubsim.Fault{Op: hubsim.OpQueryDevices, Kind: hubsim.FaultLatency, Delay: 250 * time.Millisecond})
	srv := httptest.NewUnstartedServer(p.web.Handler())
	srv.Config.WriteTimeout = 400 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/hubs/prod/jobs/job-big/devices.csv", nil)
	req.AddCookie(p.as(viewerU).cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	recs, err := csv.NewReader(resp.Body).ReadAll()
	if err != nil || len(recs) != 251 {
		t.Fatalf("csv cut short: %d records (want a header and 250 devices), %v", len(recs), err)
	}
}

// A sign-in that expired is a page with a real "Sign in" button, not a URL
// printed in the text.
func TestExpiredSignInOffersASignInButton(t *testing.T) {
	p := newPortal(t, portalOptions{})
	r := p.get(nil, "/auth/callback?state=abc&code=xyz")
	d := r.doc(t)
	if href, _ := d.Find("#sign-in").Attr("href"); r.StatusCode/100 != 4 || href != "/auth/login" {
		t.Fatalf("callback without a sign-in in progress = %d with sign-in link %q, want a 4xx page and /auth/login", r.StatusCode, href)
	}
	if strings.Contains(d.Find("#error-detail").Text(), "/auth/login") {
		t.Errorf("the login URL is printed in the text: %q", d.Find("#error-detail").Text())
	}
}

// /hubs lists the active jobs of every hub in one table, made from the job
// pages it already reads for the counts: running first, then scheduled by
// start time; finished jobs are not listed, a hub that cannot be read is
// named, and the section refreshes itself over htmx until nothing is active.
func TestHubsListsActiveJobsAcrossHubs(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("eu", "done-eu")
	p.clock.Advance(2 * time.Minute) // done-eu completes
	p.scheduledJob("eu", "cancelled-eu")
	if _, err := p.direct["eu"].CancelJob(t.Context(), "cancelled-eu"); err != nil {
		t.Fatal(err)
	}
	started := p.clock.Now()
	p.runningJob("prod", "run-prod")
	p.createJob("prod", "sched-prod", "*", started.Add(2*time.Hour))
	p.createJob("eu", "sched-eu", "*", started.Add(time.Hour))
	// Another tool can give a job an id the portal would never accept; the
	// list still shows it, inert, behind an escaped link.
	const hostileID = `a"b<i>c'&d`
	createJobWithRawID(t, p, "prod", hostileID)
	v := p.as(viewerU)

	p.sims["eu"].Inject(hubsim.Fault{Kind: hubsim.Fault5xx})
	d := p.get(v, "/hubs").doc(t)
	if !strings.Contains(d.Find(`#active-jobs [data-unreadable-hub="eu"]`).Text(), "missing from this list") {
		t.Errorf("the unreadable hub is not named: %q", d.Find("#active-jobs").Text())
	}
	if n, m := d.Find(`tr[data-job-hub="eu"]`).Length(), d.Find(`tr[data-job-hub="prod"]`).Length(); n != 0 || m != 3 {
		t.Errorf("with eu failing: %d eu rows, %d prod rows; want 0 and 3", n, m)
	}
	p.sims["eu"].ClearFaults()

	p.clock.Advance(3 * time.Second) // past the budget's TTL: every hub is asked again
	for _, sim := range p.sims {
		sim.ResetCalls()
	}
	r := p.get(v, "/hubs")
	d = r.doc(t)
	for name, sim := range p.sims {
		if q, g, dv := sim.Calls(hubsim.OpQueryJobs), sim.Calls(hubsim.OpGetJob), sim.Calls(hubsim.OpQueryDevices); q != 1 || g+dv != 0 {
			t.Errorf("%s: %d job queries, %d job reads, %d device queries for one /hubs load; want 1, 0, 0", name, q, g, dv)
		}
	}
	var got []string
	d.Find("#active-list tr[data-job-id]").Each(func(_ int, s *goquery.Selection) {
		h, _ := s.Attr("data-job-hub")
		id, _ := s.Attr("data-job-id")
		got = append(got, h+"/"+id)
	})
	if want := []string{"prod/" + hostileID, "prod/run-prod", "eu/sched-eu", "prod/sched-prod"}; !slices.Equal(got, want) {
		t.Errorf("active jobs %q, want %q (running first, then scheduled by start; nothing finished)", got, want)
	}
	if d.Find("#active-jobs i").Length() != 0 {
		t.Error("a job id became markup")
	}
	if href, _ := d.Find(`tr[data-job-id="` + strings.ReplaceAll(hostileID, `"`, `\"`) + `"] td.job-cell a`).Attr("href"); href != views.JobURL("prod", hostileID) || !strings.Contains(href, "%22b%3Ci%3Ec%27") {
		t.Errorf("hostile id link %q, want one escaped path segment %q", href, views.JobURL("prod", hostileID))
	}
	run := d.Find(`tr[data-job-id="run-prod"]`)
	if stop, _ := run.Find("td").Last().Find("time").Attr("datetime"); stop != started.Add(time.Hour).Format(time.RFC3339) {
		t.Errorf("run-prod stops by %q, want start + max execution time %s", stop, started.Add(time.Hour).Format(time.RFC3339))
	}
	if !strings.Contains(run.Text(), "reboot") || run.Find(`.badge[data-status="running"]`).Length() != 1 || run.Find("svg.bar").Length() != 1 {
		t.Errorf("run-prod row lacks the method name, status badge or progress bar: %q", run.Text())
	}
	if d.Find(`tr[data-job-id="sched-eu"] time`).Length() != 1 {
		t.Error("a scheduled job shows a stop time (only running jobs have one)")
	}
	if hx, _ := d.Find("#active-jobs").Attr("hx-get"); hx != "/hubs" {
		t.Errorf("the section polls %q, want /hubs", hx)
	}

	p.clock.Advance(3 * time.Second)
	frag := p.get(v, "/hubs", "HX-Request", "true")
	if frag.StatusCode != http.StatusOK || !strings.HasPrefix(frag.body, `<section id="active-jobs"`) || strings.Contains(frag.body, "<html") {
		t.Fatalf("htmx /hubs = %d %.80s, want the #active-jobs fragment", frag.StatusCode, frag.body)
	}
	if !strings.Contains(frag.Header.Get("Vary"), "HX-Request") || !strings.Contains(frag.Header.Get("Content-Security-Policy"), "script-src 'self' 'nonce-") {
		t.Errorf("fragment headers: Vary %q, CSP %q", frag.Header.Get("Vary"), frag.Header.Get("Content-Security-Policy"))
	}

	for hubName, id := range map[string]string{"prod": "sched-prod", "eu": "sched-eu"} {
		if _, err := p.direct[hubName].CancelJob(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	p.clock.Advance(2 * time.Minute) // the running jobs complete
	frag = p.get(v, "/hubs", "HX-Request", "true")
	fd := frag.doc(t)
	if frag.StatusCode != 286 || !strings.Contains(fd.Find("#no-active-jobs").Text(), "on any hub") {
		t.Errorf("nothing active: %d %q, want 286 and the one-sentence empty state", frag.StatusCode, fd.Find("#active-jobs").Text())
	}
	if _, polling := fd.Find("#active-jobs").Attr("hx-get"); polling {
		t.Error("the section keeps polling with nothing active")
	}
}

// createJobWithRawID puts a running direct-method job straight into the
// simulator, past the hub client's id check, as another tool could.
func createJobWithRawID(t *testing.T, p *portal, hubName, id string) {
	t.Helper()
	sim := p.sims[hubName]
	cs, err := hub.ParseConnectionString(sim.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(cs.SharedAccessKey)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(hub.JobRequest{JobID: id, Type: hub.TypeScheduleDeviceMethod, QueryCondition: "*",
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot"}, StartTime: hub.Time{Time: p.clock.Now()}, MaxExecutionTimeInSeconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "/jobs/v2/"+url.PathEscape(id)+"?api-version=2021-04-12", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("Authorization", hub.SignSAS(sim.Hostname(), hubsim.PolicyName, key, p.clock.Now().Add(time.Hour)))
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("create job %q: %d %s", id, rec.Code, rec.Body)
	}
}
