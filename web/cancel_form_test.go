package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// postCancel posts body as the cancel of prod/job-1, with the CSRF token in
// its header so that only the body's own shape is on trial.
func (p *portal) postCancel(u *user, path, contentType, body string) response {
	p.t.Helper()
	return p.do(u, http.MethodPost, path, strings.NewReader(body),
		"Content-Type", contentType, "X-CSRF-Token", u.csrf, "Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL)
}

// The reason and the confirmation come from the form body only: a link
// with ?confirm=… or ?reason=… must not fill them in.
func TestCancelReadsTheFormBodyOnly(t *testing.T) {
	p := newPortal(t, portalOptions{hubs: []hubSpec{{name: "big", devices: 1200}}})
	p.scheduledJob("big", "job-big")
	op := p.as(operatorU)
	r := p.postCancel(op, "/hubs/big/jobs/job-big/cancel?confirm=job-big&reason=from+the+url", "application/x-www-form-urlencoded", "")
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("a confirmation in the query = %d, want 400 (typed id missing)", r.StatusCode)
	}
	if p.sims["big"].Calls(hubsim.OpCancelJob) != 0 {
		t.Error("a confirmation from the URL reached the hub")
	}
	for _, e := range p.entries(audit.Filter{JobID: "job-big"}) {
		if e.Reason != "" {
			t.Errorf("%s recorded the URL's reason %q", e.Action, e.Reason)
		}
	}
	r = p.postCancel(op, "/hubs/big/jobs/job-big/cancel?reason=from+the+url", "application/x-www-form-urlencoded", "confirm=job-big&reason=from+the+body")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("confirmed cancel = %d\n%s", r.StatusCode, r.body)
	}
	es := p.entries(audit.Filter{JobID: "job-big", Action: audit.JobCancelSucceeded})
	if len(es) != 1 || es[0].Reason != "from the body" {
		t.Errorf("succeeded entries %+v, want the body's reason", es)
	}
}

func TestCancelRefusesMalformedBodies(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)
	p.sims["prod"].ResetCalls()
	for name, tc := range map[string]struct{ contentType, body string }{
		"bad percent-encoding": {"application/x-www-form-urlencoded", "reason=%zz"},
		"bad semicolon":        {"application/x-www-form-urlencoded", "reason=a;b"},
		"plain text":           {"text/plain", "reason=x"},
		"JSON":                 {"application/json", `{"reason":"x"}`},
		"no content type":      {"", "reason=x"},
		"multipart":            {"multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"reason\"\r\n\r\nx\r\n--x--\r\n"},
		"oversized":            {"application/x-www-form-urlencoded", "reason=" + strings.Repeat("a", 20<<10)},
		"reason twice":         {"application/x-www-form-urlencoded", "reason=a&reason=b"},
	} {
		t.Run(name, func(t *testing.T) {
			r := p.postCancel(op, "/hubs/prod/jobs/job-1/cancel", tc.contentType, tc.body)
			if r.StatusCode != http.StatusBadRequest {
				t.Errorf("= %d, want 400", r.StatusCode)
			}
			if !strings.Contains(r.body, "<html") && !strings.Contains(r.body, "error") {
				t.Errorf("no error page: %s", r.body)
			}
		})
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob) + p.sims["prod"].Calls(hubsim.OpGetJob); n != 0 {
		t.Errorf("%d hub calls for malformed cancels, want 0", n)
	}
	if n := len(p.entries(audit.Filter{Action: audit.JobCancelIntent})); n != 0 {
		t.Errorf("%d intents recorded for malformed cancels", n)
	}
	if p.hubJob("prod", "job-1").Status != hub.StatusScheduled {
		t.Error("the job changed")
	}
}

// A denied cancel is recorded under the values the per-hub and per-job
// filters use: the path unescaped once and validated, never its raw text.
func TestDeniedCancelRecordsValidatedTargets(t *testing.T) {
	p := newPortal(t, portalOptions{})
	viewer := p.as(viewerU)
	for _, tc := range []struct{ hubSeg, idSeg, hub, id string }{
		{"e%75", "job-1", "eu", "job-1"},
		{"prod", "jo%62-2", "prod", "job-2"},
		{"prod", "a%2Fb", "prod", ""},
		{"PROD", "job-3", "", "job-3"},
		{"pr%00od", "%E2%80%AEevil", "", ""},
	} {
		p.cancel(viewer, tc.hubSeg, tc.idSeg, url.Values{})
		es := p.entries(audit.Filter{Action: audit.AuthzDenied})
		if len(es) == 0 {
			t.Fatalf("%s/%s: no authz.denied entry", tc.hubSeg, tc.idSeg)
		}
		if e := es[len(es)-1]; e.Hub != tc.hub || e.JobID != tc.id {
			t.Errorf("%s/%s recorded as hub %q job %q, want %q %q", tc.hubSeg, tc.idSeg, e.Hub, e.JobID, tc.hub, tc.id)
		}
	}
}
