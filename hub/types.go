package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// JobType is a scheduled job's type as spelled on the wire. Unknown values
// are kept verbatim so that a newer hub never breaks the portal; known
// values are folded to their canonical spelling whatever their case.
type JobType string

const (
	TypeUnknown              JobType = "unknown"
	TypeScheduleUpdateTwin   JobType = "scheduleUpdateTwin"
	TypeScheduleDeviceMethod JobType = "scheduleDeviceMethod"
)

// Known reports whether t is one of the v2 job types the hub accepts on
// create (scheduleUpdateTwin, scheduleDeviceMethod).
func (t JobType) Known() bool {
	return t == TypeScheduleUpdateTwin || t == TypeScheduleDeviceMethod
}

// UnmarshalJSON folds known spellings (the C# v1 SDK sends PascalCase) and
// keeps anything else verbatim.
func (t *JobType) UnmarshalJSON(b []byte) error {
	s, err := enumString(b)
	if err != nil {
		return fmt.Errorf("job type: %w", err)
	}
	*t = JobType(fold(s, TypeUnknown, TypeScheduleUpdateTwin, TypeScheduleDeviceMethod))
	return nil
}

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

var jobStatuses = []JobStatus{StatusUnknown, StatusEnqueued, StatusQueued, StatusScheduled,
	StatusRunning, StatusCompleted, StatusFailed, StatusCancelled}

// Normalized folds case and the single-L "canceled" of the devguide prose
// into the wire's canonical spelling; unknown values come back unchanged.
func (s JobStatus) Normalized() JobStatus {
	if strings.EqualFold(string(s), "canceled") {
		return StatusCancelled
	}
	return JobStatus(fold(string(s), jobStatuses...))
}

// Known reports whether s is one of the statuses the reference lists.
func (s JobStatus) Known() bool {
	n := s.Normalized()
	for _, k := range jobStatuses {
		if n == k {
			return true
		}
	}
	return false
}

// UnmarshalJSON normalizes known spellings and keeps unknown ones verbatim.
func (s *JobStatus) UnmarshalJSON(b []byte) error {
	v, err := enumString(b)
	if err != nil {
		return fmt.Errorf("job status: %w", err)
	}
	*s = JobStatus(v).Normalized()
	return nil
}

// Time is a timestamp parsed leniently: 7 fractional digits, with or
// without a zone (no zone means UTC), and "0001-01-01T00:00:00" as zero.
// It marshals back as RFC 3339 in UTC with 7 fractional digits (the wire's
// own precision), as null when zero, or is omitted through omitzero.
type Time struct{ time.Time }

// wireTimeLayout is how the hub writes job times: 100 ns ticks and Z.
const wireTimeLayout = "2006-01-02T15:04:05.0000000Z07:00"

// Layouts tried in order. The hub's per-device and registry records omit
// the zone ("2016-09-29T18:18:52.7418462"); .NET means UTC by that.
var timeLayouts = []string{
	time.RFC3339Nano,                // 2030-01-01T00:00:00.1234567Z, +01:00, no fraction
	"2006-01-02T15:04:05.999999999", // no zone: UTC
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
}

// ErrBadTime is returned for a timestamp no layout understands.
var ErrBadTime = errors.New("hub: unparsable timestamp")

// ParseTime parses s as the hub writes timestamps, leniently (see Time).
// The empty string is the zero time.
func ParseTime(s string) (Time, error) {
	if s == "" {
		return Time{}, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return Time{t.UTC()}, nil
		}
	}
	return Time{}, fmt.Errorf("%w %q", ErrBadTime, clip(s, 64))
}

// UnmarshalJSON accepts a string in any layout ParseTime understands, or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		*t = Time{}
		return nil
	}
	s, err := enumString(b)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadTime, err)
	}
	v, err := ParseTime(s)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// MarshalJSON writes the wire layout (UTC, 7 fractional digits) or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	u := t.UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: year %d outside 0000..9999", ErrBadTime, y)
	}
	return []byte(`"` + u.Format(wireTimeLayout) + `"`), nil
}

