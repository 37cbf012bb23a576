package auth

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"unicode"
)

// Sign-in failures. Each maps to one page and one metric/audit reason in
// describeFailure; wrap them with %w to add detail for the log.
var (
	ErrNotReady              = errors.New("auth: identity provider not discovered yet")
	ErrTransactionMissing    = errors.New("auth: sign-in transaction missing or expired")
	ErrTransactionReplayed   = errors.New("auth: sign-in transaction already used")
	ErrStateMismatch         = errors.New("auth: state does not match the sign-in transaction")
	ErrIssuerMismatch        = errors.New("auth: response from an unexpected issuer")
	ErrMissingCode           = errors.New("auth: callback without an authorization code")
	ErrExchange              = errors.New("auth: authorization code exchange failed")
	ErrIdPUnavailable        = errors.New("auth: identity provider unreachable, failing or too slow")
	ErrIDToken               = errors.New("auth: ID token rejected")
	ErrNonceMismatch         = errors.New("auth: ID token nonce does not match the sign-in transaction")
	ErrAuthorizedParty       = errors.New("auth: ID token azp is not this client")
	ErrAuditUnavailable      = errors.New("auth: sign-in could not be recorded in the audit trail")
	ErrRevocationUnavailable = errors.New("auth: revocation store unavailable")
	ErrSessionTooLarge       = errors.New("auth: session does not fit in a cookie")
)

// IdPError is an error response at the callback (error=…&error_description=…).
// Anyone can send a browser to the callback with any such text, so what the
// page shows and the metrics count is limited: the code only when it is a
// registered OAuth 2.0 / OpenID Connect error code, the description only
// when the response carried the state of a sign-in this browser started
// (Verified). Otherwise our origin would display an attacker's words
// ("call the help desk at …") and every invented code would mint a new
// metric series. Both fields are sanitised and truncated; the log keeps them.
type IdPError struct {
	Code, Description string
	Verified          bool
}

// registeredIdPErrors are the authorization error codes of RFC 6749
// §4.1.2.1 and OpenID Connect Core §3.1.2.6.
var registeredIdPErrors = map[string]bool{
	"invalid_request": true, "unauthorized_client": true, "access_denied": true, "unsupported_response_type": true,
	"invalid_scope": true, "server_error": true, "temporarily_unavailable": true,
	"interaction_required": true, "login_required": true, "account_selection_required": true, "consent_required": true,
	"invalid_request_uri": true, "invalid_request_object": true, "request_not_supported": true,
	"request_uri_not_supported": true, "registration_not_supported": true,
}

func (e *IdPError) Error() string {
	return fmt.Sprintf("auth: identity provider returned error %q: %s", e.Code, e.Description)
}

// NoAccessError means the ID token verified but none of its role-claim
// values maps to a portal role (deny by default).
type NoAccessError struct {
	User   *User             // who tried (for the audit trail)
	Claim  string            // the configured roles claim
	Grants map[Role][]string // the claim values that would grant each role
}

func (e *NoAccessError) Error() string {
	return fmt.Sprintf("auth: no role-claim value of %q maps to a portal role (got %q)", e.Claim, e.User.ClaimValues)
}

// failure is how one sign-in error is shown, counted and audited.
type failure struct {
	status        int
	title, detail string
	reason        string // metric label and audit reason prefix: short, fixed, no secrets
	retry         bool   // offer a link that starts a fresh sign-in
	user          *User
}

// describeFailure is the one place that turns a sign-in error into a status
// and plain words.
func describeFailure(err error) failure {
	var idp *IdPError
	var noAccess *NoAccessError
	switch {
	case errors.As(err, &idp):
		detail, reason := "The identity provider refused the sign-in.", "identity provider returned an unrecognised error"
		if registeredIdPErrors[idp.Code] {
			detail = "The identity provider refused the sign-in (" + idp.Code + ")."
			reason = "identity provider returned error " + idp.Code
		}
		if idp.Verified && idp.Description != "" {
			detail += " It said: " + idp.Description
		}
		return failure{status: http.StatusForbidden, title: "Sign-in failed", detail: detail, reason: reason, retry: true}
	case errors.As(err, &noAccess):
		return failure{status: http.StatusForbidden, title: "No access", detail: noAccess.explain(),
			reason: "no mapped role", user: noAccess.User}
	case errors.Is(err, ErrNotReady):
		return failure{status: http.StatusServiceUnavailable, title: "Identity provider unreachable",
			detail: "Sign-in is not possible right now because the identity provider cannot be reached. Try again in a minute.",
			reason: "identity provider unreachable"}
	case errors.Is(err, ErrIdPUnavailable):
		return failure{status: http.StatusServiceUnavailable, title: "Identity provider unreachable",
			detail: "The identity provider did not answer (or failed) while completing your sign-in. Try again in a minute.",
			reason: "identity provider unreachable", retry: true}
	case errors.Is(err, ErrTransactionMissing):
		return failure{status: http.StatusBadRequest, title: "Sign-in expired",
			detail: "This sign-in took too long, was started in another browser or tab that has since been replaced, or your browser did not keep its cookie. Try again.",
			reason: "sign-in transaction missing or expired", retry: true}
	case errors.Is(err, ErrTransactionReplayed):
		return failure{status: http.StatusBadRequest, title: "Sign-in expired",
			detail: "This sign-in response was already used. Try again.",
			reason: "sign-in transaction replayed", retry: true}
	case errors.Is(err, ErrStateMismatch), errors.Is(err, ErrIssuerMismatch):
		return failure{status: http.StatusForbidden, title: "Sign-in failed",
			detail: "The sign-in response does not belong to the sign-in this browser started. Try again.",
			reason: "state or issuer mismatch", retry: true}
	case errors.Is(err, ErrMissingCode):
		return failure{status: http.StatusBadRequest, title: "Sign-in failed",
			detail: "The identity provider sent no authorization code. Try again.",
			reason: "missing authorization code", retry: true}
	case errors.Is(err, ErrExchange):
		return failure{status: http.StatusBadGateway, title: "Sign-in failed",
			detail: "The identity provider did not complete the sign-in. Try again.",
			reason: "code exchange failed", retry: true}
	case errors.Is(err, ErrIDToken), errors.Is(err, ErrNonceMismatch), errors.Is(err, ErrAuthorizedParty):
		return failure{status: http.StatusForbidden, title: "Sign-in failed",
			detail: "The identity provider's answer could not be verified. Try again; if it keeps happening, tell your administrator.",
			reason: "ID token rejected", retry: true}
	case errors.Is(err, ErrAuditUnavailable), errors.Is(err, ErrRevocationUnavailable):
		return failure{status: http.StatusServiceUnavailable, title: "Sign-in unavailable",
			detail: "Sign-ins are recorded in the audit trail, which cannot be written right now. Try again in a minute.",
			reason: "audit or revocation store unavailable"}
	case errors.Is(err, ErrSessionTooLarge):
		return failure{status: http.StatusInternalServerError, title: "Sign-in failed",
			detail: "Your account carries more role or group values than fit in a session. Ask your administrator to emit only the values hubjobs uses.",
			reason: "session too large"}
	}
	return failure{status: http.StatusInternalServerError, title: "Sign-in failed",
		detail: "Something went wrong while signing you in. Try again.", reason: "internal error", retry: true}
}

