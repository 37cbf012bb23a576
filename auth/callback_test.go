package auth

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// callbackWith rewrites the query of a callback URL.
func callbackWith(t *testing.T, cb string, change func(q url.Values)) string {
	t.Helper()
	u, err := url.Parse(cb)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	change(q)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestCallback_Refusals(t *testing.T) {
	tests := []struct {
		name   string
		run    func(t *testing.T, f *fixture, b *browser) result
		status int
		page   string // words the page must show
		reason string // auth.login_failed reason
	}{
		{
			name: "IdPErrorIsShownEscaped", status: http.StatusForbidden, page: "&lt;script&gt;alert(1)&lt;/script&gt;",
			reason: "identity provider returned error access_denied",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) {
					q.Del("code")
					q.Set("error", "access_denied")
					q.Set("error_description", "<script>alert(1)</script>\r\nX-Injected: 1")
				}))
			},
		},
		{
			// The description of a sign-in this browser started is shown,
			// but never with its bidi controls: "\u202Egnp.exe" would read
			// "exe.png".
			name: "IdPErrorBidiControlsRemoved", status: http.StatusForbidden, page: "It said: Open invoicegnp.exe then sign in.",
			reason: "identity provider returned error access_denied",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) {
					q.Del("code")
					q.Set("error", "access_\u202Edenied")
					q.Set("error_description", "Open \u2066invoice\u202Egnp.exe\u2069\u200F then\u200B sign\u061C in.\u202C")
				}))
			},
		},
		{
			name: "UserCancelsAtIdP", status: http.StatusForbidden, page: "the user cancelled the sign-in",
			reason: "identity provider returned error access_denied",
			run: func(t *testing.T, f *fixture, b *browser) result {
				toIdP := b.get(f.portal.URL + LoginURL("/"))
				form := b.get(toIdP.location())
				id := formRequestID.FindStringSubmatch(form.Body)[1]
				back := b.post(toIdP.location(), url.Values{"request": {id}, "cancel": {"1"}})
				return b.get(back.location())
			},
		},
		{
			// A response without our state cannot belong to any sign-in we
			// started (docs/security.md case 1): 403, like a tampered state.
			name: "NoState", status: http.StatusForbidden, page: "does not belong", reason: "state or issuer mismatch",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) { q.Del("state") }))
			},
		},
		{
			name: "EmptyState", status: http.StatusForbidden, page: "does not belong", reason: "state or issuer mismatch",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) { q.Set("state", "") }))
			},
		},
		{
			name: "MalformedState", status: http.StatusForbidden, page: "does not belong", reason: "state or issuer mismatch",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) { q.Set("state", q.Get("state")+"\r\nX: 1") }))
			},
		},
		{
			// Anyone can send a victim to /auth/callback?error=…: without a
			// sign-in of this browser behind it, the text is the attacker's
			// (content spoofing on our origin) and must not be shown.
			name: "IdPErrorWithoutTransactionShowsNoText", status: http.StatusForbidden, page: "The identity provider refused the sign-in (access_denied).",
			reason: "identity provider returned error access_denied",
			run: func(t *testing.T, f *fixture, b *browser) result {
				return b.get(f.portal.URL + CallbackPath + "?error=access_denied&error_description=" +
					url.QueryEscape("Your account is locked. Call the help desk at +1 555 0100 and give your password."))
			},
		},
		{
			// The error code is attacker-controlled too: it must not mint a
			// new metric series (unbounded label cardinality) nor be shown.
			name: "UnregisteredIdPErrorCode", status: http.StatusForbidden, page: "The identity provider refused the sign-in.",
			reason: "identity provider returned an unrecognised error",
			run: func(t *testing.T, f *fixture, b *browser) result {
				return b.get(f.portal.URL + CallbackPath + "?error=call_555_0100_now&state=x")
			},
		},
		{
			name: "NoTransactionCookie", status: http.StatusBadRequest, page: "Sign-in expired", reason: "sign-in transaction missing or expired",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return newBrowser(t).get(cb) // another browser, or cookies blocked
			},
		},
		{
			name: "TransactionExpired", status: http.StatusBadRequest, page: "Sign-in expired", reason: "sign-in transaction missing or expired",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				f.clock.Advance(DefaultTransactionTTL)
				return b.get(cb)
			},
		},
		{
			name: "TamperedState", status: http.StatusForbidden, page: "does not belong", reason: "state or issuer mismatch",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) {
					s := q.Get("state")
					q.Set("state", s[:txIDLen]+strings.Repeat("A", len(s)-txIDLen))
				}))
			},
		},
		{
			name: "ForeignIssuerParameter", status: http.StatusForbidden, page: "does not belong", reason: "state or issuer mismatch",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) { q.Set("iss", "https://evil.example") }))
			},
		},
		{
			name: "MissingCode", status: http.StatusBadRequest, page: "no authorization code", reason: "missing authorization code",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				return b.get(callbackWith(t, cb, func(q url.Values) { q.Del("code") }))
			},
		},
		{
			// Code injection: a code issued for tab B (B's PKCE challenge)
			// is presented with tab A's state; the IdP refuses A's verifier.
			name: "CodeFromAnotherTransactionFailsPKCE", status: http.StatusBadGateway, page: "did not complete", reason: "code exchange failed",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cbA := f.startLogin(b, "viewer", "/")
				cbB := f.startLogin(b, "admin", "/")
				codeB := mustQuery(t, cbB).Get("code")
				return b.get(callbackWith(t, cbA, func(q url.Values) { q.Set("code", codeB) }))
			},
		},
		{
			name: "ReplayedCallbackWithCapturedCookie", status: http.StatusBadRequest, page: "already used", reason: "sign-in transaction replayed",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				u, _ := url.Parse(cb)
				var captured []*http.Cookie
				captured = append(captured, b.client.Jar.Cookies(u)...)
				if first := b.get(cb); first.Status != http.StatusSeeOther {
					t.Fatalf("first callback: %d", first.Status)
				}
				attacker := newBrowser(t)
				attacker.client.Jar.SetCookies(u, captured)
				return attacker.get(cb)
			},
		},
		{
			name: "ReplayedCallbackInTheSameBrowser", status: http.StatusBadRequest, page: "Sign-in expired", reason: "sign-in transaction missing or expired",
			run: func(t *testing.T, f *fixture, b *browser) result {
				cb := f.startLogin(b, "viewer", "/")
				b.get(cb)
				b.client.Jar.SetCookies(mustURL(t, f.portal.URL), []*http.Cookie{{Name: f.auth.CookieName(), Value: "", MaxAge: -1}})
				return b.get(cb)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			b := newBrowser(t)
			r := tc.run(t, f, b)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d\n%s", r.Status, tc.status, r.Body)
			}
			if !strings.Contains(r.Body, tc.page) {
				t.Errorf("page lacks %q:\n%s", tc.page, r.Body)
			}
			if strings.Contains(r.Body, "<script>") {
				t.Error("IdP text reflected unescaped")
			}
			if i := strings.IndexFunc(r.Body, func(r rune) bool { return unicode.Is(unicode.Cf, r) }); i >= 0 {
				t.Errorf("page carries a format (bidi, zero-width) character at byte %d", i)
			}
			if i := strings.IndexFunc(f.logs.String(), func(r rune) bool { return unicode.Is(unicode.Cf, r) }); i >= 0 {
				t.Errorf("log carries a format (bidi, zero-width) character at byte %d", i)
			}
			if r.Header.Get("Referrer-Policy") != "no-referrer" || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("callback headers: Referrer-Policy %q, Cache-Control %q", r.Header.Get("Referrer-Policy"), r.Header.Get("Cache-Control"))
			}
			for _, c := range r.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, f.auth.CookieName()+"=") && !strings.Contains(c, "Max-Age=0") {
					t.Errorf("a session cookie was issued: %s", c)
				}
			}
			if ev := f.events.last(t, ActionLoginFailed); ev.Reason != tc.reason {
				t.Errorf("event reason %q, want %q", ev.Reason, tc.reason)
			}
			if got := testutil.ToFloat64(f.auth.metrics.loginFailures.WithLabelValues(tc.reason)); got != 1 {
				t.Errorf("login failure metric for %q = %v, want 1", tc.reason, got)
			}
			if tc.status == http.StatusBadRequest && !strings.Contains(r.Body, `href="/auth/login"`) {
				t.Error("no link to start again")
			}
			for _, spoof := range []string{"help desk", "555", "password"} {
				if strings.Contains(r.Body, spoof) {
					t.Errorf("the page shows attacker-chosen text %q", spoof)
				}
			}
			for _, c := range r.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, f.auth.txPrefix) && !strings.Contains(c, "Max-Age=0") {
					t.Errorf("a transaction cookie was (re)issued by a refused callback: %s", c)
				}
			}
			if tc.status == http.StatusForbidden {
				u, _ := url.Parse(f.portal.URL)
				for _, c := range b.client.Jar.Cookies(u) {
					if strings.HasPrefix(c.Name, f.auth.txPrefix) {
						t.Errorf("transaction cookie %s survived a refused callback", c.Name)
					}
				}
			}
		})
	}
}

func TestCallback_TransactionCookieIsClearedOnFirstUse(t *testing.T) {
	f := newFixture(t)
	b := newBrowser(t)
	cb := f.startLogin(b, "viewer", "/")
	state := mustQuery(t, cb).Get("state")
	name := f.auth.txCookieName(state)
	if b.cookie(f.portal.URL, name) == nil {
		t.Fatal("no transaction cookie before the callback")
	}
	r := b.get(callbackWith(t, cb, func(q url.Values) { q.Set("code", "wrong") }))
	if r.Status == http.StatusSeeOther {
		t.Fatal("a wrong code signed in")
	}
	if b.cookie(f.portal.URL, name) != nil {
		t.Error("transaction cookie survived a failed callback")
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustQuery(t *testing.T, raw string) url.Values { t.Helper(); return mustURL(t, raw).Query() }
