package rollout

import (
	"errors"
	"fmt"
	"time"
)

// State is where a rollout is in its life. The strings are what is stored
// and what URLs filter on (?status=baking), so they never change.
type State string

const (
	Planned          State = "planned"           // created, nothing sent to the hub yet
	Running          State = "running"           // wave n's jobs exist (queued, scheduled or running)
	Baking           State = "baking"            // wave n-1 finished and passed; wave n waits out the bake
	AwaitingApproval State = "awaiting_approval" // wave n waits for an approver
	Completed        State = "completed"         // every wave finished and passed (final)
	Halted           State = "halted"            // stopped for good; see HaltReason (final)
)

// Final reports whether nothing can follow s.
func (s State) Final() bool { return s == Completed || s == Halted }

// HaltReason says why a rollout halted.
type HaltReason string

const (
	HaltManual   HaltReason = "manual"   // an operator halted it
	HaltFailures HaltReason = "failures" // the failure rule fired
	HaltHealth   HaltReason = "health"   // the health query's count crossed its threshold
	HaltError    HaltReason = "error"    // the engine could not go on (hub refused a create, …)
)

// EventKind is what happened to a rollout.
type EventKind string

const (
	EventStart         EventKind = "start"          // the engine takes a planned rollout up
	EventWaveCreated   EventKind = "wave_created"   // wave n's hub jobs were created
	EventWaveFinished  EventKind = "wave_finished"  // wave n's jobs all finished and its rules passed
	EventBakeOver      EventKind = "bake_over"      // the bake before wave n ended and its health rule passed
	EventApprovalGiven EventKind = "approval_given" // an approver approved wave n
	EventRuleFired     EventKind = "rule_fired"     // a failure or health rule fired
	EventManualHalt    EventKind = "manual_halt"    // an operator halted the rollout
	EventError         EventKind = "error"          // the engine gives up
)

// Event is one input to the state machine. Wave must name the wave the
// rollout is on (0 for start, halts and errors may leave it 0), so that a
// stale event replayed after a crash is refused instead of skipping a wave.
type Event struct {
	Kind EventKind
	Wave int
	At   time.Time  // when it happened; the machine reads no clock
	Rule HaltReason // EventRuleFired: HaltFailures or HaltHealth
	Note string     // the verdict text or the operator's reason, kept on halts
}

// Status is a rollout's persisted position.
type Status struct {
	State    State
	Wave     int        // the wave running, baking before, or awaiting approval; 0 while planned
	Approved bool       // the current wave's approval has been given (gated waves only)
	Halt     HaltReason // set when State is Halted
	Note     string     // why it halted, in words
	Since    time.Time  // when State was entered
}

// Machine holds the facts of a rollout fixed at plan time that decide its
// transitions.
type Machine struct {
	Waves int           // number of waves in the plan
	Gated []bool        // Gated[n-1]: wave n needs an approver
	Bake  time.Duration // wait between a wave finishing and the next starting
}

func (m Machine) gated(wave int) bool { return wave >= 1 && wave <= len(m.Gated) && m.Gated[wave-1] }

// BakeEnds is when the current bake ends, for the engine's scheduled start
// time and the page's "what happens next and when".
func (m Machine) BakeEnds(s Status) (time.Time, bool) {
	if s.State != Baking {
		return time.Time{}, false
	}
	return s.Since.Add(m.Bake), true
}

// ErrIllegalTransition is wrapped by every refusal of Machine.Next.
var ErrIllegalTransition = errors.New("illegal rollout transition")

// TransitionError names the refused transition and why.
type TransitionError struct {
	From  State
	Event EventKind
	Why   string
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s in state %s: %s", e.Event, e.From, e.Why)
}

func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

type transition func(m Machine, s Status, e Event) (Status, string)

