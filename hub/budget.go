package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Budget defaults. IoT Hub allows about 100 jobs operations per minute per
// unit (S1/S2) and 20 queries per minute per unit; the portal must not spend
// that on polling, and must leave some of it to other tools on the hub.
const (
	DefaultBudgetTTL        = 2 * time.Second
	DefaultJobsOpsPerMinute = 100
	// DefaultQueriesPerMinute is 12 of the hub's 20 queries per minute per
	// unit (S1/S2): /devices/query serves other tools on the hub too, and
	// a 429 there makes every device list in the portal stale at once.
	DefaultQueriesPerMinute = 12
	// DefaultQueriesBurst lets one view of a job's devices read its pages
	// at once: devices.jobs pages 100 at a time on the hub, and a view that
	// lists failed devices first reads several pages to sort them. Five in
	// a burst stays well under the hub's 20 per minute.
	DefaultQueriesBurst = 5
	DefaultStaleFor     = 10 * time.Minute
	// DefaultReadWait bounds a read a page is waiting for: a hub that is
	// slow, or asks to be left alone for longer (Retry-After), gets this
	// long, and then the page shows the last known data or says the hub is
	// busy, instead of hanging for the client's whole call budget.
	DefaultReadWait     = 8 * time.Second
	DefaultCacheEntries = 1024
)

// BudgetConfig tunes a Budgeted. Zero values get the defaults.
type BudgetConfig struct {
	// TTL is how long a result, or a "not found", is reused without asking
	// the hub again.
	TTL time.Duration
	// JobsOpsPerMinute is the token bucket for /jobs/v2 calls (the hub
	// config's jobs_ops_per_minute). Its burst is a tenth of a minute's
	// worth (at least 1): enough for a page load, not enough to trip the
	// hub's own per-minute throttle in one go.
	JobsOpsPerMinute int
	// QueriesPerMinute is the separate, smaller bucket for /devices/query.
	// QueriesBurst is how many queries it allows at once; default
	// DefaultQueriesBurst, at most QueriesPerMinute.
	QueriesPerMinute, QueriesBurst int
	// StaleFor is how old last known data may be and still be served,
	// marked stale, when the budget is spent or the hub is failing.
	StaleFor time.Duration
	// ReadWait bounds each read's hub call (retries and waits included);
	// default DefaultReadWait. Writes keep the client's full call budget.
	ReadWait time.Duration
	// CallerShare is the fraction of each bucket (rate and burst) one
	// caller named by WithCaller may spend on reads; callers without a
	// name share one such allowance. Default DefaultCallerShare.
	CallerShare float64
	// CallerShares gives named callers a share of their own, which caps
	// all their calls, writes included: the rollout engine's name mapped
	// to rollouts.max_share_of_budget keeps it under that fraction of each
	// bucket. Shares outside (0, 1] are read as 1.
	CallerShares map[string]float64
	// MaxCallers bounds the callers whose allowances are remembered;
	// default DefaultMaxCallers.
	MaxCallers int
	// CacheEntries bounds the results kept; default DefaultCacheEntries.
	CacheEntries int
	// Now is the clock of the TTL, the buckets and FetchedAt; default time.Now.
	Now func() time.Time
}

// Fresh is a read through the budget: the value, when the hub said so, and
// whether it is stale (served from memory because the budget was spent or
// the hub failed, in which case Reason says which).
type Fresh[T any] struct {
	Value     T
	FetchedAt time.Time
	Stale     bool
	Reason    error // why the value is stale; nil when fresh
}

// Age is how old the value is at now.
func (f Fresh[T]) Age(now time.Time) time.Duration { return now.Sub(f.FetchedAt) }

// BudgetError is a call the portal did not make because its own budget for
// the hub is spent and it had nothing to serve instead. It matches
// ErrThrottled, like the hub's 429 it avoids. It is the portal protecting
// the hub, not a failure: log it below ERROR.
type BudgetError struct {
	Hub, Op    string
	RetryAfter time.Duration // when a token will be there again
	// Share is true when it was the caller's own share that ran out (see
	// WithCaller), not the hub's whole budget.
	Share bool
}

