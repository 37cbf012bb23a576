package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

func TestCancelScheduledJob(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)

	page := p.get(op, "/hubs/prod/jobs/job-1").doc(t)
	if page.Find("#cancel-open").Length() != 1 || page.Find("#cancel-dialog #cancel-form").Length() != 1 {
		t.Fatal("an operator on a scheduled job is not offered the cancel dialog")
	}
	facts := page.Find("#cancel-facts").Text()
	for _, want := range []string{"job-1", "Direct method", "reboot", "40", "prod"} {
		if !strings.Contains(facts, want) {
			t.Errorf("the dialog does not name %q: %q", want, facts)
		}
	}
	if page.Find("#cancel-confirm").Length() != 0 {
		t.Error("a 40-device job asks to type its id")
	}

	r := p.cancel(op, "prod", "job-1", url.Values{"reason": {"wrong firmware\nticket OPS-42"}}, "HX-Request", "true")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("cancel = %d\n%s", r.StatusCode, r.body)
	}
	doc := r.doc(t)
	if strings.Contains(r.body, "<html") || doc.Find("article#job").Length() != 1 {
		t.Error("an htmx cancel must answer with the #job fragment")
	}
	if got, _ := doc.Find("#job-status").Attr("data-status"); got != "cancelled" {
		t.Errorf("rendered status %q, want cancelled", got)
	}
	if !strings.Contains(doc.Find("#cancel-result").Text(), "Job cancelled") {
		t.Errorf("no success banner: %q", doc.Find("#cancel-result").Text())
	}
	if doc.Find("#cancel-open").Length() != 0 {
		t.Error("a cancelled job still offers Cancel")
	}
	if doc.Find(`#job-history [data-action="job.cancel.succeeded"]`).Length() != 1 {
		t.Error("the job's history does not show the cancel")
	}
	if got := p.hubJob("prod", "job-1").Status; got != hub.StatusCancelled {
		t.Errorf("hub says %s, want cancelled", got)
	}

	es := p.entries(audit.Filter{Hub: "prod", JobID: "job-1"})
	if got := strings.Join(actions(es), ","); got != "job.cancel.intent,job.cancel.succeeded" {
		t.Fatalf("audit = %s, want intent then succeeded", got)
	}
	for _, e := range es {
		if e.RequestID == "" || e.RequestID != es[0].RequestID || !strings.Contains(e.Reason, "ticket OPS-42") ||
			e.Actor.Name != "Otto Operator" || e.ClientIP != "127.0.0.1" || e.RequestID != r.Header.Get("X-Request-Id") {
			t.Errorf("audit entry %+v: want one request id shared with the response, the reason, the actor and the client IP", e)
		}
	}

	// The page itself shows the history afterwards.
	if p.get(op, "/hubs/prod/jobs/job-1").doc(t).Find(`#job-history [data-action="job.cancel.intent"]`).Length() != 1 {
		t.Error("the job page does not list the cancel intent")
	}
	// Operators alert on cancels by outcome.
	if m := p.get(nil, "/metrics").body; !strings.Contains(m, `hubjobs_cancels_total{hub="prod",outcome="succeeded"} 1`) {
		t.Error("/metrics does not count the cancel as succeeded")
	}
}

