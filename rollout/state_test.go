package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	t0      = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	machine = Machine{Waves: 3, Gated: []bool{false, true, false}, Bake: 10 * time.Minute}
)

// at is a fake clock: minutes after t0.
func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func TestTransitionsLegal(t *testing.T) {
	tests := []struct {
		name string
		m    Machine
		from Status
		ev   Event
		want Status
	}{
		{"start an ungated rollout", machine, Status{State: Planned},
			Event{Kind: EventStart, At: at(0)}, Status{State: Running, Wave: 1, Since: at(0)}},
		{"start a rollout whose first wave is gated", Machine{Waves: 1, Gated: []bool{true}}, Status{State: Planned},
			Event{Kind: EventStart, At: at(0)}, Status{State: AwaitingApproval, Wave: 1, Since: at(0)}},
		{"wave created while running", machine, Status{State: Running, Wave: 1, Since: at(0)},
			Event{Kind: EventWaveCreated, Wave: 1, At: at(1)}, Status{State: Running, Wave: 1, Since: at(0)}},
		{"wave 1 finished: bake before wave 2", machine, Status{State: Running, Wave: 1, Since: at(0)},
			Event{Kind: EventWaveFinished, Wave: 1, At: at(5)}, Status{State: Baking, Wave: 2, Since: at(5)}},
		{"last wave finished: completed", machine, Status{State: Running, Wave: 3, Since: at(0)},
			Event{Kind: EventWaveFinished, Wave: 3, At: at(50)}, Status{State: Completed, Wave: 3, Since: at(50)}},
		{"failures fire while running", machine, Status{State: Running, Wave: 1, Since: at(0)},
			Event{Kind: EventRuleFired, Wave: 1, Rule: HaltFailures, Note: "wave 1: 3 of 10 failed", At: at(3)},
			Status{State: Halted, Wave: 1, Halt: HaltFailures, Note: "wave 1: 3 of 10 failed", Since: at(3)}},
		{"manual halt while running", machine, Status{State: Running, Wave: 1, Since: at(0)},
			Event{Kind: EventManualHalt, Note: "wrong firmware", At: at(2)},
			Status{State: Halted, Wave: 1, Halt: HaltManual, Note: "wrong firmware", Since: at(2)}},
		{"error while running", machine, Status{State: Running, Wave: 1, Since: at(0)},
			Event{Kind: EventError, Note: "hub refused the job", At: at(2)},
			Status{State: Halted, Wave: 1, Halt: HaltError, Note: "hub refused the job", Since: at(2)}},
		{"scheduled ungated wave created in the bake", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventWaveCreated, Wave: 3, At: at(21)}, Status{State: Baking, Wave: 3, Since: at(20)}},
		{"approved gated wave created in the bake", machine, Status{State: Baking, Wave: 2, Approved: true, Since: at(5)},
			Event{Kind: EventWaveCreated, Wave: 2, At: at(6)}, Status{State: Baking, Wave: 2, Approved: true, Since: at(5)}},
		{"approval during the bake", machine, Status{State: Baking, Wave: 2, Since: at(5)},
			Event{Kind: EventApprovalGiven, Wave: 2, At: at(7)}, Status{State: Baking, Wave: 2, Approved: true, Since: at(5)}},
		{"bake over, ungated: running", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventBakeOver, Wave: 3, At: at(30)}, Status{State: Running, Wave: 3, Since: at(30)}},
		{"bake over, gated: awaiting approval", machine, Status{State: Baking, Wave: 2, Since: at(5)},
			Event{Kind: EventBakeOver, Wave: 2, At: at(15)}, Status{State: AwaitingApproval, Wave: 2, Since: at(15)}},
		{"bake over, gated and approved: running", machine, Status{State: Baking, Wave: 2, Approved: true, Since: at(5)},
			Event{Kind: EventBakeOver, Wave: 2, At: at(16)}, Status{State: Running, Wave: 2, Approved: true, Since: at(16)}},
		{"health fires at the end of the bake", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventRuleFired, Wave: 3, Rule: HaltHealth, At: at(30)}, Status{State: Halted, Wave: 3, Halt: HaltHealth, Since: at(30)}},
		{"failures fire in the bake", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventRuleFired, Wave: 3, Rule: HaltFailures, At: at(21)}, Status{State: Halted, Wave: 3, Halt: HaltFailures, Since: at(21)}},
		{"manual halt in the bake", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventManualHalt, At: at(22)}, Status{State: Halted, Wave: 3, Halt: HaltManual, Since: at(22)}},
		{"error in the bake", machine, Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventError, At: at(22)}, Status{State: Halted, Wave: 3, Halt: HaltError, Since: at(22)}},
		{"approval given", machine, Status{State: AwaitingApproval, Wave: 2, Since: at(15)},
			Event{Kind: EventApprovalGiven, Wave: 2, At: at(40)}, Status{State: Running, Wave: 2, Approved: true, Since: at(40)}},
		{"manual halt awaiting approval", machine, Status{State: AwaitingApproval, Wave: 2, Since: at(15)},
			Event{Kind: EventManualHalt, At: at(16)}, Status{State: Halted, Wave: 2, Halt: HaltManual, Since: at(16)}},
		{"error awaiting approval", machine, Status{State: AwaitingApproval, Wave: 2, Since: at(15)},
			Event{Kind: EventError, At: at(16)}, Status{State: Halted, Wave: 2, Halt: HaltError, Since: at(16)}},
		{"manual halt before the start", machine, Status{State: Planned},
			Event{Kind: EventManualHalt, At: at(0)}, Status{State: Halted, Halt: HaltManual, Since: at(0)}},
		{"error before the start", machine, Status{State: Planned},
			Event{Kind: EventError, At: at(0)}, Status{State: Halted, Halt: HaltError, Since: at(0)}},
	}
	for _, tt := range tests {
		got, err := tt.m.Next(tt.from, tt.ev)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.name, got, tt.want)
		}
	}
}