// explain says which claim and values would grant access, so that the user
// can ask for the right assignment.
func (e *NoAccessError) explain() string {
	var grants []string
	for _, r := range knownRoles {
		if vals := e.Grants[r]; len(vals) > 0 {
			grants = append(grants, fmt.Sprintf("%s for %s", strings.Join(quoteAll(vals), " or "), r))
		}
	}
	got := "no values"
	if len(e.User.ClaimValues) > 0 {
		got = "the values " + strings.Join(quoteAll(e.User.ClaimValues), ", ")
	}
	return fmt.Sprintf("You signed in, but your account has no hubjobs role. Access is granted through the %q claim: %s. Your sign-in carried %s (values match exactly, including case). Ask your administrator for one of these assignments.",
		e.Claim, strings.Join(grants, "; "), got)
}

func quoteAll(vals []string) []string {
	out := slices.Clone(vals)
	for i, v := range out {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// sanitizeIdPText makes text that someone outside chose (an IdP's error
// and description, a name claim, a request header) safe to show and log:
//   - control characters and line or paragraph separators become a space,
//     so a log line cannot be forged and a page cannot be re-flowed;
//   - format characters (Unicode category Cf: the bidi embeddings,
//     overrides and isolates U+202A–U+202E and U+2066–U+2069, the marks
//     U+200E, U+200F and U+061C, zero-width characters, the BOM, tag
//     characters) are dropped: a right-to-left override makes
//     "\u202Egnp.exe" read as "exe.png", and zero-width characters make two
//     different texts look the same;
//   - invalid UTF-8 becomes U+FFFD;
//   - at most n runes are kept, then "…".
func sanitizeIdPText(s string, n int) string {
	var b strings.Builder
	b.Grow(min(len(s), 4*n+3))
	count := 0
	for _, r := range s {
		switch {
		case unicode.Is(unicode.Cf, r):
			continue
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029':
			r = ' '
		}
		if count == n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		count++
	}
	return b.String()
}

// builtinPage is the fallback error page when web supplies no renderer: it
// escapes everything and loads nothing from anywhere.
var builtinPage = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}} · hubjobs</title></head>
<body><main><h1>{{.Title}}</h1><p>{{.Detail}}</p>{{if .Retry}}<p><a href="{{.Retry}}">Sign in again</a></p>{{end}}</main></body></html>
`))

func renderBuiltin(w http.ResponseWriter, status int, title, detail, retryURL string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = builtinPage.Execute(w, struct{ Title, Detail, Retry string }{title, detail, retryURL})
}

// render writes an error page through the configured renderer.
func (a *Authenticator) render(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	if a.cfg.RenderError != nil {
		a.cfg.RenderError(w, r, status, title, detail)
		return
	}
	renderBuiltin(w, status, title, detail, "")
}

// renderRetry writes an error page with one link that starts a fresh
// sign-in. The link is never followed automatically, so a browser that
// drops our cookies cannot loop.
func (a *Authenticator) renderRetry(w http.ResponseWriter, r *http.Request, status int, title, detail, retryURL string) {
	switch {
	case a.cfg.RenderRetry != nil:
		a.cfg.RenderRetry(w, r, status, title, detail, retryURL)
	case a.cfg.RenderError != nil:
		a.cfg.RenderError(w, r, status, title, detail+" Sign in again: "+retryURL)
	default:
		renderBuiltin(w, status, title, detail, retryURL)
	}
}
