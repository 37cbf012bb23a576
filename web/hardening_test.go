package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/web"
)

// Metric labels must come from a closed set: a label value taken from a
// request (its method, a hub name in the path) lets anyone mint series
// until the process runs out of memory and /metrics becomes unreadable.
func TestMetricLabelsStayBoundedUnderHostileRequests(t *testing.T) {
	p := newPortal(t, portalOptions{})
	viewer := p.as(viewerU)
	for _, m := range []string{"XMETHODA", "XMETHODB", "PROPFIND"} {
		p.do(nil, m, "/nowhere-"+m, nil)
		p.do(nil, m, "/hubs", nil)
	}
	for _, hub := range []string{"invented-hub-a", "invented-hub-b"} {
		if r := p.cancel(viewer, hub, "job-1", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("viewer cancel on %s = %d, want 403", hub, r.StatusCode)
		}
	}
	metrics := p.get(nil, "/metrics").body
	for _, leak := range []string{"XMETHODA", "XMETHODB", "PROPFIND", "invented-hub"} {
		if strings.Contains(metrics, leak) {
			t.Errorf("/metrics has a series labelled with request data %q", leak)
		}
	}
	if !strings.Contains(metrics, `method="other"`) {
		t.Error(`unknown methods are not counted as method="other"`)
	}
	if !strings.Contains(metrics, `hubjobs_cancels_total{hub="unknown",outcome="denied"} 2`) {
		t.Errorf("denied cancels on unconfigured hubs are not counted under hub=\"unknown\":\n%s", grepLines(metrics, "hubjobs_cancels_total"))
	}
	// The audit trail still says which hub was targeted.
	denied := p.entries(audit.Filter{Action: audit.AuthzDenied})
	if len(denied) != 2 || denied[0].Hub != "invented-hub-a" {
		t.Errorf("authz.denied entries %+v, want the targeted hub kept", denied)
	}
}

// A continuation token is opaque and travels in the URL, so anyone can
// forge one. The hub refuses it with 400; the portal must say "bad page
// link" (400), not "something went wrong" (500, logged as an error).
func TestForgedPageTokenIsABadRequest(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	v := p.as(viewerU)
	for _, token := range []string{"AAAA", `{"token":1}`, strings.Repeat("Z", 4000)} {
		for _, hx := range []bool{false, true} {
			var header []string
			if hx {
				header = []string{"HX-Request", "true"}
			}
			r := p.get(v, "/hubs/prod/jobs?page="+url.QueryEscape(token), header...)
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.body, "Bad page link") {
				t.Errorf("forged token %.20q (htmx %v) = %d, want 400 Bad page link\n%.300s", token, hx, r.StatusCode, r.body)
			}
		}
	}
	if strings.Contains(p.logs.String(), "level=ERROR") {
		t.Errorf("a forged page token was logged as a server error:\n%s", grepLines(p.logs.String(), "level=ERROR"))
	}
}

// RFC 9110 §9.1: GET and HEAD are both supported. Link checkers, chat link
// previews and monitors send HEAD to bookmarks; auth answers a signed-out
// HEAD like a GET, so the router must not refuse it first.
func TestHeadOnBookmarkablePages(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	users := map[string]*user{"viewer": p.as(viewerU), "auditor": p.as(auditorU)}
	for path, who := range map[string]string{
		"/": "viewer", "/hubs": "viewer", "/hubs/prod/jobs": "viewer", "/hubs/prod/jobs/job-1": "viewer",
		"/hubs/prod/jobs/job-1/devices": "viewer", "/audit": "auditor",
	} {
		r := p.do(users[who], http.MethodHead, path, nil)
		get := p.get(users[who], path)
		if r.StatusCode != get.StatusCode || r.body != "" {
			t.Errorf("HEAD %s as %s = %d with %d body bytes, want GET's %d and no body", path, who, r.StatusCode, len(r.body), get.StatusCode)
		}
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("HEAD %s lacks the page headers", path)
		}
		anon := p.do(nil, http.MethodHead, path, nil)
		if loc := anon.Header.Get("Location"); anon.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/auth/login") {
			t.Errorf("anonymous HEAD %s = %d %q, want 303 to sign in", path, anon.StatusCode, loc)
		}
	}
	// Exports and state changes stay GET/POST only.
	for _, path := range []string{"/hubs/prod/jobs/job-1/cancel", "/hubs/prod/jobs/job-1/devices.csv", "/audit.csv"} {
		if r := p.do(p.as(adminU), http.MethodHead, path, nil); r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("HEAD %s = %d, want 405", path, r.StatusCode)
		}
	}
}

