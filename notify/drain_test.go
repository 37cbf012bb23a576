package notify

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
)

// A receiver that answers 503 for the first (fake-clock) minute gets
// every event afterwards; each delivery id is accepted exactly once — or,
// when a sender is killed with a batch in flight, at least once, the
// duplicates being that batch. The test runs 100 events (20 rollouts × 5);
// BenchmarkThousandEventsAfterAMinuteDown runs the README's 1,000
// (100 × 10) and reports the figures.
func TestEventsReachAReceiverDownForAMinute(t *testing.T) {
	for _, kill := range []bool{false, true} {
		forEachBackend(t, func(t *testing.T, b backend) {
			f := drainAfterOutage(t, b, kill, 20, 5)
			t.Log(f)
		})
	}
}

func BenchmarkThousandEventsAfterAMinuteDown(bm *testing.B) {
	for _, b := range backends {
		for _, kill := range []bool{false, true} {
			bm.Run(fmt.Sprintf("%s/kill=%v", b.dialect, kill), func(bm *testing.B) {
				for bm.Loop() {
					f := drainAfterOutage(bm, b, kill, 100, 10)
					bm.ReportMetric(f.drainWall.Seconds(), "drain-s")
					bm.ReportMetric(f.maxLag.Seconds(), "max-lag-s")
					bm.ReportMetric(float64(f.duplicates), "duplicates")
					bm.Log(f)
				}
			})
		}
	}
}

type drainFigures struct {
	dialect                    Dialect
	kill                       bool
	events, duplicates, killed int
	refused                    int
	p50Lag, maxLag             time.Duration // fake clock, from the receiver's return
	enqueueWall, drainWall     time.Duration
}

func (f drainFigures) String() string {
	return fmt.Sprintf("%s kill=%v: %d arrived, %d duplicates (killed batch %d), %d refused attempts while down; "+
		"lag after return (fake clock) p50 %s, max %s; enqueue %s, drain %s wall",
		f.dialect, f.kill, f.events, f.duplicates, f.killed, f.refused, f.p50Lag, f.maxLag,
		f.enqueueWall.Round(time.Millisecond), f.drainWall.Round(time.Millisecond))
}

func drainAfterOutage(t testing.TB, b backend, kill bool, rollouts, perRollout int) drainFigures {
	t.Helper()
	const concurrency = 8
	db, newHandle := b.open(t)
	clock := newFakeClock()
	start := clock.Now()
	up := start.Add(time.Minute)

	var mu sync.Mutex
	accepted := map[string]int{}
	acceptedAt := map[string]time.Time{}
	refused := 0
	rc := newReceiver(t)
	rc.setAnswer(func(r *http.Request, _ []byte) (int, http.Header, string) {
		mu.Lock()
		defer mu.Unlock()
		now := clock.Now()
		if now.Before(up) {
			refused++
			return http.StatusServiceUnavailable, nil, "down"
		}
		id := r.Header.Get(HeaderDelivery)
		accepted[id]++
		if _, seen := acceptedAt[id]; !seen {
			acceptedAt[id] = now
		}
		return http.StatusOK, nil, ""
	})
	w := hook("ops", rc.URL, FormatJSON, Events()...)
	o := openOutbox(t, db, b.dialect, clock, w)
	newRealSender := func(owner string) *Sender {
		s := newSender(t, openOutbox(t, newHandle(), b.dialect, clock, w), SenderConfig{Owner: owner, MaxConcurrent: concurrency})
		s.jitter = rand.Float64 // real jitter: heads retry spread out, as in production
		return s
	}
	wallStart := time.Now()
	for r := range rollouts {
		evs := make([]Event, perRollout)
		for i := range evs {
			evs[i] = Event{Event: RolloutAwaitingApproval, Hub: "prod", Rollout: fmt.Sprintf("r%03d", r), Details: map[string]any{"wave": i}}
		}
		enqueue(t, db, o, evs...)
	}
	enqueueWall := time.Since(wallStart)

	s := newRealSender("a")
	killed := 0
	var wallUp time.Time
	for clock.Now().Before(start.Add(time.Hour)) {
		if kill && wallUp.IsZero() && !clock.Now().Before(up) {
			// SIGKILL stand-in: a claims a batch, posts it, records nothing.
			batch, err := s.claim(t.Context(), concurrency)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range batch {
				s.post(t.Context(), w, d)
			}
			killed = len(batch)
			s = newRealSender("b") // the restarted portal
		}
		if wallUp.IsZero() && !clock.Now().Before(up) {
			wallUp = time.Now()
		}
		s.sendAllDue(t)
		mu.Lock()
		done := len(acceptedAt) == rollouts*perRollout
		mu.Unlock()
		if done && !kill || done && pendingCount(t, o) == 0 {
			break
		}
		clock.Advance(time.Second)
	}
	drainWall := time.Since(wallUp)

	mu.Lock()
	defer mu.Unlock()
	if len(acceptedAt) != rollouts*perRollout {
		t.Fatalf("%d of %d deliveries arrived", len(acceptedAt), rollouts*perRollout)
	}
	duplicates := 0
	for _, n := range accepted {
		duplicates += n - 1
	}
	if !kill && duplicates != 0 || kill && duplicates > killed {
		t.Errorf("%d duplicate acceptances (killed batch: %d)", duplicates, killed)
	}
	if n := pendingCount(t, o); n != 0 {
		t.Errorf("%d deliveries still pending", n)
	}
	lags := make([]time.Duration, 0, len(acceptedAt))
	for _, at := range acceptedAt {
		lags = append(lags, at.Sub(up))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	return drainFigures{dialect: b.dialect, kill: kill, events: len(acceptedAt), duplicates: duplicates,
		killed: killed, refused: refused, p50Lag: lags[len(lags)/2], maxLag: lags[len(lags)-1],
		enqueueWall: enqueueWall, drainWall: drainWall}
}

func pendingCount(t testing.TB, o *Outbox) int {
	t.Helper()
	var n int
	if err := o.db.QueryRow(`SELECT COUNT(*) FROM notify_outbox WHERE status = 'pending'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