func (e *BudgetError) Error() string {
	what := "the portal's budget of calls to this hub is spent for now"
	if e.Share {
		what = "this caller's share of the portal's budget of calls to this hub is spent for now"
	}
	return fmt.Sprintf("IoT Hub %s %s not attempted: %s; retry in %s", e.Hub, e.Op, what, e.RetryAfter)
}

// Is makes a *BudgetError match ErrThrottled.
func (e *BudgetError) Is(target error) bool { return target == ErrThrottled }

// Budgeted is the hub traffic budget for ONE hub: concurrent reads of the
// same thing coalesce into one hub call, results (and "not found") are
// reused for TTL, a token bucket per kind of call keeps the portal under
// the hub's throttle, and each caller spends only its share of a bucket
// (WithCaller); when a bucket or a share is empty, reads serve the last
// known data marked stale rather than tripping the hub's 429.
//
// Values returned are shared between callers (that is the point of
// coalescing): treat them as read-only.
type Budgeted struct {
	c             *Client
	ttl, staleFor time.Duration
	readWait      time.Duration
	now           func() time.Time
	jobs, queries *rate.Limiter
	jobsReadFloor float64 // reads leave this many jobs tokens for writes
	callers       *allowances
	sf            singleflight.Group
	cache         *expirable.LRU[string, cached]
}

// cached is one result, or a definite "not found", as of fetchedAt. The
// LRU drops it after StaleFor; whether it is fresh (TTL) or only good as
// stale data is decided on the budget's own clock.
type cached struct {
	value     any
	err       error // ErrNotFound: remembered for the TTL, never served stale
	fetchedAt time.Time
}

// NewBudgeted wraps c with the traffic budget.
func NewBudgeted(c *Client, cfg BudgetConfig) *Budgeted {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.TTL, DefaultBudgetTTL)
	def(&cfg.StaleFor, DefaultStaleFor)
	def(&cfg.ReadWait, DefaultReadWait)
	for _, f := range []struct {
		v *int
		d int
	}{{&cfg.JobsOpsPerMinute, DefaultJobsOpsPerMinute},
		{&cfg.QueriesPerMinute, DefaultQueriesPerMinute}, {&cfg.QueriesBurst, DefaultQueriesBurst},
		{&cfg.MaxCallers, DefaultMaxCallers}, {&cfg.CacheEntries, DefaultCacheEntries}} {
		if *f.v <= 0 {
			*f.v = f.d
		}
	}
	if !(cfg.CallerShare > 0 && cfg.CallerShare <= 1) {
		cfg.CallerShare = DefaultCallerShare
	}
	shares := map[string]float64{}
	for k, v := range cfg.CallerShares {
		if !(v > 0 && v <= 1) {
			v = 1
		}
		shares[k] = v
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	jobs := bucket(cfg.JobsOpsPerMinute)
	queries := rate.NewLimiter(rate.Limit(float64(cfg.QueriesPerMinute)/60), min(cfg.QueriesBurst, cfg.QueriesPerMinute))
	return &Budgeted{
		c: c, ttl: cfg.TTL, staleFor: cfg.StaleFor, readWait: cfg.ReadWait, now: cfg.Now,
		jobs: jobs, queries: queries,
		// Polling must not starve a cancel: reads leave the last tokens
		// to writes and to the re-read a cancel makes (ForWrite).
		jobsReadFloor: writeReserve(jobs),
		callers:       newAllowances(cfg.CallerShare, shares, cfg.MaxCallers, map[bucketKind]*rate.Limiter{bucketJobs: jobs, bucketQueries: queries}),
		cache:         expirable.NewLRU[string, cached](cfg.CacheEntries, nil, cfg.StaleFor),
	}
}

// bucket starts full; every use passes the injected clock's time.
func bucket(perMinute int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/10))
}

// writeReserve is how many jobs tokens reads leave for writes: two (a
// cancel's re-read and the cancel itself) when the bucket is big enough
// to keep two and still serve reads, one when it holds three, else none.
func writeReserve(l *rate.Limiter) float64 {
	switch b := l.Burst(); {
	case b >= 4:
		return 2
	case b >= 3:
		return 1
	}
	return 0
}

// Client is the wrapped client, for calls outside the budget.
func (b *Budgeted) Client() *Client { return b.c }

