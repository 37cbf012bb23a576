package auth

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// RequireUser lets signed-in requests through (Session must run first).
// Anyone else is sent to sign in without losing their place:
//   - a full-page GET or HEAD gets 303 to the login URL with next = this URL;
//   - an htmx request gets 401 with HX-Redirect to the login URL, next being
//     the page the user is on (HX-Current-URL when it is ours and allowed),
//     because an XHR must not follow a redirect to the IdP;
//   - anything else (a form post, an API call) gets a 401 page.
func (a *Authenticator) RequireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := UserFrom(r.Context()); ok {
			next.ServeHTTP(w, r)
			return
		}
		a.signInRequired(w, r)
	})
}

func (a *Authenticator) signInRequired(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	switch {
	case r.Header.Get("HX-Request") == "true":
		w.Header().Set("HX-Redirect", LoginURL(a.returnPath(r)))
		w.WriteHeader(http.StatusUnauthorized)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		http.Redirect(w, r, LoginURL(a.safeNext(r.URL.RequestURI())), http.StatusSeeOther)
	default:
		a.render(w, r, http.StatusUnauthorized, "Sign-in required", "Your session has ended. Sign in again, then repeat what you were doing.")
	}
}

// returnPath is where an htmx request's user should land after signing in:
// the page they are on (HX-Current-URL, if it is on our origin and an
// allowed route), else the requested path, else "/".
func (a *Authenticator) returnPath(r *http.Request) string {
	if cur, err := url.Parse(r.Header.Get("HX-Current-URL")); err == nil && cur.Host != "" && originOf(cur.String()) == a.publicOrigin {
		rel := cur.EscapedPath()
		if cur.RawQuery != "" {
			rel += "?" + cur.RawQuery
		}
		if n := a.safeNext(rel); n != "/" || rel == "/" {
			return n
		}
	}
	return a.safeNext(r.URL.RequestURI())
}

