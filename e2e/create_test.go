package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/chromedp/chromedp"

	"github.com/hubjobs/hubjobs/hub"
)

// fleet is the registry the create and rollout tests run the simulator
// with: 24 devices whose tags make each condition's count known in
// advance (fleetCount).
func fleet() []simDevice {
	var devices []simDevice
	for i := 1; i <= 24; i++ {
		site, ring := "berlin", "broad"
		switch {
		case i <= 8:
			site = "paris"
		case i <= 18:
			site = "lyon"
		}
		if i >= 19 && i <= 20 {
			ring = "canary"
		}
		devices = append(devices, simDevice{DeviceID: fmt.Sprintf("dev-%02d", i), Tags: map[string]string{"site": site, "ring": ring}})
	}
	return devices
}

// fleetCount counts the fleet's devices whose tag has the value, the
// number the hub's COUNT must give for `tags.<tag> = '<value>'`.
func fleetCount(tag, value string) int {
	n := 0
	for _, d := range fleet() {
		if d.Tags[tag] == value {
			n++
		}
	}
	return n
}

// rolloutPath is a rollout's page on the test hub.
func rolloutPath(rid string) string { return "/hubs/" + hubName + "/rollouts/" + rid }

// rolloutJobID is the hub job id the engine gives a wave's part
// (rollout/README.md: hj-{rid}-w{wave}-{part}).
func rolloutJobID(rid string, wave, part int) string {
	return fmt.Sprintf("hj-%s-w%d-%d", rid, wave, part)
}

// typeInto replaces the value of a form field by typing, as a person does:
// the field is emptied, then the text is sent as key presses, so the
// form's keyup trigger (and so the plan) fires as in real use.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel,
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%s).value = ""; undefined`, strconv.Quote(sel))),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
}

// value is the current value of a form field.
func (b *browser) value(sel string) string {
	b.t.Helper()
	return run(b, "read the value of "+sel, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%s).value`, strconv.Quote(sel))))
}

// screenshotOf saves one element as e2e/artifacts/<Test>/<name>.png (the
// plan, say, rather than the whole form). Like screenshot, it never fails
// the test, and retries while htmx is replacing the element.
func (b *browser) screenshotOf(name, sel string) {
	var png []byte
	var err error
	for range 20 {
		if png, err = try(b, chromedp.Screenshot(chromedp.CSS(sel))); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		b.t.Logf("screenshot %s of %s: %v", name, sel, err)
		return
	}
	if err := os.WriteFile(artifactPath(b.t, name+".png"), png, 0o644); err != nil {
		b.t.Logf("save screenshot %s: %v", name, err)
	}
}

// waitPlanDevices waits until the plan fragment has counted want devices.
func (b *browser) waitPlanDevices(want int) {
	b.t.Helper()
	b.waitFor(fmt.Sprintf("the plan to count %d devices", want),
		fmt.Sprintf(`document.querySelector('#plan-body[data-counted="true"][data-devices="%d"]') !== null`, want), stepTimeout)
}

// auditActions are the actions of the audit trail's entries about one job
// (or rollout) id, oldest first, as an auditor reads them on /audit.
func auditActions(t *testing.T, s *serveStack, id string) []string {
	t.Helper()
	p, err := newHTTPUser(t).signIn(s.URL+"/audit?job="+id, dexFields(dexAuditor))
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != 200 {
		t.Fatalf("/audit?job=%s as the auditor: status %d", id, p.Status)
	}
	type entry struct {
		seq    int
		action string
	}
	var entries []entry
	p.Doc.Find("#audit-table tr[data-action]").Each(func(_ int, tr *goquery.Selection) {
		seq, _ := strconv.Atoi(tr.AttrOr("data-seq", ""))
		entries = append(entries, entry{seq, tr.AttrOr("data-action", "")})
	})
	// The page lists newest first; the trail's order is its sequence.
	slices.SortFunc(entries, func(a, b entry) int { return a.seq - b.seq })
	actions := make([]string, len(entries))
	for i, e := range entries {
		actions[i] = e.action
	}
	return actions
}

