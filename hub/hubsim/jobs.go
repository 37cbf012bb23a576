package hubsim

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// deviceWork is how long one device stays "running" once the job reaches
// it (at least 1/rate). Devices start at DeviceRate per second, so the
// completion rate is DeviceRate too, and a live job shows a few devices
// running at once rather than exactly one.
const deviceWork = 2 * time.Second

// jobRunPreconditionFailed is the per-device error of a device that was not
// reached in time, worded as in the Java SDK fixture of a real record.
var jobRunPreconditionFailed = deviceJobError{
	Code:        "JobRunPreconditionFailed",
	Description: "The job did not start within specified period: either device did not come online or invalid endTime specified.",
}

// outcome is what happens to one targeted device once the job reaches it.
// It is fixed at creation from a hash of seed, job id and device id.
type outcome uint8

const (
	outcomeSucceeded   outcome = iota
	outcomeUnreachable         // fails with JobRunPreconditionFailed
	outcomeMethodError         // method jobs: the device answers with status 500
)

// jobSpec is everything needed to create a job; PUT fills it from the
// request, SeedDemo directly (with its own rates and failure shares).
type jobSpec struct {
	id          string
	typ         string
	method      *methodSpec
	twin        *twinSpec
	condition   string
	target      condition
	created     time.Time
	start       time.Time // zero: equal to created, as real hubs report
	maxExec     int64     // seconds
	queuedFor   time.Duration
	rate        float64 // devices per second
	failureRate float64
}

// job is a scheduled job whose state is a pure function of the clock: every
// field but cancelledAt is fixed at creation, and status, statistics and
// per-device records are all derived from the same begin/finish times, so
// they agree with each other at every instant by construction.
type job struct {
	id, typ   string
	method    *methodSpec
	twin      *twinSpec
	condition string
	created   time.Time
	start     time.Time
	maxExec   int64

	queuedUntil time.Time // end of the brief "queued" phase after create
	runAt       time.Time // max(start, queuedUntil): when the first device starts
	deadline    time.Time // start + maxExecutionTimeInSeconds
	end         time.Time // when the job finishes unless cancelled first
	interval    time.Duration
	work        time.Duration

	devices      []string
	targets      []int // registry index of devices[k]
	outcomes     []outcome
	failedBefore []int // failedBefore[k]: failing outcomes among devices[:k]

	patch   *twinPatch // twin jobs: what a succeeded device gets merged
	applied int        // devices[:applied] have had their effect on the twins (Sim.settle)

	cancelledAt time.Time // zero unless cancelled
}

func newJob(spec jobSpec, registry []device, seed uint64) *job {
	if spec.start.IsZero() {
		spec.start = spec.created
	}
	j := &job{
		id: spec.id, typ: spec.typ, method: spec.method, twin: spec.twin, condition: spec.condition,
		created: spec.created, start: spec.start, maxExec: spec.maxExec,
		queuedUntil: spec.created.Add(spec.queuedFor),
		deadline:    spec.start.Add(time.Duration(spec.maxExec) * time.Second),
		interval:    time.Duration(float64(time.Second) / spec.rate),
		patch:       decodeTwinPatch(spec.twin),
	}
	j.runAt = later(j.start, j.queuedUntil)
	j.work = max(deviceWork, j.interval)
	j.failedBefore = []int{0}
	for idx := range registry {
		d := &registry[idx]
		if !spec.target.matches(d) {
			continue
		}
		o := outcomeFor(spec, d, seed)
		j.devices = append(j.devices, d.id)
		j.targets = append(j.targets, idx)
		j.outcomes = append(j.outcomes, o)
		j.failedBefore = append(j.failedBefore, j.failedBefore[len(j.failedBefore)-1]+boolInt(o != outcomeSucceeded))
	}
	j.end = j.runAt
	if n := len(j.devices); n > 0 {
		j.end = later(j.runAt, earlier(j.finish(n-1), j.deadline))
	}
	return j
}

// outcomeFor decides what the job does to d: a fail device always fails
// (status 500 to a method, JobRunPreconditionFailed to a twin update), an
// unhealthy one always succeeds, an ok one fails with the job's failure
// rate, by a hash of seed, job and device.
func outcomeFor(spec jobSpec, d *device, seed uint64) outcome {
	h := hash64(seed, "outcome", spec.id, d.id)
	switch {
	case d.behaviour == BehaviourFail && spec.typ == typeScheduleDeviceMethod:
		return outcomeMethodError
	case d.behaviour == BehaviourFail:
		return outcomeUnreachable
	case d.behaviour == BehaviourUnhealthy || unitFloat(h) >= spec.failureRate:
		return outcomeSucceeded
	case spec.typ == typeScheduleDeviceMethod && h&1 == 1:
		return outcomeMethodError
	}
	return outcomeUnreachable
}

// doneBy is how many devices (a prefix, since devices finish in order)
// finished the job by now; none for a cancelled job, which never ran.
func (j *job) doneBy(now time.Time) int {
	if j.cancelled() || now.Before(j.runAt) {
		return 0
	}
	t := earlier(now, j.end)
	return sort.Search(len(j.devices), func(i int) bool { return j.finish(i).After(t) })
}

func (j *job) begin(i int) time.Time  { return j.runAt.Add(time.Duration(i) * j.interval) }
func (j *job) finish(i int) time.Time { return j.begin(i).Add(j.work) }

// finished reports whether the job reached a terminal state by now.
func (j *job) finished(now time.Time) bool { return j.cancelled() || !now.Before(j.end) }

func (j *job) cancelled() bool { return !j.cancelledAt.IsZero() }