func grepLines(text, needle string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, needle) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Sign-out through the real router: a signed-in POST needs the CSRF token
// (refusals audited); a browser with nothing to sign out is sent home
// without a refusal page or an audit entry (anonymous traffic must not
// write the trail); a captured cookie is dead after sign-out.
func TestSignOut(t *testing.T) {
	p := newPortal(t, portalOptions{})
	op := p.as(operatorU)
	same := []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", p.srv.URL, "Sec-Fetch-Site", "same-origin"}
	if r := p.do(op, http.MethodPost, "/auth/logout", strings.NewReader(""), same...); r.StatusCode != http.StatusForbidden {
		t.Fatalf("signed-in logout without token = %d, want 403", r.StatusCode)
	}
	if r := p.do(op, http.MethodPost, "/auth/logout", strings.NewReader("_csrf="+op.csrf), append(same[:2:2], "Sec-Fetch-Site", "cross-site")...); r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site logout = %d, want 403", r.StatusCode)
	}
	if n := len(p.entries(audit.Filter{Action: audit.CSRFBlocked})); n != 2 {
		t.Errorf("%d csrf.blocked entries, want 2", n)
	}
	for i := range 3 {
		r := p.do(nil, http.MethodPost, "/auth/logout", strings.NewReader(""), "Sec-Fetch-Site", "cross-site")
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			t.Fatalf("anonymous logout %d = %d %q, want 303 to /", i, r.StatusCode, r.Header.Get("Location"))
		}
	}
	if n := len(p.entries(audit.Filter{Action: audit.CSRFBlocked})); n != 2 {
		t.Errorf("anonymous logouts wrote %d csrf.blocked entries", n-2)
	}
	r := p.do(op, http.MethodPost, "/auth/logout", strings.NewReader("_csrf="+op.csrf), same...)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("logout = %d (Cache-Control %q), want 303 no-store", r.StatusCode, r.Header.Get("Cache-Control"))
	}
	if len(p.entries(audit.Filter{Action: audit.AuthLogout})) != 1 {
		t.Error("logout not audited")
	}
	// The captured cookie is revoked: pages and a replayed logout see a stranger.
	if r := p.get(op, "/hubs/prod/jobs"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/auth/login") {
		t.Errorf("page with the captured cookie = %d %q, want 303 to sign in", r.StatusCode, r.Header.Get("Location"))
	}
	if r := p.do(op, http.MethodPost, "/auth/logout", strings.NewReader("_csrf="+op.csrf), same...); r.StatusCode != http.StatusSeeOther ||
		r.Header.Get("Location") != "/" || len(p.entries(audit.Filter{Action: audit.AuthLogout})) != 1 {
		t.Errorf("replayed logout = %d %q, want 303 to / and no second auth.logout", r.StatusCode, r.Header.Get("Location"))
	}
}

// docs/security.md cases 36–38 through the router: hostile job ids are a 400
// before any hub call, whether read or cancelled; a refused cancel of a
// huge id is audited with a clipped copy.
func TestHostileJobIDs(t *testing.T) {
	p := newPortal(t, portalOptions{})
	v, op := p.as(viewerU), p.as(operatorU)
	ids := []string{
		"%00", "a%00b", "%E2%80%AEevil", "a%E2%80%8Db", "a%EF%BC%8Fb", "%D0%B0bc", "a%FFb", "a%C0%AFb",
		"a%252Fb", "..%2F..%2Fdevices", "%2e%2e", "a%20b", "a.b", "a%0D%0Ab",
		strings.Repeat("x", 129), strings.Repeat("x", 10<<10),
	}
	p.sims["prod"].ResetCalls()
	for _, id := range ids {
		if r := p.get(v, "/hubs/prod/jobs/"+id); r.StatusCode != http.StatusBadRequest {
			t.Errorf("GET job %.40q = %d, want 400", id, r.StatusCode)
		}
		if r := p.cancel(op, "prod", id, nil); r.StatusCode != http.StatusBadRequest {
			t.Errorf("cancel %.40q = %d, want 400", id, r.StatusCode)
		}
	}
	if n := p.sims["prod"].Calls(hubsim.OpGetJob) + p.sims["prod"].Calls(hubsim.OpCancelJob); n != 0 {
		t.Errorf("%d hub calls for hostile ids, want 0", n)
	}
	if r := p.cancel(v, "prod", strings.Repeat("y", 10<<10), nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("viewer cancel of a 10 KB id = %d, want 403", r.StatusCode)
	}
	denied := p.entries(audit.Filter{Action: audit.AuthzDenied})
	if len(denied) != 1 || len(denied[0].JobID) > 128 {
		t.Errorf("authz.denied for a 10 KB id: %d entries, job id %d bytes (want one, clipped to 128)", len(denied), len(denied[len(denied)-1].JobID))
	}
}

