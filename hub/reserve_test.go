package hub

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestBudgetWriteReserveIsForPeople: once reads have run the jobs bucket
// down to its write reserve, background work with a configured share is
// refused its creates and cancels; a person's cancel (re-read and cancel)
// still takes the reserve.
func TestBudgetWriteReserveIsForPeople(t *testing.T) {
	b, hub, _, _ := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 60, CallerShare: 1,
		CallerShares: map[string]float64{"engine": 1}}, jobsHub) // burst 6, 2 kept for writes
	olga := WithCaller(context.Background(), "olga")
	engine := WithCaller(context.Background(), "engine")
	for i := range 4 {
		if _, err := b.GetJob(olga, fmt.Sprintf("op-%d", i)); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
	for name, write := range map[string]func() error{
		"cancel":  func() error { _, err := b.CancelJob(engine, "op-e"); return err },
		"create":  func() error { _, err := b.CreateJob(engine, methodRequest("op-new", "*")); return err },
		"re-read": func() error { _, err := b.GetJob(ForWrite(engine), "op-e"); return err },
	} {
		be, ok := errors.AsType[*BudgetError](write())
		if !ok || be.Share {
			t.Errorf("the engine's %s with only the reserve left: %v, want the bucket's refusal", name, be)
		}
	}
	if _, err := b.GetJob(ForWrite(olga), "op-9"); err != nil {
		t.Fatalf("a person's re-read for a cancel: %v", err)
	}
	if _, err := b.CancelJob(olga, "op-9"); err != nil {
		t.Fatalf("a person's cancel: %v", err)
	}
	if n := len(hub.requests()); n != 6 {
		t.Errorf("%d hub calls, want 6 (4 reads, the person's re-read and cancel)", n)
	}
}

// TestBudgetEngineReadsLeaveItsWriteAToken: background work checks the hub
// before each write (active jobs before a create); those reads must never
// use up its share so that the write after them is always refused.
func TestBudgetEngineReadsLeaveItsWriteAToken(t *testing.T) {
	b, _, _, _ := budgetFixture(t, BudgetConfig{JobsOpsPerMinute: 100, CallerShares: map[string]float64{"engine": 0.5}}, jobsHub) // burst 10: 5 for the engine
	engine := WithCaller(context.Background(), "engine")
	reads := 0
	for i := range 10 {
		if _, err := b.GetJob(engine, fmt.Sprintf("op-r%d", i)); err == nil {
			reads++
		}
	}
	if reads != 4 {
		t.Errorf("the engine made %d reads of its 5 tokens; want 4, one kept for a write", reads)
	}
	if _, err := b.CreateJob(engine, methodRequest("op-new", "*")); err != nil {
		t.Errorf("the engine's create after its reads: %v", err)
	}
}
