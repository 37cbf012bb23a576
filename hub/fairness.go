package hub

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/time/rate"
)

// Fairness defaults. One caller (a signed-in person, or a background
// worker) may take at most DefaultCallerShare of each bucket, so that what
// one of them does can never leave the others with nothing.
const (
	DefaultCallerShare = 0.5
	// DefaultMaxCallers bounds how many callers' allowances are remembered;
	// the least recently seen is forgotten first. A forgotten allowance
	// starts full again, which is what an idle caller's would be anyway
	// (an allowance refills within seconds).
	DefaultMaxCallers = 4096
	// callerIdle is how long an unused allowance is kept.
	callerIdle = 10 * time.Minute
)

// Caller classes of the hubjobs_hub_budget_calls_total metric: a caller
// with a share of its own in BudgetConfig.CallerShares is its own class
// (its key); anyone else named by WithCaller is "people"; a call that
// names nobody is "anonymous".
const (
	ClassPeople    = "people"
	ClassAnonymous = "anonymous"
)

type callerKey struct{}
type forWriteKey struct{}

// WithCaller names who ctx's hub calls are made for: handlers pass the
// session's subject, background work its own name (the one configured in
// BudgetConfig.CallerShares). Each caller spends its own allowance of the
// budget's buckets, so one person reading fast (or reading many unknown
// job ids) slows only themselves. Calls without a caller share one
// "anonymous" allowance.
func WithCaller(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, callerKey{}, key)
}

// ForWrite marks ctx's reads as part of a write, such as the re-read a
// cancel makes before it is sent: they may spend the tokens the budget
// keeps back from reads for writes, and a person's own allowance does not
// apply (a cancel is never refused because its author was reading). A
// caller with a configured share (background work) stays within it and
// leaves the reserve, which is for people.
// Use it only on the write path: reads that merely display use plain ctx.
func ForWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, forWriteKey{}, true)
}

func callerOf(ctx context.Context) string {
	s, _ := ctx.Value(callerKey{}).(string)
	return s
}

func isForWrite(ctx context.Context) bool {
	v, _ := ctx.Value(forWriteKey{}).(bool)
	return v
}

// bucketKind names the budget's two buckets in metrics and allowance keys.
type bucketKind string

const (
	bucketJobs    bucketKind = "jobs"
	bucketQueries bucketKind = "queries"
)

// allowances holds each caller's limiter per bucket: the bucket's rate and
// burst scaled by the caller's share. They sit in a bounded, expiring LRU
// so that any number of distinct callers costs bounded memory.
type allowances struct {
	share   float64            // people's and anonymous callers' share
	shares  map[string]float64 // configured callers (background work)
	buckets map[bucketKind]*rate.Limiter
	mu      sync.Mutex // get-or-create must not race two limiters into one slot
	lru     *expirable.LRU[string, *rate.Limiter]
}

func newAllowances(share float64, shares map[string]float64, maxCallers int, buckets map[bucketKind]*rate.Limiter) *allowances {
	return &allowances{share: share, shares: shares, buckets: buckets,
		lru: expirable.NewLRU[string, *rate.Limiter](maxCallers, nil, callerIdle)}
}

// class is the metric class of ctx's caller.
func (a *allowances) class(ctx context.Context) string {
	caller := callerOf(ctx)
	switch {
	case caller == "":
		return ClassAnonymous
	case a.configured(caller):
		return caller
	}
	return ClassPeople
}

func (a *allowances) configured(caller string) bool {
	_, ok := a.shares[caller]
	return ok
}

// limiter is the allowance ctx's caller spends on kind, or nil when none
// applies: a person's write (or read for a write) draws on the bucket and
// its reserve only. write says the call is a write or a read ForWrite.
func (a *allowances) limiter(ctx context.Context, kind bucketKind, write bool) *rate.Limiter {
	caller := callerOf(ctx)
	share, configured := a.shares[caller]
	if !configured {
		if write {
			return nil
		}
		share = a.share
	}
	key := string(kind) + "\x00" + caller
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.lru.Get(key); ok {
		return l
	}
	l := scaled(a.buckets[kind], share)
	a.lru.Add(key, l)
	return l
}

// scaled is a limiter with share of b's rate and burst (at least one token).
func scaled(b *rate.Limiter, share float64) *rate.Limiter {
	return rate.NewLimiter(b.Limit()*rate.Limit(share), max(1, int(math.Ceil(float64(b.Burst())*share))))
}

// readFloor is what a read must leave in the caller's own allowance. Work
// with a configured share (the rollout engine) checks the hub before each
// write — it counts active jobs before a create — and those reads alone
// can use every token its share earns, so that the create after them is
// always refused. Its reads therefore leave one token for its writes; a
// read refused that way serves the last known answer, which is what the
// engine's checks can live with. A share too small to hold two tokens
// keeps no floor (its reads would otherwise never pass).
func (a *allowances) readFloor(ctx context.Context, own *rate.Limiter, write bool) float64 {
	if !write && own != nil && own.Burst() >= 2 && a.configured(callerOf(ctx)) {
		return 1
	}
	return 0
}

// hasTokenAbove reports whether the allowance l has a token beyond floor
// now; a nil l (no allowance applies) always has.
func hasTokenAbove(l *rate.Limiter, now time.Time, floor float64) bool {
	return l == nil || l.TokensAt(now) >= 1+floor
}

// charge spends one token of l for a call that is going to the hub. It is
// checked with hasTokenAbove first but spent only once the bucket admitted the
// call too, so a caller is never charged for a call not made; two calls of
// one caller racing past hasTokenAbove may leave l in debt, which that caller
// then waits out, nobody else.
func charge(l *rate.Limiter, now time.Time) {
	if l != nil {
		l.ReserveN(now, 1)
	}
}
