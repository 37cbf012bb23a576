package web_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/rollout"
)

// plan posts the form to the plan fragment as htmx does (token in the
// header, not the form).
func (p *portal) plan(u *user, form url.Values) response {
	p.t.Helper()
	delete(form, "_csrf")
	// The clock is frozen: let the query budget (each person's share of
	// it) refill as a second of typing would.
	p.clock.Advance(time.Second)
	return p.planNow(u, form)
}

// planNow posts the plan on the clock as it stands.
func (p *portal) planNow(u *user, form url.Values) response {
	p.t.Helper()
	return p.do(u, http.MethodPost, "/hubs/prod/rollouts/plan", strings.NewReader(form.Encode()),
		"Content-Type", "application/x-www-form-urlencoded", "HX-Request", "true", "X-CSRF-Token", u.csrf,
		"Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL)
}

func TestPlanCountsTheKnownFleet(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	cases := []struct {
		name, condition, waves string
		devices                int
		sizes                  string // data-size of each wave
		worst                  string
	}{
		{"every device, one wave", "*", "100%", 12, "12", "all 12 devices receive this"},
		{"canaries", "tags.ring = 'canary'", "", 3, "3", "all 3 devices"},
		{"broad in waves", "tags.ring = 'broad'", "2,50%", 9, "2,3,4", "at most 2 devices receive this"},
		{"quoted id", `deviceId = 'o\'brien(1)'`, "100%", 1, "1", "all 1 device"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := jobForm("planrid")
			form.Set("condition", tc.condition)
			form.Set("waves", tc.waves)
			r := p.plan(a, form)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("plan = %d\n%s", r.StatusCode, r.body)
			}
			doc := r.doc(t)
			if got := doc.Find("#plan-body").AttrOr("data-devices", ""); got != strconv.Itoa(tc.devices) {
				t.Errorf("plan counts %s devices, want %d\n%s", got, tc.devices, r.body)
			}
			var sizes []string
			doc.Find("#plan-waves li").Each(func(_ int, s *goquerySelection) { sizes = append(sizes, s.AttrOr("data-size", "")) })
			if strings.Join(sizes, ",") != tc.sizes {
				t.Errorf("waves %v, want %s", sizes, tc.sizes)
			}
			if n := doc.Find("#plan-sample [data-device-id]").Length(); n != min(5, tc.devices) {
				t.Errorf("%d sample ids, want %d", n, min(5, tc.devices))
			}
			for _, sel := range []string{"#plan-jobs", "#plan-limits", "#plan-eta"} {
				if doc.Find(sel).Length() != 1 {
					t.Errorf("the plan has no %s", sel)
				}
			}
			if got := doc.Find("#plan-worst-case").Text(); !strings.Contains(got, tc.worst) {
				t.Errorf("worst case %q, want %q", got, tc.worst)
			}
			if !strings.Contains(doc.Find("#plan-limits").Text(), "1 active job at a time") {
				t.Errorf("limits %q do not name the hub's one active job", doc.Find("#plan-limits").Text())
			}
		})
	}
	if fake.calls() != 0 || p.sims["prod"].Calls(hubsim.OpCreateJob) != 0 {
		t.Error("the plan created something")
	}
}

func TestPlanExplainsWhatTheHubWouldRefuse(t *testing.T) {
	p, _ := newRolloutPortal(t)
	a := p.as(authorU)
	form := jobForm("planbad")
	form.Set("condition", "tags.ring = = 'x'")
	doc := p.plan(a, form).doc(t)
	if got := doc.Find("#err-condition").Text(); !strings.Contains(got, "IoT Hub refuses this condition") {
		t.Errorf("a syntax error is not explained next to the condition: %q", got)
	}
	if doc.Find(`#err-condition[hx-swap-oob]`).Length() != 1 {
		t.Error("the condition's message is not swapped next to the field")
	}

	form.Set("condition", strings.Repeat("x", rollout.MaxCondition+1))
	form.Set("method", "")
	doc = p.plan(a, form).doc(t)
	if !strings.Contains(doc.Find("#err-condition").Text(), "IoT Hub allows 8,192") || !strings.Contains(doc.Find("#err-method").Text(), "is needed") {
		t.Errorf("a too-long condition or a missing method is not explained: %q / %q", doc.Find("#err-condition").Text(), doc.Find("#err-method").Text())
	}
	if doc.Find(`#err-payload[hx-swap-oob]`).Text() != "" {
		t.Error("a valid field shows a message")
	}
}

