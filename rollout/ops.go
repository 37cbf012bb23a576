package rollout

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/notify"
)

// The operations the pages call. People's changes (create, halt, approve)
// are transitions like the engine's: persisted with their audit entry in
// one transaction, refused when the rollout moved meanwhile.

// Create stores and starts a rollout. It is idempotent on rid: a double
// submit returns the rollout the first one stored, whatever the second
// asked. A one-wave rollout that starts now gets its hub job before Create
// returns (hj-{rid}-w1-1, through the jobs service). When every active-job
// slot of the hub is held and s.WaitForSlot is false, Create answers
// *SlotBusyError and stores nothing: the slots are read before anything is
// written. Should a slot seen free be taken by someone else before the
// create reaches the hub, the rollout is already on record, so it is halted
// (error, "every active-job slot was taken") and *SlotBusyError returned
// all the same. With WaitForSlot the rollout is stored and the engine
// creates the job when a slot frees (that wait survives a restart and ends
// with Halt).
func (e *Engine) Create(ctx context.Context, origin jobs.Origin, rid string, s Spec) (*Rollout, error) {
	if ro, err := e.existing(ctx, s.Hub, rid); !errors.Is(err, ErrNotFound) {
		return ro, err
	}
	if err := e.validate(rid, s); err != nil {
		return nil, err
	}
	ctx = hub.WithCaller(ctx, EngineCaller)
	if s.Rules.ApprovalOverDevices == 0 {
		s.Rules.ApprovalOverDevices = e.approvalOver
	}
	now := e.now()
	r := record{id: rid, hub: s.Hub, spec: s, author: origin.Actor, status: Status{State: Planned, Since: now}, created: now,
		planSecret: e.planSecret()}
	startsNow := !s.Start.After(now)
	if !r.listed() {
		n, err := e.countTarget(ctx, s)
		if err != nil {
			return nil, err
		}
		r.devices, r.sizes, r.gated = n, []int{n}, []bool{s.Rules.NeedsApproval(1, n)}
		if startsNow && !r.gated[0] && !s.WaitForSlot {
			if hs := e.newSlots().of(ctx, s.Hub); hs.err == nil && !hs.free() {
				return nil, &SlotBusyError{Limit: hs.limit, Holders: hs.holders}
			}
		}
	}
	summary := fmt.Sprintf("%s to %s", changeWords(s), targetWords(r))
	err := e.commitNew(ctx, r, entry(origin, audit.RolloutCreated, r, s.Reason, summary),
		event(notify.RolloutCreated, r, summary, map[string]any{"waves": s.Waves.String(), "author": jobs.ActorName(origin.Actor)}))
	if err != nil {
		if ro, gerr := e.existing(ctx, s.Hub, rid); !errors.Is(gerr, ErrNotFound) { // a double submit won the race, or another hub's
			return ro, gerr
		}
		return nil, err
	}
	if !r.listed() && startsNow {
		if err := e.advance(ctx, rid, e.newSlots()); errors.Is(err, errCrashed) {
			return nil, err
		} else if err != nil {
			e.log.WarnContext(ctx, "rollout created; its first step failed and is retried by the engine", "rollout", rid, "err", err)
		}
		if busy := e.slotLost(ctx, rid, s); busy != nil {
			return nil, busy
		}
	}
	e.nudge()
	return e.Get(ctx, s.Hub, rid)
}

// existing is the rollout already stored as rid: a double submit's on
// hubName, ErrIDTaken when rid belongs to another hub (ids are the table's
// primary key), ErrNotFound when rid is free.
func (e *Engine) existing(ctx context.Context, hubName, rid string) (*Rollout, error) {
	r, err := e.store.load(ctx, e.store.db, rid)
	if err != nil {
		return nil, err
	}
	if r.hub != hubName {
		return nil, fmt.Errorf("%w: %s", ErrIDTaken, rid)
	}
	return e.view(ctx, r)
}

