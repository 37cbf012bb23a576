package handlers

import (
	"reflect"
	"testing"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/views"
)

// The device list says why devices failed, grouped, most common first.
func TestFailureKindsGroupFailedDevicesByCause(t *testing.T) {
	failedWith := func(code string) hub.DeviceJob {
		return hub.DeviceJob{Status: hub.DeviceStatusFailed, Error: &hub.DeviceJobError{Code: code}}
	}
	answered := func(status int) hub.DeviceJob {
		return hub.DeviceJob{Status: hub.DeviceStatusFailed, Outcome: &hub.DeviceJobOutcome{DeviceMethodResponse: &hub.MethodResponse{Status: status}}}
	}
	devices := []hub.DeviceJob{
		answered(500), failedWith("JobRunPreconditionFailed"), answered(500), {Status: hub.DeviceStatusFailed},
		{Status: hub.DeviceStatusCompleted, Error: &hub.DeviceJobError{Code: "ignored"}}, answered(500), failedWith("JobRunPreconditionFailed"),
	}
	want := []views.FailureKind{{Label: "method answered 500", Count: 3}, {Label: "JobRunPreconditionFailed", Count: 2}, {Label: "no reason reported", Count: 1}}
	if got := failureKinds(devices); !reflect.DeepEqual(got, want) {
		t.Errorf("failureKinds = %v, want %v", got, want)
	}
	if got := failureKinds(nil); len(got) != 0 {
		t.Errorf("no devices: %v", got)
	}
}

func TestDeviceStatusFilterAcceptsTheHubsDeviceStatuses(t *testing.T) {
	for s, want := range map[string]bool{"failed": true, "canceled": true, "completed": true, "pending": true,
		"cancelled": false, "FAILED": false, "x' OR 1=1": false} {
		if got := knownDeviceStatus(s); got != want {
			t.Errorf("knownDeviceStatus(%q) = %v, want %v", s, got, want)
		}
	}
}