// GetJob reads a job through the budget. "Not found" is remembered for the
// TTL like a job, so reading an unknown id again and again costs one hub
// call per TTL. With ForWrite(ctx) it may spend the write reserve.
func (b *Budgeted) GetJob(ctx context.Context, id string) (Fresh[*Job], error) {
	if err := CheckJobID(id); err != nil {
		return Fresh[*Job]{}, err
	}
	return read(ctx, b, "GetJob", "job/"+id, bucketJobs, func(ctx context.Context) (*Job, error) {
		return b.c.GetJob(ctx, id)
	})
}

// QueryJobs reads a page of jobs through the budget.
func (b *Budgeted) QueryJobs(ctx context.Context, o QueryJobsOptions) (Fresh[*JobsPage], error) {
	key := fmt.Sprintf("jobs/%s/%s/%d/%s", o.Type, o.Status, o.PageSize, o.Continuation)
	return read(ctx, b, "QueryJobs", key, bucketJobs, func(ctx context.Context) (*JobsPage, error) {
		return b.c.QueryJobs(ctx, o)
	})
}

// QueryDeviceJobs reads a page of per-device results through the budget,
// spending the separate query bucket.
func (b *Budgeted) QueryDeviceJobs(ctx context.Context, jobID string, o PageOptions) (Fresh[*DevicesPage], error) {
	if err := CheckJobID(jobID); err != nil {
		return Fresh[*DevicesPage]{}, err
	}
	key := fmt.Sprintf("devices/%s/%d/%s", jobID, o.PageSize, o.Continuation)
	return read(ctx, b, "QueryDeviceJobs", key, bucketQueries, func(ctx context.Context) (*DevicesPage, error) {
		return b.c.QueryDeviceJobs(ctx, jobID, o)
	})
}

// QueryDevices reads a page of a device query through the budget, spending
// the query bucket; the key is the exact query text and page.
func (b *Budgeted) QueryDevices(ctx context.Context, query string, o PageOptions) (Fresh[*TwinsPage], error) {
	key := fmt.Sprintf("twins/%d/%s/%s", o.PageSize, o.Continuation, query)
	return read(ctx, b, "QueryDevices", key, bucketQueries, func(ctx context.Context) (*TwinsPage, error) {
		return b.c.QueryDevices(ctx, query, o)
	})
}

// CountDevices counts the devices a condition selects through the budget,
// spending the query bucket. A count is reused for the TTL for the exact
// same condition, so a plan that re-renders as a form changes costs one
// query per distinct condition.
func (b *Budgeted) CountDevices(ctx context.Context, where string) (Fresh[int64], error) {
	return read(ctx, b, "CountDevices", "count/"+where, bucketQueries, func(ctx context.Context) (int64, error) {
		return b.c.CountDevices(ctx, where)
	})
}

// DeviceIDs reads a page of the ids a condition selects through the
// budget, spending the query bucket.
func (b *Budgeted) DeviceIDs(ctx context.Context, where string, o PageOptions) (Fresh[*DeviceIDsPage], error) {
	key := fmt.Sprintf("ids/%d/%s/%s", o.PageSize, o.Continuation, where)
	return read(ctx, b, "DeviceIDs", key, bucketQueries, func(ctx context.Context) (*DeviceIDsPage, error) {
		return b.c.DeviceIDs(ctx, where, o)
	})
}

// CancelJob spends a jobs token (the reserve reads leave is for this) and
// calls the client; it is never answered from memory. Concurrent cancels of
// one job are not coalesced here: the jobs service owns that, together with
// the audit trail each cancel needs. Afterwards the cached job is replaced
// by what the cancel (or its reconciling GET) returned, or dropped.
// Results are exactly Client.CancelJob's, including a reconciled job
// alongside ErrOutcomeUnknown.
func (b *Budgeted) CancelJob(ctx context.Context, id string) (*Job, error) {
	if err := CheckJobID(id); err != nil {
		return nil, err
	}
	return b.write(ctx, "CancelJob", id, func(ctx context.Context) (*Job, error) {
		return b.c.CancelJob(ctx, id)
	})
}

// CreateJob spends a jobs token; it is not coalesced (the id is
// deterministic, so a second create meets JobAlreadyExists and reads the
// job back: see Client.CreateJob).
func (b *Budgeted) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	return b.write(ctx, "CreateJob", req.JobID, func(ctx context.Context) (*Job, error) {
		return b.c.CreateJob(ctx, req)
	})
}

