package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

var (
	authorU   = &user{name: "Ari Author", roles: []auth.Role{auth.RoleAuthor}, claims: []string{"Jobs.Write"}}
	approverU = &user{name: "Abe Approver", roles: []auth.Role{auth.RoleApprover}, claims: []string{"Jobs.Approve"}}
)

// fleet is a known registry: 3 canaries, 9 broad devices, of which two
// fail every job; one id holds a quote and parentheses.
func fleet() []hubsim.Device {
	devs := []hubsim.Device{
		{DeviceID: "c-1", Tags: map[string]any{"ring": "canary"}},
		{DeviceID: "c-2", Tags: map[string]any{"ring": "canary"}},
		{DeviceID: "c-3", Tags: map[string]any{"ring": "canary"}, Behaviour: hubsim.BehaviourFail},
	}
	for _, id := range []string{"b-1", "b-2", "b-3", "b-4", "b-5", "b-6", "b-7", "b-8"} {
		devs = append(devs, hubsim.Device{DeviceID: id, Tags: map[string]any{"ring": "broad"}})
	}
	return append(devs, hubsim.Device{DeviceID: "o'brien(1)", Tags: map[string]any{"ring": "broad"}, Behaviour: hubsim.BehaviourFail})
}

// newRolloutPortal is the portal wired to a stateful fake engine, with hub
// prod (the known fleet, S1-like: one active job) and hub eu, which only
// Jobs.Write.EU may create jobs on.
func newRolloutPortal(t testing.TB, opts ...func(*portalOptions)) (*portal, *fakeRollouts) {
	t.Helper()
	var fake *fakeRollouts
	o := portalOptions{rollouts: lazyFake(&fake), hubs: []hubSpec{
		{name: "prod", registry: fleet(), maxActive: 1},
		{name: "eu", devices: 10, authors: []string{"Jobs.Write.EU"}},
	}}
	for _, opt := range opts {
		opt(&o)
	}
	p := newPortal(t, o)
	fake.now = p.clock.Now
	return p, fake
}

// lazyFake makes the fake before the portal (whose clock it then reads).
func lazyFake(out **fakeRollouts) *fakeRollouts {
	*out = newFakeRollouts(nil)
	return *out
}

// post sends a form as the browser does, with u's token unless the form
// already has a _csrf field.
func (p *portal) post(u *user, path string, form url.Values, header ...string) response {
	p.t.Helper()
	if _, set := form["_csrf"]; !set && u.csrf != "" {
		form.Set("_csrf", u.csrf)
	}
	header = append([]string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL}, header...)
	return p.do(u, http.MethodPost, path, strings.NewReader(form.Encode()), header...)
}

// jobForm is a valid one-wave direct method on every device.
func jobForm(rid string) url.Values {
	return url.Values{"rid": {rid}, "type": {"method"}, "method": {"reboot"}, "payload": {`{"delay":5}`},
		"condition": {"*"}, "waves": {"100%"}, "reason": {"monthly reboot"}}
}