// docs/security.md case 54 for the response types TestSecurityHeadersOnEveryResponse
// does not reach: htmx fragments, error fragments, the htmx 401, 405, 413,
// redirects, the callback's error page and an auth refusal page.
func TestSecurityHeadersOnEveryResponseType(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	v, op := p.as(viewerU), p.as(operatorU)
	hx := []string{"HX-Request", "true"}
	cases := map[string]response{
		"fragment":        p.get(v, "/hubs/prod/jobs/job-1", hx...),
		"status fragment": p.get(v, "/hubs/prod/jobs/job-1/status", hx...),
		"error fragment":  p.get(v, "/hubs/prod/jobs/nope", hx...),
		"htmx 401":        p.get(nil, "/hubs/prod/jobs/job-1/status", hx...),
		"405":             p.do(v, "TRACE", "/hubs", nil),
		"413":             p.do(op, http.MethodPost, "/hubs/prod/jobs/job-1/cancel", strings.NewReader(strings.Repeat("a", 100<<10)), "Content-Type", "application/x-www-form-urlencoded"),
		"redirect":        p.get(v, "/"),
		"sign-in 303":     p.get(nil, "/hubs"),
		"callback error":  p.get(nil, "/auth/callback?error=access_denied"),
		"403 role":        p.get(v, "/audit"),
		"403 csrf":        p.cancel(op, "prod", "job-1", url.Values{"_csrf": {"forged"}}),
		"csv export":      p.get(v, "/hubs/prod/jobs/job-1/devices.csv"),
	}
	for name, r := range cases {
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self' 'nonce-", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s (%d): CSP %q lacks %s", name, r.StatusCode, csp, want)
			}
		}
		for k, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
			"X-Xss-Protection": "0", "Cross-Origin-Opener-Policy": "same-origin", "Cache-Control": "no-store"} {
			if h.Get(k) != want {
				t.Errorf("%s (%d): %s = %q, want %q", name, r.StatusCode, k, h.Get(k), want)
			}
		}
		if ct := h.Get("Content-Type"); r.body != "" && !strings.Contains(strings.ToLower(ct), "charset=utf-8") {
			t.Errorf("%s (%d): Content-Type %q without charset", name, r.StatusCode, ct)
		}
		if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Server") != "" || h.Get("X-Powered-By") != "" {
			t.Errorf("%s: CORS or server banner headers present", name)
		}
	}
	if got := cases["callback error"].Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("callback Referrer-Policy %q, want no-referrer", got)
	}
	if cases["413"].StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("100 KB cancel body = %d, want 413", cases["413"].StatusCode)
	}

	// HSTS is sent when the portal is served over https.
	s, err := web.New(web.Deps{Auth: p.auth, Audit: p.store, PublicURL: "https://jobs.example.com", Now: p.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/healthz", "/nowhere", "/static/app.css"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if got := rec.Header().Get("Strict-Transport-Security"); !strings.Contains(got, "max-age=63072000") {
			t.Errorf("https %s: Strict-Transport-Security %q, want max-age ≥ 1 year", path, got)
		}
	}
}

// No method override: a GET (or HEAD) carrying X-HTTP-Method-Override or
// _method never reaches the cancel handler (docs/security.md case 24).
func TestNoMethodOverride(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)
	p.sims["prod"].ResetCalls()
	for _, r := range []response{
		p.get(op, "/hubs/prod/jobs/job-1/cancel", "X-HTTP-Method-Override", "POST"),
		p.get(op, "/hubs/prod/jobs/job-1/cancel", "X-HTTP-Method", "POST"),
		p.get(op, "/hubs/prod/jobs/job-1/cancel?_method=POST&_csrf="+url.QueryEscape(op.csrf)),
		p.do(op, http.MethodHead, "/hubs/prod/jobs/job-1/cancel", nil, "X-HTTP-Method-Override", "POST"),
	} {
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405", r.Request.Method, r.Request.URL.RequestURI(), r.StatusCode)
		}
	}
	if n := p.sims["prod"].Calls(hubsim.OpCancelJob); n != 0 || p.hubJob("prod", "job-1").Status != "scheduled" {
		t.Errorf("%d cancels reached the hub through a safe method", n)
	}
}
