package hubsim

import (
	"encoding/json"
	"time"
)

// The simulator keeps its own wire structs instead of importing package hub:
// a field misspelt in the client must not be "confirmed" by a simulator that
// shares the same type. Field names and order follow docs/iothub.md §2.

// Job types and statuses as spelled on the wire.
const (
	typeScheduleUpdateTwin   = "scheduleUpdateTwin"
	typeScheduleDeviceMethod = "scheduleDeviceMethod"
	typeUnknown              = "unknown"

	statusQueued    = "queued"
	statusScheduled = "scheduled"
	statusRunning   = "running"
	statusCompleted = "completed"
	statusFailed    = "failed"
	statusCancelled = "cancelled" // job level: double L, as recorded from real hubs
	statusUnknown   = "unknown"
	statusEnqueued  = "enqueued"

	// Per-device statuses follow the C# DeviceJobStatus enum, the only SDK
	// that models devices.jobs with its own type: "canceled" with ONE L. The
	// reference marks this unverified; clients must accept both spellings.
	deviceStatusPending   = "pending"
	deviceStatusScheduled = "scheduled"
	deviceStatusRunning   = "running"
	deviceStatusCompleted = "completed"
	deviceStatusFailed    = "failed"
	deviceStatusCanceled  = "canceled"
)

// jobStatuses and jobTypes are the enums the jobs query accepts as filters.
var (
	jobStatuses = []string{statusUnknown, statusEnqueued, statusRunning, statusCompleted, statusFailed, statusCancelled, statusScheduled, statusQueued}
	jobTypes    = []string{typeUnknown, "export", "import", "backup", "readDeviceProperties", "writeDeviceProperties", "updateDeviceConfiguration", "rebootDevice", "factoryResetDevice", "firmwareUpdate", typeScheduleDeviceMethod, typeScheduleUpdateTwin, "restoreFromBackup", "failoverDataCopy"}
)

// hubTime marshals like .NET's round-trip format: 7 fractional digits and Z.
type hubTime time.Time

func (t hubTime) MarshalJSON() ([]byte, error) { return []byte(`"` + hubTimeString(t) + `"`), nil }

func hubTimeString(t hubTime) string {
	return time.Time(t).UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// zonelessTime marshals without a zone designator, as the devices.jobs
// sample in the IoT Hub docs shows for startTimeUtc/endTimeUtc
// ("2016-09-29T18:18:52.7418462"), and the zero time as .NET's
// "0001-01-01T00:00:00". Clients that parse with time.RFC3339 fail on it,
// which is exactly what the simulator is for.
type zonelessTime time.Time

func (t zonelessTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + zonelessString(t) + `"`), nil
}

func zonelessString(t zonelessTime) string {
	tt := time.Time(t)
	if tt.IsZero() {
		return "0001-01-01T00:00:00"
	}
	return tt.UTC().Format("2006-01-02T15:04:05.0000000")
}

// createResponse is PUT /jobs/v2/{id}'s minimal body, recorded from a real hub.
type createResponse struct {
	JobID  string `json:"jobId"`
	Type   string `json:"type"`
	Status string `json:"status"`
}

// jobResponse is JobResponse. endTime is present only once a job finished.
type jobResponse struct {
	JobID                     string        `json:"jobId"`
	QueryCondition            string        `json:"queryCondition,omitempty"`
	CreatedTime               hubTime       `json:"createdTime"`
	StartTime                 hubTime       `json:"startTime"`
	EndTime                   *hubTime      `json:"endTime,omitempty"`
	MaxExecutionTimeInSeconds int64         `json:"maxExecutionTimeInSeconds"`
	Type                      string        `json:"type"`
	CloudToDeviceMethod       *methodSpec   `json:"cloudToDeviceMethod,omitempty"`
	UpdateTwin                *twinSpec     `json:"updateTwin,omitempty"`
	Status                    string        `json:"status"`
	FailureReason             string        `json:"failureReason,omitempty"`
	StatusMessage             string        `json:"statusMessage,omitempty"`
	DeviceJobStatistics       *jobStatistic `json:"deviceJobStatistics,omitempty"`
}