func TestRolloutRoutesByRole(t *testing.T) {
	p, fake := newRolloutPortal(t)
	routes := []struct {
		name   string
		send   func(u *user) response
		wantOK int
	}{
		{"form", func(u *user) response { return p.get(u, "/hubs/prod/rollouts/new") }, http.StatusOK},
		{"plan", func(u *user) response {
			return p.post(u, "/hubs/prod/rollouts/plan", jobForm("rolesplan"), "HX-Request", "true")
		}, http.StatusOK},
		{"create", func(u *user) response { return p.post(u, "/hubs/prod/rollouts", jobForm("rolescreate")) }, http.StatusSeeOther},
	}
	for _, rt := range routes {
		for _, u := range []*user{viewerU, operatorU, approverU, auditorU} {
			t.Run(rt.name+"/"+u.name, func(t *testing.T) {
				before := len(p.entries(audit.Filter{Action: audit.AuthzDenied}))
				r := rt.send(p.as(u))
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("%s as %s = %d, want 403", rt.name, u.name, r.StatusCode)
				}
				denied := p.entries(audit.Filter{Action: audit.AuthzDenied})
				if len(denied) != before+1 || denied[len(denied)-1].Hub != "prod" {
					t.Errorf("want one more authz.denied entry on prod, have %d → %d", before, len(denied))
				}
			})
		}
		t.Run(rt.name+"/author", func(t *testing.T) {
			if r := rt.send(p.as(authorU)); r.StatusCode != rt.wantOK {
				t.Fatalf("%s as author = %d, want %d\n%s", rt.name, r.StatusCode, rt.wantOK, r.body)
			}
		})
	}
	if fake.stored() != 1 {
		t.Errorf("%d rollouts stored, want exactly the author's one", fake.stored())
	}
	// hubs[].authors narrows who creates on a hub.
	if r := p.post(p.as(authorU), "/hubs/eu/rollouts", jobForm("narrowed")); r.StatusCode != http.StatusForbidden {
		t.Errorf("an author without Jobs.Write.EU creates on eu: %d", r.StatusCode)
	}
	euAuthor := &user{name: "Eli EU-Author", roles: []auth.Role{auth.RoleAuthor}, claims: []string{"Jobs.Write", "Jobs.Write.EU"}}
	if r := p.post(p.as(euAuthor), "/hubs/eu/rollouts", jobForm("euok")); r.StatusCode != http.StatusSeeOther {
		t.Errorf("an EU author on eu = %d, want 303", r.StatusCode)
	}
	if _, ok := fake.get("eu", "narrowed"); ok {
		t.Error("a refused create reached the engine")
	}
}

func TestRolloutCreateWithoutCSRFCreatesNothing(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	for name, form := range map[string]url.Values{
		"no token":    func() url.Values { f := jobForm("nocsrf"); f.Set("_csrf", ""); return f }(),
		"wrong token": func() url.Values { f := jobForm("badcsrf"); f.Set("_csrf", p.as(authorU).csrf); return f }(),
	} {
		if r := p.post(a, "/hubs/prod/rollouts", form); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s: create = %d, want 403", name, r.StatusCode)
		}
	}
	cross := p.post(a, "/hubs/prod/rollouts", jobForm("cross"), "Sec-Fetch-Site", "cross-site")
	if cross.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site create = %d, want 403", cross.StatusCode)
	}
	if fake.calls() != 0 || p.sims["prod"].Calls(hubsim.OpCreateJob) != 0 {
		t.Errorf("%d engine creates, %d hub creates after CSRF refusals; want none", fake.calls(), p.sims["prod"].Calls(hubsim.OpCreateJob))
	}
	if n := len(p.entries(audit.Filter{Action: audit.CSRFBlocked})); n != 3 {
		t.Errorf("%d csrf.blocked entries, want 3", n)
	}
}