func TestCancelWithoutHTMXRendersTheFullPage(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	r := p.cancel(p.as(adminU), "prod", "job-1", nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(r.body, "<html") {
		t.Fatalf("form post cancel = %d, want the full page", r.StatusCode)
	}
}

func TestCancelRunningJobIsA409WithTheReason(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")
	op := p.as(operatorU)
	page := p.get(op, "/hubs/prod/jobs/job-run").doc(t)
	if page.Find("#cancel-open").Length()+page.Find("#cancel-dialog").Length() != 0 {
		t.Error("a running job offers Cancel")
	}
	if !strings.Contains(page.Find("#cancel-unavailable").Text(), "running") || page.Find("#planned-stop time").Length() != 1 {
		t.Error("a running job does not say why it cannot be cancelled and when it stops")
	}
	p.sims["prod"].ResetCalls()
	r := p.cancel(op, "prod", "job-run", nil, "HX-Request", "true")
	if r.StatusCode != http.StatusConflict || !strings.Contains(r.body, "stops on its own by 2026-03-10 13:00:00 UTC") {
		t.Fatalf("cancel running = %d, want 409 naming the planned stop\n%s", r.StatusCode, r.body)
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob); n != 0 {
		t.Errorf("%d hub cancel calls for a job known to be running, want 0", n)
	}
	if got := strings.Join(actions(p.entries(audit.Filter{JobID: "job-run"})), ","); got != "job.cancel.intent,job.cancel.refused" {
		t.Errorf("audit = %s", got)
	}
}

func TestCancelRefusedByTheHubShowsItsCodeAndTrackingID(t *testing.T) {
	// A long TTL keeps the portal's copy "scheduled" after the job started,
	// so the cancel reaches the hub and the hub refuses it.
	p := newPortal(t, portalOptions{budgetTTL: time.Hour})
	p.createJob("prod", "job-1", "*", t0.Add(10*time.Minute))
	op := p.as(operatorU)
	p.get(op, "/hubs/prod/jobs/job-1")
	p.clock.Advance(11 * time.Minute)
	r := p.cancel(op, "prod", "job-1", nil, "HX-Request", "true")
	if r.StatusCode != http.StatusConflict {
		t.Fatalf("cancel = %d, want 409\n%s", r.StatusCode, r.body)
	}
	d := r.doc(t)
	if !strings.Contains(d.Find("#error-hub").Text(), "OperationNotAllowedInCurrentState") || !strings.Contains(d.Find("#error-hub").Text(), "tracking id") {
		t.Errorf("the refusal does not give the hub's code and tracking id: %q", d.Find("#error-hub").Text())
	}
	if p.sims["prod"].Calls(hubsim.OpCancelJob) != 1 {
		t.Error("the cancel did not reach the hub")
	}
	es := p.entries(audit.Filter{JobID: "job-1", Action: audit.JobCancelRefused})
	if len(es) != 1 {
		t.Fatalf("want one refused entry, got %d", len(es))
	}
}

func TestHubRefusalWordsAndIDs(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)
	p.sims["prod"].Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultThrottle, RetryAfter: "7", Times: 5})
	r := p.cancel(op, "prod", "job-1", nil, "HX-Request", "true")
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled cancel = %d Retry-After %q, want 503 with Retry-After\n%s", r.StatusCode, r.Header.Get("Retry-After"), r.body)
	}
	d := r.doc(t)
	if !strings.Contains(d.Find("#error-hub").Text(), "ThrottlingException") || !strings.Contains(d.Find("#error-hub").Text(), "tracking id") {
		t.Errorf("the refusal does not give the hub's code and tracking id: %q", d.Find("#error-hub").Text())
	}
	if d.Find("#request-id").Text() != r.Header.Get("X-Request-Id") {
		t.Error("the error does not show the request id")
	}
	es := p.entries(audit.Filter{JobID: "job-1", Action: audit.JobCancelRefused})
	if len(es) != 1 || es[0].HubStatus != 429 || es[0].HubErrorCode != "ThrottlingException" || es[0].HubTrackingID == "" {
		t.Errorf("refusal audit = %+v, want hub status, code and tracking id", es)
	}
}

func TestForgedCancelByAViewer(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	viewer := p.as(viewerU)
	if p.get(viewer, "/hubs/prod/jobs/job-1").doc(t).Find("#cancel-open, #cancel-dialog, #cancel-form").Length() != 0 {
		t.Error("a viewer sees the cancel control")
	}
	p.sims["prod"].ResetCalls()
	// A viewer has a valid session and CSRF token: only the role stops them.
	r := p.cancel(viewer, "prod", "job-1", nil)
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer cancel = %d, want 403", r.StatusCode)
	}
	if p.sims["prod"].Calls(hubsim.OpCancelJob)+p.sims["prod"].Calls(hubsim.OpGetJob) != 0 {
		t.Error("a refused cancel reached the hub")
	}
	es := p.entries(audit.Filter{Action: audit.AuthzDenied, JobID: "job-1"})
	if len(es) != 1 || es[0].Actor.Name != "Vera Viewer" || es[0].Hub != "prod" {
		t.Fatalf("want one authz.denied entry for the viewer on prod/job-1, got %+v", es)
	}
	// Without a CSRF token it is still the role check that answers (role first).
	r = p.cancel(viewer, "prod", "job-1", url.Values{"_csrf": {"x"}})
	if r.StatusCode != http.StatusForbidden || len(p.entries(audit.Filter{Action: audit.CSRFBlocked})) != 0 {
		t.Errorf("role must be checked before CSRF: %d", r.StatusCode)
	}
}

