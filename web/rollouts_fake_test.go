package web_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
)

// fakeRollouts is a stateful stand-in for the rollout engine, keeping to
// its contract: Create is idempotent on the rollout id, a one-wave rollout
// starting now gets its job at once (unless every slot is busy and it may
// not wait), halts and approvals follow the state rules, and the author
// can never approve.
type fakeRollouts struct {
	mu        sync.Mutex
	now       func() time.Time
	byKey     map[string]*rollout.Rollout
	creates   int                      // Create calls, accepted or not
	slotBusy  *rollout.SlotBusyError   // refuses a start-now create that may not wait
	remaining map[string][]string      // rid → devices never reached
	origins   map[string][]jobs.Origin // rid → who asked, per call
}

func newFakeRollouts(now func() time.Time) *fakeRollouts {
	return &fakeRollouts{now: now, byKey: map[string]*rollout.Rollout{}, remaining: map[string][]string{}, origins: map[string][]jobs.Origin{}}
}

func key(hubName, rid string) string { return hubName + "/" + rid }

func (f *fakeRollouts) Create(_ context.Context, o jobs.Origin, rid string, s rollout.Spec) (*rollout.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	f.origins[rid] = append(f.origins[rid], o)
	if r, ok := f.byKey[key(s.Hub, rid)]; ok {
		c := *r
		return &c, nil
	}
	if fe := s.Validate(); len(fe) > 0 {
		return nil, fe
	}
	oneWave := s.Waves.Waves() == 1
	if oneWave && s.Start.IsZero() && !s.WaitForSlot && f.slotBusy != nil {
		return nil, f.slotBusy
	}
	r := &rollout.Rollout{ID: rid, Hub: s.Hub, Spec: s, Author: o.Actor, Created: f.now(), Devices: 3,
		Status: rollout.Status{State: rollout.Planned, Since: f.now()}}
	for n := 1; n <= s.Waves.Waves(); n++ {
		r.Waves = append(r.Waves, rollout.WaveRecord{Number: n, Jobs: []rollout.JobRecord{{ID: rollout.JobID(rid, n, 1), State: "pending"}}})
	}
	if oneWave && s.Start.IsZero() && (f.slotBusy == nil) {
		r.Status = rollout.Status{State: rollout.Running, Wave: 1, Since: f.now()}
		r.Waves[0].Jobs[0].State = "created"
		r.Waves[0].Started = f.now()
	}
	f.byKey[key(s.Hub, rid)] = r
	c := *r
	return &c, nil
}

func (f *fakeRollouts) put(r rollout.Rollout) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byKey[key(r.Hub, r.ID)] = &r
}

func (f *fakeRollouts) stored() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.byKey)
}

func (f *fakeRollouts) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates
}

func (f *fakeRollouts) get(hubName, rid string) (*rollout.Rollout, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byKey[key(hubName, rid)]
	return r, ok
}

func (f *fakeRollouts) Get(_ context.Context, hubName, rid string) (*rollout.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byKey[key(hubName, rid)]
	if !ok {
		return nil, rollout.ErrNotFound
	}
	c := *r
	return &c, nil
}

func (f *fakeRollouts) List(_ context.Context, hubName string, state rollout.State) ([]rollout.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rollout.Rollout
	for _, r := range f.byKey {
		if r.Hub == hubName && (state == "" || r.Status.State == state) {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b rollout.Rollout) int { return a.Created.Compare(b.Created) }) // the page sorts
	return out, nil
}

func (f *fakeRollouts) Halt(_ context.Context, o jobs.Origin, hubName, rid, reason string) (*rollout.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byKey[key(hubName, rid)]
	switch {
	case !ok:
		return nil, rollout.ErrNotFound
	case r.Status.State.Final():
		return nil, rollout.ErrFinal
	}
	r.Status = rollout.Status{State: rollout.Halted, Wave: r.Status.Wave, Halt: rollout.HaltManual, Note: reason, Since: f.now()}
	r.HaltedBy = o.Actor
	c := *r
	return &c, nil
}

func (f *fakeRollouts) Approve(_ context.Context, o jobs.Origin, hubName, rid string) (*rollout.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byKey[key(hubName, rid)]
	switch {
	case !ok:
		return nil, rollout.ErrNotFound
	case r.Status.State.Final():
		return nil, rollout.ErrFinal
	case r.Status.State != rollout.AwaitingApproval:
		return nil, rollout.ErrNotAwaitingApproval
	}
	if err := rollout.CanApprove(identity(r.Author), identity(o.Actor)); err != nil {
		return nil, err
	}
	if r.ApprovedBy == nil {
		r.ApprovedBy = map[int]audit.Actor{}
	}
	r.ApprovedBy[r.Status.Wave] = o.Actor
	r.Status = rollout.Status{State: rollout.Running, Wave: r.Status.Wave, Approved: true, Since: f.now()}
	c := *r
	return &c, nil
}

func identity(a audit.Actor) rollout.Identity {
	return rollout.Identity{Issuer: a.Issuer, Subject: a.Subject}
}

func (f *fakeRollouts) Remaining(_ context.Context, hubName, rid string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byKey[key(hubName, rid)]; !ok {
		return nil, rollout.ErrNotFound
	}
	return f.remaining[rid], nil
}