// slotLost halts a rollout that must not wait whose job could not be
// created for want of a slot, and says who holds them.
func (e *Engine) slotLost(ctx context.Context, rid string, s Spec) *SlotBusyError {
	if s.WaitForSlot {
		return nil
	}
	rows, err := e.store.jobs(ctx, e.store.db, rid)
	if err != nil || len(rows) == 0 || rows[0].state != jobPending {
		return nil
	}
	hs := e.newSlots().of(ctx, s.Hub)
	if hs.err == nil && hs.free() {
		return nil
	}
	defer e.lock(rid)()
	r, err := e.store.load(ctx, e.store.db, rid)
	if err != nil || r.status.State.Final() {
		return nil
	}
	if _, err := e.haltByEngine(ctx, r, HaltError, "every active-job slot was taken before the job could be created", nil); err != nil {
		e.log.WarnContext(ctx, "halting a rollout that lost its slot", "rollout", rid, "err", err)
	}
	return &SlotBusyError{Limit: hs.limit, Holders: hs.holders}
}

// countTarget counts the devices a one-wave rollout targets. A hub that
// cannot answer now (budget, throttling) leaves the count unknown (0) and
// the job's statistics fill it in; a condition it refuses is the author's
// mistake.
func (e *Engine) countTarget(ctx context.Context, s Spec) (int, error) {
	f, err := e.hubs[s.Hub].CountDevices(ctx, s.Condition)
	e.metrics.call(s.Hub, "count_devices", err)
	switch {
	case errors.Is(err, hub.ErrQueryRefused) || errors.Is(err, hub.ErrInvalidRequest):
		return 0, fmt.Errorf("%w: the hub refused the target condition: %w", ErrInvalidSpec, err)
	case err != nil:
		return 0, nil
	case f.Value == 0 && !f.Stale:
		return 0, fmt.Errorf("%w: %w: the condition matches no device", ErrInvalidSpec, ErrNoDevices)
	}
	return int(f.Value), nil
}

func changeWords(s Spec) string {
	if s.Method != nil {
		return "direct method " + s.Method.MethodName
	}
	return "twin update"
}

func targetWords(r record) string {
	if r.listed() {
		return fmt.Sprintf("the devices matching %s, in waves %s", r.spec.Condition, r.spec.Waves.String())
	}
	if r.devices == 0 {
		return "the devices matching " + r.spec.Condition
	}
	return fmt.Sprintf("%s matching %s", devicesWord(r.devices), r.spec.Condition)
}

// commitNew inserts r with its creation entry and notification.
func (e *Engine) commitNew(ctx context.Context, r record, en *audit.Entry, ev notify.Event) error {
	_, err := e.trail.AppendWith(ctx, *en, func(ctx context.Context, tx *sql.Tx) error {
		if err := e.store.insertRollout(ctx, tx, r); err != nil {
			return err
		}
		if e.outbox != nil {
			return e.outbox.Enqueue(ctx, tx, ev)
		}
		return nil
	})
	return err
}

// validate refuses what cannot be planned or driven, wrapping
// ErrInvalidSpec: the spec itself, with the form's own rules
// (Spec.Validate, whose FieldErrors let the pages put each message next to
// its field), then what only the engine knows (the rollout id, the
// configured hubs).
func (e *Engine) validate(rid string, s Spec) error {
	if err := s.Validate().Err(); err != nil {
		return err
	}
	var problems []string
	if !ValidID(rid) {
		problems = append(problems, fmt.Sprintf("the rollout id %q is not 1 to 16 characters of a-z and 0-9", rid))
	}
	if _, ok := e.hubs[s.Hub]; !ok {
		problems = append(problems, fmt.Sprintf("hub %q is not configured", s.Hub))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidSpec, strings.Join(problems, "; "))
	}
	return nil
}

// Get is one rollout as its page shows it; ErrNotFound when hubName has no
// rollout rid.
func (e *Engine) Get(ctx context.Context, hubName, rid string) (*Rollout, error) {
	r, err := e.store.load(ctx, e.store.db, rid)
	if err != nil {
		return nil, err
	}
	if r.hub != hubName {
		return nil, ErrNotFound
	}
	return e.view(ctx, r)
}