// write spends a token (and, for a caller with a configured share, from
// that share), runs f detached from the caller's cancellation (a write the
// hub may be executing must finish and be recorded), and updates the cache
// with what the hub now says about the job.
func (b *Budgeted) write(ctx context.Context, op, id string, f func(context.Context) (*Job, error)) (*Job, error) {
	if err := b.admit(ctx, op, bucketJobs, true, b.now()); err != nil {
		b.c.cfg.Metrics.observeRead(b.c.cfg.HubName, op, sourceRefused)
		return nil, err
	}
	job, err := f(context.WithoutCancel(ctx))
	for _, k := range b.cache.Keys() {
		if strings.HasPrefix(k, "jobs/") { // lists show the job's status too
			b.cache.Remove(k)
		}
	}
	// A create's minimal answer is not a full job; only a cancel's is.
	if job != nil && op == "CancelJob" {
		b.cache.Add("job/"+id, cached{value: job, fetchedAt: b.now()})
	} else {
		b.cache.Remove("job/" + id)
	}
	return job, err
}

// admit spends the tokens one hub call needs right away: the caller's
// allowance, if one applies, and the bucket's, keeping its write reserve
// unless write. Nothing is spent when either refuses.
func (b *Budgeted) admit(ctx context.Context, op string, kind bucketKind, write bool, now time.Time) error {
	own := b.callers.limiter(ctx, kind, write)
	if !hasTokenAbove(own, now, b.callers.readFloor(ctx, own, write)) {
		b.observeBudget(ctx, kind, budgetRefusedShare)
		return b.budgetError(op, own, now, 0, true)
	}
	l, floor := b.bucketFor(ctx, kind, write)
	if !take(l, now, floor) {
		b.observeBudget(ctx, kind, budgetRefused)
		return b.budgetError(op, l, now, floor, false)
	}
	charge(own, now)
	b.observeBudget(ctx, kind, budgetSpent)
	return nil
}

// bucketFor is the bucket a call spends and the tokens it must leave in
// it. The jobs bucket's write reserve is for people: a person's write (or
// read for a write) may take it, while background work with a configured
// share (BudgetConfig.CallerShares) leaves it even for its creates and
// cancels, so the engine can never take the tokens kept for a person's
// cancel.
func (b *Budgeted) bucketFor(ctx context.Context, kind bucketKind, write bool) (*rate.Limiter, float64) {
	if kind == bucketQueries {
		return b.queries, 0
	}
	if write && !b.callers.configured(callerOf(ctx)) {
		return b.jobs, 0
	}
	return b.jobs, b.jobsReadFloor
}

func (b *Budgeted) observeBudget(ctx context.Context, kind bucketKind, result string) {
	b.c.cfg.Metrics.observeBudget(b.c.cfg.HubName, string(kind), b.callers.class(ctx), result)
}