// transitions is the whole state machine: a missing entry is an illegal
// transition; an entry returns the new status or why it refuses.
var transitions = map[State]map[EventKind]transition{
	Planned: {
		EventStart: func(m Machine, s Status, e Event) (Status, string) {
			if m.gated(1) {
				return enter(AwaitingApproval, 1, e), ""
			}
			return enter(Running, 1, e), ""
		},
		EventManualHalt: halt, EventError: halt,
	},
	Running: {
		EventWaveCreated: sameWave(func(m Machine, s Status, e Event) (Status, string) { return s, "" }),
		EventWaveFinished: sameWave(func(m Machine, s Status, e Event) (Status, string) {
			if s.Wave == m.Waves {
				return enter(Completed, s.Wave, e), ""
			}
			return enter(Baking, s.Wave+1, e), ""
		}),
		EventRuleFired:  sameWave(ruleFired(HaltFailures)),
		EventManualHalt: halt, EventError: halt,
	},
	Baking: {
		// The next wave is created during the bake as a scheduled job, so
		// that a halt in the bake is the cancel of a scheduled job; a gated
		// wave is created only once approved.
		EventWaveCreated: sameWave(func(m Machine, s Status, e Event) (Status, string) {
			if m.gated(s.Wave) && !s.Approved {
				return s, fmt.Sprintf("wave %d needs an approval before its jobs are created", s.Wave)
			}
			return s, ""
		}),
		EventApprovalGiven: sameWave(approve),
		EventBakeOver: sameWave(func(m Machine, s Status, e Event) (Status, string) {
			if ends := s.Since.Add(m.Bake); e.At.Before(ends) {
				return s, fmt.Sprintf("the bake ends at %s, not before", ends.UTC().Format(time.RFC3339))
			}
			if m.gated(s.Wave) && !s.Approved {
				return enter(AwaitingApproval, s.Wave, e), ""
			}
			next := enter(Running, s.Wave, e)
			next.Approved = s.Approved
			return next, ""
		}),
		EventRuleFired:  sameWave(ruleFired(HaltFailures, HaltHealth)),
		EventManualHalt: halt, EventError: halt,
	},
	AwaitingApproval: {
		EventApprovalGiven: sameWave(func(m Machine, s Status, e Event) (Status, string) {
			next := enter(Running, s.Wave, e)
			next.Approved = true
			return next, ""
		}),
		EventManualHalt: halt, EventError: halt,
	},
}

// Next applies e to s. Completed and halted rollouts refuse every event.
func (m Machine) Next(s Status, e Event) (Status, error) {
	if s.State.Final() {
		return s, &TransitionError{From: s.State, Event: e.Kind, Why: "the rollout is " + string(s.State) + ", which is final"}
	}
	t, ok := transitions[s.State][e.Kind]
	if !ok {
		return s, &TransitionError{From: s.State, Event: e.Kind, Why: "not possible from this state"}
	}
	next, why := t(m, s, e)
	if why != "" {
		return s, &TransitionError{From: s.State, Event: e.Kind, Why: why}
	}
	return next, nil
}

func enter(st State, wave int, e Event) Status {
	return Status{State: st, Wave: wave, Since: e.At}
}

// sameWave refuses an event about another wave than the current one.
func sameWave(t transition) transition {
	return func(m Machine, s Status, e Event) (Status, string) {
		if e.Wave != s.Wave {
			return s, fmt.Sprintf("the event is about wave %d, the rollout is on wave %d", e.Wave, s.Wave)
		}
		return t(m, s, e)
	}
}

func approve(m Machine, s Status, e Event) (Status, string) {
	if !m.gated(s.Wave) {
		return s, fmt.Sprintf("wave %d needs no approval", s.Wave)
	}
	if s.Approved {
		return s, fmt.Sprintf("wave %d is already approved", s.Wave)
	}
	s.Approved = true
	return s, ""
}

// ruleFired admits the rules that can be evaluated in a state: failures
// while a wave runs, failures or health at the end of a bake.
func ruleFired(allowed ...HaltReason) transition {
	return func(m Machine, s Status, e Event) (Status, string) {
		for _, r := range allowed {
			if e.Rule == r {
				return halt(m, s, e)
			}
		}
		return s, fmt.Sprintf("a %q rule cannot fire in this state", e.Rule)
	}
}

func halt(m Machine, s Status, e Event) (Status, string) {
	reason := HaltManual
	switch e.Kind {
	case EventError:
		reason = HaltError
	case EventRuleFired:
		reason = e.Rule
	}
	next := enter(Halted, s.Wave, e)
	next.Halt, next.Note = reason, e.Note
	return next, ""
}
