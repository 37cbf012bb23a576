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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
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

// errorBodyLimit caps how much of an error body is read: enough for any
// real IoT Hub error, small enough that a proxy's giant page costs nothing.
const errorBodyLimit = 64 << 10

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

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Host is the hub's host name (from Config.Host, or the Endpoint's host).
func (c *Client) Host() string { return c.cfg.Host }

// HubName is the name metrics carry for this hub.
func (c *Client) HubName() string { return c.cfg.HubName }

// ValidJobID reports whether id is safe to put in a hub URL and a query:
// [A-Za-z0-9_-], 1..128 characters. IoT Hub documents no job-id rule (the
// SDKs use GUIDs), so this is a conservative assumption: it admits every
// id the portal's own tools create and nothing that could change a path or
// a query. Widen it only deliberately.
func ValidJobID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z') {
			return false
		}
	}
	return true
}

// CheckJobID is ValidJobID as an error naming the rule, for callers that
// show the reason to a person. The id is quoted and clipped in the message.
func CheckJobID(id string) error {
	if ValidJobID(id) {
		return nil
	}
	what := fmt.Sprintf("%q", clip(id, 40))
	if id == "" {
		what = "(empty)"
	} else if len(id) > 128 {
		what += fmt.Sprintf(" (%d characters)", len(id))
	}
	return fmt.Errorf("%w %s: a job id is 1 to 128 characters, each a letter, a digit, '-' or '_'", ErrInvalidJobID, what)
}

// GetJob fetches one job. A 200 whose body says status "unknown" is
// ErrNotFound (see Job.absent).
func (c *Client) GetJob(ctx context.Context, id string) (*Job, error) {
	return observe(c, "GetJob", func() (*Job, error) { return c.getJob(ctx, id) })
}

func (c *Client) getJob(ctx context.Context, id string) (*Job, error) {
	const op = "GetJob"
	if err := CheckJobID(id); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/jobs/v2/" + id})
	if err != nil {
		return nil, err
	}
	job, err := decodeJob(op, resp)
	if err != nil {
		return nil, err
	}
	if err := checkAnswer(op, id, job, ""); err != nil {
		return nil, err
	}
	return job, nil
}

// CancelJob cancels a queued, enqueued or scheduled job and returns the
// hub's view of it (status "cancelled"). A running job answers
// ErrNotCancellable.
//
// The POST is not idempotent on the wire, so it is never re-sent once the
// hub may have acted on it: after a timeout, a lost connection, a 408, a
// 5xx, or a 2xx that is unreadable, too large, about another job or not
// saying "cancelled", CancelJob instead asks the hub for the job (a GET) and
// returns what the GET saw together with an error wrapping
// ErrOutcomeUnknown; the job is nil when the GET failed too. Callers decide
// from the reconciled status ("cancelled" means it took). So a nil error
// always comes with a job whose status is "cancelled". Failures where the
// hub certainly did not act (no connection made, 429) are retried like any
// other call.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	return observe(c, "CancelJob", func() (*Job, error) {
		const op = "CancelJob"
		if err := CheckJobID(id); err != nil {
			return nil, err
		}
		return c.write(ctx, id, request{op: op, method: http.MethodPost, path: "/jobs/v2/" + id + "/cancel", write: true}, StatusCancelled)
	})
}

// CreateJob schedules a method or twin-update job (PUT /jobs/v2/{id}). The
// hub answers with a minimal body ({"jobId","type","status":"queued"}).
// Like CancelJob it is never re-sent once the hub may have acted (a second
// PUT would meet JobAlreadyExists); an unknown outcome is reconciled by GET.
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	return observe(c, "CreateJob", func() (*Job, error) {
		const op = "CreateJob"
		if err := validateJobRequest(&req); err != nil {
			return nil, err
		}
		body, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding job %s: %w", ErrInvalidRequest, req.JobID, err)
		}
		return c.write(ctx, req.JobID, request{op: op, method: http.MethodPut, path: "/jobs/v2/" + req.JobID, body: body, write: true}, "")
	})
}

