package rollout

import (
	"errors"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// This file is the contract between the pages (handlers) and the engine
// that stores and drives rollouts: what an author asks for (Spec), what a
// rollout page shows (Rollout), and the errors the pages translate. The
// engine implements the operations; handlers own the interface they call.

// Spec is what an author asks for: one change (a direct method or a twin
// update), the devices it targets, and how it goes out. Every creation in
// hubjobs is a rollout; a one-wave rollout sends Condition to the hub as is.
type Spec struct {
	Hub  string
	Type hub.JobType // hub.TypeScheduleDeviceMethod or hub.TypeScheduleUpdateTwin
	// Method is set for a direct method: name, payload, response and
	// connect timeouts.
	Method *hub.CloudToDeviceMethod
	// Twin is set for a twin update: tags and/or desired properties; the
	// engine sends etag "*".
	Twin *hub.Twin
	// Condition is the target in the hub's WHERE grammar ("*" for every
	// device). With several waves it is evaluated once, at plan time, to
	// freeze the device list.
	Condition string
	// Start is when the first wave starts; zero means now.
	Start time.Time
	// MaxExecution is each hub job's maxExecutionTimeInSeconds.
	MaxExecution time.Duration
	// Waves are the cumulative wave sizes; the zero value is one wave.
	Waves WaveSpec
	// Bake is the wait between a wave finishing and the next one starting.
	Bake  time.Duration
	Rules Rules
	// Reason is the author's words, kept in the audit trail.
	Reason string
	// WaitForSlot lets a one-wave rollout that should start now wait for a
	// free active-job slot instead of being refused with *SlotBusyError.
	// Rollouts of several waves always wait for slots.
	WaitForSlot bool
}

// Rollout is a stored rollout as its page shows it.
type Rollout struct {
	ID      string
	Hub     string
	Spec    Spec
	Author  audit.Actor
	Created time.Time
	Status  Status
	// Devices is the number of devices frozen at plan time (or, for one
	// wave, counted when it was created).
	Devices int
	Waves   []WaveRecord
	// ApprovedBy names who approved each gated wave, by wave number.
	ApprovedBy map[int]audit.Actor
	// HaltedBy is the operator of a manual halt; the zero Actor with Name
	// "hubjobs" for a rule.
	HaltedBy audit.Actor
	// Next says in plain words what happens next and when ("wave 3 starts
	// at 14:05 UTC unless a rule fires").
	Next string
	// Waiting says why nothing moves right now, in plain words (a busy
	// active-job slot and which job holds it, an approval, the budget).
	Waiting string
}

// WaveRecord is one wave's hub jobs and what the rules said about it.
type WaveRecord struct {
	Number   int
	Size     int
	Jobs     []JobRecord
	Started  time.Time // first job created
	Finished time.Time // every job terminal
	Verdicts []Verdict // rule evaluations in the order they were made
}

// JobRecord is one hub job of a wave.
type JobRecord struct {
	ID      string // hj-{rid}-w{n}-{part}
	Devices int
	// State is the engine's view: "pending" (not yet sent), "created",
	// "refused", "cancelled", or the hub's job status once read.
	State string
	Stats *hub.DeviceJobStatistics
	// Start is the job's startTime as sent (a scheduled next wave starts
	// at the end of the bake).
	Start time.Time
}

// Errors the pages translate into answers.
var (
	// ErrNotFound: no rollout with that id on that hub.
	ErrNotFound = errors.New("rollout not found")
	// ErrFinal: the rollout is completed or halted; nothing more can change.
	ErrFinal = errors.New("rollout is already final")
	// ErrNotAwaitingApproval: approve was asked of a rollout that waits for no approval.
	ErrNotAwaitingApproval = errors.New("rollout is not awaiting approval")
	// ErrInvalidSpec wraps the reason a Spec cannot be planned.
	ErrInvalidSpec = errors.New("invalid rollout")
	// ErrIDTaken: the rollout id is already a rollout of another hub (ids
	// are unique across hubs; a double submit on the same hub is not this).
	ErrIDTaken = errors.New("rollout id is already taken by a rollout of another hub")
)

// SlotBusyError answers the creation of a one-wave rollout that should
// start now when every active-job slot of the hub is held and the author
// did not ask to wait (Spec.WaitForSlot). Nothing was stored: the author
// is shown who holds the slots and may submit again asking to wait.
type SlotBusyError struct {
	Limit   int      // the hub's active-job limit, as learned or configured
	Holders []Holder // the jobs holding the slots, as far as they could be read
}

// Holder is a job holding an active-job slot.
type Holder struct {
	JobID   string
	Status  hub.JobStatus
	StopsBy time.Time // startTime + maxExecutionTime, zero when unknown
}

func (e *SlotBusyError) Error() string { return "every active-job slot of the hub is held" }
