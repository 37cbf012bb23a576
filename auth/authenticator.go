package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/oauth2"
)

// Authenticator does OIDC login and guards routes.
type Authenticator struct {
	cfg          Config
	keys         keyring
	secure       bool   // PublicURL is https
	publicOrigin string // normalised scheme://host[:port] of PublicURL
	cookieName   string
	txPrefix     string
	log          *slog.Logger
	metrics      *metrics
	provider     atomic.Pointer[provider]
	ready        chan struct{} // closed once provider is set
	decoded      decodedCookies
}

// provider is what discovery produced; immutable once stored.
type provider struct {
	issuer     string
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string // "" when the IdP offers no RP-initiated logout
}

// New validates cfg and starts provider discovery in the background,
// retrying with capped exponential back-off until it succeeds or ctx ends.
// The returned Authenticator serves sessions and guards at once; sign-in
// answers 503 until Ready.
func New(ctx context.Context, cfg Config) (*Authenticator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	keys, err := deriveKeyring(cfg.SessionKeys, cfg.AbsoluteTimeout, cfg.TransactionTTL)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	secure := strings.HasPrefix(cfg.PublicURL, "https://")
	a := &Authenticator{
		cfg:          cfg,
		keys:         keys,
		secure:       secure,
		publicOrigin: originOf(cfg.PublicURL),
		cookieName:   "hubjobs",
		txPrefix:     "hubjobs-tx-",
		log:          cfg.Logger,
		metrics:      m,
		ready:        make(chan struct{}),
	}
	if secure {
		// __Host- forces Secure, Path=/ and no Domain: a sibling subdomain
		// cannot plant or overwrite these cookies (session fixation, login CSRF).
		a.cookieName = "__Host-hubjobs"
		a.txPrefix = "__Host-hubjobs-tx-"
	}
	go a.discover(ctx)
	return a, nil
}

// Ready reports whether the provider has been discovered.
func (a *Authenticator) Ready() bool { return a.provider.Load() != nil }

// WaitReady blocks until the provider is discovered or ctx ends.
func (a *Authenticator) WaitReady(ctx context.Context) error {
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting for provider discovery: %w", ctx.Err())
	}
}

// CookieName is the session cookie's name: __Host-hubjobs on https, else hubjobs.
func (a *Authenticator) CookieName() string { return a.cookieName }

// RedirectURL is the exact redirect_uri registered at the IdP.
func (a *Authenticator) RedirectURL() string { return a.cfg.PublicURL + CallbackPath }

func (a *Authenticator) now() time.Time { return a.cfg.Now() }

func (a *Authenticator) discover(ctx context.Context) {
	wait := a.cfg.DiscoveryRetry
	for attempt := 1; ; attempt++ {
		p, err := a.discoverOnce(ctx)
		if err == nil {
			a.provider.Store(p)
			close(a.ready)
			a.log.Info("auth: identity provider discovered", "issuer", p.issuer, "attempt", attempt,
				"end_session", p.endSession != "")
			return
		}
		// Full jitter keeps many replicas from retrying in lock-step.
		sleep := wait/2 + mrand.N(wait/2+1)
		a.log.Warn("auth: identity provider discovery failed", "issuer", a.cfg.Issuer, "attempt", attempt,
			"retry_in", sleep.Round(time.Millisecond), "err", err)
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, maxDiscoveryRetry)
	}
}

// discoveryMetadata is the part of the discovery document go-oidc does not expose.
type discoveryMetadata struct {
	EndSession       string   `json:"end_session_endpoint"`
	TokenAuthMethods []string `json:"token_endpoint_auth_methods_supported"`
}