func TestPlanSaysWhenTheQueryBudgetIsSpent(t *testing.T) {
	p, _ := newRolloutPortal(t)
	a := p.as(authorU)
	p.sims["prod"].Inject(hubsim.Fault{Op: hubsim.OpQueryDevices, Kind: hubsim.FaultThrottle, RetryAfter: "12", Times: 10})
	form := jobForm("planbusy")
	form.Set("condition", "tags.ring = 'canary'")
	r := p.plan(a, form)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("a throttled count fails the plan: %d", r.StatusCode)
	}
	if got := r.doc(t).Find("#plan-unavailable").Text(); !strings.Contains(got, "query budget is spent") || !strings.Contains(got, "12 s") {
		t.Errorf("plan says %q, want the budget spent and when to retry", got)
	}
}

func TestCopyAndRerunPrefillExactlyTheFailedDevices(t *testing.T) {
	p, _ := newRolloutPortal(t)
	payload := `{"note":"</script><img src=x onerror=alert(1)>"}`
	if _, err := p.direct["prod"].CreateJob(t.Context(), hub.JobRequest{JobID: "job-src", Type: hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "update", Payload: []byte(payload), ResponseTimeoutInSeconds: 45, ConnectTimeoutInSeconds: 10},
		QueryCondition:      "*", MaxExecutionTimeInSeconds: 1800}); err != nil {
		t.Fatal(err)
	}
	p.clock.Advance(time.Hour) // every device answered
	a := p.as(authorU)         // signed in after the wait (sessions idle out)

	copyPage := p.get(a, "/hubs/prod/rollouts/new?from_job=job-src")
	doc := copyPage.doc(t)
	for sel, want := range map[string]string{"#f-method": "update", "#f-response_timeout": "45", "#f-connect_timeout": "10", "#f-max_execution": "30m", "#f-condition": "*"} {
		if got := doc.Find(sel).AttrOr("value", doc.Find(sel).Text()); got != want {
			t.Errorf("copy: %s = %q, want %q", sel, got, want)
		}
	}
	if got := doc.Find("#f-payload").Text(); !strings.Contains(got, "onerror=alert(1)") {
		t.Errorf("copy: payload %q", got)
	}
	if strings.Contains(copyPage.body, "<img src=x") {
		t.Error("the copied payload is live HTML on the form page")
	}

	rerun := p.get(a, "/hubs/prod/rollouts/new?from_job=job-src&devices=failed").doc(t)
	want := `deviceId IN ['c-3','o\'brien(1)']`
	if got := rerun.Find("#f-condition").Text(); got != want {
		t.Errorf("rerun condition %q, want exactly the failed devices %q", got, want)
	}
	// That condition selects exactly those devices on the hub.
	form := jobForm("rerun")
	form.Set("condition", want)
	if got := p.plan(a, form).doc(t).Find("#plan-body").AttrOr("data-devices", ""); got != "2" {
		t.Errorf("the rerun condition counts %s devices on the hub, want 2", got)
	}

	// The job page offers both to an author, not to a viewer.
	job := p.get(a, "/hubs/prod/jobs/job-src").doc(t)
	if job.Find("#copy-job").Length() != 1 || job.Find("#rerun-failed").AttrOr("href", "") != "/hubs/prod/rollouts/new?devices=failed&from_job=job-src" {
		t.Error("the job page does not offer Copy and Rerun on failed devices to an author")
	}
	if v := p.get(p.as(viewerU), "/hubs/prod/jobs/job-src").doc(t); v.Find("#copy-job").Length()+v.Find("#rerun-failed").Length() != 0 {
		t.Error("a viewer is offered Copy")
	}
}

func TestRerunOfAJobWithoutFailuresSaysSo(t *testing.T) {
	p, _ := newRolloutPortal(t)
	p.createJob("prod", "job-ok", "tags.ring = 'canary' AND deviceId != 'c-3'", t0)
	p.clock.Advance(time.Hour)
	a := p.as(authorU)
	doc := p.get(a, "/hubs/prod/rollouts/new?from_job=job-ok&devices=failed").doc(t)
	if !strings.Contains(doc.Find("#form-notice").Text(), "no device failed") || doc.Find("#f-condition").Text() != "" {
		t.Errorf("notice %q, condition %q", doc.Find("#form-notice").Text(), doc.Find("#f-condition").Text())
	}
	if r := p.get(a, "/hubs/prod/rollouts/new?from_job=nope"); r.StatusCode != http.StatusNotFound {
		t.Errorf("copy of an unknown job = %d, want 404", r.StatusCode)
	}
}
