package rollout

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/notify"
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

// Rollout ids are unique across hubs: reusing one of another hub's is a
// clear refusal, not a database error, and the other rollout is untouched.
func TestCreateWithAnotherHubsIDIsRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{hubs: []string{"prod", "staging"}})
	e := f.engine("a")
	f.create(e, "twice1", methodSpec("*", ""))
	s := methodSpec("*", "")
	s.Hub = "staging"
	_, err := e.Create(context.Background(), person("bob"), "twice1", s)
	if !errors.Is(err, ErrIDTaken) {
		t.Fatalf("create on another hub: %v, want ErrIDTaken", err)
	}
	if ro := f.get(e, "twice1"); ro.Hub != "prod" || ro.Author.Name != "alice" {
		t.Fatalf("first rollout now %+v", ro)
	}
}

// A halt by someone whose token carries no name still says who in the
// notification (their e-mail, or subject).
func TestHaltSummaryNamesAnActorWithoutAName(t *testing.T) {
	f := newFixture(t, fixtureOptions{maxActive: 10})
	ob, err := notify.Open(context.Background(), f.audit.DB(), notify.Dialect(f.audit.Dialect()), notify.Config{
		PublicURL: "https://jobs.example.com",
		Webhooks:  []notify.Webhook{{Name: "ops", URL: "https://hooks.example.com/x", Secret: "s", Events: []string{"rollout.halted"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := f.engine("a")
	e.outbox = ob
	f.create(e, "anon1", methodSpec("*", "10"))
	who := person("olga")
	who.Actor.Name, who.Actor.Email = "", "olga@example.com"
	if _, err := e.Halt(context.Background(), who, "prod", "anon1", "stop"); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := f.audit.DB().QueryRow(`SELECT body FROM notify_outbox WHERE event = 'rollout.halted'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, "halted by olga@example.com: stop") {
		t.Fatalf("halt notification %s", body)
	}
}

// The device order is keyed by the rollout id and a secret the engine
// draws at creation, so the id an author's form chose does not tell which
// devices wave 1 gets; the stored secret rebuilds the same plan after a
// restart.
func TestDeviceOrderIsNotPredictableFromTheID(t *testing.T) {
	firstWave := func(t *testing.T, f *fixture, e *Engine) []string {
		t.Helper()
		r, err := f.store.load(context.Background(), f.store.db, "same1")
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.plan(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		return p.Waves[0].Devices
	}
	run := func(t *testing.T) (*fixture, []string) {
		f := newFixture(t, fixtureOptions{maxActive: 10})
		e := f.engine("a")
		f.create(e, "same1", methodSpec("*", "10"))
		f.until(e, 5, func() bool { return f.get(e, "same1").Status.State == Running })
		return f, firstWave(t, f, e)
	}
	f, one := run(t)
	_, two := run(t)
	byID, err := NewPlan("same1", "", registryIDs(40), mustWaves(t, "10"))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case slices.Equal(one, two):
		t.Fatalf("two rollouts with the id same1 froze the same first wave %v", one)
	case slices.Equal(one, byID.Waves[0].Devices):
		t.Fatal("the first wave is the one the id alone gives")
	}
	if again := firstWave(t, f, f.engine("restarted")); !slices.Equal(again, one) {
		t.Fatalf("after a restart wave 1 is %v, was %v", again, one)
	}
}

func registryIDs(n int) []string {
	ids := make([]string, n)
	for i, d := range registry(n, nil, nil) {
		ids[i] = d.DeviceID
	}
	return ids
}

func mustWaves(t *testing.T, s string) WaveSpec {
	t.Helper()
	w, err := ParseWaves(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}
