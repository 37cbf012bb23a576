package auth

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

func TestLogin_RoundTripLandsOnTheBookmark(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(c *Config, _ *devidp.Options) { c.Registerer = reg })
	b := newBrowser(t)

	bookmark := "/hubs/prod/jobs/job-42?tab=devices&page=2"
	// Signed out, the bookmark sends the browser to sign in with next set.
	first := b.get(f.portal.URL + bookmark)
	if got, want := first.location(), LoginURL(bookmark); first.Status != http.StatusSeeOther || got != want {
		t.Fatalf("signed-out bookmark: %d %q, want 303 %q", first.Status, got, want)
	}
	toIdP := b.get(f.portal.URL + first.location())
	back := b.get(f.signInAtIdP(b, toIdP.location(), "operator"))
	if got := back.location(); back.Status != http.StatusSeeOther || got != bookmark {
		t.Fatalf("callback: %d Location %q, want 303 %q\n%s", back.Status, got, bookmark, back.Body)
	}
	page := b.get(f.portal.URL + bookmark)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "page for demo-operator") {
		t.Fatalf("bookmark after sign-in: %d %q", page.Status, page.Body)
	}

	ev := f.events.last(t, ActionLogin)
	if ev.User == nil || ev.User.Subject != "demo-operator" || ev.User.Issuer != f.idp.Issuer() {
		t.Fatalf("auth.login event user = %+v", ev.User)
	}
	if got, want := ev.User.Roles, []Role{RoleViewer, RoleOperator}; !slices.Equal(got, want) {
		t.Errorf("roles = %v, want %v", got, want)
	}
	if got, want := ev.User.ClaimValues, []string{"Jobs.Cancel", "Jobs.Read"}; !slices.Equal(got, want) {
		t.Errorf("claim values = %v, want %v", got, want)
	}
	if ev.User.Name != "Otto Operator" || ev.User.Email != "operator@demo.invalid" {
		t.Errorf("name/email = %q %q", ev.User.Name, ev.User.Email)
	}
	if got := testutil.ToFloat64(f.auth.metrics.sessionsStarted); got != 1 {
		t.Errorf("sessions started = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "hubjobs_auth_sessions_started_total"); err != nil || n != 1 {
		t.Errorf("registered metric count = %d, %v", n, err)
	}
}

func TestLogin_AuthorizationRequest(t *testing.T) {
	f := newFixture(t)
	// A spoofed Host and X-Forwarded-* must not change redirect_uri.
	req := httptest.NewRequest(http.MethodGet, "http://evil.example/auth/login?next=/hubs/prod/jobs", nil)
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "https")
	rec := httptest.NewRecorder()
	f.auth.Login().ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d", rec.Code)
	}
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	checks := map[string]string{
		"response_type":         "code",
		"client_id":             "hubjobs",
		"redirect_uri":          f.portal.URL + "/auth/callback",
		"code_challenge_method": "S256",
		"scope":                 "openid profile email",
	}
	for k, want := range checks {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if !validStateParam(q.Get(k)) {
			t.Errorf("%s = %q, want 43 base64url characters (a SHA-256)", k, q.Get(k))
		}
	}

	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != f.auth.txCookieName(q.Get("state")) {
		t.Fatalf("transaction cookies = %v", cookies)
	}
	tx, ok := f.auth.decodeTx(cookies[0])
	if !ok {
		t.Fatal("transaction cookie does not decode")
	}
	// The IdP sees hashes; the raw values live only in the encrypted cookie.
	if tx.State == q.Get("state") || hashParam(tx.State) != q.Get("state") {
		t.Error("state sent is not the hash of the stored state")
	}
	if tx.Nonce == q.Get("nonce") || hashParam(tx.Nonce) != q.Get("nonce") {
		t.Error("nonce sent is not the hash of the stored nonce")
	}
	if hashParam(tx.Verifier) != q.Get("code_challenge") {
		t.Error("code_challenge is not S256(verifier)")
	}
	if tx.Next != "/hubs/prod/jobs" || tx.Issuer != f.idp.Issuer() {
		t.Errorf("tx next/issuer = %q %q", tx.Next, tx.Issuer)
	}
	for _, raw := range []string{tx.State, tx.Nonce, tx.Verifier, "/hubs/prod"} {
		if strings.Contains(cookies[0].Value, raw) {
			t.Errorf("transaction cookie shows %q in clear", raw)
		}
	}
	if c := cookies[0]; !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.MaxAge != 600 {
		t.Errorf("transaction cookie attributes: %+v", c)
	}
}

