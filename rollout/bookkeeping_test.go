package rollout

import (
	"context"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/hub"
)

// After a halt the page says a job cannot be cancelled only of a job that
// is running; a scheduled or queued one is about to be cancelled.
func TestHaltedWordsNameOnlyRunningJobs(t *testing.T) {
	e := &Engine{}
	halted := record{status: Status{State: Halted}}
	for _, tc := range []struct {
		status hub.JobStatus
		stuck  bool
	}{
		{hub.StatusRunning, true},
		{hub.StatusScheduled, false},
		{hub.StatusQueued, false},
	} {
		rows := []jobRow{{id: "hj-x-w2-1", state: jobCreated, status: tc.status}}
		got := e.nextWords(halted, rows)
		if stuck := strings.Contains(got, "cannot be cancelled"); stuck != tc.stuck {
			t.Errorf("%s job: %q", tc.status, got)
		}
	}
}

// The per-rollout locks live only while used: a completed rollout leaves
// none behind.
func TestLocksArePrunedOnceUnused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.engine("a")
	f.create(e, "lock1", methodSpec("*", ""))
	f.until(e, 10, func() bool { return f.get(e, "lock1").Status.State == Completed })
	if err := f.poll(e); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.locks) != 0 {
		t.Fatalf("%d locks kept after the rollout completed", len(e.locks))
	}
}

// The engine tells the jobs service of every job it reads, so a job it
// drove has an archived snapshot (the page of a purged job) like any job
// a person looked at.
func TestEngineReadJobsAreRemembered(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	e := f.engine("a")
	f.create(e, "seen1", methodSpec("*", ""))
	f.until(e, 10, func() bool { return f.get(e, "seen1").Status.State == Completed })
	snap, err := f.audit.Snapshot(context.Background(), "prod", "hj-seen1-w1-1")
	if err != nil {
		t.Fatalf("no snapshot of the engine's job: %v", err)
	}
	if !strings.Contains(string(snap.Body), `"completed"`) {
		t.Fatalf("snapshot %s, want the completed job", snap.Body)
	}
}
