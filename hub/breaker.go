package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Breaker defaults: five calls in a row without a usable answer from the
// hub (after their own retries, so up to twenty attempts) mean it is down
// or unreachable; calling it again at once only adds to the outage and
// keeps an operator waiting 25 s for the same answer.
const (
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
)

// BreakerError is a call the client did not make because the hub failed
// BreakerThreshold calls in a row and the cool-down has not passed. It
// matches ErrNotAttempted and ErrUnavailable; nothing was sent, so a cancel
// refused this way has a known outcome: it did not happen.
type BreakerError struct {
	Hub, Op    string
	Failures   int           // calls in a row that failed
	RetryAfter time.Duration // until the next probe may go through
}

func (e *BreakerError) Error() string {
	return fmt.Sprintf("IoT Hub %s %s not attempted: the hub failed %d calls in a row, so the portal pauses calls to it; retry in %s",
		e.Hub, e.Op, e.Failures, e.RetryAfter.Round(time.Second))
}

// Is makes a *BreakerError match ErrNotAttempted and ErrUnavailable.
func (e *BreakerError) Is(target error) bool {
	return target == ErrNotAttempted || target == ErrUnavailable
}

// breaker is a circuit breaker per hub, so a failing hub is not hammered: closed while
// calls succeed; open for a cool-down after threshold calls in a row failed
// for the hub's sake (no answer, a timeout, a 5xx); then half-open, letting
// one probe through whose result closes it or opens it again.
type breaker struct {
	threshold int // ≤ 0: never opens
	cooldown  time.Duration
	now       func() time.Time

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool // a half-open probe is out
}

// allow reports whether a call may go to the hub now; probe says it is the
// half-open probe (its result decides), err is the refusal otherwise.
func (b *breaker) allow(hub, op string) (probe bool, err error) {
	if b.threshold <= 0 {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return false, nil
	}
	now := b.now()
	if now.Before(b.openUntil) || b.probing {
		wait := b.openUntil.Sub(now)
		if wait <= 0 {
			wait = time.Second // the probe's answer is due any moment
		}
		return false, &BreakerError{Hub: hub, Op: op, Failures: b.failures, RetryAfter: wait}
	}
	b.probing = true
	return true, nil
}

// callResult is what one call tells the breaker about the hub.
type callResult int

const (
	hubAnswered callResult = iota // any answer from the hub itself, error or not
	hubFailed                     // no usable answer: transport failure, timeout, 5xx, 408
	noEvidence                    // the caller gave up first
)

// classify turns a call's outcome into evidence about the hub.
func classify(ctx context.Context, err error) callResult {
	switch {
	case err == nil:
		return hubAnswered
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return noEvidence
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrTimeout):
		return hubFailed
	}
	return hubAnswered
}

func (b *breaker) record(probe bool, r callResult) {
	if b.threshold <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	switch r {
	case hubAnswered:
		b.failures = 0
	case hubFailed:
		b.failures++
		if b.failures >= b.threshold {
			b.openUntil = b.now().Add(b.cooldown)
		}
	}
}

// breakerBypass marks the context of a reconciling GET: the failure that
// opened the breaker may be the very write whose outcome it must find out.
type breakerBypass struct{}
