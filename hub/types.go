package hub

import (
	"encoding/json"
	"time"
)

// JobType is a scheduled job's type as spelled on the wire. Unknown values
// are kept verbatim so that a newer hub never breaks the portal.
type JobType string

const (
	TypeUnknown              JobType = "unknown"
	TypeScheduleUpdateTwin   JobType = "scheduleUpdateTwin"
	TypeScheduleDeviceMethod JobType = "scheduleDeviceMethod"
)

// JobStatus is a job's status as spelled on the wire: "cancelled" with two
// Ls. Unknown values are kept verbatim.
type JobStatus string

const (
	StatusUnknown   JobStatus = "unknown"
	StatusEnqueued  JobStatus = "enqueued"
	StatusQueued    JobStatus = "queued"
	StatusScheduled JobStatus = "scheduled"
	StatusRunning   JobStatus = "running"
	StatusCompleted JobStatus = "completed"
	StatusFailed    JobStatus = "failed"
	StatusCancelled JobStatus = "cancelled"
)

// Terminal reports whether the job can no longer change (C# IsFinished).
func (s JobStatus) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// Cancellable reports whether IoT Hub accepts a cancel in this state; a
// running job answers OperationNotAllowedInCurrentState.
func (s JobStatus) Cancellable() bool {
	return s == StatusQueued || s == StatusEnqueued || s == StatusScheduled
}

// Time is a timestamp parsed leniently: 7 fractional digits, with or
// without a zone (no zone means UTC), and "0001-01-01T00:00:00" as zero.
// It marshals back as RFC 3339 with 7 fractional digits, or is omitted
// when zero (through omitzero).
type Time struct{ time.Time }

// Job is JobResponse with the wire's field names.
type Job struct {
	JobID                     string               `json:"jobId"`
	QueryCondition            string               `json:"queryCondition,omitempty"`
	CreatedTime               Time                 `json:"createdTime,omitzero"`
	StartTime                 Time                 `json:"startTime,omitzero"`
	EndTime                   Time                 `json:"endTime,omitzero"`
	MaxExecutionTimeInSeconds int64                `json:"maxExecutionTimeInSeconds,omitempty"`
	Type                      JobType              `json:"type"`
	CloudToDeviceMethod       *CloudToDeviceMethod `json:"cloudToDeviceMethod,omitempty"`
	UpdateTwin                *Twin                `json:"updateTwin,omitempty"`
	Status                    JobStatus            `json:"status"`
	FailureReason             string               `json:"failureReason,omitempty"`
	StatusMessage             string               `json:"statusMessage,omitempty"`
	DeviceJobStatistics       *DeviceJobStatistics `json:"deviceJobStatistics,omitempty"`
	DeviceID                  string               `json:"deviceId,omitempty"`
	ParentJobID               string               `json:"parentJobId,omitempty"`
}

// PlannedEnd is when the hub stops a started job on its own:
// startTime + maxExecutionTimeInSeconds. Zero when either is unknown.
func (j *Job) PlannedEnd() time.Time {
	if j.StartTime.IsZero() || j.MaxExecutionTimeInSeconds <= 0 {
		return time.Time{}
	}
	return j.StartTime.Add(time.Duration(j.MaxExecutionTimeInSeconds) * time.Second)
}

// DeviceJobStatistics are the job's per-device counters.
type DeviceJobStatistics struct {
	DeviceCount    int32 `json:"deviceCount"`
	FailedCount    int32 `json:"failedCount"`
	SucceededCount int32 `json:"succeededCount"`
	RunningCount   int32 `json:"runningCount"`
	PendingCount   int32 `json:"pendingCount"`
}

// CloudToDeviceMethod is a direct method invocation; note the timeout field
// names (timeoutInSeconds is not a valid field).
type CloudToDeviceMethod struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload,omitempty"`
	ResponseTimeoutInSeconds int32           `json:"responseTimeoutInSeconds,omitempty"`
	ConnectTimeoutInSeconds  int32           `json:"connectTimeoutInSeconds,omitempty"`
}