func TestHubOperatorsNarrowWhoMayCancel(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("eu", "job-eu")
	op, euOp := p.as(operatorU), p.as(euOpU)
	if p.get(op, "/hubs/eu/jobs/job-eu").doc(t).Find("#cancel-open").Length() != 0 {
		t.Error("an operator without the hub's claim sees Cancel")
	}
	if r := p.cancel(op, "eu", "job-eu", nil); r.StatusCode != http.StatusForbidden {
		t.Errorf("operator without the hub's claim: %d, want 403", r.StatusCode)
	}
	if p.get(euOp, "/hubs/eu/jobs/job-eu").doc(t).Find("#cancel-open").Length() != 1 {
		t.Error("the hub's operator is not offered Cancel")
	}
	if r := p.cancel(euOp, "eu", "job-eu", nil); r.StatusCode != http.StatusOK {
		t.Errorf("hub operator cancel: %d, want 200", r.StatusCode)
	}
}

func TestCancelCSRF(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op, other := p.as(operatorU), p.as(adminU)
	p.sims["prod"].ResetCalls()
	for name, tc := range map[string]struct {
		form   url.Values
		header []string
	}{
		"no token":             {url.Values{"_csrf": {""}}, nil},
		"another user's token": {url.Values{"_csrf": {other.csrf}}, nil},
		"cross-site":           {nil, []string{"Sec-Fetch-Site", "cross-site"}},
		"foreign origin":       {nil, []string{"Origin", "https://portal.example.com.evil.com"}},
	} {
		t.Run(name, func(t *testing.T) {
			form := tc.form
			if form == nil {
				form = url.Values{}
			}
			if _, set := form["_csrf"]; set && form.Get("_csrf") == "" {
				form.Set("_csrf", "")
				op := *op
				op.csrf = ""
				r := p.cancel(&op, "prod", "job-1", form, tc.header...)
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("= %d, want 403", r.StatusCode)
				}
				return
			}
			if r := p.cancel(op, "prod", "job-1", form, tc.header...); r.StatusCode != http.StatusForbidden {
				t.Fatalf("= %d, want 403", r.StatusCode)
			}
		})
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob) + p.sims["prod"].Calls(hubsim.OpGetJob); n != 0 {
		t.Errorf("%d hub calls after CSRF refusals, want 0", n)
	}
	if len(p.entries(audit.Filter{Action: audit.CSRFBlocked})) != 4 {
		t.Error("CSRF refusals were not all audited")
	}
	if len(p.entries(audit.Filter{Action: audit.JobCancelIntent})) != 0 {
		t.Error("a CSRF refusal recorded a cancel intent")
	}
}

func TestCancelValidatesBeforeAnyHubCall(t *testing.T) {
	p := newPortal(t, portalOptions{})
	op := p.as(operatorU)
	p.sims["prod"].ResetCalls()
	for _, tc := range []struct {
		hub, id string
		form    url.Values
		want    int
	}{
		{"prod", "a%252Fb", nil, 400},
		{"prod", "..%2F..%2Fdevices", nil, 400},
		{"prod", strings.Repeat("x", 129), nil, 400},
		{"prod", "%E2%80%AEevil", nil, 400},
		{"nope", "job-1", nil, 404},
		{"PROD", "job-1", nil, 400},
		{"prod", "job-1", url.Values{"id": {"job-2"}}, 400},
		{"prod", "job-1", url.Values{"reason": {strings.Repeat("é", 501)}}, 400},
		{"prod", "job-1", url.Values{"reason": {"bell\x07"}}, 400},
	} {
		r := p.cancel(op, tc.hub, tc.id, tc.form)
		if r.StatusCode != tc.want {
			t.Errorf("cancel %s/%s %v = %d, want %d", tc.hub, tc.id, tc.form, r.StatusCode, tc.want)
		}
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob) + p.sims["prod"].Calls(hubsim.OpGetJob); n != 0 {
		t.Errorf("%d hub calls for invalid cancels, want 0", n)
	}
	if n := len(p.entries(audit.Filter{Action: audit.JobCancelIntent})); n != 0 {
		t.Errorf("%d intents recorded for invalid cancels", n)
	}
}

