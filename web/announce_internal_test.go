package web

import (
	"testing"

	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/notify"
	"github.com/hubjobs/hubjobs/rollout"
)

// A job event about a rollout's hub job names the rollout, so the outbox
// orders its notification with the rollout's; any other job stands alone.
func TestNotifyEventNamesTheRolloutOfItsJob(t *testing.T) {
	for _, tc := range []struct {
		job, rollout string
	}{
		{rollout.JobID("abc123def456", 2, 1), "abc123def456"},
		{"nightly-reboot", ""},
	} {
		got := notifyEvent(jobs.Event{ID: "e1", Kind: jobs.EventCancelled, Hub: "prod", Job: tc.job, Summary: "cancelled"})
		want := notify.Event{ID: "e1", Event: notify.EventType(jobs.EventCancelled), Hub: "prod", Rollout: tc.rollout, Job: tc.job, Summary: "cancelled"}
		if got.ID != want.ID || got.Event != want.Event || got.Hub != want.Hub || got.Rollout != want.Rollout || got.Job != want.Job || got.Summary != want.Summary {
			t.Errorf("notifyEvent(job %q) = %+v, want %+v", tc.job, got, want)
		}
	}
}