// read is the budgeted read path shared by every read operation:
//  1. a fresh cached answer (a value, or "not found") costs nothing;
//  2. a caller whose own allowance is empty gets stale data or a
//     *BudgetError at once, without joining (and so without spoiling)
//     anyone else's flight;
//  3. concurrent reads of one key share one flight; the caller that starts
//     it pays, from the bucket and from its own allowance (admit).
func read[T any](ctx context.Context, b *Budgeted, op, key string, kind bucketKind,
	fetch func(context.Context) (T, error)) (Fresh[T], error) {
	metrics, hub := b.c.cfg.Metrics, b.c.cfg.HubName
	if f, err, ok := lookup[T](b, key, b.ttl); ok {
		metrics.observeRead(hub, op, sourceCached)
		return f, err
	}
	write := isForWrite(ctx)
	if own, now := b.callers.limiter(ctx, kind, write), b.now(); !hasTokenAbove(own, now, b.callers.readFloor(ctx, own, write)) {
		b.observeBudget(ctx, kind, budgetRefusedShare)
		return stale[T](b, op, key, b.budgetError(op, own, now, 0, true))
	}
	type answer struct {
		fresh  Fresh[T]
		source string
	}
	ran := false // set by the flight's function, only for the caller that started it
	ch := b.sf.DoChan(key, func() (any, error) {
		ran = true
		if f, err, ok := lookup[T](b, key, b.ttl); ok { // a flight that just landed
			return answer{f, sourceCached}, err
		}
		if err := b.admit(ctx, op, kind, write, b.now()); err != nil {
			if f, ok := lookupStale[T](b, key); ok {
				return answer{staleWith(f, err), sourceStale}, nil
			}
			return answer{source: sourceRefused}, err
		}
		// The flight outlives the caller who started it (others may be
		// waiting on it), but not ReadWait.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.readWait)
		defer cancel()
		v, err := fetch(fctx)
		switch {
		case err == nil:
			f := Fresh[T]{Value: v, FetchedAt: b.now()}
			b.cache.Add(key, cached{value: f.Value, fetchedAt: f.FetchedAt})
			return answer{f, sourceHub}, nil
		case errors.Is(err, ErrNotFound):
			// A definite answer: remembered for the TTL (an unknown id
			// read in a loop costs one call per TTL) and it replaces the
			// old copy, which is never served again.
			b.cache.Add(key, cached{err: err, fetchedAt: b.now()})
		case transient(err):
			if f, ok := lookupStale[T](b, key); ok {
				return answer{staleWith(f, err), sourceStale}, nil
			}
		default:
			b.cache.Remove(key) // refused, invalid: never serve the old copy
		}
		return answer{source: sourceHub}, err
	})
	select {
	case r := <-ch:
		a, _ := r.Val.(answer)
		if ran {
			metrics.observeRead(hub, op, a.source)
		} else {
			metrics.observeRead(hub, op, sourceCoalesced)
		}
		return a.fresh, r.Err
	case <-ctx.Done():
		return Fresh[T]{}, ctx.Err()
	}
}

// stale answers a read the budget refused with reason: the last known
// value marked stale, or reason itself when nothing is known.
func stale[T any](b *Budgeted, op, key string, reason error) (Fresh[T], error) {
	metrics, hub := b.c.cfg.Metrics, b.c.cfg.HubName
	if f, ok := lookupStale[T](b, key); ok {
		metrics.observeRead(hub, op, sourceStale)
		return staleWith(f, reason), nil
	}
	metrics.observeRead(hub, op, sourceRefused)
	return Fresh[T]{}, reason
}

func staleWith[T any](f Fresh[T], reason error) Fresh[T] {
	f.Stale, f.Reason = true, reason
	return f
}

// transient errors are worth hiding behind stale data; a not-found or a
// refusal is news the caller must see.
func transient(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrBadResponse) || errors.Is(err, ErrResponseTooLarge)
}

// take spends one token if the bucket holds more than floor.
func take(l *rate.Limiter, now time.Time, floor float64) bool {
	if floor > 0 && l.TokensAt(now) < 1+floor {
		return false
	}
	return l.AllowN(now, 1)
}

func (b *Budgeted) budgetError(op string, l *rate.Limiter, now time.Time, floor float64, share bool) *BudgetError {
	missing := 1 + floor - l.TokensAt(now)
	wait := time.Second
	if missing > 0 {
		wait = time.Duration(math.Ceil(missing/float64(l.Limit()))) * time.Second
	}
	return &BudgetError{Hub: b.c.cfg.HubName, Op: op, RetryAfter: wait, Share: share}
}

// lookup finds key's answer if it is younger than maxAge: the value, or the
// remembered "not found" as the error (ok is true either way).
func lookup[T any](b *Budgeted, key string, maxAge time.Duration) (Fresh[T], error, bool) {
	e, ok := b.cache.Peek(key)
	if !ok || b.now().Sub(e.fetchedAt) >= maxAge {
		return Fresh[T]{}, nil, false
	}
	if e.err != nil {
		return Fresh[T]{}, e.err, true
	}
	v, ok := e.value.(T)
	return Fresh[T]{Value: v, FetchedAt: e.fetchedAt}, nil, ok
}

// lookupStale finds key's last known value within StaleFor; a remembered
// "not found" is not a value to fall back on.
func lookupStale[T any](b *Budgeted, key string) (Fresh[T], bool) {
	f, err, ok := lookup[T](b, key, b.staleFor)
	return f, ok && err == nil
}
