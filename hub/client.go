// Package hub is hubjobs' client for the Azure IoT Hub scheduled-jobs data
// plane (api-version 2021-04-12), written to how the hub behaves on the wire
// rather than to its swagger: bare-array query pages paged through x-ms-*
// headers, 200 {"status":"unknown"} meaning "no such job", both error body
// formats, lenient timestamps, and a cancel that is never blindly re-sent.
//
// Client speaks to one hub; Budgeted wraps it with the portal's traffic
// budget (coalescing, a short TTL, a token bucket, stale data when spent).
package hub

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version names this build in the User-Agent ("hubjobs/<Version>");
// cmd/hubjobs sets it from its own version before building clients.
var Version = "dev"

// APIVersion is the data-plane api-version every request carries: the
// documented stable one, used by the C# and Node SDKs.
const APIVersion = "2021-04-12"

const apiVersionQuery = "api-version=" + APIVersion

// Defaults for Config's zero values. The attempt timeout and call budget
// follow the security reference (≈10 s per attempt, ≤25 s in all, ending
// before the portal's own write timeout).
const (
	DefaultAttemptTimeout   = 10 * time.Second
	DefaultCallBudget       = 25 * time.Second
	DefaultReconcileTimeout = 5 * time.Second
	DefaultMaxAttempts      = 4
	DefaultBackoff          = 500 * time.Millisecond
	DefaultThrottleBackoff  = 2 * time.Second
	DefaultMaxBackoff       = 10 * time.Second
	DefaultMaxResponseBytes = 4 << 20
)

// Config configures a Client. Zero values get sensible defaults.
type Config struct {
	Host           string       // e.g. myhub.azure-devices.net
	Endpoint       string       // optional base-URL override, e.g. http://127.0.0.1:9000 (simulator)
	Credential     Credential   // required
	HTTPClient     *http.Client // optional; redirects are never followed
	AttemptTimeout time.Duration
	CallBudget     time.Duration
	MaxAttempts    int
	UserAgent      string // defaults to "hubjobs/<version>"

	// HubName labels metrics (the config's hub name); defaults to Host.
	HubName string
	// Metrics records calls, latency, 429s and retries; nil records nothing.
	Metrics *Metrics
	// MaxResponseBytes caps a success body; a larger one is an error
	// (ErrResponseTooLarge), never silently truncated JSON. Default 4 MiB.
	MaxResponseBytes int64
	// ReconcileTimeout is what a write whose outcome is unknown keeps of
	// its CallBudget for the reconciling GET, so that the whole call still
	// ends within CallBudget. Default 5 s.
	ReconcileTimeout time.Duration
	// Backoff is the first retry delay after a transport failure or 5xx,
	// doubled per attempt up to MaxBackoff; ThrottleBackoff is the first
	// delay after a 429 without Retry-After (the hub often sends none, and
	// retrying a throttled hub within a second only feeds the throttle).
	Backoff, ThrottleBackoff, MaxBackoff time.Duration
	// Sleep waits d or until ctx ends; nil is a real timer. Tests inject
	// one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter turns a nominal backoff into the actual wait; nil draws
	// uniformly from [d/2, d) ("equal jitter": spreads clients apart yet
	// never retries at once).
	Jitter func(d time.Duration) time.Duration
	// BreakerThreshold is how many calls in a row may fail without a usable
	// answer from the hub (no connection, a timeout, a 5xx; after retries)
	// before calls fail fast with a *BreakerError for BreakerCooldown; then
	// one probe call decides. 0 means DefaultBreakerThreshold, negative
	// turns the breaker off. Defaults 5 and 30 s.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// Now is the breaker's clock; nil is time.Now.
	Now func() time.Time
}

// Client talks to one hub's jobs API. It is safe for concurrent use.
type Client struct {
	cfg     Config
	base    string // scheme://host[:port][/prefix], no trailing slash
	hc      *http.Client
	breaker *breaker
}

// New validates cfg and builds a Client; it sends nothing.
func New(cfg Config) (*Client, error) {
	if cfg.Credential == nil {
		return nil, fmt.Errorf("%w: hub client needs a Credential", ErrInvalidRequest)
	}
	base, err := baseURL(cfg.Host, cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		u, _ := url.Parse(base)
		cfg.Host = u.Host
	}
	setDefaults(&cfg)
	return &Client{cfg: cfg, base: base, hc: httpClient(cfg),
		breaker: &breaker{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, now: cfg.Now}}, nil
}

// NewFromConnectionString is New with SAS credentials from a connection
// string; cfg.Host and cfg.Credential are filled from it.
func NewFromConnectionString(connString string, cfg Config) (*Client, error) {
	cs, err := ParseConnectionString(connString)
	if err != nil {
		return nil, err
	}
	cred, err := NewSASCredential(cs)
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Credential = cs.HostName, cred
	return New(cfg)
}

func baseURL(host, endpoint string) (string, error) {
	if endpoint == "" {
		if host == "" {
			return "", fmt.Errorf("%w: hub client needs a Host or an Endpoint", ErrInvalidRequest)
		}
		if !validHostName(host) {
			return "", fmt.Errorf("%w: hub host %q is not a host name", ErrInvalidRequest, clip(host, 80))
		}
		return "https://" + host, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: hub endpoint %q must be an http(s) URL with a host and no query", ErrInvalidRequest, clip(endpoint, 80))
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

func setDefaults(cfg *Config) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.AttemptTimeout, DefaultAttemptTimeout)
	def(&cfg.CallBudget, DefaultCallBudget)
	def(&cfg.ReconcileTimeout, DefaultReconcileTimeout)
	def(&cfg.Backoff, DefaultBackoff)
	def(&cfg.ThrottleBackoff, DefaultThrottleBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.BreakerCooldown, DefaultBreakerCooldown)
	if cfg.BreakerThreshold == 0 {
		cfg.BreakerThreshold = DefaultBreakerThreshold
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReconcileTimeout >= cfg.CallBudget {
		cfg.ReconcileTimeout = cfg.CallBudget / 4
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "hubjobs/" + Version
	}
	if cfg.HubName == "" {
		cfg.HubName = cfg.Host
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleep
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration { return d/2 + rand.N(d/2+1) }
	}
}

// httpClient copies the caller's client (never mutating it) or builds one,
// and in both cases refuses redirects: a 3xx from "the hub" is a
// misconfiguration or an attack, and following it would send the
// Authorization header's target elsewhere (ASVS 15.3.2).
func httpClient(cfg Config) *http.Client {
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.ResponseHeaderTimeout = cfg.AttemptTimeout
		tr.MaxIdleConnsPerHost = 32
		hc.Transport = tr
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

// Host is the hub's host name (from Config.Host, or the Endpoint's host).
func (c *Client) Host() string { return c.cfg.Host }

// HubName is the name metrics carry for this hub.
func (c *Client) HubName() string { return c.cfg.HubName }