// validateJobRequest checks what the hub would reject with a vague 400, and
// fills the one field the hub insists on (etag "*" for twin updates). req
// is the caller's copy, so the caller's struct is not changed.
func validateJobRequest(req *JobRequest) error {
	if err := CheckJobID(req.JobID); err != nil {
		return err
	}
	var problems []string
	switch req.Type {
	case TypeScheduleDeviceMethod:
		if req.CloudToDeviceMethod == nil || req.CloudToDeviceMethod.MethodName == "" {
			problems = append(problems, "a method job needs cloudToDeviceMethod.methodName")
		}
	case TypeScheduleUpdateTwin:
		if req.UpdateTwin == nil {
			problems = append(problems, "a twin job needs updateTwin")
		} else if req.UpdateTwin.ETag == "" {
			twin := *req.UpdateTwin
			twin.ETag = "*"
			req.UpdateTwin = &twin
		} else if req.UpdateTwin.ETag != "*" {
			problems = append(problems, `updateTwin.etag must be "*" (the hub only takes forced updates)`)
		}
	default:
		problems = append(problems, fmt.Sprintf("type %q is not %s or %s", clip(string(req.Type), 40), TypeScheduleDeviceMethod, TypeScheduleUpdateTwin))
	}
	if strings.TrimSpace(req.QueryCondition) == "" {
		problems = append(problems, `queryCondition is empty (use "*" for all devices)`)
	}
	if req.MaxExecutionTimeInSeconds < 0 {
		problems = append(problems, "maxExecutionTimeInSeconds is negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: job %s: %s", ErrInvalidRequest, req.JobID, strings.Join(problems, "; "))
	}
	return nil
}

// write runs a non-idempotent request and reconciles an unknown outcome.
// A 2xx counts as the answer only when it is about job id and, when want is
// set, shows that status; anything else is an outcome to reconcile.
func (c *Client) write(ctx context.Context, id string, r request, want JobStatus) (*Job, error) {
	resp, err := c.do(ctx, r)
	if err == nil {
		var job *Job
		job, err = decodeJob(r.op, resp)
		if err == nil {
			err = checkAnswer(r.op, id, job, want)
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			return job, err
		}
		// A 2xx we cannot trust: the hub acted, but on what we cannot say.
		err = fmt.Errorf("%w: %s answered %d but %w", ErrOutcomeUnknown, r.op, resp.status, err)
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		return nil, err
	}
	return c.reconcile(ctx, id, err)
}

// checkAnswer refuses a decoded job that is not the answer asked for: one
// about another job (a misrouted or cached answer), or, when want is set,
// one in another status. A cancel's 200 with status "queued", or a status
// no version of the hub has spelled, is never reported as a cancel.
func checkAnswer(op, id string, job *Job, want JobStatus) error {
	if job.JobID != "" && job.JobID != id {
		return fmt.Errorf("IoT Hub %s: %w: the answer is about job %q", op, ErrBadResponse, clip(plain(job.JobID), 40))
	}
	if want != "" && job.Status != want {
		return fmt.Errorf("IoT Hub %s: %w: status %q where %q was expected", op, ErrBadResponse, clip(plain(string(job.Status)), 40), want)
	}
	return nil
}

// reconcile asks the hub for the job after a write whose outcome is
// unknown. It runs detached from the caller's cancellation (the audit
// trail needs the outcome even when the browser went away) and within
// ReconcileTimeout, which the write left unspent.
func (c *Client) reconcile(ctx context.Context, id string, cause error) (*Job, error) {
	rctx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), breakerBypass{}, true), c.cfg.ReconcileTimeout)
	defer cancel()
	job, err := c.GetJob(rctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w; the reconciling GET failed too: %w", cause, err)
	}
	return job, cause
}

// QueryJobs lists one page of jobs, newest first as the hub orders them.
// The hub answers a bare JSON array (not the swagger's QueryResult) and
// pages through the x-ms-continuation header; both an absent and an empty
// header mean this is the last page.
func (c *Client) QueryJobs(ctx context.Context, o QueryJobsOptions) (*JobsPage, error) {
	return observe(c, "QueryJobs", func() (*JobsPage, error) {
		const op = "QueryJobs"
		q := url.Values{}
		for _, f := range []struct{ name, value string }{{"jobType", string(o.Type)}, {"jobStatus", string(o.Status)}} {
			if f.value == "" {
				continue
			}
			if !validEnumFilter(f.value) {
				return nil, fmt.Errorf("%w: %s filter %q is not a name of letters", ErrInvalidRequest, f.name, clip(f.value, 40))
			}
			q.Set(f.name, f.value)
		}
		h, err := pagingHeaders(PageOptions{PageSize: o.PageSize, Continuation: o.Continuation})
		if err != nil {
			return nil, err
		}
		resp, err := c.do(ctx, request{op: op, method: http.MethodGet, path: "/jobs/v2/query", query: q, header: h})
		if err != nil {
			return nil, err
		}
		jobs, err := decodePage[Job](op, resp)
		if err != nil {
			return nil, err
		}
		return &JobsPage{Jobs: jobs, Continuation: resp.header.Get("x-ms-continuation")}, nil
	})
}