// endTime is when the job finished; ok is false while it has not.
func (j *job) endTime(now time.Time) (t time.Time, ok bool) {
	switch {
	case j.cancelled():
		return j.cancelledAt, true
	case !now.Before(j.end):
		return j.end, true
	}
	return time.Time{}, false
}

// expired reports whether a finished job is older than the retention and
// has therefore vanished from the hub.
func (j *job) expired(now time.Time, retention time.Duration) bool {
	end, ok := j.endTime(now)
	return ok && !now.Before(end.Add(retention))
}

// cancellable reports whether a cancel succeeds now: queued or scheduled
// (the simulator never produces "enqueued", the import/export state).
func (j *job) cancellable(now time.Time) bool { return !j.cancelled() && now.Before(j.runAt) }

// status is the job-level status. A job that ran is "failed" when more than
// half of its devices failed (timed-out devices count as failed), else
// "completed"; a job with no target devices completes.
func (j *job) status(now time.Time) string {
	switch {
	case j.cancelled():
		return statusCancelled
	case now.Before(j.queuedUntil):
		return statusQueued
	case now.Before(j.runAt):
		return statusScheduled
	case now.Before(j.end):
		return statusRunning
	}
	if st := j.statistics(now); 2*st.FailedCount > st.DeviceCount {
		return statusFailed
	}
	return statusCompleted
}

// statistics counts the per-device records: pending and scheduled devices
// are pendingCount, running runningCount, completed succeededCount, failed
// failedCount. Canceled devices (a cancelled job) appear only in
// deviceCount, since DeviceJobStatistics has no field for them.
func (j *job) statistics(now time.Time) jobStatistic {
	n := len(j.devices)
	st := jobStatistic{DeviceCount: n}
	switch {
	case j.cancelled():
		return st
	case now.Before(j.runAt):
		st.PendingCount = n
		return st
	}
	done := j.doneBy(now)
	st.FailedCount = j.failedBefore[done]
	st.SucceededCount = done - st.FailedCount
	if !now.Before(j.end) {
		st.FailedCount += n - done // not finished by the deadline
		return st
	}
	started := sort.Search(n, func(i int) bool { return j.begin(i).After(now) })
	st.RunningCount = started - done
	st.PendingCount = n - started
	return st
}

// deviceStatus is device i's per-device status, when it last changed, and
// the error it carries (nil unless failed).
func (j *job) deviceStatus(i int, now time.Time) (status string, updated time.Time, fail *deviceJobError) {
	switch {
	case j.cancelled():
		return deviceStatusCanceled, j.cancelledAt, nil
	case now.Before(j.queuedUntil):
		return deviceStatusPending, j.created, nil
	case now.Before(j.runAt):
		return deviceStatusScheduled, j.queuedUntil, nil
	}
	if f := j.finish(i); !f.After(earlier(now, j.end)) {
		switch j.outcomes[i] {
		case outcomeUnreachable:
			return deviceStatusFailed, f, &jobRunPreconditionFailed
		case outcomeMethodError:
			return deviceStatusFailed, f, nil
		}
		return deviceStatusCompleted, f, nil
	}
	switch {
	case !now.Before(j.end):
		return deviceStatusFailed, j.end, &jobRunPreconditionFailed
	case !j.begin(i).After(now):
		return deviceStatusRunning, j.begin(i), nil
	}
	return deviceStatusPending, j.runAt, nil
}

// record is device i's devices.jobs row at now. startTimeUtc/endTimeUtc are
// the job's start and planned deadline (the Java fixtures show them
// maxExecutionTimeInSeconds apart even for devices that finished early).
func (j *job) record(i int, now time.Time) deviceJobRecord {
	status, updated, fail := j.deviceStatus(i, now)
	r := deviceJobRecord{
		DeviceID: j.devices[i], JobID: j.id, JobType: j.typ, Status: status,
		StartTimeUtc:           zonelessTime(j.start),
		EndTimeUtc:             zonelessTime(j.deadline),
		CreatedDateTimeUtc:     hubTime(j.created),
		LastUpdatedDateTimeUtc: hubTime(updated),
		Error:                  fail,
	}
	if j.method != nil && (status == deviceStatusCompleted || status == deviceStatusFailed && fail == nil) {
		r.Outcome.DeviceMethodResponse = j.methodResponse(status)
	}
	return r
}

// methodResponse is what a device answered to the job's direct method.
func (j *job) methodResponse(status string) *methodResponse {
	name, _ := json.Marshal(j.method.MethodName)
	if status == deviceStatusCompleted {
		return &methodResponse{Status: 200, Payload: json.RawMessage(`{"method":` + string(name) + `,"result":"ok"}`)}
	}
	return &methodResponse{Status: 500, Payload: json.RawMessage(`{"method":` + string(name) + `,"error":"handler failed on device"}`)}
}

// response is the full JobResponse at now.
func (j *job) response(now time.Time) jobResponse {
	st := j.statistics(now)
	r := jobResponse{
		JobID: j.id, QueryCondition: j.condition,
		CreatedTime: hubTime(j.created), StartTime: hubTime(j.start),
		MaxExecutionTimeInSeconds: j.maxExec,
		Type:                      j.typ, CloudToDeviceMethod: j.method, UpdateTwin: j.twin,
		Status:              j.status(now),
		DeviceJobStatistics: &st,
	}
	if end, ok := j.endTime(now); ok {
		e := hubTime(end)
		r.EndTime = &e
	}
	if r.Status == statusFailed {
		r.FailureReason = fmt.Sprintf("%d of %d devices failed", st.FailedCount, st.DeviceCount)
	}
	return r
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
