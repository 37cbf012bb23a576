package auth

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/prometheus/client_golang/prometheus"
)

// RevocationStore keeps logged-out session ids until their absolute expiry.
//
// The ids this package passes are already hashed (see README "Revocation"):
// a leaked revocation table names no live session. The store is also used to
// make login transactions single-use on the server ("tx:"-prefixed keys).
type RevocationStore interface {
	Revoke(ctx context.Context, sessionID string, until time.Time) error
	IsRevoked(ctx context.Context, sessionID string) (bool, error)
}

// Event is a security event for the audit trail: auth.login, auth.login_failed,
// auth.logout, csrf.blocked, authz.denied.
//
// User.SessionID is the raw session id: never store or log it (auth logs
// only its SHA-256, see hashID).
// Reason never holds codes, state, nonces, tokens, cookies or secrets; text
// from the IdP in it is sanitised (no control characters) and truncated.
type Event struct {
	Action  string
	User    *User  // nil when unknown (failed login, anonymous CSRF)
	Reason  string // plain words, no secrets
	Request *http.Request
}

// Event actions, as the audit trail records them (audit/README.md).
const (
	ActionLogin       = "auth.login"
	ActionLoginFailed = "auth.login_failed"
	ActionLogout      = "auth.logout"
	ActionCSRFBlocked = "csrf.blocked"
	ActionAuthzDenied = "authz.denied"
)

// EventSink records security events (web adapts it to the audit store).
type EventSink interface {
	Record(ctx context.Context, e Event) error
}

// ErrorRenderer writes a plain-words error page (web supplies it, using views).
type ErrorRenderer func(w http.ResponseWriter, r *http.Request, status int, title, detail string)

// RetryRenderer writes an error page that offers one link to start again
// (an expired or foreign sign-in). Optional: without it the retry URL is
// appended to the detail text given to RenderError.
type RetryRenderer func(w http.ResponseWriter, r *http.Request, status int, title, detail, retryURL string)

// Config configures the Authenticator.
//
// The values that come from the operator's config file arrive validated by
// package config (an http(s) origin, a well-formed claim path, known roles
// with non-blank values, idle ≤ absolute timeout) and are not checked again
// here. New still refuses what would make sign-in unsafe whoever builds the
// Config (tests and tools do too): missing issuer or client id, session keys
// shorter than 32 bytes, and no revocation store or event sink.
type Config struct {
	Issuer, ClientID, ClientSecret string
	Scopes                         []string               // default openid, profile, email; openid is always added
	PublicURL                      string                 // an origin without a trailing slash; redirect_uri = PublicURL + "/auth/callback"
	RolesClaim                     string                 // dotted path; string or array claim; default "roles"
	RoleMap                        map[Role][]string      // roles outside knownRoles and blank values grant nothing
	SessionKeys                    [][]byte               // ≥ 32 bytes each; first signs, all verify
	IdleTimeout, AbsoluteTimeout   time.Duration          // default 30m and 8h; idle ≤ absolute
	NextAllowed                    func(path string) bool // route allow-list for ?next= (web supplies); nil: only "/"
	Revocations                    RevocationStore        // required
	Events                         EventSink              // required: a sign-in that cannot be audited is refused
	RenderError                    ErrorRenderer          // nil: a minimal built-in page
	RenderRetry                    RetryRenderer          // optional, see RetryRenderer
	HTTPClient                     *http.Client           // for discovery, JWKS and the token call; default 10 s timeout
	Logger                         *slog.Logger
	Now                            func() time.Time
	Registerer                     prometheus.Registerer // optional metrics

	ExchangeTimeout time.Duration // bound on the code exchange; default 10 s
	TransactionTTL  time.Duration // how long a started sign-in may take; default 10 min
	DiscoveryRetry  time.Duration // first back-off after a failed discovery; default 1 s, doubling to 1 min
}

// Defaults.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 8 * time.Hour
	DefaultExchangeTimeout = 10 * time.Second
	DefaultTransactionTTL  = 10 * time.Minute
	DefaultDiscoveryRetry  = time.Second
	maxDiscoveryRetry      = time.Minute
	minKeyLen              = 32
)