// QueryDeviceJobs lists one page of per-device results of a job through
// POST /devices/query (SELECT * FROM devices.jobs …; only SELECT * works).
func (c *Client) QueryDeviceJobs(ctx context.Context, jobID string, o PageOptions) (*DevicesPage, error) {
	return observe(c, "QueryDeviceJobs", func() (*DevicesPage, error) {
		const op = "QueryDeviceJobs"
		if err := CheckJobID(jobID); err != nil {
			return nil, err
		}
		h, err := pagingHeaders(o)
		if err != nil {
			return nil, err
		}
		body, _ := json.Marshal(struct {
			Query string `json:"query"`
		}{"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = " + quoteQueryString(jobID)})
		resp, err := c.do(ctx, request{op: op, method: http.MethodPost, path: "/devices/query", header: h, body: body})
		if err != nil {
			return nil, err
		}
		devices, err := decodePage[DeviceJob](op, resp)
		if err != nil {
			return nil, err
		}
		return &DevicesPage{Devices: devices, Continuation: resp.header.Get("x-ms-continuation")}, nil
	})
}

// quoteQueryString quotes s as a string literal of the IoT Hub query
// language, doubling embedded single quotes. Job ids are validated before
// they get here, so this is defence in depth, not the only guard.
func quoteQueryString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// validEnumFilter admits enum-like filter values (letters only, as every
// type and status the hub knows), so a filter can never be anything else.
func validEnumFilter(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// maxContinuation bounds a continuation token echoed back from a URL.
const maxContinuation = 8 << 10

// pagingHeaders are the x-ms-* request headers of a query page. The token
// is opaque but it travels in a header, so it must be a valid header value.
func pagingHeaders(o PageOptions) (http.Header, error) {
	h := http.Header{}
	if o.PageSize < 0 {
		return nil, fmt.Errorf("%w: page size %d is negative", ErrInvalidRequest, o.PageSize)
	}
	if o.PageSize > 0 {
		h.Set("x-ms-max-item-count", strconv.Itoa(o.PageSize))
	}
	if o.Continuation != "" {
		if len(o.Continuation) > maxContinuation {
			return nil, fmt.Errorf("%w: continuation token is %d bytes", ErrInvalidRequest, len(o.Continuation))
		}
		for i := 0; i < len(o.Continuation); i++ {
			if b := o.Continuation[i]; b < 0x20 || b == 0x7f {
				return nil, fmt.Errorf("%w: continuation token has a control character", ErrInvalidRequest)
			}
		}
		h.Set("x-ms-continuation", o.Continuation)
	}
	return h, nil
}

// observe records one call's outcome and duration in the metrics.
func observe[T any](c *Client, op string, f func() (T, error)) (T, error) {
	start := time.Now()
	v, err := f()
	c.cfg.Metrics.observeCall(c.cfg.HubName, op, err, time.Since(start))
	return v, err
}

// request is one logical call; do turns it into one or more attempts.
type request struct {
	op     string // Error.Op and the metrics label
	method string
	path   string // escaped path below the base URL
	query  url.Values
	header http.Header
	body   []byte // nil: no body
	write  bool   // not idempotent: never re-sent once the hub may have acted
}

// response is a completed 2xx answer with its body read (and capped).
type response struct {
	status int
	header http.Header
	body   []byte
}

// do runs r through the breaker (see breaker.go) and the transport policy.
// A reconciling GET is never held back by the breaker: the failure that
// opened it may be the write whose outcome the GET must find out.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	if ctx.Value(breakerBypass{}) != nil {
		resp, err := c.attempts(ctx, r)
		c.breaker.record(false, classify(ctx, err))
		return resp, err
	}
	probe, err := c.breaker.allow(c.cfg.HubName, r.op)
	if err != nil {
		return nil, err
	}
	resp, err := c.attempts(ctx, r)
	c.breaker.record(probe, classify(ctx, err))
	return resp, err
}