// RequireRole lets through users who hold role r; other signed-in users get
// a 403 page and an authz.denied event. Signed-out requests are handled as
// by RequireUser.
func (a *Authenticator) RequireRole(role Role, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := UserFrom(r.Context())
		if !ok {
			a.signInRequired(w, r)
			return
		}
		if !u.Can(role) {
			_ = a.record(r, ActionAuthzDenied, u, "requires role "+string(role)+" for "+r.Method+" "+r.URL.Path)
			a.render(w, r, http.StatusForbidden, "Not allowed",
				"Your account does not have the "+string(role)+" role needed for this. Ask your administrator if you need it.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxCSRFFormBytes bounds how much of a form body CheckCSRF will read to
// find the _csrf field.
const maxCSRFFormBytes = 1 << 20

// CheckCSRF guards state-changing requests (every method but GET, HEAD,
// OPTIONS and TRACE). A request passes only if all of these hold:
//   - Origin, when sent, is exactly PublicURL's origin (never "null");
//     without Origin, a Referer, when sent, must be on that origin;
//   - net/http's CrossOriginProtection finds it same-origin: Sec-Fetch-Site,
//     when sent, is same-origin or none (cross-site and same-site are
//     refused: sibling subdomains are not trusted);
//   - the request has a session and carries its token in the X-CSRF-Token
//     header or the _csrf form field (compared in constant time).
//
// Refusals are a 403 page and a csrf.blocked event. The callback is a GET
// and is never behind this check.
func (a *Authenticator) CheckCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Sec-Fetch-Site, Origin")
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
			next.ServeHTTP(w, r)
			return
		}
		if reason := a.csrfProblem(r); reason != "" {
			a.metrics.csrfBlocked.Inc()
			u, _ := UserFrom(r.Context())
			a.log.Warn("auth: cross-site request refused", "reason", reason, "method", r.Method, "path", r.URL.Path)
			_ = a.record(r, ActionCSRFBlocked, u, reason)
			a.render(w, r, http.StatusForbidden, "Request refused",
				"This request did not come from a hubjobs page in your browser, so it was not carried out. Reload the page and try again.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin is the standard library's Sec-Fetch-Site/Origin check, with
// no trusted origins and no bypass patterns (its zero value).
var crossOrigin http.CrossOriginProtection

// csrfProblem returns why r fails the CSRF check, or "".
func (a *Authenticator) csrfProblem(r *http.Request) string {
	if reason := a.originProblem(r); reason != "" {
		return reason
	}
	u, ok := UserFrom(r.Context())
	if !ok {
		return "no session"
	}
	token := r.Header.Get("X-CSRF-Token")
	if token == "" {
		r.Body = http.MaxBytesReader(nil, r.Body, maxCSRFFormBytes)
		token = r.PostFormValue("_csrf")
	}
	if token == "" {
		return "missing CSRF token"
	}
	if !a.validCSRF(u.SessionID, token) {
		return "CSRF token does not belong to this session"
	}
	return ""
}

// originProblem says why r did not come from one of our own pages, or "".
//
// The Origin (or Referer) is compared with PublicURL's origin, scheme and
// port included, because that is the origin our pages are served from;
// CrossOriginProtection alone would compare the Origin's host with the Host
// header, which is whatever the reverse proxy forwards and says nothing of
// the scheme. CrossOriginProtection then judges Sec-Fetch-Site, the signal
// every current browser sends: it is given the request as seen at PublicURL
// (Host and an accepted Origin in their configured form), so its own Origin
// comparison can only agree with the one above.
func (a *Authenticator) originProblem(r *http.Request) string {
	origin, sentOrigin := r.Header["Origin"]
	switch {
	case sentOrigin && (len(origin) != 1 || originOf(origin[0]) != a.publicOrigin):
		return "foreign Origin " + sanitizeIdPText(strings.Join(origin, ","), 200)
	case !sentOrigin && r.Header.Get("Referer") != "" && originOf(r.Header.Get("Referer")) != a.publicOrigin:
		return "foreign Referer origin " + sanitizeIdPText(originOf(r.Header.Get("Referer")), 200)
	}
	atPublicURL := *r
	_, atPublicURL.Host, _ = strings.Cut(a.publicOrigin, "://")
	if sentOrigin {
		atPublicURL.Header = r.Header.Clone()
		atPublicURL.Header.Set("Origin", a.publicOrigin)
	}
	if err := crossOrigin.Check(&atPublicURL); err != nil {
		return "Sec-Fetch-Site is " + sanitizeIdPText(r.Header.Get("Sec-Fetch-Site"), 32)
	}
	return ""
}

// Logout handles POST /auth/logout (behind Session; it runs CheckCSRF
// itself for signed-in requests, so mount it without). It revokes the
// session on the server until its absolute expiry, so a copied cookie stops
// working, clears the cookie, records auth.logout, and sends the browser to
// the IdP's end_session_endpoint (client_id and post_logout_redirect_uri =
// PublicURL + "/"; no id_token_hint, as we keep no tokens), or to "/" when
// the IdP has none.
//
// A browser that is not signed in (no cookie, or one Session refused and
// deleted, e.g. an expired session's "Sign out" click) is sent home: nothing
// changes, so there is no CSRF refusal page and no audit entry for what
// anonymous traffic sends.
//
// If the revocation cannot be stored (or the store cannot even say whether
// the cookie is live) the user stays signed in and is told so: a logout that
// only deleted the browser's copy would be a lie.
func (a *Authenticator) Logout() http.Handler {
	signOut := a.CheckCSRF(http.HandlerFunc(a.signOut))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		if _, ok := UserFrom(r.Context()); ok {
			signOut.ServeHTTP(w, r)
			return
		}
		if st, _ := a.readSession(r); st.keepStale {
			a.signOutFailed(w, r)
			return
		}
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
}

func (a *Authenticator) signOut(w http.ResponseWriter, r *http.Request) {
	u, _ := UserFrom(r.Context())
	until := u.IssuedAt.Add(a.cfg.AbsoluteTimeout)
	if err := a.cfg.Revocations.Revoke(r.Context(), hashID(u.SessionID), until); err != nil {
		a.log.Error("auth: revoking session at logout failed", "session", hashID(u.SessionID), "err", err)
		a.signOutFailed(w, r)
		return
	}
	_ = a.record(r, ActionLogout, u, "")
	a.log.Info("auth: signed out", "iss", u.Issuer, "sub", u.Subject, "session", hashID(u.SessionID),
		"session_age", a.now().Sub(u.IssuedAt).Round(time.Second))
	a.clearSessionCookie(w)
	http.Redirect(w, r, a.afterLogoutURL(), http.StatusSeeOther)
}

func (a *Authenticator) signOutFailed(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Retry-After", "30")
	a.render(w, r, http.StatusServiceUnavailable, "Sign-out failed",
		"hubjobs could not record your sign-out, so you are still signed in. Try again in a minute.")
}

func (a *Authenticator) afterLogoutURL() string {
	p := a.provider.Load()
	if p == nil || p.endSession == "" {
		return "/"
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return "/"
	}
	q := u.Query()
	q.Set("client_id", a.cfg.ClientID)
	q.Set("post_logout_redirect_uri", a.cfg.PublicURL+"/")
	u.RawQuery = q.Encode()
	return u.String()
}
