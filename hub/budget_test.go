package hub

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// budgetFixture is a Budgeted over a fake hub, on a manual clock.
func budgetFixture(t *testing.T, cfg BudgetConfig, handle func(w http.ResponseWriter, r *http.Request, n int)) (*Budgeted, *fakeHub, *testkit.Clock, *Metrics) {
	t.Helper()
	hub := newFakeHub(t, handle)
	m := NewMetrics(prometheus.NewRegistry())
	c, _ := hub.client(t, func(c *Config) { c.Metrics = m; c.HubName = "prod" })
	clock := newManualClock()
	cfg.Now = clock.Now
	return NewBudgeted(c, cfg), hub, clock, m
}

func reads(m *Metrics, op, source string) float64 {
	return testutil.ToFloat64(m.reads.WithLabelValues("prod", op, source))
}

func TestBudgetCoalescesConcurrentReads(t *testing.T) {
	release := make(chan struct{})
	b, hub, _, m := budgetFixture(t, BudgetConfig{}, func(w http.ResponseWriter, r *http.Request, _ int) {
		<-release
		reply(w, 200, jobRunning)
	})
	var wg sync.WaitGroup
	results := make([]Fresh[*Job], 200)
	errs := make([]error, 200)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = b.GetJob(context.Background(), "job-1") })
	}
	for hub.count("GET", "/jobs/v2/job-1") == 0 {
		time.Sleep(time.Millisecond) // until the one hub call is in flight
	}
	close(release)
	wg.Wait()
	if n := hub.count("GET", "/jobs/v2/job-1"); n != 1 {
		t.Errorf("200 concurrent reads made %d hub calls, want 1", n)
	}
	for i, r := range results {
		if errs[i] != nil || r.Value == nil || r.Value.Status != StatusRunning || r.Stale {
			t.Fatalf("reader %d got %+v, %v", i, r, errs[i])
		}
	}
	if hubReads, shared := reads(m, "GetJob", "hub"), reads(m, "GetJob", "coalesced")+reads(m, "GetJob", "cached"); hubReads != 1 || shared != 199 {
		t.Errorf("metrics: %v hub reads, %v coalesced or cached; want 1 and 199", hubReads, shared)
	}
	if reads(m, "GetJob", "coalesced") == 0 {
		t.Error("no read was counted as coalesced")
	}
}

func TestBudgetReusesResultsForTheTTL(t *testing.T) {
	b, hub, clock, m := budgetFixture(t, BudgetConfig{TTL: 2 * time.Second}, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 200, jobRunning)
	})
	ctx := context.Background()
	first, _ := b.GetJob(ctx, "job-1")
	clock.Advance(1900 * time.Millisecond)
	second, _ := b.GetJob(ctx, "job-1")
	if hub.count("GET", "/jobs/v2/job-1") != 1 || second.Value != first.Value || !second.FetchedAt.Equal(first.FetchedAt) {
		t.Errorf("read within the TTL went to the hub")
	}
	clock.Advance(200 * time.Millisecond)
	third, _ := b.GetJob(ctx, "job-1")
	if hub.count("GET", "/jobs/v2/job-1") != 2 || !third.FetchedAt.Equal(clock.Now()) || third.Stale {
		t.Errorf("read after the TTL: %d hub calls, %+v", hub.count("GET", "/jobs/v2/job-1"), third)
	}
	if reads(m, "GetJob", "cached") != 1 {
		t.Errorf("cached reads = %v", reads(m, "GetJob", "cached"))
	}
}

func TestBudgetServesStaleDataWhenTheBucketIsEmpty(t *testing.T) {
	b, hub, clock, m := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 1, CallerShare: 1}, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 200, jobRunning)
	})
	ctx := context.Background()
	first, err := b.GetJob(ctx, "job-1")
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Second) // past the TTL, far from a new token
	got, err := b.GetJob(ctx, "job-1")
	if err != nil || !got.Stale || got.Value != first.Value || got.Age(clock.Now()) != 5*time.Second || !errors.Is(got.Reason, ErrThrottled) {
		t.Fatalf("read with an empty bucket = %+v, %v; want the last job, stale, 5s old", got, err)
	}
	// Nothing known about another job: a local throttle error, no hub call.
	_, err = b.GetJob(ctx, "job-2")
	var be *BudgetError
	if !errors.As(err, &be) || !errors.Is(err, ErrThrottled) || be.RetryAfter <= 0 || be.RetryAfter > time.Minute {
		t.Fatalf("read of an unknown job with an empty bucket: %v", err)
	}
	if n := len(hub.requests()); n != 1 {
		t.Errorf("%d hub calls, want 1", n)
	}
	if reads(m, "GetJob", "stale") != 1 || reads(m, "GetJob", "refused") != 1 {
		t.Errorf("stale %v, refused %v", reads(m, "GetJob", "stale"), reads(m, "GetJob", "refused"))
	}
	clock.Advance(time.Minute) // the bucket refills
	if got, err := b.GetJob(ctx, "job-1"); err != nil || got.Stale {
		t.Errorf("after refill: %+v, %v", got, err)
	}
}

