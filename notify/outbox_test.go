package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOpenIsIdempotentAndKeepsRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, newHandle := b.open(t)
		clock := newFakeClock()
		w := hook("ops", "https://x", FormatJSON, RolloutHalted)
		enqueue(t, db, openOutbox(t, db, b.dialect, clock, w), halted("r1"))
		again := openOutbox(t, newHandle(), b.dialect, clock, w) // a restart, or a second replica
		if got := len(deliveries(t, again)); got != 1 {
			t.Fatalf("after reopening: %d deliveries, want 1", got)
		}
	})
}

func TestOpenRefusesAmbiguousConfig(t *testing.T) {
	db, _ := openSQLite(t)
	ctx := context.Background()
	if _, err := Open(ctx, db, "mysql", Config{}); err == nil {
		t.Error("Open with an unknown dialect succeeded")
	}
	w := hook("ops", "https://x", FormatJSON)
	if _, err := Open(ctx, db, SQLite, Config{Webhooks: []Webhook{w, w}}); err == nil {
		t.Error("Open with two webhooks of one name succeeded")
	}
}

func TestEnqueueFansOutToSubscribedWebhooksInTheCallersTransaction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		clock := newFakeClock()
		o := openOutbox(t, db, b.dialect, clock,
			hook("ops", "https://ops", FormatJSON, RolloutHalted, RolloutCompleted),
			hook("chat", "https://chat", FormatSlack, RolloutHalted),
			hook("audit-bot", "https://bot", FormatJSON, JobCancelled))
		ctx := context.Background()

		// A change rolled back takes its deliveries with it.
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Enqueue(ctx, tx, halted("r1")); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := deliveries(t, o); len(got) != 0 {
			t.Fatalf("after rollback: %d deliveries, want none", len(got))
		}

		enqueue(t, db, o, halted("r1"), Event{Event: RolloutCompleted, Hub: "prod", Rollout: "r2"})
		got := map[string]Delivery{}
		for _, d := range deliveries(t, o) {
			got[d.Webhook+" "+string(d.Event)] = d
		}
		want := []string{"ops rollout.halted", "chat rollout.halted", "ops rollout.completed"}
		if len(got) != len(want) {
			t.Fatalf("deliveries %v, want exactly %v", got, want)
		}
		for _, k := range want {
			d, ok := got[k]
			switch {
			case !ok:
				t.Errorf("no delivery %s", k)
			case d.Status != Pending || d.Attempts != 0 || !d.CreatedAt.Equal(clock.Now()) || !d.NextAttemptAt.Equal(clock.Now()):
				t.Errorf("%s = %+v, want pending, due now", k, d)
			}
		}
		if a, b := got["ops rollout.halted"], got["chat rollout.halted"]; a.EventID != b.EventID || a.ID == b.ID {
			t.Errorf("fan-out: event ids %s/%s should match, delivery ids %s/%s differ", a.EventID, b.EventID, a.ID, b.ID)
		}
		if k := got["ops rollout.halted"].Key; k != "/hubs/prod/rollouts/r1" {
			t.Errorf("ordering key %q", k)
		}
	})
}

func TestEnqueueOfAnEventIDAlreadyQueuedIsANoOp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, newHandle := b.open(t)
		clock := newFakeClock()
		w := hook("ops", "https://ops", FormatJSON, JobFinishedWithFailures)
		finished := Event{ID: "job.finished_with_failures/prod/j1", Event: JobFinishedWithFailures, Hub: "prod", Job: "j1"}
		// Two replicas observe the same job finish.
		enqueue(t, db, openOutbox(t, db, b.dialect, clock, w), finished)
		other := openOutbox(t, newHandle(), b.dialect, clock, w)
		enqueue(t, db, other, finished)
		if d := onlyDelivery(t, other); d.EventID != finished.ID {
			t.Errorf("event id %q, want the caller's %q", d.EventID, finished.ID)
		}
	})
}

func TestEnqueueRefusesInvalidEventsAndWritesNothing(t *testing.T) {
	db, _ := openSQLite(t)
	o := openOutbox(t, db, SQLite, newFakeClock(), hook("ops", "https://ops", FormatJSON, RolloutHalted))
	err := o.Enqueue(context.Background(), db, Event{Event: RolloutHalted, Hub: "prod"})
	if !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("Enqueue = %v, want ErrInvalidEvent", err)
	}
	if got := deliveries(t, o); len(got) != 0 {
		t.Errorf("%d deliveries written", len(got))
	}
}

func TestSendTestTargetsOneWebhookWhateverItSubscribes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		o := openOutbox(t, db, b.dialect, newFakeClock(),
			hook("ops", "https://ops", FormatJSON), hook("chat", "https://chat", FormatSlack, RolloutHalted))
		id, err := o.SendTest(context.Background(), "ops")
		if err != nil {
			t.Fatal(err)
		}
		d := onlyDelivery(t, o)
		if d.ID != id || d.Webhook != "ops" || d.Event != Test || d.Status != Pending {
			t.Errorf("delivery %+v, want pending test delivery %s to ops", d, id)
		}
		if _, err := o.SendTest(context.Background(), "nope"); !errors.Is(err, ErrUnknownWebhook) {
			t.Errorf("SendTest(nope) = %v, want ErrUnknownWebhook", err)
		}
	})
}

func TestRecentListsNewestFirstUpToLimit(t *testing.T) {
	db, _ := openSQLite(t)
	clock := newFakeClock()
	o := openOutbox(t, db, SQLite, clock, hook("ops", "https://ops", FormatJSON, RolloutHalted))
	for _, r := range []string{"r1", "r2", "r3"} {
		enqueue(t, db, o, halted(r))
		clock.Advance(time.Second)
	}
	got, err := o.Recent(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != "/hubs/prod/rollouts/r3" || got[1].Key != "/hubs/prod/rollouts/r2" {
		t.Errorf("Recent(2) = %+v, want r3 then r2", got)
	}
	if !got[0].DeliveredAt.IsZero() {
		t.Errorf("a pending delivery has DeliveredAt %v", got[0].DeliveredAt)
	}
}

func TestPublishCommitsEveryWebhooksDeliveryOnItsOwnAndOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		o := openOutbox(t, db, b.dialect, newFakeClock(),
			hook("ops", "https://ops", FormatJSON, JobFinishedWithFailures),
			hook("chat", "https://chat", FormatSlack, JobFinishedWithFailures),
			hook("audit", "https://audit", FormatJSON, JobCancelled))
		finished := Event{ID: "job.finished_with_failures/prod/j1", Event: JobFinishedWithFailures, Hub: "prod", Job: "j1"}
		for range 2 { // a second page view of the same finished job
			if err := o.Publish(context.Background(), finished); err != nil {
				t.Fatal(err)
			}
		}
		got := deliveries(t, o)
		if len(got) != 2 {
			t.Fatalf("%d deliveries, want one per subscribed webhook (2): %+v", len(got), got)
		}
		if err := o.Publish(context.Background(), Event{Event: JobFinishedWithFailures, Hub: "prod"}); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("Publish without a job = %v, want ErrInvalidEvent", err)
		}
		if names := strings.Join(o.Webhooks(), ","); names != "ops,chat,audit" {
			t.Errorf("Webhooks() = %s, want the config order", names)
		}
	})
}