// List is hubName's rollouts in state ("" = every state), newest first.
func (e *Engine) List(ctx context.Context, hubName string, state State) ([]Rollout, error) {
	recs, err := e.store.list(ctx, hubName, state, false)
	if err != nil {
		return nil, err
	}
	out := make([]Rollout, 0, len(recs))
	for _, r := range recs {
		ro, err := e.view(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, *ro)
	}
	return out, nil
}

// Halt stops a rollout for good on an operator's word: nothing more is
// created, and every job that has not started is cancelled before Halt
// returns (as far as the hub allows now; the engine retries the rest). A
// running job is left to finish; Rollout.Next says when it stops.
func (e *Engine) Halt(ctx context.Context, origin jobs.Origin, hubName, rid, reason string) (*Rollout, error) {
	err := e.person(ctx, hubName, rid, func(r record) (change, error) {
		next, err := r.machine().Next(r.status, Event{Kind: EventManualHalt, At: e.now(), Note: reason})
		if err != nil {
			return change{}, err
		}
		summary := "halted by " + jobs.ActorName(origin.Actor)
		if reason != "" {
			summary += ": " + reason
		}
		return change{next: next, entry: entry(origin, audit.RolloutHalted, r, reason, "halted by hand"),
			events: []notify.Event{event(notify.RolloutHalted, r, summary, map[string]any{"wave": r.status.Wave, "rule": string(HaltManual)})}}, nil
	}, func(r *record) { r.haltedBy = origin.Actor })
	if err != nil {
		return nil, err
	}
	unlock := e.lock(rid)
	if err := e.settleNow(hub.WithCaller(ctx, EngineCaller), rid); err != nil {
		e.log.WarnContext(ctx, "halted; some jobs are cancelled on the engine's next poll", "rollout", rid, "err", err)
	}
	unlock()
	e.nudge()
	return e.Get(ctx, hubName, rid)
}

// Approve lets the wave awaiting approval go (or approves, during the
// bake, the gated wave that follows it, saving the wait). The approver
// must not be the author (CanApprove); roles are the caller's check.
func (e *Engine) Approve(ctx context.Context, origin jobs.Origin, hubName, rid string) (*Rollout, error) {
	err := e.person(ctx, hubName, rid, func(r record) (change, error) {
		if err := CanApprove(identity(r.author), identity(origin.Actor)); err != nil {
			return change{}, err
		}
		waiting := r.status.State == AwaitingApproval ||
			(r.status.State == Baking && r.machine().gated(r.status.Wave) && !r.status.Approved)
		if !waiting {
			return change{}, ErrNotAwaitingApproval
		}
		n := r.status.Wave
		next, err := r.machine().Next(r.status, Event{Kind: EventApprovalGiven, Wave: n, At: e.now()})
		if err != nil {
			return change{}, err
		}
		at := e.now()
		return change{next: next, entry: entry(origin, audit.RolloutApproved, r, "", fmt.Sprintf("wave %d approved", n)),
			also: func(ctx context.Context, tx *sql.Tx) error {
				return e.store.insertApproval(ctx, tx, r.id, n, origin.Actor, at)
			}}, nil
	}, nil)
	if err != nil {
		return nil, err
	}
	e.nudge()
	return e.Get(ctx, hubName, rid)
}

func identity(a audit.Actor) Identity { return Identity{Issuer: a.Issuer, Subject: a.Subject} }

// person applies a person's transition, reading the rollout again when the
// engine moved it meanwhile (a version conflict), a few times.
func (e *Engine) person(ctx context.Context, hubName, rid string, decide func(record) (change, error), prepare func(*record)) error {
	for range 5 {
		r, err := e.store.load(ctx, e.store.db, rid)
		if err != nil {
			return err
		}
		if r.hub != hubName {
			return ErrNotFound
		}
		if r.status.State.Final() {
			return ErrFinal
		}
		c, err := decide(r)
		if err != nil {
			return err
		}
		if prepare != nil {
			prepare(&r)
		}
		if err := e.commit(ctx, r, c); !errors.Is(err, errStale) {
			return err
		}
	}
	return fmt.Errorf("rollout %s keeps changing: %w", rid, errStale)
}

