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
	"github.com/hubjobs/hubjobs/notify"
)

// What each state of a rollout asks of the engine. Every function here
// makes at most one transition, persisted with its audit entry, and is
// safe to run again after a crash at any point: it reads what is stored
// and does what is still missing.

// devicePage is how many device ids one page of the frozen list asks for.
const devicePage = 1000

// healthLead is how many polls before the bake ends the health rule is
// counted.
const healthLead = 2

// freeze is a device list being read page by page; it is kept in memory
// only, since nothing is decided until the last page is in (a crash starts
// the reading over).
type freeze struct {
	ids   []string
	cont  string
	begun bool
}

// healthCount is a health count in progress over several queries, which
// the query budget may spread over several polls.
type healthCount struct {
	wave      int
	queries   []string
	next      int
	unhealthy int
	verdict   *Verdict // once every count is in, until the bake is over
}

// listed reports whether r targets a frozen device list (several waves in
// the spec) rather than the author's condition (one wave).
func (r *record) listed() bool { return r.spec.Waves.Waves() > 1 }

// start takes a planned rollout up: it freezes the device list when the
// rollout has several waves, then enters wave 1 (or its approval).
func (e *Engine) start(ctx context.Context, r record) (bool, error) {
	if !r.planned() {
		return e.freeze(ctx, r)
	}
	next, err := r.machine().Next(r.status, Event{Kind: EventStart, At: e.now()})
	if err != nil {
		return false, err
	}
	c := change{next: next}
	if next.State == AwaitingApproval {
		c.events = append(c.events, awaitingEvent(r, next.Wave))
	}
	return true, e.commit(ctx, r, c)
}

func awaitingEvent(r record, wave int) notify.Event {
	size := 0
	if wave >= 1 && wave <= len(r.sizes) {
		size = r.sizes[wave-1]
	}
	return event(notify.RolloutAwaitingApproval, r,
		fmt.Sprintf("wave %d (%s) waits for an approver", wave, devicesWord(size)), map[string]any{"wave": wave})
}

// freeze reads the devices the condition selects (SELECT deviceId, paged
// through the query budget), plans the waves and stores the list.
func (e *Engine) freeze(ctx context.Context, r record) (bool, error) {
	reader, ok := e.hubs[r.hub]
	if !ok {
		return e.haltByEngine(ctx, r, HaltError, fmt.Sprintf("hub %q is not configured", r.hub), nil)
	}
	e.mu.Lock()
	f := e.freezing[r.id]
	if f == nil {
		f = &freeze{}
		e.freezing[r.id] = f
	}
	e.mu.Unlock()
	for !f.begun || f.cont != "" {
		page, err := reader.DeviceIDs(ctx, r.spec.Condition, hub.PageOptions{PageSize: devicePage, Continuation: f.cont})
		e.metrics.call(r.hub, "device_ids", err)
		switch {
		case errors.Is(err, hub.ErrQueryRefused) || errors.Is(err, hub.ErrInvalidRequest):
			return e.haltByEngine(ctx, r, HaltError, "the hub refused the target condition: "+err.Error(), nil)
		case err != nil || page.Stale:
			return false, e.wait(ctx, r, fmt.Sprintf("reading the device list: %s so far; waiting for the hub's query budget", count(len(f.ids))))
		}
		f.ids = append(f.ids, page.Value.DeviceIDs...)
		f.cont, f.begun = page.Value.Continuation, true
	}
	plan, err := NewPlan(r.id, r.planSecret, f.ids, r.spec.Waves)
	e.mu.Lock()
	delete(e.freezing, r.id)
	e.mu.Unlock()
	if err != nil {
		return e.haltByEngine(ctx, r, HaltError, "the device list cannot be planned: "+err.Error(), nil)
	}
	ordered := make([]string, 0, plan.Devices)
	r.sizes = make([]int, len(plan.Waves))
	for i, w := range plan.Waves {
		ordered = append(ordered, w.Devices...)
		r.sizes[i] = w.Size
	}
	r.devices, r.gated = plan.Devices, r.spec.Rules.Gates(plan)
	tx, err := e.store.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	if err := e.store.setPlan(ctx, tx, r, ordered); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	e.cachePlan(r.id, plan)
	return true, e.at("freeze.recorded")
}

func (e *Engine) cachePlan(rid string, p *Plan) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.plans[rid] = p
}