func TestBudgetKeepsATokenForCancel(t *testing.T) {
	// 30/min gives a burst of 3; reads may spend 2 and leave 1 for a write.
	b, hub, _, _ := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 30, CallerShare: 1}, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			reply(w, 200, jobCancelled)
			return
		}
		reply(w, 200, strings.Replace(jobQueued, "job-1", path.Base(r.URL.Path), 1))
	})
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := b.GetJob(ctx, id); err != nil {
			t.Fatalf("read %s: %v", id, err)
		}
	}
	if _, err := b.GetJob(ctx, "c"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("third read err = %v, want the budget to keep its last token", err)
	}
	if job, err := b.CancelJob(ctx, "job-1"); err != nil || job.Status != StatusCancelled {
		t.Fatalf("cancel with the reserved token: %+v, %v", job, err)
	}
	if _, err := b.CancelJob(ctx, "job-2"); !errors.Is(err, ErrThrottled) || RetryAfterHint(err) <= 0 {
		t.Fatalf("cancel with an empty bucket err = %v, want a local throttle with a hint", err)
	}
	if n := hub.count("POST", "/jobs/v2/job-2/cancel"); n != 0 {
		t.Errorf("a cancel over budget reached the hub")
	}
}

func TestBudgetServesStaleDataWhenTheHubFails(t *testing.T) {
	var mode string
	var mu sync.Mutex
	setMode := func(m string) { mu.Lock(); mode = m; mu.Unlock() }
	b, _, clock, _ := budgetFixture(t, BudgetConfig{}, func(w http.ResponseWriter, r *http.Request, _ int) {
		mu.Lock()
		defer mu.Unlock()
		switch mode {
		case "down":
			reply(w, 503, errServer)
		case "gone":
			reply(w, 404, errNotFound)
		default:
			reply(w, 200, jobRunning)
		}
	})
	ctx := context.Background()
	b.GetJob(ctx, "job-1")
	setMode("down")
	clock.Advance(3 * time.Second)
	got, err := b.GetJob(ctx, "job-1")
	if err != nil || !got.Stale || !errors.Is(got.Reason, ErrUnavailable) {
		t.Fatalf("hub down: %+v, %v; want stale data with the hub's error as reason", got, err)
	}
	setMode("gone")
	clock.Advance(3 * time.Second)
	if _, err := b.GetJob(ctx, "job-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("job gone: %v, want ErrNotFound rather than stale data", err)
	}
	setMode("down")
	clock.Advance(3 * time.Second)
	if _, err := b.GetJob(ctx, "job-1"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after not-found the old copy must be forgotten: %v", err)
	}
}

// TestBudgetCancelIsOneHubCallEach: the budget does not coalesce cancels
// (the jobs service does, with the audit entries each needs); a cancel
// spends a token, goes to the hub, and its answer replaces the cached job.
func TestBudgetCancelIsOneHubCallEach(t *testing.T) {
	b, hub, _, _ := budgetFixture(t, BudgetConfig{}, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			reply(w, 200, jobCancelled)
			return
		}
		reply(w, 200, jobQueued)
	})
	ctx := context.Background()
	if got, _ := b.GetJob(ctx, "job-1"); got.Value.Status != StatusQueued {
		t.Fatalf("setup read: %+v", got)
	}
	for i := range 2 {
		if job, err := b.CancelJob(ctx, "job-1"); err != nil || job.Status != StatusCancelled {
			t.Fatalf("cancel %d: %+v, %v", i, job, err)
		}
	}
	if n := hub.count("POST", "/jobs/v2/job-1/cancel"); n != 2 {
		t.Errorf("two cancels made %d hub calls, want 2", n)
	}
	if got, _ := b.GetJob(ctx, "job-1"); got.Value.Status != StatusCancelled || hub.count("GET", "/jobs/v2/job-1") != 1 {
		t.Errorf("read after cancel: %+v (%d GETs); want the cancel's answer from memory", got.Value, hub.count("GET", "/jobs/v2/job-1"))
	}
}

