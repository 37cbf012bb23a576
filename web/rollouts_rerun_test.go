package web_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// A rerun of a large job must not read every devices.jobs page: the hub
// pages at 100 rows and a person's query share allows a burst of about
// three, so reading them all answered 503 for any job over ~300 devices.
func TestRerunOfALargeJobPrefillsWithinTheQueryShare(t *testing.T) {
	cases := []struct {
		name string
		hub  hubSpec
		want string // what the notice says about the failed devices it left out
	}{
		// The hub client cannot filter devices.jobs by status, so sparse
		// failures are read page by page until the share runs out.
		{name: "few failed", hub: hubSpec{name: "prod", devices: 500, failures: 0.02}, want: "Only the first 300 of its device results could be read"},
		// Reading stops once the IN-list is full, before the share runs out.
		{name: "long ids, all failed", hub: hubSpec{name: "prod", registry: failingFleet(500, 100)}, want: "more failed devices were left out: their ids do not fit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPortal(t, portalOptions{hubs: []hubSpec{tc.hub}})
			p.createJob("prod", "job-big", "*", t0)
			p.clock.Advance(time.Hour)
			a := p.as(authorU)
			r := p.get(a, "/hubs/prod/rollouts/new?from_job=job-big&devices=failed")
			if r.StatusCode != 200 {
				t.Fatalf("rerun form of a 500-device job = %d, want 200", r.StatusCode)
			}
			doc := r.doc(t)
			cond, notice := doc.Find("#f-condition").Text(), doc.Find("#form-notice").Text()
			if !strings.HasPrefix(cond, "deviceId IN [") || len(cond) > 8192 {
				t.Fatalf("condition %.80q (%d chars), want an IN list within the hub's limit", cond, len(cond))
			}
			if !strings.Contains(notice, tc.want) {
				t.Errorf("notice %q, want it to say %q", notice, tc.want)
			}
		})
	}
}

// failingFleet is n devices with ids of idLen characters that fail every
// job.
func failingFleet(n, idLen int) []hubsim.Device {
	devs := make([]hubsim.Device, n)
	for i := range devs {
		id := fmt.Sprintf("dev-%04d-", i)
		devs[i] = hubsim.Device{DeviceID: id + strings.Repeat("x", idLen-len(id)), Behaviour: hubsim.BehaviourFail}
	}
	return devs
}

// A body that does not parse is refused whole, even though the CSRF check
// found its token before the bad escape: Go's form parser keeps the values
// it read before the error, and the form used to be built from those.
func TestRolloutFormRefusesAnUnparsableBody(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	for _, path := range []string{"/hubs/prod/rollouts", "/hubs/prod/rollouts/plan"} {
		form := jobForm("badbody")
		form.Set("_csrf", a.csrf)
		body := form.Encode() + "&x=%zz"
		r := p.do(a, http.MethodPost, path, strings.NewReader(body),
			"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL)
		if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "The form could not be read") {
			t.Errorf("POST %s with a bad escape = %d, want 400 with the form refused", path, r.StatusCode)
		}
	}
	if fake.calls() != 0 {
		t.Errorf("%d engine creates from an unparsable body, want none", fake.calls())
	}
}

// The plan is asked for only by the fields it depends on, once their value
// changed and typing paused: each plan spends a COUNT and a page of ids
// from the person's small query share, so the reason or the payload must
// not ask for one.
func TestOnlyPlanFieldsAskForANewPlan(t *testing.T) {
	p, _ := newRolloutPortal(t)
	doc := p.get(p.as(authorU), "/hubs/prod/rollouts/new").doc(t)
	if got := doc.Find("#rollout-form").AttrOr("hx-trigger", ""); got != "load" {
		t.Errorf("the form asks for a plan on %q, want only on load", got)
	}
	for id, want := range map[string]string{
		"#f-condition": "input changed delay:800ms", "#f-waves": "input changed delay:800ms", "#f-start_at": "input changed delay:800ms",
		"#f-health_query": "input changed delay:800ms", "#f-scope": "change",
		"#f-reason": "", "#f-payload": "", "#f-method": "", "#f-type": "",
	} {
		field := doc.Find(id)
		if field.Length() != 1 {
			t.Fatalf("no %s on the form", id)
		}
		if got := field.AttrOr("hx-trigger", ""); got != want {
			t.Errorf("%s asks for a plan on %q, want %q", id, got, want)
		}
		if want != "" && field.AttrOr("hx-post", "") != "/hubs/prod/rollouts/plan" {
			t.Errorf("%s posts its plan to %q", id, field.AttrOr("hx-post", ""))
		}
	}
}