// plan is r's frozen plan, rebuilt from the stored device list after a
// restart (NewPlan is a pure function of the rollout id, its stored
// secret and the list).
// Plans of rollouts still driven are kept in memory (tens of MB for
// 100,000 devices, so a final rollout's is dropped: forget).
func (e *Engine) plan(ctx context.Context, r record) (*Plan, error) {
	e.mu.Lock()
	p := e.plans[r.id]
	e.mu.Unlock()
	if p != nil {
		return p, nil
	}
	ids, err := e.store.deviceIDs(ctx, r.id)
	if err != nil {
		return nil, fmt.Errorf("stored device list: %w", err)
	}
	if p, err = NewPlan(r.id, r.planSecret, ids, r.spec.Waves); err != nil {
		return nil, fmt.Errorf("stored device list: %w", err)
	}
	if !r.status.State.Final() {
		e.cachePlan(r.id, p)
	}
	return p, nil
}

// forget drops what the engine kept in memory about a rollout it has
// nothing more to do for.
func (e *Engine) forget(rid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.plans, rid)
	delete(e.freezing, rid)
	delete(e.health, rid)
	for id := range e.mine {
		if strings.HasPrefix(id, "hj-"+rid+"-") {
			delete(e.mine, id)
		}
	}
}

// waveJobs are the hub jobs of wave n: the author's condition in one job
// for a one-wave rollout, else the plan's IN-list jobs.
func (e *Engine) waveJobs(ctx context.Context, r record, n int) ([]Job, error) {
	if !r.listed() {
		return []Job{{ID: JobID(r.id, 1, 1), Wave: 1, Part: 1, Condition: r.spec.Condition}}, nil
	}
	p, err := e.plan(ctx, r)
	if err != nil {
		return nil, err
	}
	if n < 1 || n > len(p.Waves) {
		return nil, fmt.Errorf("wave %d is not in the plan", n)
	}
	return p.Waves[n-1].Jobs, nil
}

// openWave commits to wave n: its jobs are stored as pending, to be
// created (as scheduled jobs when start is in the future), and
// rollout.wave_started is audited with why the wave may go.
func (e *Engine) openWave(ctx context.Context, r record, n int, start time.Time, because string) (bool, error) {
	next, err := r.machine().Next(r.status, Event{Kind: EventWaveCreated, Wave: n, At: e.now()})
	if err != nil {
		return false, err
	}
	planned, err := e.waveJobs(ctx, r, n)
	if err != nil {
		return false, err
	}
	rows := make([]jobRow, len(planned))
	for i, j := range planned {
		devices := len(j.Devices)
		if !r.listed() {
			devices = r.devices
		}
		rows[i] = jobRow{id: j.ID, wave: n, part: j.Part, devices: devices, start: start}
	}
	when := "now"
	if !start.IsZero() {
		when = "at " + clock(start)
	}
	result := fmt.Sprintf("wave %d of %d: %s in %s, starting %s", n, len(r.sizes), devicesWord(r.sizes[n-1]), jobsWord(len(rows)), when)
	if because != "" {
		result += "; " + because
	}
	now := e.now()
	return true, e.commit(ctx, r, change{next: next, entry: entry(engineOrigin(), audit.RolloutWaveStarted, r, "", result),
		also: func(ctx context.Context, tx *sql.Tx) error { return e.store.insertJobs(ctx, tx, r.id, rows, now) }})
}

func jobsWord(n int) string {
	if n == 1 {
		return "1 hub job"
	}
	return count(n) + " hub jobs"
}

// clock writes a time for people and audit results: UTC, to the second.
func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// running drives wave n: create its jobs as slots free, read them, apply
// the failure rule on every poll, and when every job is over, pass the
// wave on to the bake (or complete the rollout).
func (e *Engine) running(ctx context.Context, r record, rows []jobRow, slots *slots) (bool, error) {
	n := r.status.Wave
	if !hasWave(rows, n) {
		start, because := time.Time{}, "the first wave"
		if n == 1 && r.spec.Start.After(e.now()) {
			start = r.spec.Start
		}
		if n > 1 {
			because = e.approvalWords(ctx, r, n)
		}
		return e.openWave(ctx, r, n, start, because)
	}
	why, err := e.drive(ctx, r, rows, n, slots)
	if err != nil {
		return false, err
	}
	if j := refused(rows, n); j != nil {
		return e.haltByEngine(ctx, r, HaltError, fmt.Sprintf("the hub refused job %s", j.id), nil)
	}
	v := r.spec.Rules.EvaluateFailures(waveStats(r, rows, n))
	if v.Fired {
		return e.haltByEngine(ctx, r, HaltFailures, v.Text, &v)
	}
	if !waveDone(rows, n) {
		return false, e.wait(ctx, r, why)
	}
	next, err := r.machine().Next(r.status, Event{Kind: EventWaveFinished, Wave: n, At: e.now()})
	if err != nil {
		return false, err
	}
	c := change{next: next, also: e.verdictWriter(r.id, n, v)}
	if next.State == Completed {
		c.entry = entry(engineOrigin(), audit.RolloutCompleted, r, "", v.Text)
		c.events = append(c.events, event(notify.RolloutCompleted, r,
			fmt.Sprintf("all %s waves finished: %s", count(len(r.sizes)), v.Text), nil))
	}
	return true, e.commit(ctx, r, c)
}

