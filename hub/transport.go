package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// errorBodyLimit caps how much of an error body is read: enough for any
// real IoT Hub error, small enough that a proxy's giant page costs nothing.
const errorBodyLimit = 64 << 10

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
