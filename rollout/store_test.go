package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

func openTestStore(t *testing.T, dsn string) *Store {
	t.Helper()
	a, err := audit.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	s, err := OpenStore(context.Background(), a.DB(), a.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(context.Background(), a.DB(), a.Dialect()); err != nil {
		t.Fatalf("migrations must be idempotent: %v", err)
	}
	return s
}

func inTx(t *testing.T, s *Store, f func(tx *sql.Tx) error) error {
	t.Helper()
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func TestStore(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := openTestStore(t, dsn)
		ctx := context.Background()
		spec := methodSpec("tags.ring = '1'", "10,25%")
		spec.Rules = Rules{Failures: Percent(2.5), MinFinished: 7, Scope: Cumulative,
			HealthQuery: "properties.reported.health = 'error'", Health: Count(3), ApprovalOverDevices: 100, ApprovalWaves: []int{2}}
		spec.Start = t0.Add(time.Hour)
		author := audit.Actor{Issuer: "iss", Subject: "sub", Name: "Alice", Roles: []string{"author"}}
		r := record{id: "store1", hub: "prod", spec: spec, author: author,
			status: Status{State: Planned, Since: t0}, created: t0}
		if err := inTx(t, s, func(tx *sql.Tx) error { return s.insertRollout(ctx, tx, r) }); err != nil {
			t.Fatal(err)
		}

		got, err := s.load(ctx, s.db, "store1")
		if err != nil {
			t.Fatal(err)
		}
		if got.spec.Waves.String() != "10,25%,100%" || got.spec.Rules.Failures != Percent(2.5) || got.spec.Rules.Health != Count(3) ||
			got.spec.Rules.Scope != Cumulative || !got.spec.Start.Equal(spec.Start) || got.spec.Method.MethodName != "update" ||
			got.author.Name != "Alice" || got.status.State != Planned || !got.created.Equal(t0) || got.version != 1 {
			t.Fatalf("round trip: %+v", got)
		}
		if _, err := s.load(ctx, s.db, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}

		// Optimistic concurrency: a write from a stale read is refused.
		next := Status{State: Running, Wave: 1, Since: t0.Add(time.Minute)}
		if err := s.setStatus(ctx, s.db, got, next); err != nil {
			t.Fatal(err)
		}
		if err := s.setStatus(ctx, s.db, got, Status{State: Halted}); !errors.Is(err, errStale) {
			t.Fatalf("stale write: %v, want errStale", err)
		}

		// The frozen list of 100,000 devices: one row, back in order.
		ids := make([]string, 100_000)
		for i := range ids {
			ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i*7919)
		}
		cur, _ := s.load(ctx, s.db, "store1")
		cur.devices, cur.sizes, cur.gated = len(ids), []int{10, 24990, 75000}, []bool{false, true, true}
		start := time.Now()
		if err := inTx(t, s, func(tx *sql.Tx) error { return s.setPlan(ctx, tx, cur, ids) }); err != nil {
			t.Fatal(err)
		}
		back, err := s.deviceIDs(ctx, "store1")
		if err != nil || !slices.Equal(back, ids) {
			t.Fatalf("device list round trip: %v (%d ids)", err, len(back))
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Fatalf("storing and reading 100,000 ids took %s", took)
		}

		// Jobs: inserting again keeps what is there; a move from the wrong state is refused.
		rows := []jobRow{{id: "hj-store1-w1-1", wave: 1, part: 1, devices: 10}}
		for range 2 {
			if err := inTx(t, s, func(tx *sql.Tx) error { return s.insertJobs(ctx, tx, "store1", rows, t0) }); err != nil {
				t.Fatal(err)
			}
		}
		j := rows[0]
		j.state, j.status, j.stats = jobCreated, hub.StatusRunning, &hub.DeviceJobStatistics{DeviceCount: 10, FailedCount: 1}
		if err := s.setJob(ctx, j, jobPending, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.setJob(ctx, j, jobPending, t0); !errors.Is(err, errStale) {
			t.Fatalf("second move from pending: %v, want errStale", err)
		}
		js, err := s.jobs(ctx, s.db, "store1")
		if err != nil || len(js) != 1 || js[0].state != jobCreated || js[0].stats.FailedCount != 1 {
			t.Fatalf("jobs: %v %+v", err, js)
		}

		// Approvals: one per wave.
		bob := audit.Actor{Issuer: "iss", Subject: "bob", Name: "Bob"}
		if err := s.insertApproval(ctx, s.db, "store1", 2, bob, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.insertApproval(ctx, s.db, "store1", 2, bob, t0); err == nil {
			t.Fatal("a second approval of one wave was stored")
		}
		if as, _ := s.approvals(ctx, "store1"); as[2].Name != "Bob" {
			t.Fatalf("approvals %+v", as)
		}

		// Verdicts keep their order.
		for i, text := range []string{"first", "second"} {
			if err := s.addVerdict(ctx, s.db, "store1", i+1, Verdict{Rule: HaltFailures, Text: text}, t0); err != nil {
				t.Fatal(err)
			}
		}
		if vs, _ := s.verdicts(ctx, "store1"); len(vs) != 2 || vs[0].v.Text != "first" || vs[1].wave != 2 {
			t.Fatalf("verdicts %+v", vs)
		}

		// list: newest first, by state, and the engine's work list.
		if err := inTx(t, s, func(tx *sql.Tx) error {
			return s.insertRollout(ctx, tx, record{id: "store2", hub: "prod", spec: methodSpec("*", ""), author: author,
				status: Status{State: Completed, Since: t0}, created: t0.Add(time.Second)})
		}); err != nil {
			t.Fatal(err)
		}
		all, _ := s.list(ctx, "prod", "", false)
		work, _ := s.list(ctx, "", "", true)
		done, _ := s.list(ctx, "prod", Completed, false)
		if len(all) != 2 || all[0].id != "store2" || len(work) != 1 || work[0].id != "store1" || len(done) != 1 {
			t.Fatalf("lists: all %d, work %d, completed %d", len(all), len(work), len(done))
		}
	})
}

// TestLeaseIsExclusive: many replicas racing for the lease at one instant,
// exactly one wins; the holder renews; after expiry another takes it.
func TestLeaseIsExclusive(t *testing.T) {
	backends(t, func(t *testing.T, dsn string) {
		s := openTestStore(t, dsn)
		ctx := context.Background()
		var wins sync.Map
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				ok, err := s.takeLease(ctx, fmt.Sprint("replica-", i), t0, t0.Add(30*time.Second))
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Store(i, true)
				}
			})
		}
		wg.Wait()
		var winner []int
		wins.Range(func(k, _ any) bool { winner = append(winner, k.(int)); return true })
		if len(winner) != 1 {
			t.Fatalf("%d replicas hold the lease, want 1", len(winner))
		}
		holder, other := fmt.Sprint("replica-", winner[0]), "someone-else"
		if ok, _ := s.takeLease(ctx, holder, t0.Add(10*time.Second), t0.Add(40*time.Second)); !ok {
			t.Fatal("the holder could not renew")
		}
		if ok, _ := s.takeLease(ctx, other, t0.Add(39*time.Second), t0.Add(69*time.Second)); ok {
			t.Fatal("another replica took a live lease")
		}
		if ok, _ := s.takeLease(ctx, other, t0.Add(41*time.Second), t0.Add(71*time.Second)); !ok {
			t.Fatal("another replica could not take an expired lease")
		}
		if err := s.releaseLease(ctx, other); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.takeLease(ctx, holder, t0.Add(42*time.Second), t0.Add(72*time.Second)); !ok {
			t.Fatal("a released lease was not free")
		}
	})
}