// Twin is the subset of the twin shape a twin-update job carries. ETag must
// be "*" on create: the hub only accepts forced updates.
type Twin struct {
	DeviceID   *string         `json:"deviceId,omitempty"`
	ETag       string          `json:"etag,omitempty"`
	Tags       map[string]any  `json:"tags,omitempty"`
	Properties *TwinProperties `json:"properties,omitempty"`
}

// TwinProperties holds desired (and, on reads, reported) properties.
type TwinProperties struct {
	Desired  map[string]any `json:"desired,omitempty"`
	Reported map[string]any `json:"reported,omitempty"`
}

// JobRequest is the PUT /jobs/v2/{id} body.
type JobRequest struct {
	JobID                     string               `json:"jobId"`
	Type                      JobType              `json:"type"`
	CloudToDeviceMethod       *CloudToDeviceMethod `json:"cloudToDeviceMethod,omitempty"`
	UpdateTwin                *Twin                `json:"updateTwin,omitempty"`
	QueryCondition            string               `json:"queryCondition"`
	StartTime                 Time                 `json:"startTime,omitzero"`
	MaxExecutionTimeInSeconds int64                `json:"maxExecutionTimeInSeconds,omitempty"`
}

// DeviceJobStatus is a per-device status from devices.jobs. Both spellings
// of cancelled occur in the wild; Normalized folds them.
type DeviceJobStatus string

const (
	DeviceStatusPending   DeviceJobStatus = "pending"
	DeviceStatusScheduled DeviceJobStatus = "scheduled"
	DeviceStatusRunning   DeviceJobStatus = "running"
	DeviceStatusCompleted DeviceJobStatus = "completed"
	DeviceStatusFailed    DeviceJobStatus = "failed"
	DeviceStatusCanceled  DeviceJobStatus = "canceled"
)

// DeviceJob is one record of SELECT * FROM devices.jobs. The field is
// jobType, not type, and the times end in Utc.
type DeviceJob struct {
	DeviceID               string            `json:"deviceId"`
	JobID                  string            `json:"jobId"`
	JobType                JobType           `json:"jobType"`
	Status                 DeviceJobStatus   `json:"status"`
	StartTimeUtc           Time              `json:"startTimeUtc,omitzero"`
	EndTimeUtc             Time              `json:"endTimeUtc,omitzero"`
	CreatedDateTimeUtc     Time              `json:"createdDateTimeUtc,omitzero"`
	LastUpdatedDateTimeUtc Time              `json:"lastUpdatedDateTimeUtc,omitzero"`
	Outcome                *DeviceJobOutcome `json:"outcome,omitempty"`
	Error                  *DeviceJobError   `json:"error,omitempty"`
}

// DeviceJobOutcome is {} or {"deviceMethodResponse": null} for twin jobs.
type DeviceJobOutcome struct {
	DeviceMethodResponse *MethodResponse `json:"deviceMethodResponse,omitempty"`
}

// MethodResponse is what a device answered to a direct method.
type MethodResponse struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DeviceJobError is a failed device's error, e.g. JobRunPreconditionFailed.
type DeviceJobError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// QueryJobsOptions filter and page GET /jobs/v2/query. Empty filters mean all.
type QueryJobsOptions struct {
	Type         JobType
	Status       JobStatus
	PageSize     int    // sent as x-ms-max-item-count; 0 lets the hub choose
	Continuation string // x-ms-continuation from the previous page
}

// PageOptions page POST /devices/query.
type PageOptions struct {
	PageSize     int
	Continuation string
}

// JobsPage is one page of jobs; Continuation is empty on the last page.
type JobsPage struct {
	Jobs         []Job
	Continuation string
}

// DevicesPage is one page of per-device results; Continuation is empty on
// the last page.
type DevicesPage struct {
	Devices      []DeviceJob
	Continuation string
}