func (e *Engine) verdictWriter(rid string, wave int, v Verdict) func(context.Context, *sql.Tx) error {
	at := e.now()
	return func(ctx context.Context, tx *sql.Tx) error { return e.store.addVerdict(ctx, tx, rid, wave, v, at) }
}

// approvalWords says who approved wave n, for the wave_started entry.
func (e *Engine) approvalWords(ctx context.Context, r record, n int) string {
	approvals, err := e.store.approvals(ctx, r.id)
	if a, ok := approvals[n]; err == nil && ok {
		return "approved by " + a.Name
	}
	return e.lastVerdict(ctx, r.id, n-1)
}

// lastVerdict is the text of the last stored verdict about wave n.
func (e *Engine) lastVerdict(ctx context.Context, rid string, n int) string {
	vs, err := e.store.verdicts(ctx, rid)
	if err != nil {
		return ""
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if vs[i].wave == n {
			return vs[i].v.Text
		}
	}
	return ""
}

// baking: wave n-1 finished and passed. Wave n's jobs are created now as
// scheduled jobs starting when the bake ends (a gated wave's only once
// approved), so that a halt during the bake is the cancel of a scheduled
// job; when the bake ends, the health rule is counted, then the wave runs.
func (e *Engine) baking(ctx context.Context, r record, rows []jobRow, slots *slots) (bool, error) {
	n, m, now := r.status.Wave, r.machine(), e.now()
	bakeEnd, _ := m.BakeEnds(r.status)
	mayCreate := !m.gated(n) || r.status.Approved
	if !hasWave(rows, n) && mayCreate {
		start := time.Time{}
		if bakeEnd.After(now) {
			start = bakeEnd
		}
		because := e.lastVerdict(ctx, r.id, n-1)
		if r.status.Approved {
			because = e.approvalWords(ctx, r, n)
		}
		return e.openWave(ctx, r, n, start, because)
	}
	why := ""
	if hasWave(rows, n) {
		var err error
		if why, err = e.drive(ctx, r, rows, n, slots); err != nil {
			return false, err
		}
		if j := refused(rows, n); j != nil {
			return e.haltByEngine(ctx, r, HaltError, fmt.Sprintf("the hub refused job %s", j.id), nil)
		}
	}
	// The health rule is counted from two polls before the bake ends (so
	// at least one poll falls in that window whatever the ticks' phase),
	// so that when it fires the next wave's jobs are usually still
	// scheduled, and cancelled, rather than already running. Usually, not
	// always: a count the query budget spreads over several polls, or a
	// lease handover after a crash, can bring the verdict after their start
	// time, and then they run to their end. WorstCase counts that wave.
	c := change{}
	if strings.TrimSpace(r.spec.Rules.HealthQuery) != "" && !now.Before(bakeEnd.Add(-healthLead*e.poll)) {
		v, done, err := e.healthVerdict(ctx, r, n)
		if err != nil || !done {
			return false, errors.Join(err, e.wait(ctx, r, "counting unhealthy devices among those reached; waiting for the hub's query budget"))
		}
		if v.Fired {
			return e.haltByEngine(ctx, r, HaltHealth, v.Text, &v)
		}
		c.also = e.verdictWriter(r.id, n, v)
	}
	if now.Before(bakeEnd) {
		if why == "" && !mayCreate {
			why = fmt.Sprintf("wave %d needs an approver before its jobs are created", n)
		}
		return false, e.wait(ctx, r, why)
	}
	next, err := m.Next(r.status, Event{Kind: EventBakeOver, Wave: n, At: now})
	if err != nil {
		return false, err
	}
	c.next = next
	if next.State == AwaitingApproval {
		c.events = append(c.events, awaitingEvent(r, n))
	}
	if err := e.commit(ctx, r, c); err != nil {
		return false, err
	}
	e.forgetHealth(r.id)
	return true, nil
}

func (e *Engine) forgetHealth(rid string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.health, rid)
}

