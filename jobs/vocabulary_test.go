package jobs_test

import (
	"testing"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
)

func TestVocabulary(t *testing.T) {
	for _, tc := range []struct {
		status              hub.JobStatus
		active, cancellable bool
		label               string
	}{
		{hub.StatusQueued, true, true, "Queued"},
		{hub.StatusEnqueued, true, true, "Enqueued"},
		{hub.StatusScheduled, true, true, "Scheduled"},
		{hub.StatusRunning, true, false, "Running"},
		{hub.StatusCompleted, false, false, "Completed"},
		{hub.StatusFailed, false, false, "Failed"},
		{hub.StatusCancelled, false, false, "Cancelled"},
		{"canceled", false, false, "Cancelled"},
		{hub.StatusUnknown, false, false, "Unknown"},
		{"", false, false, "Unknown"},
		{"paused", false, false, "paused"},
	} {
		if jobs.Active(tc.status) != tc.active || jobs.Terminal(tc.status) == tc.active ||
			jobs.Cancellable(tc.status) != tc.cancellable || jobs.StatusLabel(string(tc.status)) != tc.label {
			t.Errorf("%q: active %v cancellable %v label %q", tc.status, jobs.Active(tc.status), jobs.Cancellable(tc.status), jobs.StatusLabel(string(tc.status)))
		}
	}
	for in, want := range map[string]string{"scheduleDeviceMethod": "Direct method", "scheduleUpdateTwin": "Twin update", "": "Unknown type", "import": "import"} {
		if got := jobs.TypeLabel(in); got != want {
			t.Errorf("TypeLabel(%q) = %q, want %q", in, got, want)
		}
	}
	big := &hub.Job{DeviceJobStatistics: &hub.DeviceJobStatistics{DeviceCount: jobs.ConfirmThreshold}}
	small := &hub.Job{DeviceJobStatistics: &hub.DeviceJobStatistics{DeviceCount: jobs.ConfirmThreshold - 1}}
	if !jobs.NeedsTypedConfirmation(big) || jobs.NeedsTypedConfirmation(small) || jobs.NeedsTypedConfirmation(&hub.Job{}) {
		t.Error("the typed confirmation starts at ConfirmThreshold devices")
	}
}