// unknownJobResponse is what a real hub answers with 200 to GET
// /jobs/v2/{id} for an id it only knows as an import/export job (and, some
// report, for ids it does not know at all): type and status "unknown" and
// .NET default times. The exact body is a reconstruction (unverified).
type unknownJobResponse struct {
	JobID                     string       `json:"jobId"`
	CreatedTime               zonelessTime `json:"createdTime"`
	StartTime                 zonelessTime `json:"startTime"`
	EndTime                   zonelessTime `json:"endTime"`
	MaxExecutionTimeInSeconds int64        `json:"maxExecutionTimeInSeconds"`
	Type                      string       `json:"type"`
	Status                    string       `json:"status"`
}

// jobStatistic is DeviceJobStatistics.
type jobStatistic struct {
	DeviceCount    int `json:"deviceCount"`
	FailedCount    int `json:"failedCount"`
	SucceededCount int `json:"succeededCount"`
	RunningCount   int `json:"runningCount"`
	PendingCount   int `json:"pendingCount"`
}

// jobRequest is the PUT body. It is decoded strictly (unknown fields are
// 400 ArgumentInvalid), so `timeoutInSeconds` or a bare `desired` fail
// loudly instead of being ignored.
type jobRequest struct {
	JobID                     *string     `json:"jobId"`
	Type                      string      `json:"type"`
	CloudToDeviceMethod       *methodSpec `json:"cloudToDeviceMethod"`
	UpdateTwin                *twinSpec   `json:"updateTwin"`
	QueryCondition            string      `json:"queryCondition"`
	StartTime                 *string     `json:"startTime"`
	MaxExecutionTimeInSeconds *int64      `json:"maxExecutionTimeInSeconds"`
	// C# v1/v2 and Java model these on jobs; a client may echo them back.
	DeviceID    *string `json:"deviceId"`
	ParentJobID *string `json:"parentJobId"`
}

// methodSpec is CloudToDeviceMethod, echoed with defaults filled in.
type methodSpec struct {
	MethodName               string          `json:"methodName"`
	Payload                  json.RawMessage `json:"payload"`
	ResponseTimeoutInSeconds int32           `json:"responseTimeoutInSeconds"`
	ConnectTimeoutInSeconds  int32           `json:"connectTimeoutInSeconds"`
}

// twinSpec is the part of the Twin shape a twin-update job may carry. It is
// echoed as {"deviceId":null,"etag":"*",...}, like the CLI fixture.
type twinSpec struct {
	DeviceID   *string         `json:"deviceId"`
	ETag       string          `json:"etag"`
	Tags       json.RawMessage `json:"tags,omitempty"`
	Properties *twinProperties `json:"properties,omitempty"`
}

type twinProperties struct {
	Desired  json.RawMessage `json:"desired,omitempty"`
	Reported json.RawMessage `json:"reported,omitempty"`
}

// deviceJobRecord is one row of SELECT * FROM devices.jobs. There is no
// swagger schema; the shape follows the query-jobs docs and the Java
// fixtures: jobType (not type), times ending in Utc/DateTimeUtc.
type deviceJobRecord struct {
	DeviceID               string          `json:"deviceId"`
	JobID                  string          `json:"jobId"`
	JobType                string          `json:"jobType"`
	Status                 string          `json:"status"`
	StartTimeUtc           zonelessTime    `json:"startTimeUtc"`
	EndTimeUtc             zonelessTime    `json:"endTimeUtc"`
	CreatedDateTimeUtc     hubTime         `json:"createdDateTimeUtc"`
	LastUpdatedDateTimeUtc hubTime         `json:"lastUpdatedDateTimeUtc"`
	Outcome                deviceOutcome   `json:"outcome"`
	Error                  *deviceJobError `json:"error,omitempty"`
}

// deviceOutcome is {"deviceMethodResponse": null} until a method job's
// device answered, and always for twin jobs.
type deviceOutcome struct {
	DeviceMethodResponse *methodResponse `json:"deviceMethodResponse"`
}

type methodResponse struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
}

type deviceJobError struct {
	Code        string `json:"code"`
	Description string `json:"description"`
}

// devicesQueryRequest is the POST /devices/query body.
type devicesQueryRequest struct {
	Query *string `json:"query"`
}