// TestAuthorCreatesJobFromCopyAndLandsOnRunningJob: an author opens a
// finished job, copies it, points the copy at other devices, watches the
// plan count them, creates it and lands on the new job's page, running,
// linked to its rollout; the audit trail holds the intent before the
// success.
func TestAuthorCreatesJobFromCopyAndLandsOnRunningJob(t *testing.T) {
	// One device a second, 2 s each: the source job (2 devices) is over in
	// ~4 s, the copy (8 devices) runs ~11 s, long enough to be seen running.
	b := newBrowser(t)
	s := startServeStack(t, simOptions{Registry: fleet(), DeviceRate: 1})
	const source = "e2e-source"
	s.Hub.createJob(t, jobSpec{ID: source, Query: "tags.ring = 'canary'"})
	wantSource, wantCopy := fleetCount("ring", "canary"), fleetCount("site", "paris")

	openSignedOut(b, s.URL, s.URL+jobPath(source), dexSignIn(dexAuthor))
	// The hub runs one job at a time (max_active_jobs 1): copy a job that
	// is over, as one does.
	s.Hub.waitJobStatus(t, source, hub.StatusCompleted, 15*time.Second)

	b.navigate(s.URL + jobPath(source))
	b.do("copy the job", chromedp.Click(chromedp.CSS("#copy-job")))
	b.waitURL("the New job form", func(loc string) bool { return strings.Contains(loc, "/rollouts/new?") })
	if got := b.value("#f-condition"); got != "tags.ring = 'canary'" {
		t.Errorf("the copy's condition is %q, want the source job's", got)
	}
	if got := b.value("#f-method"); got != "reboot" {
		t.Errorf("the copy's method is %q, want reboot", got)
	}
	if got := b.value("#f-max_execution"); got != "1h" {
		t.Errorf("the copy's maximum execution time reads %q, want 1h as the source job had", got)
	}
	if notice := b.text("#form-notice"); !strings.Contains(notice, source) {
		t.Errorf("the form's notice %q does not name the source job", notice)
	}
	b.waitPlanDevices(wantSource)

	b.typeInto("#f-condition", "tags.site = 'paris'")
	b.waitPlanDevices(wantCopy)
	if got := b.text("#plan-devices"); !strings.Contains(got, strconv.Itoa(wantCopy)+" devices") {
		t.Errorf("the plan says %q, want %d devices", got, wantCopy)
	}
	b.screenshotOf("plan", "#plan-section")
	b.screenshot("copy-form")

	rid, _ := b.attr(`#rollout-form input[name="rid"]`, "value")
	if rid == "" {
		t.Fatal("the form carries no rollout id")
	}
	id := rolloutJobID(rid, 1, 1)
	b.do("create", chromedp.Click(chromedp.CSS("#create-submit")))
	b.waitLocation(s.URL + jobPath(id))

	if got := b.text("#job-id"); got != id {
		t.Errorf("landed on a page showing job %q, want %q", got, id)
	}
	b.waitFor("the job to show running", `document.querySelector('#job-status[data-status="running"]') !== null`, pollInterval+stepTimeout)
	if href, _ := b.attr("#job-rollout a", "href"); href != rolloutPath(rid) {
		t.Errorf("the job's rollout link goes to %q, want %q", href, rolloutPath(rid))
	}
	b.screenshot("created-job")

	job, err := s.Hub.Client.GetJob(testContext(t, 5*time.Second), id)
	if err != nil {
		t.Fatalf("the hub has no job %s: %v", id, err)
	}
	if job.QueryCondition != "tags.site = 'paris'" || job.CloudToDeviceMethod == nil || job.CloudToDeviceMethod.MethodName != "reboot" {
		t.Errorf("the hub's job targets %q with %+v, want the copied reboot on tags.site = 'paris'", job.QueryCondition, job.CloudToDeviceMethod)
	}

	actions := auditActions(t, s, id)
	intent, succeeded := slices.Index(actions, "job.create.intent"), slices.Index(actions, "job.create.succeeded")
	if intent < 0 || succeeded < 0 || intent > succeeded {
		t.Errorf("audit entries for %s: %q, want job.create.intent, then job.create.succeeded", id, actions)
	}
}