// Remaining lists the devices a rollout never reached, in plan order: those
// of jobs never created, refused, or cancelled before they started, for
// "continue with the remaining devices". A one-wave rollout targets a
// condition, not a list, so it has none to give (nil).
func (e *Engine) Remaining(ctx context.Context, hubName, rid string) ([]string, error) {
	r, err := e.store.load(ctx, e.store.db, rid)
	if err != nil {
		return nil, err
	}
	if r.hub != hubName {
		return nil, ErrNotFound
	}
	if !r.listed() || !r.planned() {
		return nil, nil
	}
	p, err := e.plan(ctx, r)
	if err != nil {
		return nil, err
	}
	rows, err := e.store.jobs(ctx, e.store.db, rid)
	if err != nil {
		return nil, err
	}
	reached := map[string]bool{}
	for _, j := range rows {
		switch {
		case j.state == jobCreating, j.state == jobCancelling: // may have reached the hub: never offered twice
			reached[j.id] = true
		case j.state == jobCreated, j.state == jobFinished:
			reached[j.id] = j.status.Normalized() != hub.StatusCancelled
		}
	}
	var out []string
	for _, w := range p.Waves {
		for _, j := range w.Jobs {
			if !reached[j.ID] {
				out = append(out, j.Devices...)
			}
		}
	}
	return out, nil
}

// view assembles the page's Rollout from r's rows.
func (e *Engine) view(ctx context.Context, r record) (*Rollout, error) {
	rows, err := e.store.jobs(ctx, e.store.db, r.id)
	if err != nil {
		return nil, err
	}
	approvals, err := e.store.approvals(ctx, r.id)
	if err != nil {
		return nil, err
	}
	verdicts, err := e.store.verdicts(ctx, r.id)
	if err != nil {
		return nil, err
	}
	ro := &Rollout{ID: r.id, Hub: r.hub, Spec: r.spec, Author: r.author, Created: r.created, Status: r.status,
		Devices: r.devices, ApprovedBy: approvals, Waiting: r.waiting}
	if r.status.State == Halted {
		ro.HaltedBy = r.haltedBy
	}
	ro.Waves = make([]WaveRecord, len(r.sizes))
	for i, size := range r.sizes {
		ro.Waves[i] = WaveRecord{Number: i + 1, Size: size}
	}
	for _, j := range rows {
		if j.wave < 1 || j.wave > len(ro.Waves) {
			continue
		}
		if !r.listed() && ro.Devices == 0 && j.stats != nil { // the count was unknown at creation
			ro.Devices, ro.Waves[0].Size = int(j.stats.DeviceCount), int(j.stats.DeviceCount)
		}
		w := &ro.Waves[j.wave-1]
		w.Jobs = append(w.Jobs, JobRecord{ID: j.id, Devices: j.devices, State: j.shown(), Stats: j.stats, Start: j.start})
		if !j.created.IsZero() && (w.Started.IsZero() || j.created.Before(w.Started)) {
			w.Started = j.created
		}
		if j.finished.After(w.Finished) {
			w.Finished = j.finished
		}
	}
	for i := range ro.Waves {
		if !waveDone(rows, i+1) || !hasWave(rows, i+1) {
			ro.Waves[i].Finished = time.Time{}
		}
	}
	for _, v := range verdicts {
		if v.wave >= 1 && v.wave <= len(ro.Waves) {
			ro.Waves[v.wave-1].Verdicts = append(ro.Waves[v.wave-1].Verdicts, v.v)
		}
	}
	if n := r.status.Wave; r.status.State == Running && n >= 1 && n <= len(ro.Waves) {
		ro.Waves[n-1].Verdicts = append(ro.Waves[n-1].Verdicts, r.spec.Rules.EvaluateFailures(waveStats(r, rows, n)))
	}
	ro.Next = e.nextWords(r, rows)
	return ro, nil
}

// shown is the job's state as the page shows it: the hub's status once
// known, else the engine's view.
func (j jobRow) shown() string {
	switch {
	case j.state == jobCreating:
		return string(jobPending)
	case j.state == jobCancelling:
		return string(jobCancelling)
	case (j.state == jobCreated || j.state == jobFinished || j.state == jobCancelled) && j.status != "":
		return string(j.status)
	}
	return string(j.state)
}