func TestBudgetQueriesHaveTheirOwnBucket(t *testing.T) {
	b, hub, _, _ := budgetFixture(t, BudgetConfig{QueriesPerMinute: 1, CallerShare: 1}, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Path == "/devices/query" {
			reply(w, 200, `[]`)
			return
		}
		reply(w, 200, `[]`)
	})
	ctx := context.Background()
	if _, err := b.QueryDeviceJobs(ctx, "job-1", PageOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.QueryDeviceJobs(ctx, "job-1", PageOptions{PageSize: 5}); !errors.Is(err, ErrThrottled) {
		t.Fatalf("second query err = %v, want the query bucket spent", err)
	}
	if _, err := b.QueryJobs(ctx, QueryJobsOptions{}); err != nil {
		t.Fatalf("jobs query with the query bucket spent: %v", err)
	}
	if n := hub.count("POST", "/devices/query"); n != 1 {
		t.Errorf("%d device queries", n)
	}
}

func TestBudgetFollowerMayLeaveEarly(t *testing.T) {
	release := make(chan struct{})
	b, hub, _, _ := budgetFixture(t, BudgetConfig{}, func(w http.ResponseWriter, r *http.Request, _ int) {
		<-release
		reply(w, 200, jobRunning)
	})
	leader := make(chan error, 1)
	go func() { _, err := b.GetJob(context.Background(), "job-1"); leader <- err }()
	for hub.count("GET", "/jobs/v2/job-1") == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.GetJob(ctx, "job-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled follower err = %v", err)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Errorf("leader err = %v", err)
	}
	if _, err := b.GetJob(context.Background(), "bad id"); !errors.Is(err, ErrInvalidJobID) {
		t.Errorf("bad id through the budget: %v", err)
	}
}

// TestBudgetLetsOneDeviceViewReadItsPages: the per-device view reads
// several pages of devices.jobs in a row to sort failures first (the hub
// pages 100 at a time). With a query burst of one, every page after the
// first was refused and the view silently covered the first 100 devices
// only. One person's view now reads its share of the burst at once, and
// another person's view still finds the rest of the bucket.
func TestBudgetLetsOneDeviceViewReadItsPages(t *testing.T) {
	b, hub, _, _ := budgetFixture(t, BudgetConfig{}, func(w http.ResponseWriter, r *http.Request, n int) {
		reply(w, 200, `[]`, "x-ms-continuation", "page-"+strconv.Itoa(n+1))
	})
	share := int(math.Ceil(DefaultQueriesBurst * DefaultCallerShare))
	view := func(who, job string, pages int) error {
		ctx := WithCaller(context.Background(), who)
		token := ""
		for page := range pages {
			f, err := b.QueryDeviceJobs(ctx, job, PageOptions{PageSize: 1000, Continuation: token})
			if err != nil {
				return fmt.Errorf("page %d of %s's view: %w", page+1, who, err)
			}
			token = f.Value.Continuation
		}
		return nil
	}
	if err := view("ann", "job-1", share); err != nil {
		t.Fatal(err)
	}
	if err := view("ann", "job-2", 1); !errors.Is(err, ErrThrottled) {
		t.Fatalf("ann's page %d at once: %v, want her share spent", share+1, err)
	}
	if err := view("bob", "job-2", DefaultQueriesBurst-share); err != nil {
		t.Fatalf("bob after ann: %v", err)
	}
	if n := hub.count("POST", "/devices/query"); n != DefaultQueriesBurst {
		t.Errorf("%d device queries reached the hub, want %d", n, DefaultQueriesBurst)
	}
}

// A page waiting on a read is answered within ReadWait: a hub that asks to
// be left alone for longer is not waited out (the client's call budget is
// for writes), and the answer carries its Retry-After.
func TestBudgetReadsDoNotWaitOutALongRetryAfter(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		reply(w, 429, errThrottle, "Retry-After", "20")
	})
	c, waits := hub.client(t)
	b := NewBudgeted(c, BudgetConfig{})
	_, err := b.GetJob(context.Background(), "job-1")
	if !errors.Is(err, ErrThrottled) || RetryAfterHint(err) != 20*time.Second {
		t.Fatalf("GetJob = %v (retry after %s), want the hub's throttle with its 20 s", err, RetryAfterHint(err))
	}
	if got := waits.all(); len(got) != 0 {
		t.Fatalf("the read waited %v for the hub; want no wait beyond ReadWait (%s)", got, DefaultReadWait)
	}
}
