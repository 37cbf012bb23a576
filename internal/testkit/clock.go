package testkit

import (
	"sync"
	"time"
)

// Clock is a clock that moves only when a test moves it, so expiry, TTLs and
// backoff are tested without sleeping. It is safe for concurrent use: a test
// may advance it while requests are in flight. Pass its Now method wherever
// a package takes a `func() time.Time`, or the Clock itself where an
// interface with Now is wanted (hubsim.Options.Clock).
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d (backward when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to at.
func (c *Clock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}
