package rollout_test

import (
	"testing"

	"github.com/hubjobs/hubjobs/rollout"
)

func TestRolloutOf(t *testing.T) {
	for _, tc := range []struct {
		jobID, rid string
		ok         bool
	}{
		{rollout.JobID("abc123def456", 1, 1), "abc123def456", true},
		{rollout.JobID("r", 12, 3), "r", true},
		{"hj-abc-w0-1", "", false},
		{"hj-abc-w01-1", "", false},
		{"hj-abc-w1-+1", "", false},
		{"hj-ABC-w1-1", "", false},
		{"hj-abc-w1", "", false},
		{"hj-abc-x1-1", "", false},
		{"hj-a-b-w1-1", "", false},
		{"job-1", "", false},
		{"", "", false},
	} {
		if rid, ok := rollout.RolloutOf(tc.jobID); rid != tc.rid || ok != tc.ok {
			t.Errorf("RolloutOf(%q) = %q, %v; want %q, %v", tc.jobID, rid, ok, tc.rid, tc.ok)
		}
	}
}
