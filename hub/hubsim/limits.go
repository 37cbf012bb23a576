package hubsim

import (
	"math"
	"time"
)

// tokenBucket is the hub's jobs-operations throttle (100/min/unit on
// S1/S2): a bucket of perMinute tokens refilled continuously from the
// simulator's Clock, so tests drive it by moving their clock.
type tokenBucket struct {
	perMinute int
	tokens    float64
	last      time.Time
}

func newTokenBucket(perMinute int, now time.Time) tokenBucket {
	return tokenBucket{perMinute: perMinute, tokens: float64(perMinute), last: now}
}

// take spends one token. When none is left it returns how long until one
// will be; a bucket of 0 per minute never refuses.
func (b *tokenBucket) take(now time.Time) (ok bool, wait time.Duration) {
	if b.perMinute <= 0 {
		return true, 0
	}
	perSecond := float64(b.perMinute) / 60
	if now.After(b.last) {
		b.tokens = math.Min(float64(b.perMinute), b.tokens+now.Sub(b.last).Seconds()*perSecond)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
}
