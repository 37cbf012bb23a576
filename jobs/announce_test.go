package jobs_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
)

// announcer is a stateful fake of the outbox: events written through the
// audit append's transaction land in a table of the audit database (so they
// exist only if that transaction commits); events on their own are kept in
// memory. fail makes every call refuse.
type announcer struct {
	mu     sync.Mutex
	db     *sql.DB
	alone  []jobs.Event
	fail   error
	inTxns int
}

// attach gives the fake the fixture's audit database.
func (a *announcer) attach(t *testing.T, f *fixture) {
	t.Helper()
	a.db = f.store.DB()
	if _, err := a.db.ExecContext(t.Context(), `CREATE TABLE announced (id TEXT, kind TEXT, summary TEXT)`); err != nil {
		t.Fatal(err)
	}
}

func (a *announcer) AnnounceWith(ctx context.Context, tx *sql.Tx, ev jobs.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.inTxns++
	_, err := tx.ExecContext(ctx, `INSERT INTO announced (id, kind, summary) VALUES ($1, $2, $3)`, ev.ID, string(ev.Kind), ev.Summary)
	return err
}

func (a *announcer) Announce(_ context.Context, ev jobs.Event) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.alone = append(a.alone, ev)
	return nil
}

// committed are the events written through audit transactions that committed.
func (a *announcer) committed(t *testing.T) []jobs.Event {
	t.Helper()
	rows, err := a.db.QueryContext(t.Context(), `SELECT id, kind, summary FROM announced`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []jobs.Event
	for rows.Next() {
		var ev jobs.Event
		if err := rows.Scan(&ev.ID, &ev.Kind, &ev.Summary); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func TestACancelIsAnnouncedWithItsOutcomeEntryOnlyWhenItSucceeds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(f *fixture)
		refuse  error // the announcer's answer
		events  []string
		outcome audit.Action
	}{
		{name: "accepted cancel", setup: func(f *fixture) { f.job("j1", t0.Add(time.Hour)) },
			events: []string{"job.cancelled/prod/j1 job.cancelled cancelled by Ana (wrong window)"}, outcome: audit.JobCancelSucceeded},
		{name: "running job: refused, nothing announced", setup: func(f *fixture) { f.job("j1", t0) },
			outcome: audit.JobCancelRefused},
		{name: "already cancelled outside this cancel: not announced again",
			setup: func(f *fixture) {
				f.job("j1", t0.Add(time.Hour))
				if _, err := f.direct.CancelJob(f.t.Context(), "j1"); err != nil {
					f.t.Fatal(err)
				}
			},
			outcome: audit.JobCancelSucceeded},
		{name: "announcer refuses: the outcome is recorded without the event",
			setup: func(f *fixture) { f.job("j1", t0.Add(time.Hour)) }, refuse: errors.New("outbox says no"),
			outcome: audit.JobCancelSucceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &announcer{}
			f := newFixture(t, fixtureOptions{announce: a})
			a.attach(t, f)
			a.fail = tc.refuse
			tc.setup(f)
			o, err := f.svc.Cancel(t.Context(), origin("Ana", "req-1"), jobs.CancelRequest{Hub: "prod", JobID: "j1", Reason: "wrong window"})
			if err != nil || o.NotRecorded != nil {
				t.Fatalf("Cancel = %+v, %v", o, err)
			}
			if got := actions(f.trail("j1")); got != "job.cancel.intent,"+string(tc.outcome) {
				t.Errorf("trail %s, want intent then %s", got, tc.outcome)
			}
			var got []string
			for _, ev := range a.committed(t) {
				got = append(got, ev.ID+" "+string(ev.Kind)+" "+ev.Summary)
			}
			if len(got) != len(tc.events) || (len(got) > 0 && got[0] != tc.events[0]) {
				t.Errorf("announced %q, want %q", got, tc.events)
			}
			if len(a.alone) != 0 {
				t.Errorf("cancel announced outside its audit transaction: %+v", a.alone)
			}
		})
	}
}

func TestAJobSeenFinishedWithFailuresIsAnnouncedOnce(t *testing.T) {
	finished := func(id string, status hub.JobStatus, failed int32, ended time.Time) *hub.Job {
		return &hub.Job{JobID: id, Status: status, EndTime: hub.Time{Time: ended},
			DeviceJobStatistics: &hub.DeviceJobStatistics{DeviceCount: 10, FailedCount: failed, SucceededCount: 10 - failed}}
	}
	for _, tc := range []struct {
		name string
		job  *hub.Job
		want string // the event's ID and summary; "" for none
	}{
		{"completed with failures", finished("j1", hub.StatusCompleted, 3, t0.Add(-time.Minute)),
			"job.finished_with_failures/prod/j1 3 of 10 devices failed (job completed)"},
		{"failed with failures", finished("j1", hub.StatusFailed, 10, t0.Add(-time.Hour)),
			"job.finished_with_failures/prod/j1 10 of 10 devices failed (job failed)"},
		{"end time unknown", finished("j1", hub.StatusCompleted, 1, time.Time{}),
			"job.finished_with_failures/prod/j1 1 of 10 devices failed (job completed)"},
		{"completed without failures", finished("j1", hub.StatusCompleted, 0, t0), ""},
		{"still running with failures", finished("j1", hub.StatusRunning, 3, time.Time{}), ""},
		{"cancelled with failures (the cancel is the news)", finished("j1", hub.StatusCancelled, 3, t0), ""},
		{"ended more than a day ago: not news", finished("j1", hub.StatusCompleted, 3, t0.Add(-25*time.Hour)), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &announcer{}
			f := newFixture(t, fixtureOptions{announce: a})
			for range 3 { // the job page, its status fragment, a second viewer
				f.svc.Remember(t.Context(), "prod", tc.job, t0)
			}
			switch {
			case tc.want == "" && len(a.alone) != 0:
				t.Errorf("announced %+v, want nothing", a.alone)
			case tc.want != "" && len(a.alone) != 1:
				t.Errorf("announced %d times, want once: %+v", len(a.alone), a.alone)
			case tc.want != "" && a.alone[0].ID+" "+a.alone[0].Summary != tc.want:
				t.Errorf("announced %q, want %q", a.alone[0].ID+" "+a.alone[0].Summary, tc.want)
			}
		})
	}
}

func TestAFailedAnnouncementIsTriedAgainWhenTheJobIsNextSeen(t *testing.T) {
	a := &announcer{}
	f := newFixture(t, fixtureOptions{announce: a})
	j := &hub.Job{JobID: "j1", Status: hub.StatusCompleted, EndTime: hub.Time{Time: t0},
		DeviceJobStatistics: &hub.DeviceJobStatistics{DeviceCount: 4, FailedCount: 1}}
	a.fail = errors.New("database busy")
	f.svc.Remember(t.Context(), "prod", j, t0)
	a.fail = nil
	f.svc.Remember(t.Context(), "prod", j, t0)
	f.svc.Remember(t.Context(), "prod", j, t0)
	if len(a.alone) != 1 {
		t.Errorf("announced %d times after one failure, want once", len(a.alone))
	}
}