// attempts runs r under the transport policy:
//   - each attempt has AttemptTimeout; all attempts and waits share CallBudget
//     (a write keeps ReconcileTimeout of it for reconciliation);
//   - it retries only where that is safe: failures before any response for
//     idempotent requests, failures before the connection was made for all,
//     429 for all, and 408/5xx for idempotent requests (a write the hub may
//     have executed comes back as ErrOutcomeUnknown instead);
//   - it waits Retry-After when the hub sends one, else a jittered
//     exponential backoff, and gives up at once when the wait would not fit
//     in what is left of the budget.
func (c *Client) attempts(ctx context.Context, r request) (*response, error) {
	budget := c.cfg.CallBudget
	if r.write {
		budget -= c.cfg.ReconcileTimeout
	}
	// The budget is a deadline, not a context of its own: each attempt's
	// context ends at the earlier of its own timeout and the budget, which
	// costs one context and timer per attempt instead of two.
	deadline := time.Now().Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, r, deadline)
		if err == nil {
			return resp, nil
		}
		retry, wait := c.retryable(r, err)
		if !retry || attempt >= c.cfg.MaxAttempts || ctx.Err() != nil {
			return nil, err
		}
		if wait == 0 {
			wait = c.backoff(attempt, errors.Is(err, ErrThrottled))
		}
		if time.Until(deadline) < wait {
			return nil, err // the next attempt could not happen within the budget
		}
		if c.cfg.Sleep(ctx, wait) != nil {
			return nil, err
		}
		c.cfg.Metrics.observeRetry(c.cfg.HubName, r.op)
	}
}

// retryable decides whether err (one attempt's failure) may be retried,
// and how long the hub asked us to wait.
func (c *Client) retryable(r request, err error) (bool, time.Duration) {
	if he, ok := errors.AsType[*Error](err); ok {
		switch he.StatusCode {
		case http.StatusTooManyRequests:
			return true, he.RetryAfter // the hub did not act on the request
		case http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return !r.write, he.RetryAfter // a write never gets here: attempt classed it as unknown
		}
		return false, 0
	}
	var te *transportError
	if errors.As(err, &te) {
		return !r.write || !te.sent, 0
	}
	return false, 0
}

// backoff is the jittered exponential delay before attempt+1.
func (c *Client) backoff(attempt int, throttled bool) time.Duration {
	d := c.cfg.Backoff
	if throttled {
		d = c.cfg.ThrottleBackoff
	}
	for i := 1; i < attempt && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return c.cfg.Jitter(min(d, c.cfg.MaxBackoff))
}

// transportError is an attempt that got no HTTP response.
type transportError struct {
	op   string
	sent bool // the request may have reached the hub
	err  error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("IoT Hub %s: no response: %v", e.op, e.err)
}

func (e *transportError) Unwrap() error { return e.err }

// Is classes a failure without response as a timeout or an unreachable hub.
func (e *transportError) Is(target error) bool {
	switch target {
	case ErrTimeout:
		return errors.Is(e.err, context.DeadlineExceeded) || isNetTimeout(e.err)
	case ErrUnavailable:
		return !errors.Is(e.err, context.Canceled)
	}
	return false
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// maybeSent reports whether a failed round trip may have delivered the
// request. Only a failure to connect (DNS, refused, unreachable) proves it
// was not; anything later — a reset, a timeout waiting for headers — may
// have come after the hub acted.
func maybeSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return false
	}
	return true
}

