package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

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
	DefaultReadWait    = 8 * time.Second
	budgetCacheEntries = 1024
)

// BudgetConfig tunes a Budgeted. Zero values get the defaults.
type BudgetConfig struct {
	// TTL is how long a result is reused without asking the hub again.
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
// ErrThrottled, like the hub's 429 it avoids.
type BudgetError struct {
	Hub, Op    string
	RetryAfter time.Duration // when the bucket will have a token again
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("IoT Hub %s %s not attempted: the portal's budget of calls to this hub is spent for now; retry in %s",
		e.Hub, e.Op, e.RetryAfter)
}

// Is makes a *BudgetError match ErrThrottled.
func (e *BudgetError) Is(target error) bool { return target == ErrThrottled }

// Budgeted is the hub traffic budget of design.md for ONE hub: concurrent
// reads of the same thing coalesce into one hub call, results are reused
// for TTL, and a token bucket per kind of call keeps the portal under the
// hub's throttle; when a bucket is empty, reads serve the last known data
// marked stale rather than tripping the hub's 429.
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
	sf            singleflight.Group

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	value     any
	fetchedAt time.Time
}

// NewBudgeted wraps c with the traffic budget.
func NewBudgeted(c *Client, cfg BudgetConfig) *Budgeted {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultBudgetTTL
	}
	if cfg.JobsOpsPerMinute <= 0 {
		cfg.JobsOpsPerMinute = DefaultJobsOpsPerMinute
	}
	if cfg.QueriesPerMinute <= 0 {
		cfg.QueriesPerMinute = DefaultQueriesPerMinute
	}
	if cfg.QueriesBurst <= 0 {
		cfg.QueriesBurst = DefaultQueriesBurst
	}
	if cfg.StaleFor <= 0 {
		cfg.StaleFor = DefaultStaleFor
	}
	if cfg.ReadWait <= 0 {
		cfg.ReadWait = DefaultReadWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	jobs := bucket(cfg.JobsOpsPerMinute)
	return &Budgeted{
		c: c, ttl: cfg.TTL, staleFor: cfg.StaleFor, readWait: cfg.ReadWait, now: cfg.Now,
		jobs: jobs, queries: rate.NewLimiter(rate.Limit(float64(cfg.QueriesPerMinute)/60), min(cfg.QueriesBurst, cfg.QueriesPerMinute)),
		// Polling must not starve a cancel: once the bucket holds a few
		// tokens, reads leave the last one to writes.
		jobsReadFloor: readFloor(jobs),
		cache:         map[string]cached{},
	}
}

// bucket starts full; every use passes the injected clock's time.
func bucket(perMinute int) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(float64(perMinute)/60), max(1, perMinute/10))
}

func readFloor(l *rate.Limiter) float64 {
	if l.Burst() >= 3 {
		return 1
	}
	return 0
}

// Client is the wrapped client, for calls outside the budget.
func (b *Budgeted) Client() *Client { return b.c }

// GetJob reads a job through the budget.
func (b *Budgeted) GetJob(ctx context.Context, id string) (Fresh[*Job], error) {
	if err := CheckJobID(id); err != nil {
		return Fresh[*Job]{}, err
	}
	return read(ctx, b, "GetJob", "job/"+id, b.jobs, b.jobsReadFloor, func(ctx context.Context) (*Job, error) {
		return b.c.GetJob(ctx, id)
	})
}