func (a *Authenticator) discoverOnce(ctx context.Context) (*provider, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// go-oidc keeps this client (not ctx) for its JWKS fetches, so later
	// key refreshes keep the timeout and outlive this call.
	op, err := oidc.NewProvider(oidc.ClientContext(ctx, a.cfg.HTTPClient), a.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	var meta discoveryMetadata
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read discovery metadata: %w", err)
	}
	endpoint := op.Endpoint()
	// An explicit auth style: AutoDetect would resend a refused code with the
	// other style, and a code must never be redeemed twice.
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.TokenAuthMethods) > 0 && !slices.Contains(meta.TokenAuthMethods, "client_secret_basic") &&
		slices.Contains(meta.TokenAuthMethods, "client_secret_post") {
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	if meta.EndSession != "" {
		if u, err := url.Parse(meta.EndSession); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			a.log.Warn("auth: ignoring malformed end_session_endpoint", "err", err)
			meta.EndSession = ""
		}
	}
	return &provider{
		issuer: a.cfg.Issuer,
		oauth: oauth2.Config{
			ClientID:     a.cfg.ClientID,
			ClientSecret: a.cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  a.RedirectURL(),
			Scopes:       a.cfg.Scopes,
		},
		// Verify checks signature (algorithms from discovery, asymmetric only),
		// iss, aud ∋ client_id, exp and nbf against our clock. Nonce and azp
		// are checked by the callback.
		verifier:   op.Verifier(&oidc.Config{ClientID: a.cfg.ClientID, Now: a.cfg.Now}),
		endSession: meta.EndSession,
	}, nil
}

// record sends a security event to the sink; the error is logged here and
// returned for the one caller that must act on it (sign-in).
func (a *Authenticator) record(r *http.Request, action string, u *User, reason string) error {
	err := a.cfg.Events.Record(r.Context(), Event{Action: action, User: u, Reason: reason, Request: r})
	if err != nil {
		a.log.Error("auth: recording security event failed", "action", action, "err", err)
	}
	return err
}

// metrics are optional: without a Registerer they count into nothing visible.
type metrics struct {
	sessionsStarted  prometheus.Counter
	loginFailures    *prometheus.CounterVec
	sessionsRejected *prometheus.CounterVec
	csrfBlocked      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessionsStarted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubjobs_auth_sessions_started_total", Help: "Sessions issued after a successful sign-in."}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_auth_login_failures_total", Help: "Failed sign-ins by reason."}, []string{"reason"}),
		sessionsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hubjobs_auth_sessions_rejected_total", Help: "Session cookies refused by reason (invalid, expired, revoked)."}, []string{"reason"}),
		csrfBlocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubjobs_auth_csrf_blocked_total", Help: "State-changing requests refused by the CSRF check."}),
	}
	if reg == nil {
		return m, nil
	}
	var errs [4]error
	m.sessionsStarted, errs[0] = registerOrReuse(reg, m.sessionsStarted)
	m.loginFailures, errs[1] = registerOrReuse(reg, m.loginFailures)
	m.sessionsRejected, errs[2] = registerOrReuse(reg, m.sessionsRejected)
	m.csrfBlocked, errs[3] = registerOrReuse(reg, m.csrfBlocked)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("auth: register metrics: %w", err)
	}
	return m, nil
}

// registerOrReuse registers c with reg or, when a collector of the same type
// is already registered under the same name, returns that one, so that two
// instances on one registry share their series instead of failing. It is the
// metrics rule of docs/contract.md, which says why each package has a copy.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// randomToken is n bytes from crypto/rand, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashParam is what the IdP sees of our state and nonce: SHA-256 of the raw
// value, base64url. Only the browser's encrypted cookie holds the raw value.
func hashParam(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// hashID is how a session id appears outside its cookie: in logs, events
// and the revocation store.
func hashID(id string) string {
	sum := sha256.Sum256([]byte("hubjobs-session-id|" + id))
	return hex.EncodeToString(sum[:])
}

// noStore keeps sign-in responses (which carry cookies) out of every cache.
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}

// originOf normalises an absolute URL to scheme://host[:port], lower-cased
// and without a default port, so that origins compare as whole strings.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return ""
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	host = strings.TrimSuffix(host, map[string]string{"https": ":443", "http": ":80"}[scheme])
	return scheme + "://" + host
}

var errNoSession = errors.New("auth: no session")
