package hubsim

import "time"

// Clock is the simulator's notion of now; tests inject a testkit.Clock. Job
// state is derived from Clock on every request, so the simulator needs no
// goroutines and a test controls the whole lifecycle by moving the clock.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now().UTC() }
