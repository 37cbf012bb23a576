package handlers

import (
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/rollout"
)

// The Halt banner tells what happened to the rollout's jobs as the engine
// returned them: a cancel that failed (the engine only logs it and retries
// on its next poll) must not be reported as done.
func TestHaltBannerSaysWhatTheJobsAre(t *testing.T) {
	tests := []struct {
		name     string
		states   []string
		want     []string
		dontWant []string
	}{
		{name: "all cancelled", states: []string{"completed", "cancelled", "cancelled"},
			want: []string{"Nothing more will be created", "not started are cancelled"}, dontWant: []string{"next poll", "runs to its end"}},
		{name: "cancel failed", states: []string{"completed", "scheduled", "cancelling", "pending"},
			want: []string{"3 jobs of it not yet cancelled", "next poll"}, dontWant: []string{"are cancelled."}},
		{name: "one still queued, one running", states: []string{"running", "queued"},
			want: []string{"1 job of it not yet cancelled", "The running job runs to its end"}},
		{name: "nothing created", states: nil, want: []string{"Nothing more will be created."}, dontWant: []string{"next poll", "cancelled"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var jobs []rollout.JobRecord
			for _, s := range tc.states {
				jobs = append(jobs, rollout.JobRecord{State: s})
			}
			b := haltBanner(&rollout.Rollout{Waves: []rollout.WaveRecord{{Jobs: jobs}}})
			for _, w := range tc.want {
				if !strings.Contains(b.Detail, w) {
					t.Errorf("banner %q, want it to say %q", b.Detail, w)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(b.Detail, w) {
					t.Errorf("banner %q must not say %q", b.Detail, w)
				}
			}
		})
	}
}