func TestRolloutCreateRefusesEachBadFieldNextToIt(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	cases := []struct {
		field, value, want string
	}{
		{"type", "script", "direct method or a twin update"},
		{"method", "", "is needed"},
		{"method", "re boot", "without spaces"},
		{"payload", "{not json", "not valid JSON"},
		{"payload", `"` + strings.Repeat("x", 128<<10) + `"`, "IoT Hub allows 131,072"},
		{"response_timeout", "4", "between 5 and 300"},
		{"response_timeout", "soon", "whole number of seconds"},
		{"connect_timeout", "301", "between 0 and 300"},
		{"condition", "", "is needed"},
		{"condition", strings.Repeat("a", 8193), "8,193 characters"},
		{"start_at", "yesterday", "is not a time"},
		{"start_at", "2026-03-10T11:58", "in the past"},
		{"max_execution", "30s", "between 1 minute and 48 hours"},
		{"max_execution", "forever", "is a duration"},
		{"waves", "10,5", "must be larger than 10"},
		{"bake", "25h", "between 0 and 24 hours"},
		{"failures", "lots", "percentage such as 5%"},
		{"min_finished", "-1", "0 or more"},
		{"scope", "galactic", "per wave or cumulative"},
		{"health_threshold", "2%", "is needed with a health threshold"},
		{"approval_waves", "21", "waves are numbered 1 to 20"},
		{"reason", strings.Repeat("r", 501), "keep it under 500"},
	}
	for _, tc := range cases {
		t.Run(tc.field+"="+clip(tc.value), func(t *testing.T) {
			form := jobForm("badfield")
			form.Set(tc.field, tc.value)
			field := tc.field
			if tc.field == "health_threshold" {
				field = "health_query" // the threshold alone: the query is what is missing
			}
			r := p.post(a, "/hubs/prod/rollouts", form)
			if r.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", r.StatusCode)
			}
			doc := r.doc(t)
			if got := doc.Find("#err-" + field).Text(); !strings.Contains(got, tc.want) {
				t.Errorf("message next to %s = %q, want it to say %q", field, got, tc.want)
			}
			// What the user typed is still there.
			if tc.field != "type" && tc.field != "scope" && len(tc.value) < 1000 {
				sel := "#f-" + tc.field
				got := doc.Find(sel).AttrOr("value", doc.Find(sel).Text())
				if got != tc.value {
					t.Errorf("%s shows %q, want the typed %q", sel, got, tc.value)
				}
			}
			if doc.Find("#f-method").AttrOr("value", "") != form.Get("method") {
				t.Error("other fields lost their values")
			}
		})
	}
	// Hostile input comes back inert.
	form := jobForm("hostile")
	form.Set("payload", `</script><img src=x onerror=alert(1)>`)
	form.Set("condition", `deviceId = '"><svg onload=alert(1)>'`)
	form.Set("method", `"><b id=injected>`)
	r := p.post(a, "/hubs/prod/rollouts", form)
	if strings.Contains(r.body, "<img src=x") || strings.Contains(r.body, "<svg onload") || r.doc(t).Find("#injected").Length() != 0 {
		t.Error("hostile form input is live HTML on the re-rendered form")
	}
	if fake.calls() != 0 || p.sims["prod"].Calls(hubsim.OpCreateJob) != 0 {
		t.Errorf("bad input reached the engine (%d) or the hub (%d)", fake.calls(), p.sims["prod"].Calls(hubsim.OpCreateJob))
	}
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

func TestRolloutDoubleSubmitIsOneRollout(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	rid := p.get(a, "/hubs/prod/rollouts/new").doc(t).Find(`#rollout-form input[name="rid"]`).AttrOr("value", "")
	if len(rid) != 12 {
		t.Fatalf("the form carries rid %q, want a fresh 12-character id", rid)
	}
	first := p.post(a, "/hubs/prod/rollouts", jobForm(rid))
	second := p.post(a, "/hubs/prod/rollouts", jobForm(rid))
	want := "/hubs/prod/jobs/hj-" + rid + "-w1-1"
	for _, r := range []response{first, second} {
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != want {
			t.Errorf("create = %d → %q, want 303 → %s (a one-wave job started now lands on its job)", r.StatusCode, r.Header.Get("Location"), want)
		}
	}
	if fake.calls() != 2 || fake.stored() != 1 {
		t.Errorf("%d creates stored %d rollouts, want 2 calls with one rid → 1 rollout", fake.calls(), fake.stored())
	}
	r, _ := fake.get("prod", rid)
	if r.Author.Name != "Ari Author" || r.Spec.Method.MethodName != "reboot" || string(r.Spec.Method.Payload) != `{"delay":5}` ||
		r.Spec.Method.ResponseTimeoutInSeconds != 30 || r.Spec.Condition != "*" || r.Spec.Reason != "monthly reboot" {
		t.Errorf("stored %+v", r.Spec)
	}
	// A later start lands on the rollout page.
	later := jobForm("later")
	later.Set("start_at", "2026-03-10T15:00+01:00")
	if r := p.post(a, "/hubs/prod/rollouts", later); r.Header.Get("Location") != "/hubs/prod/rollouts/later" {
		t.Errorf("a scheduled rollout lands on %q", r.Header.Get("Location"))
	}
	if r, _ := fake.get("prod", "later"); !r.Spec.Start.Equal(t0.Add(2 * 60 * 60 * 1e9)) {
		t.Errorf("start %v, want 14:00 UTC", r.Spec.Start)
	}
}
