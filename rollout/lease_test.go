package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// TestTwoReplicasOneDriverAndTakeover: two engines on one PostgreSQL
// schema. Only the lease holder makes hub calls; when it stops without
// giving the lease up (a SIGKILL), the other takes over once the lease has
// run out (≤ DefaultLeaseFor) and finishes the rollout.
func TestTwoReplicasOneDriverAndTakeover(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(100, nil, nil), dsn: testkit.PostgresSchema(t, "rollout_lease")})
	a, b := f.engine("replica-a"), f.engine("replica-b")
	f.create(a, "lease1", methodSpec("*", "10,50%"))

	if err := a.tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	sim := f.sims["prod"]
	calls := func() int {
		return sim.Calls("createJob") + sim.Calls("getJob") + sim.Calls("queryJobs") + sim.Calls("queryDevices")
	}
	before := calls()
	for range 3 {
		if err := b.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if calls() != before || testutil.ToFloat64(b.metrics.leader) != 0 || testutil.ToFloat64(a.metrics.leader) != 1 {
		t.Fatalf("the replica without the lease made %d hub calls (leader a=%v b=%v)", calls()-before,
			testutil.ToFloat64(a.metrics.leader), testutil.ToFloat64(b.metrics.leader))
	}

	// a drives into wave 2, then dies without releasing the lease.
	f.until(a, 10, func() bool { return f.get(a, "lease1").Status.State == Baking })
	died := f.clock.Now()
	var took time.Duration
	for range 10 {
		f.clock.Advance(5 * time.Second)
		if err := b.tick(context.Background()); err != nil {
			t.Fatal(err)
		}
		if testutil.ToFloat64(b.metrics.leader) == 1 {
			took = f.clock.Now().Sub(died)
			break
		}
	}
	if took == 0 || took > DefaultLeaseFor+5*time.Second {
		t.Fatalf("takeover after %s, want within the %s lease", took, DefaultLeaseFor)
	}
	f.until(b, 200, func() bool { return f.get(b, "lease1").Status.State == Completed })
	for d, n := range f.targeted("lease1") {
		if n != 1 {
			t.Fatalf("device %s targeted %d times across the takeover", d, n)
		}
	}
	t.Logf("takeover %s after the holder died (lease %s)", took, DefaultLeaseFor)
}