// healthVerdict counts the unhealthy devices among those of waves 1..n-1,
// as many queries per poll as the budget allows; done is false until every
// count is in. Stale counts are not used: a rule must not judge on old
// data. The verdict is kept until the bake is over (forgetHealth).
func (e *Engine) healthVerdict(ctx context.Context, r record, n int) (Verdict, bool, error) {
	reader, ok := e.hubs[r.hub]
	if !ok {
		return Verdict{}, false, fmt.Errorf("hub %q is not configured", r.hub)
	}
	p, err := e.plan(ctx, r)
	if err != nil {
		return Verdict{}, false, err
	}
	e.mu.Lock()
	h := e.health[r.id]
	e.mu.Unlock()
	if h == nil || h.wave != n {
		qs, err := p.HealthQueries(r.spec.Rules.HealthQuery, n-1)
		if err != nil {
			return Verdict{}, false, err
		}
		h = &healthCount{wave: n, queries: qs}
		e.mu.Lock()
		e.health[r.id] = h
		e.mu.Unlock()
	}
	if h.verdict != nil {
		return *h.verdict, true, nil
	}
	for h.next < len(h.queries) {
		f, err := reader.CountDevices(ctx, strings.TrimPrefix(h.queries[h.next], countPrefix))
		e.metrics.call(r.hub, "count_devices", err)
		if err != nil || f.Stale {
			return Verdict{}, false, nil
		}
		h.unhealthy += int(f.Value)
		h.next++
	}
	reached := 0
	for _, s := range r.sizes[:n-1] {
		reached += s
	}
	v := r.spec.Rules.EvaluateHealth(n, h.unhealthy, reached)
	h.verdict = &v
	return v, true, nil
}

// haltByEngine halts r because a rule fired (or the engine cannot go on),
// audited as the engine with the rule's words, then cancels at once every
// job of r that has not started: the halt latency is this one poll.
func (e *Engine) haltByEngine(ctx context.Context, r record, reason HaltReason, note string, v *Verdict) (bool, error) {
	ev := Event{Kind: EventError, Wave: r.status.Wave, At: e.now(), Rule: reason, Note: note}
	if reason == HaltFailures || reason == HaltHealth {
		ev.Kind = EventRuleFired
	}
	next, err := r.machine().Next(r.status, ev)
	if err != nil {
		return false, err
	}
	r.haltedBy = audit.EngineActor
	c := change{next: next, entry: entry(engineOrigin(), audit.RolloutHalted, r, "", note),
		events: []notify.Event{event(notify.RolloutHalted, r, note, map[string]any{"wave": r.status.Wave, "rule": string(reason)})}}
	if v != nil {
		c.also = e.verdictWriter(r.id, r.status.Wave, *v)
	}
	if err := e.commit(ctx, r, c); err != nil {
		return false, err
	}
	e.metrics.steps.WithLabelValues("halt").Inc()
	if err := e.at("halt.recorded"); err != nil {
		return false, err
	}
	return true, e.settleNow(ctx, r.id)
}

// settleNow cancels what a halted rollout has not started yet.
func (e *Engine) settleNow(ctx context.Context, rid string) error {
	r, err := e.store.load(ctx, e.store.db, rid)
	if err != nil {
		return err
	}
	rows, err := e.store.jobs(ctx, e.store.db, rid)
	if err != nil {
		return err
	}
	return e.settle(ctx, r, rows)
}

func hasWave(rows []jobRow, n int) bool {
	for _, j := range rows {
		if j.wave == n {
			return true
		}
	}
	return false
}

func refused(rows []jobRow, n int) *jobRow {
	for i := range rows {
		if rows[i].wave == n && rows[i].state == jobRefused {
			return &rows[i]
		}
	}
	return nil
}

func waveDone(rows []jobRow, n int) bool {
	for _, j := range rows {
		if j.wave == n && !j.state.done() {
			return false
		}
	}
	return true
}

// waveStats are the device counts of waves 1..through from the jobs'
// statistics as last read.
func waveStats(r record, rows []jobRow, through int) []WaveStats {
	out := make([]WaveStats, 0, through)
	for n := 1; n <= through && n <= len(r.sizes); n++ {
		s := WaveStats{Wave: n, Size: r.sizes[n-1]}
		for _, j := range rows {
			if j.wave == n && j.stats != nil {
				s.Finished += int(j.stats.SucceededCount + j.stats.FailedCount)
				s.Failed += int(j.stats.FailedCount)
			}
		}
		out = append(out, s)
	}
	return out
}