func TestLogin_ParallelTabs(t *testing.T) {
	t.Run("FiveTabsAllSucceed", func(t *testing.T) {
		f := newFixture(t)
		b := newBrowser(t)
		var callbacks []string
		for i := range 5 {
			callbacks = append(callbacks, f.startLogin(b, "viewer", "/hubs/prod/jobs/tab-"+string(rune('a'+i))))
		}
		for i, cb := range callbacks {
			r := b.get(cb)
			if want := "/hubs/prod/jobs/tab-" + string(rune('a'+i)); r.Status != http.StatusSeeOther || r.location() != want {
				t.Errorf("tab %d: %d %q, want %q", i, r.Status, r.location(), want)
			}
		}
	})
	t.Run("TwentyTabsCompleteOrFailCleanly", func(t *testing.T) {
		f := newFixture(t)
		b := newBrowser(t)
		callbacks := make([]string, 20)
		for i := range callbacks {
			callbacks[i] = f.startLogin(b, "viewer", "/hubs/prod/jobs/t"+string(rune('a'+i)))
		}
		results := make([]result, len(callbacks))
		var wg sync.WaitGroup
		for i, cb := range callbacks {
			wg.Go(func() { results[i] = b.get(cb) })
		}
		wg.Wait()
		landed := 0
		for i, r := range results {
			switch {
			case r.Status == http.StatusSeeOther && r.location() == "/hubs/prod/jobs/t"+string(rune('a'+i)):
				landed++
			case r.Status == http.StatusBadRequest && strings.Contains(r.Body, "Sign-in expired"):
			default:
				t.Errorf("tab %d: %d %q\n%s", i, r.Status, r.location(), r.Body)
			}
		}
		// The newest tabs keep their transactions; the oldest were dropped.
		if landed < 5 || landed > maxTxCookies {
			t.Errorf("%d tabs landed, want between 5 and %d", landed, maxTxCookies)
		}
		if b.maxCookie > 8<<10 {
			t.Errorf("largest Cookie header %d bytes, want ≤ 8 KB (proxies answer 431 above)", b.maxCookie)
		}
	})
}

func TestLogin_NotReadyUntilIdPComesUp(t *testing.T) {
	// Reserve a port, then free it: the IdP is "down" until we listen there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	clock, events, logs := newTestClock(), &eventLog{}, &testkit.Buffer{}
	portal := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(portal.Close)
	cfg := testConfig("http://"+addr, portal.URL, clock, events, NewMemoryRevocations(clock.Now), logs)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if a.Ready() {
		t.Fatal("ready before the IdP answered")
	}
	rec := httptest.NewRecorder()
	a.Login().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/login", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "Identity provider unreachable") {
		t.Fatalf("login while not ready: %d %s", rec.Code, rec.Body)
	}
	if got := events.last(t, ActionLoginFailed).Reason; got != "identity provider unreachable" {
		t.Errorf("event reason %q", got)
	}

	idp, err := devidp.Listen(addr, devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := a.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if !a.Ready() {
		t.Fatal("not ready after discovery")
	}
	if !strings.Contains(logs.String(), "discovery failed") {
		t.Error("failed discovery attempts were not logged")
	}
}

