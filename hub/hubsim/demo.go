package hubsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Demo job ids, exported so that demo wiring and end-to-end tests can open
// them by name.
const (
	DemoQueuedJobID     = "demo-queued-reboot-berlin"
	DemoScheduledJobID  = "demo-scheduled-telemetry-broad"
	DemoLiveJobID       = "demo-live-firmware-rollout"
	DemoShortJobID      = "demo-live-canary-reboot"
	DemoCompletedJobID  = "demo-completed-maintenance-window"
	DemoFailedJobID     = "demo-failed-config-push-rx9"
	DemoCancelledJobID  = "demo-cancelled-reboot-osaka"
	DemoTimedOutJobID   = "demo-timed-out-loglevel-lyon"
	DemoLongIDJobID     = "demo-very-long-job-identifier-checking-that-tables-links-and-breadcrumbs-wrap-gracefully-0123456789-abcdefghij"
	demoLiveRate        = 4.0 // 1500 devices in ~6 min: a watcher sees progress for minutes
	demoShortJobDevices = 30
)

// SeedDemo fills the hub with jobs in every state, relative to the clock's
// now, deterministically (same clock and seed, same hub):
//
//   - queued: a reboot whose queue phase lasts a day (DemoQueuedJobID);
//   - scheduled: a twin update (tags + desired) of the broad ring, ~1100
//     devices, starting in 6 hours;
//   - running: a firmware rollout to every device at 4 devices/s, started a
//     minute ago, live for about 5 more minutes (DemoLiveJobID), and a
//     30-device canary reboot at Options.DeviceRate that finishes within
//     seconds (DemoShortJobID; ~8 s at the default rate);
//   - completed: a twin update of all devices two days ago, a few failures;
//   - failed: a method job where three quarters of the rx9 devices fail;
//   - cancelled: a reboot cancelled while it was scheduled;
//   - completed with timeouts: maxExecutionTimeInSeconds cut it short;
//   - a completed twin job with a 110-character id.
//
// SeedDemo bypasses the active-jobs limit (four demo jobs stay unfinished
// for a while: with MaxActiveJobs ≤ 4, creates answer 429 until they end)
// and replaces demo jobs of the same ids.
func (s *Sim) SeedDemo() {
	now := s.clock.Now()
	n := min(demoShortJobDevices, len(s.registry))
	canary := make([]string, n)
	for i := range canary {
		canary[i] = "'" + s.registry[i].id + "'"
	}
	rate := s.opts.DeviceRate
	specs := []struct {
		spec        jobSpec
		cancelAfter time.Duration
	}{
		{spec: jobSpec{id: DemoQueuedJobID, method: demoMethod("reboot", `{"delaySeconds":30,"reason":"kernel patch"}`),
			condition: "tags.site = 'berlin'", created: now.Add(-2 * time.Minute), queuedFor: 24 * time.Hour, rate: rate}},
		{spec: jobSpec{id: DemoScheduledJobID, twin: demoTwin(`{"telemetry":{"profile":"economy"}}`, `{"telemetryIntervalSeconds":60}`),
			condition: "tags.ring = 'broad'", created: now.Add(-10 * time.Minute), start: now.Add(6 * time.Hour), maxExec: 7200, rate: rate}},
		{spec: jobSpec{id: DemoLiveJobID, method: demoMethod("applyFirmware", `{"version":"4.2.1","url":"https://updates.example.com/fw/4.2.1.bin","sha256":"9f2c1d0e"}`),
			condition: "*", created: now.Add(-61 * time.Second), rate: demoLiveRate, failureRate: 0.02}},
		{spec: jobSpec{id: DemoShortJobID, method: demoMethod("reboot", `{"delaySeconds":0}`),
			condition: "deviceId IN [" + strings.Join(canary, ", ") + "]", created: now, rate: rate}},
		{spec: jobSpec{id: DemoCompletedJobID, twin: demoTwin(`{"maintenanceWindow":"sun-02:00"}`, `{"logLevel":"info"}`),
			condition: "*", created: now.Add(-48 * time.Hour), rate: 20, failureRate: 0.01}},
		{spec: jobSpec{id: DemoFailedJobID, method: demoMethod("setConfig", `{"mqttKeepAlive":120,"endpoint":"mqtts://broker.example.com"}`),
			condition: "tags.model = 'rx9'", created: now.Add(-26 * time.Hour), rate: 10, failureRate: 0.75}},
		{spec: jobSpec{id: DemoCancelledJobID, method: demoMethod("reboot", `{"delaySeconds":10}`),
			condition: "tags.site = 'osaka'", created: now.Add(-72 * time.Hour), start: now.Add(-60 * time.Hour), rate: rate},
			cancelAfter: time.Hour},
		{spec: jobSpec{id: DemoTimedOutJobID, twin: demoTwin("", `{"logLevel":"debug"}`),
			condition: "tags.site = 'lyon'", created: now.Add(-5 * time.Hour), maxExec: 60, rate: 4}},
		{spec: jobSpec{id: DemoLongIDJobID, twin: demoTwin(`{"owner":"field-team-7"}`, ""),
			condition: "deviceId IN ['" + s.registry[0].id + "']", created: now.Add(-30 * time.Hour), rate: rate}},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range specs {
		spec, err := s.complete(d.spec)
		if err != nil {
			panic(fmt.Sprintf("hubsim: demo job %s: %v", d.spec.id, err)) // a bug in the table above
		}
		s.seedLocked(spec, d.cancelAfter)
	}
}

// SeedJob is a job put on the hub as if a client had created it at
// Created, progressing at its own pace: how a demo gives a hub a past
// (finished jobs whose failed devices can be rerun) and a present (a job
// running for many minutes) that fit its own registry.
type SeedJob struct {
	ID        string
	Condition string // the job's queryCondition, "*" for every device
	// Method and Payload (JSON, may be empty) make a direct-method job;
	// otherwise Tags and/or Desired (JSON objects) make a twin update.
	Method, Payload string
	Tags, Desired   string
	Created         time.Time
	Start           time.Time     // zero: Created, as for a job that starts at once
	MaxExecution    time.Duration // zero: the hub's default, an hour
	Rate            float64       // devices per second; zero: Options.DeviceRate
	// FailureRate is the share of ok devices the job fails on; fail
	// devices fail whatever it is.
	FailureRate float64
}

// Seed adds jobs as SeedDemo does: past the active-jobs limit, replacing
// jobs of the same ids. Each is checked like a PUT /jobs/v2 body (id,
// method or twin, condition grammar and length) and the first refusal is
// returned, with nothing added.
func (s *Sim) Seed(jobs ...SeedJob) error {
	now := s.clock.Now()
	specs := make([]jobSpec, len(jobs))
	for i, sj := range jobs {
		spec, err := sj.spec(s.opts, now)
		if err == nil {
			spec, err = s.complete(spec)
		}
		if err != nil {
			return fmt.Errorf("hubsim: seeded job %q: %w", sj.ID, err)
		}
		specs[i] = spec
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range specs {
		s.seedLocked(spec, 0)
	}
	return nil
}

// spec checks sj as a PUT body would be checked; a zero Created is now.
func (sj SeedJob) spec(o Options, now time.Time) (jobSpec, error) {
	if !validJobID(sj.ID) {
		return jobSpec{}, errors.New("not a job id the hub accepts")
	}
	if sj.Created.IsZero() {
		sj.Created = now
	}
	spec := jobSpec{id: sj.ID, condition: sj.Condition, created: sj.Created, start: sj.Start,
		maxExec: int64(sj.MaxExecution / time.Second), rate: sj.Rate, failureRate: min(max(sj.FailureRate, 0), 1)}
	if spec.rate <= 0 {
		spec.rate = o.DeviceRate
	}
	if !spec.start.IsZero() {
		spec.start = later(spec.start, spec.created) // as a PUT reads a start in the past
	}
	if sj.Payload != "" && !json.Valid([]byte(sj.Payload)) {
		return jobSpec{}, errors.New("the method payload is not JSON")
	}
	var herr *hubError
	if sj.Method != "" {
		spec.method, herr = validMethod(demoMethod(sj.Method, sj.Payload), nil)
	} else {
		spec.twin, herr = validTwin(demoTwin(sj.Tags, sj.Desired), nil)
	}
	if herr != nil {
		return jobSpec{}, errors.New(herr.text)
	}
	if tooLong(sj.Condition) {
		return jobSpec{}, fmt.Errorf("queryCondition longer than %d characters", maxQueryLength)
	}
	return spec, nil
}

// complete gives a seeded job the defaults a PUT would get and parses its
// condition.
func (s *Sim) complete(spec jobSpec) (jobSpec, error) {
	spec.typ = typeScheduleUpdateTwin
	if spec.method != nil {
		spec.typ = typeScheduleDeviceMethod
	}
	if spec.maxExec == 0 {
		spec.maxExec = defaultMaxExec
	}
	if spec.queuedFor == 0 {
		spec.queuedFor = s.opts.QueuedPhase
	}
	target, err := parseCondition(spec.condition)
	if err != nil {
		return jobSpec{}, fmt.Errorf("queryCondition: %w", err)
	}
	spec.target = target
	return spec, nil
}

// seedLocked adds a completed spec, replacing a job of the same id; the
// caller holds s.mu.
func (s *Sim) seedLocked(spec jobSpec, cancelAfter time.Duration) {
	j := newJob(spec, s.registry, s.opts.Seed)
	if cancelAfter > 0 {
		j.cancelledAt = spec.created.Add(cancelAfter)
	}
	s.jobs[spec.id] = j
}

func demoMethod(name, payload string) *methodSpec {
	m := &methodSpec{MethodName: name, ResponseTimeoutInSeconds: 30}
	if payload != "" {
		m.Payload = json.RawMessage(payload)
	}
	return m
}

func demoTwin(tags, desired string) *twinSpec {
	t := &twinSpec{ETag: "*"}
	if tags != "" {
		t.Tags = json.RawMessage(tags)
	}
	if desired != "" {
		t.Properties = &twinProperties{Desired: json.RawMessage(desired)}
	}
	return t
}
