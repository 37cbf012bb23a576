package hub

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// breakerHub is a fake hub that fails with 503 while down is set.
func breakerHub(t *testing.T, down *atomic.Bool) *fakeHub {
	t.Helper()
	return newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case down.Load():
			reply(w, 503, errServer)
		case r.Method == http.MethodPost:
			reply(w, 200, jobCancelled)
		default:
			reply(w, 200, jobQueued)
		}
	})
}

// TestBreaker: after N calls in a row fail without a
// usable answer, later calls (a cancel too) fail fast as "not attempted"
// and send nothing; after the cool-down one probe goes through, and its
// answer closes the breaker or opens it for another cool-down.
func TestBreaker(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	down.Store(true)
	hub := breakerHub(t, &down)
	clock := newManualClock()
	c, _ := hub.client(t, func(c *Config) {
		c.MaxAttempts = 1
		c.BreakerThreshold, c.BreakerCooldown, c.Now = 3, 30*time.Second, clock.Now
	})
	for i := range 3 {
		if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotAttempted) {
			t.Fatalf("failure %d: err = %v, want the hub's 503", i+1, err)
		}
	}

	job, err := c.CancelJob(ctx, "job-1")
	if job != nil || !errors.Is(err, ErrNotAttempted) || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("cancel with the breaker open = %+v, %v; want not attempted (and so no unknown outcome)", job, err)
	}
	if got := RetryAfterHint(err); got != 30*time.Second {
		t.Errorf("RetryAfterHint = %v, want the 30 s cool-down", got)
	}
	if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrNotAttempted) {
		t.Errorf("read with the breaker open: %v", err)
	}
	if n := len(hub.requests()); n != 3 {
		t.Fatalf("%d requests reached the hub, want the 3 that opened the breaker", n)
	}

	clock.Advance(29 * time.Second)
	if _, err := c.GetJob(ctx, "job-1"); RetryAfterHint(err) != time.Second {
		t.Errorf("1 s before the end of the cool-down: %v (hint %v)", err, RetryAfterHint(err))
	}

	// The probe fails: open again for a whole cool-down.
	clock.Advance(time.Second)
	if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotAttempted) {
		t.Fatalf("probe: %v, want it sent and failing", err)
	}
	if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrNotAttempted) || RetryAfterHint(err) != 30*time.Second {
		t.Errorf("after a failed probe: %v (hint %v), want a new 30 s cool-down", err, RetryAfterHint(err))
	}

	// The hub recovers: the next probe closes the breaker.
	down.Store(false)
	clock.Advance(30 * time.Second)
	if _, err := c.GetJob(ctx, "job-1"); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	if job, err := c.CancelJob(ctx, "job-1"); err != nil || job.Status != StatusCancelled {
		t.Fatalf("cancel after recovery: %+v, %v", job, err)
	}
}

// TestBreakerCountsOnlyFailuresOfTheHub: any answer that shows the hub at
// work (404, 409, 429, 400) ends a run of failures; a caller giving up is
// no evidence either way.
func TestBreakerCountsOnlyFailuresOfTheHub(t *testing.T) {
	ctx := context.Background()
	script := []int{503, 503, 404, 503, 503, 429, 503, 503, 409, 503, 503}
	var n atomic.Int32
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		status := script[min(int(n.Add(1))-1, len(script)-1)]
		reply(w, status, errServer)
	})
	c, _ := hub.client(t, func(c *Config) { c.MaxAttempts = 1; c.BreakerThreshold = 3 })
	for i := range script {
		if _, err := c.GetJob(ctx, "job-1"); errors.Is(err, ErrNotAttempted) {
			t.Fatalf("call %d not attempted: two failures in a row never reach the threshold of 3", i+1)
		}
	}
	// The script ended on two failures. Calls the caller abandons neither
	// add to the run nor end it: one more failure makes three in a row.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for range 5 {
		c.GetJob(cancelled, "job-1")
	}
	if _, err := c.GetJob(ctx, "job-1"); errors.Is(err, ErrNotAttempted) {
		t.Fatalf("calls the caller abandoned counted as failures: %v", err)
	}
	if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrNotAttempted) {
		t.Fatalf("after failures 2 and 3 around abandoned calls: %v, want the breaker open", err)
	}
}

// TestBreakerLetsOneProbeThrough: while the probe is out, other calls
// still fail fast.
func TestBreakerLetsOneProbeThrough(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	var probing atomic.Bool
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if probing.Load() {
			<-release
			reply(w, 200, jobQueued)
			return
		}
		reply(w, 503, errServer)
	})
	clock := newManualClock()
	c, _ := hub.client(t, func(c *Config) {
		c.MaxAttempts = 1
		c.BreakerThreshold, c.BreakerCooldown, c.Now = 1, time.Minute, clock.Now
	})
	c.GetJob(ctx, "job-1") // opens
	clock.Advance(time.Minute)
	probing.Store(true)
	probe := make(chan error, 1)
	go func() { _, err := c.GetJob(ctx, "job-1"); probe <- err }()
	for len(hub.requests()) < 2 {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.GetJob(ctx, "job-1"); !errors.Is(err, ErrNotAttempted) {
		t.Errorf("second call during the probe: %v, want not attempted", err)
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if _, err := c.GetJob(ctx, "job-1"); err != nil {
		t.Errorf("after the probe succeeded: %v", err)
	}
}

// TestBreakerDoesNotStopTheReconcilingGET: the failure that opens the
// breaker can be the cancel itself; its outcome must still be looked up.
func TestBreakerDoesNotStopTheReconcilingGET(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			reply(w, 503, errServer)
			return
		}
		reply(w, 200, jobCancelled)
	})
	c, _ := hub.client(t, func(c *Config) { c.BreakerThreshold = 1 })
	job, err := c.CancelJob(context.Background(), "job-1")
	if job == nil || job.Status != StatusCancelled || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("CancelJob = %+v, %v; want the reconciled job", job, err)
	}
	if n := hub.count("GET", "/jobs/v2/job-1"); n != 1 {
		t.Errorf("%d reconciling GETs, want 1", n)
	}
}