func TestLogin_AuditFailureRefusesSignIn(t *testing.T) {
	f := newFixture(t)
	f.events.failOn = ActionLogin
	b := newBrowser(t)
	r := f.login(b, "viewer", "/")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Body, "audit trail") {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	if c := b.cookie(f.portal.URL, f.auth.CookieName()); c != nil {
		t.Fatalf("session cookie issued although the sign-in was not audited")
	}
}

func TestLogin_NoMappedRoleIsRefused(t *testing.T) {
	f := newFixture(t, func(_ *Config, o *devidp.Options) {
		o.Users = []devidp.User{
			{Username: "lower", Password: "lower", Roles: []string{"jobs.read", "JOBS.CANCEL"}},
			{Username: "none", Password: "none"},
		}
	})
	for _, user := range []string{"lower", "none"} {
		t.Run(user, func(t *testing.T) {
			b := newBrowser(t)
			r := f.login(b, user, "/hubs/prod/jobs")
			if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "No access") {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			for _, want := range []string{"&#34;roles&#34; claim", "&#34;Jobs.Read&#34; for viewer", "&#34;Jobs.Cancel&#34; for operator"} {
				if !strings.Contains(r.Body, want) {
					t.Errorf("page does not say %q:\n%s", want, r.Body)
				}
			}
			if b.cookie(f.portal.URL, f.auth.CookieName()) != nil {
				t.Error("session issued without a role")
			}
			ev := f.events.last(t, ActionLoginFailed)
			if ev.Reason != "no mapped role" || ev.User == nil || ev.User.Subject != "demo-"+user {
				t.Errorf("event = %+v", ev)
			}
		})
	}
}

func TestLogin_FreshSessionReplacesThePreviousOne(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	f.login(b, "viewer", "/")
	old := *b.cookie(f.portal.URL, f.auth.CookieName())
	f.login(b, "operator", "/")
	now := b.cookie(f.portal.URL, f.auth.CookieName())
	if now == nil || now.Value == old.Value {
		t.Fatal("second sign-in did not issue a new session")
	}
	// The replaced session is revoked: its cookie no longer works.
	replay := newBrowser(t)
	replay.setCookie(f.portal.URL, &old)
	if f.signedIn(replay) {
		t.Error("the session replaced by a new sign-in still works")
	}
}

func TestLogin_EventsAndLogsHoldNoSecrets(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	cb := f.startLogin(b, "operator", "/")
	cbURL, _ := url.Parse(cb)
	var txValues []string
	for _, c := range b.client.Jar.Cookies(cbURL) {
		txValues = append(txValues, c.Value)
	}
	b.get(cb)
	b.get(cb) // replay: refused, logged
	session := b.cookie(f.portal.URL, f.auth.CookieName())
	u, _ := UserFrom(contextFor(t, f.auth, session))

	secrets := append([]string{
		cbURL.Query().Get("code"), cbURL.Query().Get("state"), session.Value, u.SessionID,
		f.auth.CSRFTokenFor(u.SessionID), "hubjobs-demo-secret",
	}, txValues...)
	for _, s := range secrets {
		if s == "" {
			t.Fatal("empty secret in the list")
		}
		if strings.Contains(f.logs.String(), s) {
			t.Errorf("log contains a secret %.12q…", s)
		}
		for _, e := range f.events.events {
			if strings.Contains(e.Reason, s) || e.User != nil && strings.Contains(fmt.Sprintf("%+v", *e.User), s) && s != u.SessionID {
				t.Errorf("event %s carries a secret", e.Action)
			}
		}
	}
	if !strings.Contains(f.logs.String(), hashID(u.SessionID)) {
		t.Error("the session is not identified by its hash in the log")
	}
}

// contextFor runs the Session middleware over a request carrying c and
// returns the context the handler saw.
func contextFor(t *testing.T, a *Authenticator, c *http.Cookie) context.Context {
	t.Helper()
	var got context.Context
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		req.AddCookie(c)
	}
	a.Session(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r.Context() })).ServeHTTP(httptest.NewRecorder(), req)
	return got
}
