package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hubjobs/hubjobs/hub"
)

// jobPath is the bookmarkable job page on the test hub.
func jobPath(id string) string { return "/hubs/" + hubName + "/jobs/" + id }

// pollInterval is how often the job page polls its status fragment
// (views.JobStatus: hx-trigger "every 5s"). The tests wait one interval plus a
// margin to see that polling has stopped.
const pollInterval = 5 * time.Second

// TestLiveProgressAdvancesWithoutReloadAndPollingStops watches a short job
// from the job list and its job page: the statistics change in place while
// it runs, it reaches a terminal status without a reload, and from then on
// the page stops asking for /status.
func TestLiveProgressAdvancesWithoutReloadAndPollingStops(t *testing.T) {
	// 12 devices started at 2/s, 2 s of work each: the job runs ~7.5 s,
	// long enough to sign in and still find it running, short enough to
	// finish within one or two polls of the page.
	b := newBrowser(t)
	s := startServeStack(t, simOptions{Devices: 12, DeviceRate: 2})
	const id = "e2e-live"
	s.Hub.createJob(t, jobSpec{ID: id, Query: "*"})

	openSignedOut(b, s.URL, s.URL+"/hubs/"+hubName+"/jobs", dexSignIn(dexViewer))
	b.do("see the job in the list", chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`tr[data-job-id=%q]`, id))))
	b.screenshot("job-list")

	b.navigate(s.URL + jobPath(id))
	if status, _ := b.attr("#job-status", "data-status"); status != "running" {
		t.Fatalf("job page shows status %q right after start, want running (is the job too short?)", status)
	}
	if _, polling := b.attr("#job-status", "hx-get"); !polling {
		t.Fatal("a running job's status section does not poll (no hx-get)")
	}
	// A reload would lose this mark.
	b.do("mark the page", chromedp.Evaluate[chromedp.Void](`window.e2eNoReload = true; undefined`))
	first := b.text("#stat-counts")
	b.screenshot("job-running")

	// Follow the statistics until the job finishes.
	seen := []string{first}
	deadline := time.Now().Add(3 * pollInterval)
	var status string
	for {
		status, _ = b.attr("#job-status", "data-status")
		if counts := b.text("#stat-counts"); counts != seen[len(seen)-1] {
			seen = append(seen, counts)
		}
		if slices.Contains([]string{"completed", "failed"}, status) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job page still shows %q after %s; statistics seen: %q", status, 3*pollInterval, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 2 {
		t.Errorf("statistics never changed on the page (%q) although the job ran to %s", seen, status)
	}
	if !run(b, "check the mark", chromedp.Evaluate[bool](`window.e2eNoReload === true`)) {
		t.Error("the page was reloaded; live progress must be swapped in place")
	}
	if _, polling := b.attr("#job-status", "hx-get"); polling {
		t.Error("a finished job's status section still carries hx-get")
	}
	b.screenshot("job-finished")

	// No /status request after the terminal answer, for over one interval.
	before := b.countRequests(jobPath(id) + "/status")
	if before == 0 {
		t.Fatal("the page never requested /status while the job ran")
	}
	time.Sleep(pollInterval + 500*time.Millisecond)
	if after := b.countRequests(jobPath(id) + "/status"); after != before {
		t.Errorf("the page kept polling after the job finished: %d /status requests, then %d", before, after)
	}
}