// String is the wire layout, or "" for the zero time.
func (t Time) String() string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(wireTimeLayout)
}

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

// absent reports whether a 200 answer describes no job at all. IoT Hub
// answers GET /jobs/v2/{id} for an id it does not have (or for an
// import/export job id) with 200 {"type":"unknown","status":"unknown"}
// rather than 404; treating that as success would show an operator a job
// that does not exist, or a cancel that never happened.
func (j *Job) absent() bool {
	switch j.Status.Normalized() {
	case StatusUnknown:
		return true
	case "":
		return j.Type == "" || j.Type == TypeUnknown
	}
	return false
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
// be "*" on create: the hub only accepts forced updates (CreateJob fills it
// in when empty).
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

// DeviceJobStatus is a per-device status from devices.jobs. Which spelling
// of cancelled the hub uses there is unverified (C# says "canceled", Java
// "cancelled"), so both are understood: decoding folds them, and case, to
// the constants below. Unknown values are kept verbatim.
type DeviceJobStatus string

const (
	DeviceStatusPending   DeviceJobStatus = "pending"
	DeviceStatusScheduled DeviceJobStatus = "scheduled"
	DeviceStatusRunning   DeviceJobStatus = "running"
	DeviceStatusCompleted DeviceJobStatus = "completed"
	DeviceStatusFailed    DeviceJobStatus = "failed"
	DeviceStatusCanceled  DeviceJobStatus = "canceled"
)

// Normalized folds "cancelled" into DeviceStatusCanceled, the job-level
// "queued" into pending, and case; unknown values come back unchanged.
func (s DeviceJobStatus) Normalized() DeviceJobStatus {
	switch {
	case strings.EqualFold(string(s), "cancelled"):
		return DeviceStatusCanceled
	case strings.EqualFold(string(s), "queued"):
		return DeviceStatusPending
	}
	return DeviceJobStatus(fold(string(s), DeviceStatusPending, DeviceStatusScheduled,
		DeviceStatusRunning, DeviceStatusCompleted, DeviceStatusFailed, DeviceStatusCanceled))
}

// Terminal reports whether the device's part of the job is over.
func (s DeviceJobStatus) Terminal() bool {
	n := s.Normalized()
	return n == DeviceStatusCompleted || n == DeviceStatusFailed || n == DeviceStatusCanceled
}

// UnmarshalJSON normalizes known spellings and keeps unknown ones verbatim.
func (s *DeviceJobStatus) UnmarshalJSON(b []byte) error {
	v, err := enumString(b)
	if err != nil {
		return fmt.Errorf("device job status: %w", err)
	}
	*s = DeviceJobStatus(v).Normalized()
	return nil
}

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

// enumString decodes a JSON string enum; null is the empty value. Numbers
// and objects are an error rather than a silent empty value. A literal
// without escapes (every enum and timestamp the hub sends) is taken as is:
// the decoder calling us has already validated it, and re-entering
// json.Unmarshal for each field was most of the client's own cost per call.
func enumString(b []byte) (string, error) {
	if bytes.Equal(b, []byte("null")) {
		return "", nil
	}
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' && bytes.IndexByte(b[1:n-1], '\\') < 0 && bytes.IndexByte(b[1:n-1], '"') < 0 {
		return string(b[1 : n-1]), nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return "", errors.New("not a JSON string")
	}
	return s, nil
}

// fold returns the canonical spelling of s among known (case-insensitive),
// or s unchanged when it is none of them.
func fold[T ~string](s string, known ...T) string {
	for _, k := range known {
		if strings.EqualFold(s, string(k)) {
			return string(k)
		}
	}
	return s
}

// clip shortens s for an error message, so that a 1 MB id or body does not
// end up in a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