func TestDoubleCancelMakesOneHubCall(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op, admin := p.as(operatorU), p.as(adminU)
	p.sims["prod"].ResetCalls()
	first := p.cancel(op, "prod", "job-1", nil, "HX-Request", "true")
	second := p.cancel(admin, "prod", "job-1", nil, "HX-Request", "true")
	if first.StatusCode != 200 || second.StatusCode != 200 {
		t.Fatalf("statuses %d, %d", first.StatusCode, second.StatusCode)
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob); n != 1 {
		t.Errorf("%d hub cancel calls, want 1", n)
	}
	banner := second.doc(t).Find("#cancel-result").Text()
	if !strings.Contains(banner, "already cancelled") || !strings.Contains(banner, "Otto Operator") {
		t.Errorf("the second cancel is not told who cancelled first: %q", banner)
	}
	if got := strings.Join(actions(p.entries(audit.Filter{JobID: "job-1"})), ","); got !=
		"job.cancel.intent,job.cancel.succeeded,job.cancel.intent,job.cancel.succeeded" {
		t.Errorf("audit = %s: want a pair per request", got)
	}
}

func TestSimultaneousCancelsCoalesce(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op, admin := p.as(operatorU), p.as(adminU)
	p.get(op, "/hubs/prod/jobs/job-1") // cached as scheduled for both
	p.sims["prod"].ResetCalls()
	p.sims["prod"].Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultLatency, Delay: 300 * time.Millisecond, Times: 1})
	var wg sync.WaitGroup
	res := make([]response, 2)
	for i, u := range []*user{op, admin} {
		wg.Go(func() { res[i] = p.cancel(u, "prod", "job-1", nil, "HX-Request", "true") })
	}
	wg.Wait()
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob); n != 1 {
		t.Errorf("%d hub cancel calls for two simultaneous cancels, want 1", n)
	}
	banners := res[0].doc(t).Find("#cancel-result").Text() + "|" + res[1].doc(t).Find("#cancel-result").Text()
	if !strings.Contains(banners, "Job cancelled") || !strings.Contains(strings.ToLower(banners), "already cancelled") {
		t.Errorf("want one 'cancelled' and one 'already cancelled': %q", banners)
	}
}

func TestCancelNeedsTheAuditTrail(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)
	p.get(op, "/hubs/prod/jobs/job-1")
	p.store.Close() // the audit store is gone
	p.sims["prod"].ResetCalls()
	r := p.cancel(op, "prod", "job-1", nil, "HX-Request", "true")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.body, "audit trail") {
		t.Fatalf("cancel without audit = %d, want 503 naming the audit trail\n%s", r.StatusCode, r.body)
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob) + p.sims["prod"].Calls(hubsim.OpGetJob); n != 0 {
		t.Errorf("%d hub calls without an audit trail, want 0", n)
	}
	if got := p.hubJob("prod", "job-1").Status; got != hub.StatusScheduled {
		t.Errorf("job is %s, want still scheduled", got)
	}
	// Reading still works, with the history marked unavailable.
	page := p.get(op, "/hubs/prod/jobs/job-1")
	if page.StatusCode != 200 || page.doc(t).Find("#job-history-unavailable").Length() != 1 {
		t.Errorf("job page without audit = %d, want 200 with history unavailable", page.StatusCode)
	}
	if r := p.get(op, "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the audit store down = %d, want 503", r.StatusCode)
	}
}

func TestLargeJobsNeedTheTypedID(t *testing.T) {
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "big", devices: 1200}}})
	p.scheduledJob("big", "job-big")
	op := p.as(operatorU)
	page := p.get(op, "/hubs/big/jobs/job-big").doc(t)
	if v, _ := page.Find("#cancel-confirm").Attr("data-must-equal"); v != "job-big" {
		t.Fatal("a 1,200-device job does not ask to type its id")
	}
	if r := p.cancel(op, "big", "job-big", url.Values{"confirm": {"job-bi"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("wrong confirmation = %d, want 400", r.StatusCode)
	}
	if p.sims["big"].Calls(hubsim.OpCancelJob) != 0 {
		t.Error("a cancel without confirmation reached the hub")
	}
	if r := p.cancel(op, "big", "job-big", url.Values{"confirm": {"job-big"}}); r.StatusCode != http.StatusOK {
		t.Errorf("confirmed cancel = %d, want 200", r.StatusCode)
	}
}