// TestTransitionsIllegal tries every event in every state and expects a
// refusal wherever the table has no entry.
func TestTransitionsIllegal(t *testing.T) {
	legal := map[State][]EventKind{
		Planned:          {EventStart, EventManualHalt, EventError},
		Running:          {EventWaveCreated, EventWaveFinished, EventRuleFired, EventManualHalt, EventError},
		Baking:           {EventWaveCreated, EventApprovalGiven, EventBakeOver, EventRuleFired, EventManualHalt, EventError},
		AwaitingApproval: {EventApprovalGiven, EventManualHalt, EventError},
		Completed:        nil,
		Halted:           nil,
	}
	all := []EventKind{EventStart, EventWaveCreated, EventWaveFinished, EventBakeOver, EventApprovalGiven, EventRuleFired, EventManualHalt, EventError}
	for state, allowed := range legal {
		for _, kind := range all {
			if slices.Contains(allowed, kind) {
				continue
			}
			from := Status{State: state, Wave: 2, Since: at(0)}
			got, err := machine.Next(from, Event{Kind: kind, Wave: 2, Rule: HaltFailures, At: at(60)})
			var te *TransitionError
			if !errors.Is(err, ErrIllegalTransition) || !errors.As(err, &te) || got != from {
				t.Errorf("%s + %s = %+v, %v; want a refusal that leaves the status alone", state, kind, got, err)
			}
			if state.Final() && !strings.Contains(err.Error(), "final") {
				t.Errorf("%s + %s: %v does not say the state is final", state, kind, err)
			}
		}
	}
}

// TestTransitionsGuarded covers events legal in a state but refused by
// their guard: these are what a crash and a replay would produce.
func TestTransitionsGuarded(t *testing.T) {
	tests := []struct {
		name string
		from Status
		ev   Event
		why  string
	}{
		{"a replayed finish of the previous wave", Status{State: Running, Wave: 2},
			Event{Kind: EventWaveFinished, Wave: 1, At: at(9)}, "about wave 1, the rollout is on wave 2"},
		{"a bake cut short", Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventBakeOver, Wave: 3, At: at(29)}, "the bake ends at 2026-03-01T12:30:00Z"},
		{"a gated wave created before approval", Status{State: Baking, Wave: 2, Since: at(5)},
			Event{Kind: EventWaveCreated, Wave: 2, At: at(6)}, "needs an approval before its jobs are created"},
		{"approval of a wave that needs none", Status{State: Baking, Wave: 3, Since: at(20)},
			Event{Kind: EventApprovalGiven, Wave: 3, At: at(21)}, "wave 3 needs no approval"},
		{"a second approval", Status{State: Baking, Wave: 2, Approved: true, Since: at(5)},
			Event{Kind: EventApprovalGiven, Wave: 2, At: at(6)}, "already approved"},
		{"health cannot fire while a wave runs", Status{State: Running, Wave: 1},
			Event{Kind: EventRuleFired, Wave: 1, Rule: HaltHealth, At: at(1)}, `a "health" rule cannot fire`},
		{"a rule fired for another wave", Status{State: Running, Wave: 2},
			Event{Kind: EventRuleFired, Wave: 1, Rule: HaltFailures, At: at(1)}, "about wave 1"},
		{"approval for another wave", Status{State: AwaitingApproval, Wave: 2},
			Event{Kind: EventApprovalGiven, Wave: 3, At: at(1)}, "about wave 3"},
	}
	for _, tt := range tests {
		got, err := machine.Next(tt.from, tt.ev)
		if !errors.Is(err, ErrIllegalTransition) || !strings.Contains(err.Error(), tt.why) || got != tt.from {
			t.Errorf("%s: %+v, %v; want a refusal saying %q", tt.name, got, err, tt.why)
		}
	}
}

// TestWholeRolloutWithFakeClock drives three waves to completion, the
// gated second one approved during its bake.
func TestWholeRolloutWithFakeClock(t *testing.T) {
	s := Status{State: Planned}
	steps := []Event{
		{Kind: EventStart, At: at(0)},
		{Kind: EventWaveCreated, Wave: 1, At: at(0)},
		{Kind: EventWaveFinished, Wave: 1, At: at(4)},
		{Kind: EventApprovalGiven, Wave: 2, At: at(6)},
		{Kind: EventWaveCreated, Wave: 2, At: at(6)},
		{Kind: EventBakeOver, Wave: 2, At: at(14)},
		{Kind: EventWaveFinished, Wave: 2, At: at(30)},
		{Kind: EventWaveCreated, Wave: 3, At: at(30)},
		{Kind: EventBakeOver, Wave: 3, At: at(40)},
		{Kind: EventWaveFinished, Wave: 3, At: at(90)},
	}
	for _, e := range steps {
		var err error
		if ends, ok := machine.BakeEnds(s); ok && e.Kind == EventBakeOver && !e.At.Equal(ends) {
			t.Errorf("bake before wave %d ends at %s, event at %s", s.Wave, ends, e.At)
		}
		if s, err = machine.Next(s, e); err != nil {
			t.Fatalf("%s wave %d: %v", e.Kind, e.Wave, err)
		}
	}
	if s.State != Completed || s.Wave != 3 || !s.Since.Equal(at(90)) {
		t.Errorf("final status %+v", s)
	}
	if _, ok := machine.BakeEnds(s); ok {
		t.Error("a completed rollout has no bake")
	}
}
