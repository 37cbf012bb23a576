package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// guarded serves one request through Session + the guard under test and
// says whether the protected handler ran.
func guarded(a *Authenticator, guard func(http.Handler) http.Handler, req *http.Request) (*httptest.ResponseRecorder, bool) {
	ran := false
	rec := httptest.NewRecorder()
	a.Session(guard(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		ran = true
		w.WriteHeader(http.StatusNoContent)
	}))).ServeHTTP(rec, req)
	return rec, ran
}

func TestRequireUser_SendsEachKindOfRequestToSignIn(t *testing.T) {
	a, _ := sessionAuth(t, "https://portal.example.com", newTestClock())
	tests := []struct {
		name, method, target string
		header               map[string]string
		status               int
		location, hxRedirect string
	}{
		{name: "BookmarkGET", method: http.MethodGet, target: "/hubs/prod/jobs/j1?tab=devices",
			status: http.StatusSeeOther, location: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs%2Fj1%3Ftab%3Ddevices"},
		{name: "HEAD", method: http.MethodHead, target: "/hubs/prod/jobs",
			status: http.StatusSeeOther, location: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs"},
		{name: "UnknownRouteGoesHome", method: http.MethodGet, target: "/elsewhere?x=1",
			status: http.StatusSeeOther, location: "/auth/login?next=%2F"},
		{name: "HtmxPollReturnsToThePageShown", method: http.MethodGet, target: "/hubs/prod/jobs/j1/status",
			header: map[string]string{"HX-Request": "true", "HX-Current-URL": "https://portal.example.com/hubs/prod/jobs/j1?tab=devices"},
			status: http.StatusUnauthorized, hxRedirect: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs%2Fj1%3Ftab%3Ddevices"},
		{name: "HtmxForeignCurrentURLIgnored", method: http.MethodGet, target: "/hubs/prod/jobs",
			header: map[string]string{"HX-Request": "true", "HX-Current-URL": "https://evil.example/hubs/prod/jobs/j1"},
			status: http.StatusUnauthorized, hxRedirect: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs"},
		{name: "HtmxLookalikeOriginIgnored", method: http.MethodGet, target: "/hubs/prod/jobs",
			header: map[string]string{"HX-Request": "true", "HX-Current-URL": "https://portal.example.com.evil.com/hubs/prod/jobs/j1"},
			status: http.StatusUnauthorized, hxRedirect: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs"},
		{name: "HtmxPostOnlyGetsHXRedirect", method: http.MethodPost, target: "/hubs/prod/jobs/j1/cancel",
			header: map[string]string{"HX-Request": "true", "HX-Current-URL": "https://portal.example.com/hubs/prod/jobs/j1"},
			status: http.StatusUnauthorized, hxRedirect: "/auth/login?next=%2Fhubs%2Fprod%2Fjobs%2Fj1"},
		{name: "FormPost", method: http.MethodPost, target: "/hubs/prod/jobs/j1/cancel", status: http.StatusUnauthorized},
		{name: "CurlWithHXBoostedOnly", method: http.MethodDelete, target: "/hubs/prod/jobs/j1",
			header: map[string]string{"HX-Boosted": "true"}, status: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec, ran := guarded(a, a.RequireUser, req)
			if ran || rec.Code != tc.status {
				t.Fatalf("status %d (handler ran: %v), want %d", rec.Code, ran, tc.status)
			}
			if got := rec.Header().Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if got := rec.Header().Get("HX-Redirect"); got != tc.hxRedirect {
				t.Errorf("HX-Redirect %q, want %q", got, tc.hxRedirect)
			}
		})
	}
}

func TestRequireRole(t *testing.T) {
	clock := newTestClock()
	events := &eventLog{}
	cfg := testConfig("http://127.0.0.1:1/unused", "https://portal.example.com", clock, events, NewMemoryRevocations(clock.Now), &testkit.Buffer{})
	a, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		roles  []Role
		status int
	}{
		{"Operator", []Role{RoleOperator}, http.StatusNoContent},
		{"Admin", []Role{RoleAdmin}, http.StatusNoContent},
		{"Viewer", []Role{RoleViewer}, http.StatusForbidden},
		{"Auditor", []Role{RoleAuditor}, http.StatusForbidden},
		{"NoRoles", nil, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/hubs/prod/jobs/j1/cancel", nil)
			req.AddCookie(mint(t, a, User{Subject: "u-" + tc.name, Roles: tc.roles}))
			rec, ran := guarded(a, func(h http.Handler) http.Handler { return a.RequireRole(RoleOperator, h) }, req)
			if rec.Code != tc.status || ran != (tc.status == http.StatusNoContent) {
				t.Fatalf("status %d ran %v, want %d", rec.Code, ran, tc.status)
			}
			if tc.status == http.StatusForbidden {
				ev := events.last(t, ActionAuthzDenied)
				if ev.User == nil || ev.User.Subject != "u-"+tc.name || !strings.Contains(ev.Reason, "operator") {
					t.Errorf("event %+v", ev)
				}
			}
		})
	}
	t.Run("SignedOut", func(t *testing.T) {
		rec, ran := guarded(a, func(h http.Handler) http.Handler { return a.RequireRole(RoleOperator, h) },
			httptest.NewRequest(http.MethodGet, "/audit", nil))
		if ran || rec.Code != http.StatusSeeOther {
			t.Fatalf("status %d", rec.Code)
		}
	})
}

func TestCheckCSRF_Matrix(t *testing.T) {
	clock := newTestClock()
	events := &eventLog{}
	cfg := testConfig("http://127.0.0.1:1/unused", "https://portal.example.com", clock, events, NewMemoryRevocations(clock.Now), &testkit.Buffer{})
	a, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	alice := User{Subject: "alice", SessionID: "sid-alice", Roles: []Role{RoleOperator}}
	bob := User{Subject: "bob", SessionID: "sid-bob", Roles: []Role{RoleOperator}}
	aliceToken, bobToken := a.CSRFTokenFor(alice.SessionID), a.CSRFTokenFor(bob.SessionID)
	aliceCookie := mint(t, a, alice)

	tests := []struct {
		name    string
		method  string
		host    string // the Host header (a reverse proxy may rewrite it)
		session bool
		header  map[string]string
		field   string
		allowed bool
	}{
		{name: "SameOriginWithHeaderToken", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://portal.example.com", "X-CSRF-Token": aliceToken}, allowed: true},
		{name: "SameOriginWithFieldToken", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://portal.example.com"}, field: aliceToken, allowed: true},
		{name: "LegacyBrowserWithToken", session: true, header: map[string]string{"X-CSRF-Token": aliceToken}, allowed: true},
		{name: "UserNavigationNone", session: true, header: map[string]string{"Sec-Fetch-Site": "none", "X-CSRF-Token": aliceToken}, allowed: true},
		{name: "DefaultPortInOrigin", session: true, header: map[string]string{"Origin": "https://portal.example.com:443", "X-CSRF-Token": aliceToken}, allowed: true},
		{name: "SafeMethodNeedsNothing", method: http.MethodGet, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, allowed: true},
		{name: "CrossSite", session: true, header: map[string]string{"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": aliceToken}},
		{name: "SameSiteSibling", session: true, header: map[string]string{"Sec-Fetch-Site": "same-site", "X-CSRF-Token": aliceToken}},
		{name: "LookalikeOrigin", session: true, header: map[string]string{"Origin": "https://portal.example.com.evil.com", "X-CSRF-Token": aliceToken}},
		{name: "NullOrigin", session: true, header: map[string]string{"Origin": "null", "X-CSRF-Token": aliceToken}},
		{name: "SchemeDowngrade", session: true, header: map[string]string{"Origin": "http://portal.example.com", "X-CSRF-Token": aliceToken}},
		{name: "OtherPort", session: true, header: map[string]string{"Origin": "https://portal.example.com:8443", "X-CSRF-Token": aliceToken}},
		{name: "ForeignRefererWithoutOrigin", session: true, header: map[string]string{"Referer": "https://evil.example/page", "X-CSRF-Token": aliceToken}},
		{name: "MissingToken", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{name: "NoHeadersNoToken", session: true},
		{name: "TokenOfAnotherSession", session: true, header: map[string]string{"X-CSRF-Token": bobToken}},
		{name: "FieldTokenOfAnotherSession", session: true, field: bobToken},
		{name: "PlantedDoubleSubmitCookie", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": "planted", "Cookie": "_csrf=planted"}},
		{name: "TruncatedToken", session: true, header: map[string]string{"X-CSRF-Token": aliceToken[:20]}},
		{name: "NoSession", header: map[string]string{"X-CSRF-Token": aliceToken}},
		{name: "DELETE", method: http.MethodDelete, session: true, header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		// Our origin is PublicURL's, not whatever Host a proxy forwards.
		{name: "OurOriginBehindHostRewritingProxy", host: "127.0.0.1:8080", session: true, header: map[string]string{"Origin": "https://portal.example.com", "X-CSRF-Token": aliceToken}, allowed: true},
		{name: "ForeignOriginMatchingForgedHost", host: "evil.example", session: true, header: map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": aliceToken}},
		{name: "SameOriginClaimWithForeignOrigin", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://evil.example", "X-CSRF-Token": aliceToken}},
		{name: "CrossSiteDespiteOurOrigin", session: true, header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://portal.example.com", "X-CSRF-Token": aliceToken}},
		{name: "UnknownSecFetchSite", session: true, header: map[string]string{"Sec-Fetch-Site": "same-origin-ish", "X-CSRF-Token": aliceToken}},
		{name: "SchemeDowngradeSameHost", host: "portal.example.com", session: true, header: map[string]string{"Origin": "http://portal.example.com", "X-CSRF-Token": aliceToken}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			form := url.Values{"reason": {"maintenance"}}
			if tc.field != "" {
				form.Set("_csrf", tc.field)
			}
			req := httptest.NewRequest(method, "/hubs/prod/jobs/j1/cancel", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.session {
				req.AddCookie(aliceCookie)
			}
			before := len(events.actions())
			rec, ran := guarded(a, a.CheckCSRF, req)
			if ran != tc.allowed {
				t.Fatalf("handler ran = %v, want %v (status %d)", ran, tc.allowed, rec.Code)
			}
			if tc.allowed {
				return
			}
			if rec.Code != http.StatusForbidden {
				t.Errorf("status %d, want 403", rec.Code)
			}
			if acts := events.actions(); len(acts) != before+1 || acts[len(acts)-1] != ActionCSRFBlocked {
				t.Errorf("events %v, want one csrf.blocked", acts[before:])
			}
		})
	}
	t.Run("HandlerStillReadsTheForm", func(t *testing.T) {
		form := url.Values{"_csrf": {aliceToken}, "reason": {"maintenance"}}
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(aliceCookie)
		var reason string
		a.Session(a.CheckCSRF(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			reason = r.FormValue("reason")
		}))).ServeHTTP(httptest.NewRecorder(), req)
		if reason != "maintenance" {
			t.Errorf("reason = %q after the CSRF check read the body", reason)
		}
	})
}

func TestLogout(t *testing.T) {
	signIn := func(t *testing.T, f *fixture) (*browser, *http.Cookie, string) {
		t.Helper()
		b := newBrowser(t)
		f.login(b, "operator", "/")
		c := b.cookie(f.portal.URL, f.auth.CookieName())
		page := b.get(f.portal.URL + "/")
		_, token, _ := strings.Cut(page.Body, "csrf=")
		if c == nil || token == "" {
			t.Fatalf("not signed in: %q", page.Body)
		}
		return b, c, token
	}
	t.Run("RevokesRedirectsToIdPAndTheOldCookieIsRefused", func(t *testing.T) {
		f := newFixture(t)
		b, old, token := signIn(t, f)
		out := b.post(f.portal.URL+LogoutPath, url.Values{"_csrf": {token}}, "Origin", f.portal.URL, "Sec-Fetch-Site", "same-origin")
		if out.Status != http.StatusSeeOther {
			t.Fatalf("logout: %d %s", out.Status, out.Body)
		}
		loc, _ := url.Parse(out.location())
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != f.idp.Issuer()+"/end_session" {
			t.Errorf("redirected to %q, want the IdP's end_session_endpoint", got)
		}
		q := loc.Query()
		if q.Get("client_id") != "hubjobs" || q.Get("post_logout_redirect_uri") != f.portal.URL+"/" || q.Has("id_token_hint") {
			t.Errorf("end-session query %v", q)
		}
		if b.cookie(f.portal.URL, f.auth.CookieName()) != nil {
			t.Error("session cookie not cleared")
		}
		if ev := f.events.last(t, ActionLogout); ev.User == nil || ev.User.Subject != "demo-operator" {
			t.Errorf("logout event %+v", ev)
		}
		// The IdP sends the browser home, which now asks for a sign-in.
		home := b.get(out.location())
		if home.Status != http.StatusSeeOther || home.location() != f.portal.URL+"/" {
			t.Fatalf("IdP end_session: %d %q", home.Status, home.location())
		}
		// A copy of the old cookie is useless now.
		thief := newBrowser(t)
		thief.setCookie(f.portal.URL, old)
		if r := thief.get(f.portal.URL + "/hubs/prod/jobs/j1"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.location(), LoginPath) {
			t.Fatalf("replayed cookie after logout: %d %q", r.Status, r.location())
		}
	})
	t.Run("WithoutTokenIsRefused", func(t *testing.T) {
		f := newFixture(t)
		b, _, _ := signIn(t, f)
		if r := b.post(f.portal.URL+LogoutPath, nil); r.Status != http.StatusForbidden {
			t.Fatalf("logout without token: %d", r.Status)
		}
		if !f.signedIn(b) {
			t.Error("signed out by a forged request")
		}
	})
	t.Run("SignedOutBrowserIsSentHomeWithoutAnEvent", func(t *testing.T) {
		// Nothing to sign out (never signed in, or the session expired):
		// no CSRF refusal page and no audit entry for anonymous traffic.
		f := newFixture(t)
		b, _, _ := signIn(t, f)
		f.clock.Advance(DefaultIdleTimeout)
		before := len(f.events.actions())
		for _, br := range []*browser{b, newBrowser(t)} {
			r := br.post(f.portal.URL+LogoutPath, nil, "Sec-Fetch-Site", "cross-site")
			if r.Status != http.StatusSeeOther || r.location() != "/" {
				t.Fatalf("signed-out logout: %d %q, want 303 to /", r.Status, r.location())
			}
		}
		if b.cookie(f.portal.URL, f.auth.CookieName()) != nil {
			t.Error("the expired session cookie was not cleared")
		}
		if got := f.events.actions()[before:]; len(got) != 0 {
			t.Errorf("events %v for a signed-out logout, want none", got)
		}
	})
	t.Run("RevocationStoreUnreadableSaysSignOutFailed", func(t *testing.T) {
		f := newFixture(t)
		b, _, token := signIn(t, f)
		f.revs.setFail(true)
		r := b.post(f.portal.URL+LogoutPath, url.Values{"_csrf": {token}})
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "still signed in") {
			t.Fatalf("logout while the store cannot be read: %d %s", r.Status, r.Body)
		}
		if b.cookie(f.portal.URL, f.auth.CookieName()) == nil {
			t.Error("cookie cleared although nothing was revoked")
		}
	})
	t.Run("RevocationStoreDownKeepsTheUserSignedIn", func(t *testing.T) {
		f := newFixture(t)
		b, _, token := signIn(t, f)
		f.revs.setFailRevoke(true)
		r := b.post(f.portal.URL+LogoutPath, url.Values{"_csrf": {token}})
		if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "still signed in") {
			t.Fatalf("logout with store down: %d %s", r.Status, r.Body)
		}
		if b.cookie(f.portal.URL, f.auth.CookieName()) == nil {
			t.Error("cookie cleared although the revocation was not stored")
		}
	})
	t.Run("IdPWithoutEndSessionGoesHome", func(t *testing.T) {
		f := newOPFixture(t)
		u := User{Subject: "s", SessionID: "sid"}
		req := httptest.NewRequest(http.MethodPost, LogoutPath, strings.NewReader("_csrf="+f.auth.CSRFTokenFor("sid")))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(mint(t, f.auth, u))
		rec := httptest.NewRecorder()
		f.auth.Session(f.auth.CheckCSRF(f.auth.Logout())).ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/" {
			t.Fatalf("%d %q", rec.Code, rec.Header().Get("Location"))
		}
	})
}
