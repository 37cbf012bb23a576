package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"
)

func TestAKilledSendersDeliveryIsSentAgainWithTheSameIDOnceItsLeaseExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, newHandle := b.open(t)
		rc := newReceiver(t)
		clock := newFakeClock()
		w := hook("ops", rc.URL, FormatJSON, RolloutHalted)
		o := openOutbox(t, db, b.dialect, clock, w)
		enqueue(t, db, o, halted("r1"))

		// Sender a claims and posts, then dies before recording the outcome.
		a := newSender(t, o, SenderConfig{Owner: "a"})
		batch, err := a.claim(context.Background(), 1)
		if err != nil || len(batch) != 1 {
			t.Fatalf("claim = %v, %v", batch, err)
		}
		a.post(context.Background(), w, batch[0])

		// Another replica, its own connections, the same database.
		other := openOutbox(t, newHandle(), b.dialect, clock, w)
		bs := newSender(t, other, SenderConfig{Owner: "b"})
		if n := bs.sendAllDue(t); n != 0 {
			t.Fatalf("sent %d while a's lease was live", n)
		}
		clock.Advance(leaseDuration)
		if n := bs.sendAllDue(t); n != 1 {
			t.Fatalf("sent %d after a's lease expired, want 1", n)
		}
		reqs := rc.got()
		if len(reqs) != 2 || reqs[0].delivery != reqs[1].delivery || string(reqs[0].body) != string(reqs[1].body) {
			t.Fatalf("receiver got %d requests (%v), want the same delivery twice", len(reqs), reqs)
		}
		if d := onlyDelivery(t, o); d.Status != Delivered || d.Attempts != 1 {
			t.Errorf("delivery %+v, want delivered, 1 recorded attempt", d)
		}
		// a comes back to life: its late outcome must not overwrite b's.
		if err := a.settle(context.Background(), batch[0], attempt{status: 500}); err != nil {
			t.Fatal(err)
		}
		if d := onlyDelivery(t, o); d.Status != Delivered {
			t.Errorf("a's stale outcome overwrote b's: %+v", d)
		}
	})
}

// inFlightReceiver answers slowly and records, per delivery id, how many
// requests overlapped and how many succeeded.
type inFlightReceiver struct {
	*receiver
	mu         sync.Mutex
	inFlight   map[string]int
	overlapped []string
}

func newInFlightReceiver(t *testing.T) *inFlightReceiver {
	ir := &inFlightReceiver{receiver: newReceiver(t), inFlight: map[string]int{}}
	ir.setAnswer(func(r *http.Request, _ []byte) (int, http.Header, string) {
		id := r.Header.Get(HeaderDelivery)
		ir.mu.Lock()
		ir.inFlight[id]++
		if ir.inFlight[id] > 1 {
			ir.overlapped = append(ir.overlapped, id)
		}
		ir.mu.Unlock()
		time.Sleep(5 * time.Millisecond) // widen the window for a second sender
		ir.mu.Lock()
		ir.inFlight[id]--
		ir.mu.Unlock()
		return 200, nil, ""
	})
	return ir
}

func TestSendersSharingADatabaseNeverSendOneDeliveryTwice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, newHandle := b.open(t)
		rc := newInFlightReceiver(t)
		clock := newFakeClock()
		w := hook("ops", rc.URL, FormatJSON, Events()...)
		o := openOutbox(t, db, b.dialect, clock, w)
		const rollouts, perRollout = 20, 5
		var evs []Event
		for i := range perRollout * rollouts {
			evs = append(evs, Event{Event: RolloutAwaitingApproval, Hub: "prod", Rollout: fmt.Sprintf("r%d", i%rollouts),
				Details: map[string]any{"wave": i / rollouts}})
		}
		enqueue(t, db, o, evs...)

		var wg sync.WaitGroup
		for i := range 3 { // three replicas, each with its own pool
			replica := newSender(t, openOutbox(t, newHandle(), b.dialect, clock, w),
				SenderConfig{Owner: fmt.Sprintf("replica-%d", i), MaxConcurrent: 4})
			wg.Go(func() {
				for idle := 0; idle < 3; {
					if replica.sendDue(t) == 0 {
						idle++
						time.Sleep(5 * time.Millisecond)
					} else {
						idle = 0
					}
				}
			})
		}
		wg.Wait()

		if len(rc.overlapped) > 0 {
			t.Errorf("%d times a delivery was sent while another sender was sending it (first: %s)",
				len(rc.overlapped), rc.overlapped[0])
		}
		seen := map[string]int{}
		waves := map[string][]float64{}
		for _, r := range rc.got() {
			seen[r.delivery]++
			var ev Event
			json.Unmarshal(r.body, &ev)
			waves[ev.Rollout] = append(waves[ev.Rollout], ev.Details["wave"].(float64))
		}
		if len(seen) != len(evs) {
			t.Errorf("%d distinct deliveries received, want %d", len(seen), len(evs))
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("delivery %s received %d times", id, n)
			}
		}
		for r, ws := range waves {
			for i, w := range ws {
				if int(w) != i {
					t.Errorf("%s received out of order: %v", r, ws)
					break
				}
			}
		}
	})
}