// attempt makes one HTTP round trip under AttemptTimeout and reads the
// body within it. Errors: *Error for a non-2xx answer, *transportError for
// no answer, and for a write whose outcome cannot be known an error
// wrapping ErrOutcomeUnknown.
func (c *Client) attempt(ctx context.Context, r request, budgetEnd time.Time) (*response, error) {
	end := time.Now().Add(c.cfg.AttemptTimeout)
	if budgetEnd.Before(end) {
		end = budgetEnd
	}
	actx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	req, err := c.newRequest(actx, r)
	if err != nil {
		return nil, err
	}
	httpResp, err := c.hc.Do(req)
	if err != nil {
		te := &transportError{op: r.op, sent: maybeSent(err), err: err}
		if r.write && te.sent {
			return nil, fmt.Errorf("%w: %s was sent but %w", ErrOutcomeUnknown, r.op, te)
		}
		return nil, te
	}
	defer httpResp.Body.Close()

	if httpResp.StatusCode < 200 || httpResp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(httpResp.Body, errorBodyLimit))
		he := newError(r.op, httpResp, body, time.Now())
		if httpResp.StatusCode >= 300 && httpResp.StatusCode < 400 {
			he.Message = "redirect not followed (Location " + clip(plain(httpResp.Header.Get("Location")), 120) + ")"
		}
		if he.StatusCode == http.StatusTooManyRequests {
			c.cfg.Metrics.observeThrottled(c.cfg.HubName, r.op)
		}
		// A 408 may come from a gateway that had already forwarded the
		// request, so for a write it proves nothing either way.
		if r.write && (he.StatusCode >= 500 || he.StatusCode == http.StatusRequestTimeout) {
			return nil, fmt.Errorf("%w: %s may have been executed: %w", ErrOutcomeUnknown, r.op, he)
		}
		return nil, he
	}

	body, err := io.ReadAll(io.LimitReader(httpResp.Body, c.cfg.MaxResponseBytes+1))
	switch {
	case err != nil:
		// The headers came but the body broke off: the hub answered, so a
		// write took effect or not; only the body is lost.
		te := &transportError{op: r.op, sent: true, err: fmt.Errorf("reading the response body: %w", err)}
		if r.write {
			return nil, fmt.Errorf("%w: %s answered %d but %w", ErrOutcomeUnknown, r.op, httpResp.StatusCode, te)
		}
		return nil, te
	case int64(len(body)) > c.cfg.MaxResponseBytes:
		err := fmt.Errorf("IoT Hub %s: %w (over %d bytes)", r.op, ErrResponseTooLarge, c.cfg.MaxResponseBytes)
		if r.write { // the hub answered 2xx: it acted, on what we cannot read
			return nil, fmt.Errorf("%w: %s answered %d but %w", ErrOutcomeUnknown, r.op, httpResp.StatusCode, err)
		}
		return nil, err
	}
	return &response{status: httpResp.StatusCode, header: httpResp.Header, body: body}, nil
}

func (c *Client) newRequest(ctx context.Context, r request) (*http.Request, error) {
	query := apiVersionQuery
	if len(r.query) > 0 {
		query += "&" + r.query.Encode()
	}
	var body io.Reader = http.NoBody // with POST this sends Content-Length: 0 (HTTP.sys wants it)
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.base+r.path+"?"+query, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidRequest, r.op, err)
	}
	auth, err := c.cfg.Credential.Authorization(ctx)
	if err != nil {
		return nil, fmt.Errorf("IoT Hub %s: credential: %w", r.op, err)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	return req, nil
}

// decodeJob reads a job from a 2xx body. A 200 that describes no job (see
// Job.absent) is ErrNotFound: never report a job, or a cancel, that is not.
func decodeJob(op string, resp *response) (*Job, error) {
	if err := checkJSON(op, resp); err != nil {
		return nil, err
	}
	var job Job
	if err := json.Unmarshal(resp.body, &job); err != nil {
		return nil, fmt.Errorf("IoT Hub %s: %w: %w", op, ErrBadResponse, err)
	}
	if job.absent() {
		return nil, &Error{
			Op: op, StatusCode: resp.status, Code: "JobNotFound",
			Message:   fmt.Sprintf("the hub answered with status %q, which is how it reports a job id it does not have", job.Status),
			RequestID: plain(resp.header.Get("x-ms-request-id")),
		}
	}
	return &job, nil
}

// decodePage reads a query page: a bare JSON array on the real hub; the
// swagger's {"items":[…]} object is understood too.
func decodePage[T any](op string, resp *response) ([]T, error) {
	if err := checkJSON(op, resp); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(resp.body)
	var items []T
	var err error
	if len(body) > 0 && body[0] == '{' {
		var qr struct {
			Items []T `json:"items"`
		}
		err = json.Unmarshal(body, &qr)
		items = qr.Items
	} else {
		err = json.Unmarshal(body, &items)
	}
	if err != nil {
		return nil, fmt.Errorf("IoT Hub %s: %w: %w", op, ErrBadResponse, err)
	}
	return items, nil
}

// checkJSON refuses a success body that declares itself something other
// than JSON (a captive portal's HTML page answering 200, say).
func checkJSON(op string, resp *response) error {
	ct := resp.header.Get("Content-Type")
	if ct != "" && !strings.Contains(ct, "json") && !strings.Contains(strings.ToLower(ct), "json") {
		return fmt.Errorf("IoT Hub %s: %w: Content-Type %q", op, ErrBadResponse, clip(ct, 60))
	}
	return nil
}
