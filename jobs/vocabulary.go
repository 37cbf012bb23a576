package jobs

import "github.com/hubjobs/hubjobs/hub"

// The job vocabulary: what a status means for the portal and what people
// read for it. Handlers, views (through the labels handlers fill in) and
// background work all ask here, so "can this still change?" and "can this
// be cancelled?" have one answer.

// Active reports whether a job can still change: only these are polled.
// "unknown" and values this portal does not know are not, since nothing
// the portal can do will move them.
func Active(s hub.JobStatus) bool {
	switch s.Normalized() {
	case hub.StatusQueued, hub.StatusEnqueued, hub.StatusScheduled, hub.StatusRunning:
		return true
	}
	return false
}

// Terminal is the opposite of Active: the page stops polling and offers
// nothing more.
func Terminal(s hub.JobStatus) bool { return !Active(s) }

// Cancellable reports whether IoT Hub accepts a cancel in this state; a
// running job answers OperationNotAllowedInCurrentState.
func Cancellable(s hub.JobStatus) bool {
	switch s.Normalized() {
	case hub.StatusQueued, hub.StatusEnqueued, hub.StatusScheduled:
		return true
	}
	return false
}

// ConfirmThreshold is the device count from which a cancel must carry the
// job id typed by hand: a slip on a fleet-wide job is costly.
const ConfirmThreshold = 1000

// NeedsTypedConfirmation reports whether cancelling j asks for its id typed.
func NeedsTypedConfirmation(j *hub.Job) bool {
	return j != nil && j.DeviceJobStatistics != nil && j.DeviceJobStatistics.DeviceCount >= ConfirmThreshold
}

// Statuses are the job statuses in the order the job list offers them as
// filters.
var Statuses = []hub.JobStatus{hub.StatusQueued, hub.StatusEnqueued, hub.StatusScheduled, hub.StatusRunning,
	hub.StatusCompleted, hub.StatusFailed, hub.StatusCancelled, hub.StatusUnknown}

// Types are the job types the portal knows, in filter order.
var Types = []hub.JobType{hub.TypeScheduleDeviceMethod, hub.TypeScheduleUpdateTwin}

// StatusLabel is a job or per-device status for people. IoT Hub spells the
// job status "cancelled" and the per-device status "canceled"; both read
// "Cancelled". Values the portal does not know are shown as sent.
func StatusLabel(status string) string {
	switch status {
	case "enqueued":
		return "Enqueued"
	case "queued":
		return "Queued"
	case "scheduled":
		return "Scheduled"
	case "running":
		return "Running"
	case "completed":
		return "Completed"
	case "failed":
		return "Failed"
	case "cancelled", "canceled":
		return "Cancelled"
	case "pending":
		return "Pending"
	case "", "unknown":
		return "Unknown"
	}
	return status
}

// TypeLabel is a job type for people.
func TypeLabel(t string) string {
	switch t {
	case string(hub.TypeScheduleDeviceMethod):
		return "Direct method"
	case string(hub.TypeScheduleUpdateTwin):
		return "Twin update"
	case "", string(hub.TypeUnknown):
		return "Unknown type"
	}
	return t
}