// QueryJobs reads a page of jobs through the budget.
func (b *Budgeted) QueryJobs(ctx context.Context, o QueryJobsOptions) (Fresh[*JobsPage], error) {
	key := fmt.Sprintf("jobs/%s/%s/%d/%s", o.Type, o.Status, o.PageSize, o.Continuation)
	return read(ctx, b, "QueryJobs", key, b.jobs, b.jobsReadFloor, func(ctx context.Context) (*JobsPage, error) {
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
	return read(ctx, b, "QueryDeviceJobs", key, b.queries, 0, func(ctx context.Context) (*DevicesPage, error) {
		return b.c.QueryDeviceJobs(ctx, jobID, o)
	})
}

// QueryDevices reads a page of a device query through the budget, spending
// the query bucket; the key is the exact query text and page.
func (b *Budgeted) QueryDevices(ctx context.Context, query string, o PageOptions) (Fresh[*TwinsPage], error) {
	key := fmt.Sprintf("twins/%d/%s/%s", o.PageSize, o.Continuation, query)
	return read(ctx, b, "QueryDevices", key, b.queries, 0, func(ctx context.Context) (*TwinsPage, error) {
		return b.c.QueryDevices(ctx, query, o)
	})
}

// CountDevices counts the devices a condition selects through the budget,
// spending the query bucket. A count is reused for the TTL for the exact
// same condition, so a plan that re-renders as a form changes costs one
// query per distinct condition.
func (b *Budgeted) CountDevices(ctx context.Context, where string) (Fresh[int64], error) {
	return read(ctx, b, "CountDevices", "count/"+where, b.queries, 0, func(ctx context.Context) (int64, error) {
		return b.c.CountDevices(ctx, where)
	})
}

// DeviceIDs reads a page of the ids a condition selects through the
// budget, spending the query bucket.
func (b *Budgeted) DeviceIDs(ctx context.Context, where string, o PageOptions) (Fresh[*DeviceIDsPage], error) {
	key := fmt.Sprintf("ids/%d/%s/%s", o.PageSize, o.Continuation, where)
	return read(ctx, b, "DeviceIDs", key, b.queries, 0, func(ctx context.Context) (*DeviceIDsPage, error) {
		return b.c.DeviceIDs(ctx, where, o)
	})
}

// CancelJob spends a jobs token and is never answered from memory. Two
// cancels of the same job in flight at once make ONE hub call and both
// callers get its answer: that is how a double click, or two operators at
// once, produce one effective cancel. Afterwards the cached job is replaced
// by what the cancel (or its reconciling GET) returned, or dropped.
// Results are exactly Client.CancelJob's, including a reconciled job
// alongside ErrOutcomeUnknown.
func (b *Budgeted) CancelJob(ctx context.Context, id string) (*Job, error) {
	if err := CheckJobID(id); err != nil {
		return nil, err
	}
	type answer struct {
		job *Job
		err error
	}
	ch := b.sf.DoChan("cancel/"+id, func() (any, error) {
		job, err := b.write(ctx, "CancelJob", id, func(ctx context.Context) (*Job, error) {
			return b.c.CancelJob(ctx, id)
		})
		return answer{job, err}, nil
	})
	select {
	case r := <-ch:
		a := r.Val.(answer)
		return a.job, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CreateJob spends a jobs token; it is not coalesced (two creates are two
// requests, and the hub rejects the second id with JobAlreadyExists).
func (b *Budgeted) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	return b.write(ctx, "CreateJob", req.JobID, func(ctx context.Context) (*Job, error) {
		return b.c.CreateJob(ctx, req)
	})
}

// write spends a token, runs f detached from the caller's cancellation (a
// write the hub may be executing must finish and be recorded), and updates
// the cache with what the hub now says about the job.
func (b *Budgeted) write(ctx context.Context, op, id string, f func(context.Context) (*Job, error)) (*Job, error) {
	now := b.now()
	if !take(b.jobs, now, 0) {
		b.c.cfg.Metrics.observeRead(b.c.cfg.HubName, op, sourceRefused)
		return nil, b.budgetError(op, b.jobs, now, 0)
	}
	job, err := f(context.WithoutCancel(ctx))
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.cache {
		if strings.HasPrefix(k, "jobs/") { // lists show the job's status too
			delete(b.cache, k)
		}
	}
	// A create's minimal answer is not a full job; only a cancel's is.
	if job != nil && op == "CancelJob" {
		b.cache["job/"+id] = cached{job, b.now()}
	} else {
		delete(b.cache, "job/"+id)
	}
	return job, err
}

// read is the budgeted read path shared by every read operation.
func read[T any](ctx context.Context, b *Budgeted, op, key string, l *rate.Limiter, floor float64,
	fetch func(context.Context) (T, error)) (Fresh[T], error) {
	metrics, hub := b.c.cfg.Metrics, b.c.cfg.HubName
	if f, ok := lookup[T](b, key, b.ttl); ok {
		metrics.observeRead(hub, op, sourceCached)
		return f, nil
	}
	type answer struct {
		fresh  Fresh[T]
		source string
	}
	ran := false // set by the flight's function, only for the caller that started it
	ch := b.sf.DoChan(key, func() (any, error) {
		ran = true
		if f, ok := lookup[T](b, key, b.ttl); ok { // a flight that just landed
			return answer{f, sourceCached}, nil
		}
		now := b.now()
		if !take(l, now, floor) {
			reason := b.budgetError(op, l, now, floor)
			if f, ok := lookup[T](b, key, b.staleFor); ok {
				return answer{staleWith(f, reason), sourceStale}, nil
			}
			return answer{source: sourceRefused}, reason
		}
		// The flight outlives the caller who started it (others may be
		// waiting on it), but not ReadWait.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.readWait)
		defer cancel()
		v, err := fetch(fctx)
		if err != nil {
			if transient(err) {
				if f, ok := lookup[T](b, key, b.staleFor); ok {
					return answer{staleWith(f, err), sourceStale}, nil
				}
			} else {
				b.forget(key) // a definite answer (not found, refused): never serve the old copy
			}
			return answer{source: sourceHub}, err
		}
		f := Fresh[T]{Value: v, FetchedAt: b.now()}
		b.store(key, f.Value, f.FetchedAt)
		return answer{f, sourceHub}, nil
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

func (b *Budgeted) budgetError(op string, l *rate.Limiter, now time.Time, floor float64) *BudgetError {
	missing := 1 + floor - l.TokensAt(now)
	wait := time.Second
	if missing > 0 {
		wait = time.Duration(math.Ceil(missing/float64(l.Limit()))) * time.Second
	}
	return &BudgetError{Hub: b.c.cfg.HubName, Op: op, RetryAfter: wait}
}

func lookup[T any](b *Budgeted, key string, maxAge time.Duration) (Fresh[T], bool) {
	b.mu.Lock()
	e, ok := b.cache[key]
	b.mu.Unlock()
	if !ok || b.now().Sub(e.fetchedAt) >= maxAge {
		return Fresh[T]{}, false
	}
	v, ok := e.value.(T)
	return Fresh[T]{Value: v, FetchedAt: e.fetchedAt}, ok
}

func (b *Budgeted) store(key string, v any, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cache) >= budgetCacheEntries {
		for k, e := range b.cache {
			if at.Sub(e.fetchedAt) >= b.staleFor || len(b.cache) >= budgetCacheEntries {
				delete(b.cache, k) // expired first; then arbitrary ones, it is only a cache
			}
		}
	}
	b.cache[key] = cached{v, at}
}

func (b *Budgeted) forget(key string) {
	b.mu.Lock()
	delete(b.cache, key)
	b.mu.Unlock()
}