// ErrConfig marks a configuration problem; the message names the field.
var ErrConfig = errors.New("auth: invalid config")

// withDefaults fills unset optional fields and checks the rest, reporting
// every problem at once.
func (c Config) withDefaults() (Config, error) {
	var problems []error
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...))
	}
	if c.Issuer == "" {
		bad("Issuer is required")
	}
	if c.ClientID == "" {
		bad("ClientID is required")
	}
	if len(c.SessionKeys) == 0 {
		bad("SessionKeys needs at least one key")
	}
	for i, k := range c.SessionKeys {
		if len(k) < minKeyLen {
			bad("SessionKeys[%d] is %d bytes, need at least %d random bytes", i, len(k), minKeyLen)
		}
	}
	if c.Revocations == nil {
		bad("Revocations is required: logout must make the old cookie useless")
	}
	if c.Events == nil {
		bad("Events is required: every sign-in must be audited")
	}
	if c.RolesClaim == "" {
		c.RolesClaim = "roles"
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email"}
	}
	if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	c.IdleTimeout = orDefault(c.IdleTimeout, DefaultIdleTimeout)
	c.AbsoluteTimeout = orDefault(c.AbsoluteTimeout, DefaultAbsoluteTimeout)
	c.ExchangeTimeout = orDefault(c.ExchangeTimeout, DefaultExchangeTimeout)
	c.TransactionTTL = orDefault(c.TransactionTTL, DefaultTransactionTTL)
	c.DiscoveryRetry = orDefault(c.DiscoveryRetry, DefaultDiscoveryRetry)
	if c.NextAllowed == nil {
		c.NextAllowed = allowedNextPath
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, errors.Join(problems...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// keyring holds the keys derived from Config.SessionKeys. Every purpose gets
// its own keys (HKDF-SHA256 with a purpose label), so the session cookie,
// the login-transaction cookie and the CSRF tokens never share key material
// even though operators configure one secret per rotation step.
type keyring struct {
	session []securecookie.Codec // [0] encodes; all decode
	tx      []securecookie.Codec
	csrf    [][]byte // [0] mints; all verify
}

const (
	labelSessionMAC = "hubjobs/session/mac/v1"
	labelSessionEnc = "hubjobs/session/enc/v1"
	labelTxMAC      = "hubjobs/login-tx/mac/v1"
	labelTxEnc      = "hubjobs/login-tx/enc/v1"
	labelCSRF       = "hubjobs/csrf/v1"
)

func deriveKeyring(master [][]byte, sessionMaxAge, txMaxAge time.Duration) (keyring, error) {
	var kr keyring
	for _, m := range master {
		derive := func(label string, n int) ([]byte, error) { return hkdf.Key(sha256.New, m, nil, label, n) }
		sMAC, err1 := derive(labelSessionMAC, 64)
		sEnc, err2 := derive(labelSessionEnc, 32)
		tMAC, err3 := derive(labelTxMAC, 64)
		tEnc, err4 := derive(labelTxEnc, 32)
		csrf, err5 := derive(labelCSRF, 32)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			return keyring{}, fmt.Errorf("auth: derive keys: %w", err)
		}
		kr.session = append(kr.session, newCodec(sMAC, sEnc, sessionMaxAge))
		kr.tx = append(kr.tx, newCodec(tMAC, tEnc, txMaxAge))
		kr.csrf = append(kr.csrf, csrf)
	}
	return kr, nil
}

// newCodec is a securecookie codec (AES-256-CTR then HMAC-SHA256) carrying
// bytes we serialise ourselves. Its own timestamp check, on the wall clock,
// is only an outer bound: the real timeouts are checked against Config.Now
// from timestamps inside the payload.
func newCodec(mac, enc []byte, maxAge time.Duration) securecookie.Codec {
	return securecookie.New(mac, enc).
		MaxAge(int(maxAge / time.Second)).
		MaxLength(maxCookieBytes).
		SetSerializer(securecookie.NopEncoder{})
}
