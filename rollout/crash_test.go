package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
)

// SIGKILL at every point, then a restart: the crash hook stops the engine
// at a named point (before or after a hub call, after a persist), the
// engine is thrown away with everything it held in memory, and a fresh one
// takes over two seconds later from the database alone. It has the same
// owner: with SQLite the engine is one process, and its restart is that
// process again (cmd gives it a fixed owner); a replica taking over from a
// dead one on PostgreSQL is the lease test's subject. The points are not listed by hand:
// a dry run of each scenario records every point it passes, and the table
// crashes at the first and second pass of each.

// crashScenario is a rollout and how it must end.
type crashScenario struct {
	name  string
	opts  func() fixtureOptions
	rid   string
	spec  func() Spec
	final State
	halt  HaltReason
	jobs  []string // the hub jobs it must leave, each exactly once
	// cancelled are the jobs that must end cancelled on the hub.
	cancelled []string
}

func crashScenarios() []crashScenario {
	sick := map[int]bool{}
	for i := range 60 {
		sick[i] = i%2 == 0
	}
	return []crashScenario{
		{
			name: "one wave", rid: "crashone", final: Completed,
			opts: func() fixtureOptions { return fixtureOptions{devices: registry(30, nil, nil)} },
			spec: func() Spec { return methodSpec("*", "") },
			jobs: []string{"hj-crashone-w1-1"},
		},
		{
			name: "three waves", rid: "crashwaves", final: Completed,
			opts: func() fixtureOptions { return fixtureOptions{devices: registry(100, nil, nil)} },
			spec: func() Spec { return methodSpec("*", "10,50%") },
			jobs: []string{"hj-crashwaves-w1-1", "hj-crashwaves-w2-1", "hj-crashwaves-w3-1"},
		},
		{
			name: "health halt cancels the scheduled wave", rid: "crashhealth", final: Halted, halt: HaltHealth,
			opts: func() fixtureOptions { return fixtureOptions{devices: registry(60, nil, sick), maxActive: 10} },
			spec: func() Spec {
				s := methodSpec("*", "20")
				s.Rules.HealthQuery, s.Rules.Health = "properties.reported.health = 'error'", Percent(10)
				return s
			},
			jobs: []string{"hj-crashhealth-w1-1", "hj-crashhealth-w2-1"}, cancelled: []string{"hj-crashhealth-w2-1"},
		},
	}
}

// recorder counts the passes of each crash point and crashes at one.
type recorder struct {
	mu     sync.Mutex
	passes map[string]int
	order  []string // point.pass in the order first seen
	at     string   // "point.pass" to crash at; "" never
	hit    bool
}

func (r *recorder) hook(point string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.passes[point]++
	key := fmt.Sprintf("%s.%d", point, r.passes[point])
	if r.passes[point] <= 2 {
		r.order = append(r.order, key)
	}
	if key == r.at && !r.hit {
		r.hit = true
		return true
	}
	return false
}

// play runs sc, crashing where rec says, restarting after the crash, to
// the end.
func play(t *testing.T, sc crashScenario, rec *recorder) *fixture {
	t.Helper()
	f := newFixture(t, sc.opts())
	e := f.engine("first")
	e.crash = rec.hook
	restart := func() {
		f.clock.Advance(2 * time.Second)
		e = f.engine("first") // the process again: empty memory
	}
	if _, err := e.Create(context.Background(), person("alice"), sc.rid, sc.spec()); errors.Is(err, errCrashed) {
		restart()
	} else if err != nil {
		t.Fatalf("create: %v", err)
	}
	for range 300 {
		ro, err := e.Get(context.Background(), "prod", sc.rid)
		if err == nil && ro.Status.State.Final() && settled(ro) {
			return f
		}
		err = e.tick(context.Background())
		switch {
		case errors.Is(err, errCrashed):
			restart()
		case err != nil:
			t.Fatalf("poll: %v", err)
		default:
			f.clock.Advance(testPoll)
		}
	}
	t.Fatalf("%s did not end", sc.rid)
	return nil
}

// settled: no job of the rollout is left to send, to cancel, or (once
// halted) waiting to start.
func settled(ro *Rollout) bool {
	for _, w := range ro.Waves {
		for _, j := range w.Jobs {
			switch hub.JobStatus(j.State) {
			case "pending", "cancelling":
				return false
			case hub.StatusQueued, hub.StatusScheduled:
				if ro.Status.State == Halted {
					return false
				}
			}
		}
	}
	return true
}

func TestCrashAtEveryPoint(t *testing.T) {
	for _, sc := range crashScenarios() {
		dry := &recorder{passes: map[string]int{}}
		play(t, sc, dry)
		if len(dry.order) < 6 {
			t.Fatalf("%s: only %d crash points passed: %v", sc.name, len(dry.order), dry.order)
		}
		for _, at := range dry.order {
			t.Run(sc.name+"/"+at, func(t *testing.T) {
				rec := &recorder{passes: map[string]int{}, at: at}
				f := play(t, sc, rec)
				if !rec.hit {
					t.Fatalf("never crashed at %s", at)
				}
				checkEnd(t, f, sc)
			})
		}
	}
}

func checkEnd(t *testing.T, f *fixture, sc crashScenario) {
	t.Helper()
	e := f.engine("check")
	ro := f.get(e, sc.rid)
	if ro.Status.State != sc.final || ro.Status.Halt != sc.halt {
		t.Fatalf("ended %s (%s: %s), want %s %s", ro.Status.State, ro.Status.Halt, ro.Status.Note, sc.final, sc.halt)
	}
	onHub := f.hubJobs("prod")
	var ids []string
	for id := range onHub {
		if strings.HasPrefix(id, "hj-"+sc.rid+"-") {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if !slices.Equal(ids, sc.jobs) {
		t.Fatalf("hub jobs %v, want exactly %v", ids, sc.jobs)
	}
	for _, id := range sc.cancelled {
		if st := onHub[id].Status; st != hub.StatusCancelled {
			t.Fatalf("%s is %s, want cancelled", id, st)
		}
	}
	if sc.rid != "crashone" {
		for d, n := range f.targeted(sc.rid) {
			if n != 1 {
				t.Fatalf("device %s targeted %d times", d, n)
			}
		}
	}
	// Each transition is on record exactly once, crash or not.
	trail := f.trail(sc.rid)
	if n := strings.Count(strings.Join(trail, ","), "rollout.created"); n != 1 {
		t.Fatalf("trail %v: %d creations", trail, n)
	}
	if n := strings.Count(strings.Join(trail, ","), "rollout.wave_started"); n != len(sc.jobs) {
		t.Fatalf("trail %v: %d waves started, want %d", trail, n, len(sc.jobs))
	}
	if err := f.audit.Verify(context.Background()); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
}
