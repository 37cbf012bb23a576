package auth

// CONTRACT STUB — owned by the auth helper, who replaces this file with the
// real implementation. Signatures below are what web/ and handlers/ compile
// against; keep them (add freely). net/http only: no echo in this package.

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Role is a portal role.
type Role string

const (
	RoleViewer   Role = "viewer"   // read jobs
	RoleOperator Role = "operator" // viewer + cancel
	RoleAuditor  Role = "auditor"  // read the audit trail
	RoleAdmin    Role = "admin"    // all
)

// User is the signed-in person, rebuilt from the session cookie on each request.
type User struct {
	Issuer, Subject string
	Name, Email     string
	Roles           []Role   // portal roles after mapping
	ClaimValues     []string // raw values of roles_claim (hub-level operator lists match these)
	SessionID       string   // random id; revocation key; never logged raw
	IssuedAt        time.Time
}

// Can reports whether the user holds role r (admin implies all; operator implies viewer).
func (u *User) Can(r Role) bool { panic("stub") }

// RevocationStore keeps logged-out session ids until their absolute expiry.
type RevocationStore interface {
	Revoke(ctx context.Context, sessionID string, until time.Time) error
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

// Event is a security event for the audit trail: auth.login, auth.login_failed,
// auth.logout, csrf.blocked, authz.denied.
type Event struct {
	Action  string
	User    *User  // nil when unknown (failed login, anonymous CSRF)
	Reason  string // plain words, no secrets
	Request *http.Request
}

// EventSink records security events (web adapts it to the audit store).
type EventSink interface {
	Record(ctx context.Context, e Event) error
}

// ErrorRenderer writes a plain-words error page (web supplies it, using views).
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, status int, title, detail string)

// Config configures the Authenticator.
type Config struct {
	Issuer, ClientID, ClientSecret string
	Scopes                         []string
	PublicURL                      string // redirect_uri = PublicURL + "/auth/callback"
	RolesClaim                     string // dotted path; string or array claim
	RoleMap                        map[Role][]string
	SessionKeys                    [][]byte // first signs, all verify
	IdleTimeout, AbsoluteTimeout   time.Duration
	NextAllowed                    func(path string) bool // route allow-list for ?next= (web supplies)
	Revocations                    RevocationStore
	Events                         EventSink
	RenderError                    ErrorRenderer
	HTTPClient                     *http.Client
	Logger                         *slog.Logger
	Now                            func() time.Time
}

// Authenticator does OIDC login and guards routes.
type Authenticator struct{}

// New starts provider discovery in the background (retrying with backoff).
func New(ctx context.Context, cfg Config) (*Authenticator, error) { panic("stub") }

func (a *Authenticator) Ready() bool                                        { panic("stub") } // provider discovered
func (a *Authenticator) Login() http.Handler                                { panic("stub") } // GET /auth/login
func (a *Authenticator) Callback() http.Handler                             { panic("stub") } // GET /auth/callback
func (a *Authenticator) Logout() http.Handler                               { panic("stub") } // POST /auth/logout (CSRF-checked by CheckCSRF)
func (a *Authenticator) Session(next http.Handler) http.Handler             { panic("stub") } // loads user + CSRF token into ctx
func (a *Authenticator) RequireUser(next http.Handler) http.Handler         { panic("stub") } // redirect / HX-Redirect / 401
func (a *Authenticator) CheckCSRF(next http.Handler) http.Handler           { panic("stub") } // token + Fetch-Metadata/Origin
func (a *Authenticator) RequireRole(r Role, next http.Handler) http.Handler { panic("stub") } // 403 + authz.denied
func (a *Authenticator) CookieName() string                                 { panic("stub") }

// UserFrom returns the signed-in user stored by Session.
func UserFrom(ctx context.Context) (*User, bool) { panic("stub") }

// CSRFToken returns the session-bound CSRF token for the meta tag.
func CSRFToken(ctx context.Context) string { panic("stub") }

// LoginURL is the login URL that returns to next (already validated or not).
func LoginURL(next string) string { panic("stub") }