// cancelThroughDialog cancels the job shown in the browser the way an
// operator does, and checks what the page shows afterwards.
func cancelThroughDialog(t *testing.T, b *browser, s *serveStack, id string, devices int, wantTypedID bool) {
	t.Helper()
	b.navigate(s.URL + jobPath(id))
	if status, _ := b.attr("#job-status", "data-status"); status != "scheduled" {
		t.Fatalf("job %s shows status %q, want scheduled", id, status)
	}
	b.do("open the cancel dialog",
		chromedp.Click(chromedp.CSS("#cancel-open")),
		chromedp.WaitVisible(chromedp.CSS("#cancel-dialog")),
	)
	facts := b.text("#cancel-facts")
	for _, want := range []string{id, hubName, fmt.Sprint(devices)} {
		if !strings.Contains(facts, want) {
			t.Errorf("cancel dialog facts %q do not mention %q", facts, want)
		}
	}
	reason := "e2e: superseded by " + id + "-v2"
	b.do("give a reason", chromedp.SendKeys(chromedp.CSS("#cancel-reason"), reason))
	if got := b.exists("#cancel-confirm"); got != wantTypedID {
		t.Fatalf("typed-id confirmation present = %v for a job of %d devices, want %v", got, devices, wantTypedID)
	}
	if wantTypedID {
		b.do("type the job id", chromedp.SendKeys(chromedp.CSS("#cancel-confirm"), id))
	}
	b.screenshot("cancel-dialog-" + id)
	b.do("confirm", chromedp.Click(chromedp.CSS("#cancel-submit")))

	b.waitFor("the page to show the job cancelled",
		`document.querySelector('#job-status[data-status="cancelled"]') !== null`, stepTimeout)
	b.do("see the audit entry", chromedp.WaitVisible(chromedp.CSS("#job-history")))
	history := b.text("#job-history")
	if !strings.Contains(history, reason) {
		t.Errorf("job history does not show the reason %q:\n%s", reason, history)
	}
	if !b.exists(`#job-history [data-action="job.cancel.succeeded"]`) {
		t.Errorf("job history has no job.cancel.succeeded entry:\n%s", history)
	}
	if b.exists("#cancel-open") {
		t.Error("a cancelled job still offers Cancel")
	}
	b.screenshot("cancelled-" + id)

	job, err := s.Hub.Client.GetJob(testContext(t, 5*time.Second), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status.Normalized() != hub.StatusCancelled {
		t.Errorf("the hub says job %s is %s, want cancelled", id, job.Status)
	}
}

// TestOperatorCancelsScheduledJobThroughDialog cancels a small scheduled job
// (reason only) and one of 1,000 devices (the job id must be typed).
func TestOperatorCancelsScheduledJobThroughDialog(t *testing.T) {
	b := newBrowser(t)
	s := startServeStack(t, simOptions{Devices: 1000, MaxActiveJobs: 50})
	s.Hub.createJob(t, jobSpec{ID: "e2e-small", Query: "deviceId = 'dev-0001'", StartIn: time.Hour})
	s.Hub.createJob(t, jobSpec{ID: "e2e-fleet", Query: "*", StartIn: time.Hour})

	openSignedOut(b, s.URL, s.URL+"/hubs/"+hubName+"/jobs", dexSignIn(dexOperator))
	b.screenshot("job-list")
	cancelThroughDialog(t, b, s, "e2e-small", 1, false)
	cancelThroughDialog(t, b, s, "e2e-fleet", 1000, true)
}

// TestRunningJobExplainsWhyItCannotBeCancelled: an operator looking at a
// running job gets no Cancel button but the reason and when it stops.
func TestRunningJobExplainsWhyItCannotBeCancelled(t *testing.T) {
	// 1,000 devices at 1/s: running for the whole test.
	b := newBrowser(t)
	s := startServeStack(t, simOptions{Devices: 1000, DeviceRate: 1})
	const id = "e2e-running"
	s.Hub.createJob(t, jobSpec{ID: id, Query: "*"})

	openSignedOut(b, s.URL, s.URL+jobPath(id), dexSignIn(dexOperator))
	if status, _ := b.attr("#job-status", "data-status"); status != "running" {
		t.Fatalf("job shows status %q, want running", status)
	}
	if b.exists("#cancel-open") || b.exists("#cancel-dialog") {
		t.Error("a running job offers Cancel; IoT Hub would refuse it")
	}
	why := b.text("#cancel-unavailable")
	if !strings.Contains(strings.ToLower(why), "running") {
		t.Errorf("the explanation %q does not say the job is running", why)
	}
	if !b.exists("#planned-stop") {
		t.Error("a running job does not say when it stops on its own")
	}
	b.screenshot("running-job")
}

// TestViewerSeesNoCancelControl: a viewer sees a cancellable job without any
// cancel control, and a cancel forged with the viewer's own session and
// CSRF token is refused with 403 and leaves the job alone.
func TestViewerSeesNoCancelControl(t *testing.T) {
	b := newBrowser(t)
	s := startServeStack(t, simOptions{})
	const id = "e2e-viewer"
	s.Hub.createJob(t, jobSpec{ID: id, Query: "*", StartIn: time.Hour})

	openSignedOut(b, s.URL, s.URL+jobPath(id), dexSignIn(dexViewer))
	if status, _ := b.attr("#job-status", "data-status"); status != "scheduled" {
		t.Fatalf("job shows status %q, want scheduled", status)
	}
	for _, sel := range []string{"#cancel-open", "#cancel-dialog", "#cancel-form"} {
		if b.exists(sel) {
			t.Errorf("viewer sees %s", sel)
		}
	}
	b.screenshot("viewer-job-page")

	token, _ := b.attr(`meta[name="csrf-token"]`, "content")
	c := b.cookie(s.URL, sessionCookie)
	if c == nil || token == "" {
		t.Fatalf("no session cookie (%v) or CSRF token (%q) to forge with", c, token)
	}
	form := url.Values{"_csrf": {token}, "reason": {"forged"}}
	req, err := http.NewRequest(http.MethodPost, s.URL+jobPath(id)+"/cancel", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("X-CSRF-Token", token)
	req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer's forged cancel: %s, want 403", resp.Status)
	}
	job, err := s.Hub.Client.GetJob(testContext(t, 5*time.Second), id)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status.Normalized() != hub.StatusScheduled {
		t.Errorf("after the viewer's forged cancel the hub says %s, want scheduled", job.Status)
	}
}
