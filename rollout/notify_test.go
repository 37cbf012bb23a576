package rollout

import (
	"context"
	"slices"
	"testing"

	"github.com/hubjobs/hubjobs/notify"
)

// Notifications are enqueued in the transaction of the transition they
// report: rollout.created, awaiting_approval, completed and halted each
// appear once, in order, and a transition refused as stale enqueues
// nothing.
func TestNotificationsCommitWithTheirTransition(t *testing.T) {
	f := newFixture(t, fixtureOptions{devices: registry(50, nil, nil), maxActive: 10})
	ob, err := notify.Open(context.Background(), f.audit.DB(), notify.Dialect(f.audit.Dialect()), notify.Config{
		PublicURL: "https://jobs.example.com",
		Webhooks: []notify.Webhook{{Name: "ops", URL: "https://hooks.example.com/x", Secret: "s",
			Events: []string{"rollout.created", "rollout.awaiting_approval", "rollout.halted", "rollout.completed"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := f.engine("a")
	e.outbox = ob
	events := func() []string {
		t.Helper()
		rows, err := f.audit.DB().Query(`SELECT event FROM notify_outbox ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var ev string
			if err := rows.Scan(&ev); err != nil {
				t.Fatal(err)
			}
			out = append(out, ev)
		}
		return out
	}

	s := methodSpec("*", "5")
	s.Rules.ApprovalOverDevices = 10
	f.create(e, "notify1", s)
	f.until(e, 60, func() bool { return f.get(e, "notify1").Status.State == AwaitingApproval })
	if _, err := e.Approve(context.Background(), person("bob"), "prod", "notify1"); err != nil {
		t.Fatal(err)
	}
	f.until(e, 20, func() bool { return f.get(e, "notify1").Status.State == Completed })
	f.create(e, "notify2", methodSpec("*", "5"))
	if _, err := e.Halt(context.Background(), person("olga"), "prod", "notify2", "stop"); err != nil {
		t.Fatal(err)
	}

	// A stale transition rolls its notification back with it.
	r, err := f.store.load(context.Background(), f.store.db, "notify2")
	if err != nil {
		t.Fatal(err)
	}
	r.version-- // as read before the halt
	err = e.commit(context.Background(), r, change{next: r.status,
		events: []notify.Event{event(notify.RolloutCompleted, r, "never", nil)}})
	if err == nil {
		t.Fatal("a stale transition was committed")
	}

	want := []string{"rollout.created", "rollout.awaiting_approval", "rollout.completed", "rollout.created", "rollout.halted"}
	if got := events(); !slices.Equal(got, want) {
		t.Fatalf("outbox %v, want %v", got, want)
	}
}
