package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
)

// The hub calls of a rollout's jobs. Each is persisted before and after:
// a create marks the row "creating" (committed) before jobs.Create and
// "created" after; a cancel marks "cancelling" before jobs.Cancel and
// "cancelled" after. A row left "creating" by a crash is resolved by
// reading the job (there: created; not found: pending again, and the next
// create of the same deterministic id meets JobAlreadyExists if it got
// through meanwhile). A row left "cancelling" is simply cancelled again:
// the jobs service re-reads the job and answers AlreadyCancelled.

// activeStatuses are the job statuses that hold an active-job slot and
// that the slot count asks the hub for ("enqueued" belongs to
// import/export jobs, which are not scheduled jobs).
var activeStatuses = []hub.JobStatus{hub.StatusQueued, hub.StatusScheduled, hub.StatusRunning}

// slots counts each hub's active jobs once per poll, against its limit.
type slots struct {
	e    *Engine
	hubs map[string]*hubSlots
}

type hubSlots struct {
	limit   int
	holders []Holder
	err     error
}

func (e *Engine) newSlots() *slots { return &slots{e: e, hubs: map[string]*hubSlots{}} }

func (e *Engine) limit(hubName string) int {
	if n := e.maxActive[hubName]; n > 0 {
		return n
	}
	return 1
}

// of counts hubName's active jobs, at most once per hub per poll: one
// query per active status, through the budget (its cache shares them with
// the pages).
func (s *slots) of(ctx context.Context, hubName string) *hubSlots {
	if hs, ok := s.hubs[hubName]; ok {
		return hs
	}
	hs := &hubSlots{limit: s.e.limit(hubName)}
	s.hubs[hubName] = hs
	hs.holders, hs.err = s.e.activeJobs(ctx, hubName)
	return hs
}

func (hs *hubSlots) free() bool { return hs.err == nil && len(hs.holders) < hs.limit }

// take counts a job this poll created.
func (hs *hubSlots) take(id string) { hs.holders = append(hs.holders, Holder{JobID: id}) }

// busy says in words who holds the slots.
func (hs *hubSlots) busy(hubName string) string {
	if hs.err != nil {
		return "waiting for the hub's budget to count its active jobs"
	}
	parts := make([]string, 0, len(hs.holders))
	for _, h := range hs.holders {
		p := h.JobID
		if h.Status != "" {
			p += " (" + string(h.Status)
			if !h.StopsBy.IsZero() {
				p += ", stops by " + clock(h.StopsBy)
			}
			p += ")"
		}
		parts = append(parts, p)
	}
	return fmt.Sprintf("every active-job slot of %s (%d) is held by %s; the next job is created when one frees",
		hubName, hs.limit, strings.Join(parts, ", "))
}

// activeJobs lists the jobs holding hubName's active-job slots.
func (e *Engine) activeJobs(ctx context.Context, hubName string) ([]Holder, error) {
	reader, ok := e.hubs[hubName]
	if !ok {
		return nil, fmt.Errorf("hub %q is not configured", hubName)
	}
	var holders []Holder
	for _, st := range activeStatuses {
		cont := ""
		for {
			page, err := reader.QueryJobs(ctx, hub.QueryJobsOptions{Status: st, PageSize: 100, Continuation: cont})
			e.metrics.call(hubName, "query_jobs", err)
			if err != nil {
				return nil, err
			}
			for _, j := range page.Value.Jobs {
				holders = append(holders, Holder{JobID: j.JobID, Status: j.Status, StopsBy: j.PlannedEnd()})
			}
			if cont = page.Value.Continuation; cont == "" {
				break
			}
		}
	}
	return holders, nil
}

// drive moves wave n's jobs one step each: create those pending (slots
// permitting), resolve those a crash left uncertain, read those created.
// It updates rows in place and says why the wave waits, if it does.
func (e *Engine) drive(ctx context.Context, r record, rows []jobRow, n int, slots *slots) (string, error) {
	var why string
	note := func(w string) {
		if why == "" {
			why = w
		}
	}
	for i := range rows {
		j := &rows[i]
		if j.wave != n {
			continue
		}
		var err error
		switch j.state {
		case jobPending:
			var w string
			w, err = e.create(ctx, r, j, slots)
			note(w)
		case jobCreating:
			note(fmt.Sprintf("checking whether job %s reached the hub", j.id))
			err = e.resolveCreate(ctx, r, j)
		case jobCreated:
			if j.status.Normalized() == hub.StatusScheduled && j.start.After(e.now()) {
				continue // nothing to read before it starts; a halt cancels it
			}
			err = e.read(ctx, r, j)
		case jobCancelling:
			err = e.cancel(ctx, r, j, "")
		}
		if err != nil {
			return why, err
		}
	}
	return why, nil
}

// create sends one pending job, if a slot is free.
func (e *Engine) create(ctx context.Context, r record, j *jobRow, slots *slots) (string, error) {
	hs := slots.of(ctx, r.hub)
	if !hs.free() {
		return hs.busy(r.hub), nil
	}
	planned, err := e.waveJobs(ctx, r, j.wave)
	if err != nil || j.part < 1 || j.part > len(planned) {
		return "", errors.Join(err, fmt.Errorf("job %s is not in the plan", j.id))
	}
	now := e.now()
	start := j.start
	if !start.After(now) {
		start = time.Time{} // due already: the hub starts it at once
	}
	req := r.spec.request(j.id, planned[j.part-1].Condition, start)
	if err := e.move(ctx, j, jobCreating); err != nil {
		return "", err
	}
	if err := e.at("create.marked"); err != nil {
		return "", err
	}
	reason := fmt.Sprintf("rollout %s, wave %d of %d, part %d", r.id, j.wave, len(r.sizes), j.part)
	if v := e.lastVerdict(ctx, r.id, j.wave-1); v != "" && j.wave > 1 {
		reason += ": " + v
	}
	out, err := e.jobs.Create(ctx, engineOrigin(), r.hub, req, reason)
	e.metrics.call(r.hub, "create_job", errors.Join(err, out.Err))
	e.setMine(j.id)
	if err := e.at("create.sent"); err != nil {
		return "", err
	}
	if err != nil {
		return "the create of " + j.id + " was not recorded in the audit trail; it is tried again", nil
	}
	switch out.Kind {
	case jobs.Created, jobs.AlreadyCreated:
		hs.take(j.id)
		e.learn(j, out.Job, now)
		j.created = now
		return "", e.recorded(ctx, j, jobCreating, jobCreated, "create.recorded")
	case jobs.CreateRefused:
		if errors.Is(out.Err, hub.ErrThrottled) { // a busy slot, or the budget: try again next poll
			hs.err = out.Err
			return "the hub is busy (" + hub.Outcome(out.Err) + "); " + j.id + " is created when it allows", e.recorded(ctx, j, jobCreating, jobPending, "create.recorded")
		}
		return "", e.recorded(ctx, j, jobCreating, jobRefused, "create.recorded")
	}
	return "the hub did not answer the create of " + j.id + "; it is checked next poll", nil
}

// move marks j's row with a new state before a hub call.
func (e *Engine) move(ctx context.Context, j *jobRow, to jobState) error {
	from := j.state
	j.state = to
	if err := e.store.setJob(ctx, *j, from, e.now()); err != nil {
		j.state = from
		return err
	}
	return nil
}

// recorded writes j after a hub call, then passes the crash point.
func (e *Engine) recorded(ctx context.Context, j *jobRow, from, to jobState, point string) error {
	j.state = to
	if err := e.store.setJob(ctx, *j, from, e.now()); err != nil {
		return err
	}
	return e.at(point)
}

// learn copies what the hub says of a job into its row.
func (e *Engine) learn(j *jobRow, job *hub.Job, now time.Time) {
	if job == nil {
		return
	}
	j.status = job.Status.Normalized()
	if job.DeviceJobStatistics != nil {
		st := *job.DeviceJobStatistics
		j.stats = &st
	}
	if end := job.PlannedEnd(); !end.IsZero() {
		j.stops = end
	}
	if j.finished.IsZero() && jobs.Terminal(j.status) && j.status != "" {
		j.finished = now
	}
}

func (e *Engine) setMine(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mine[id] = true
}

func (e *Engine) isMine(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mine[id]
}

// resolveCreate settles a "creating" row: the job on the hub means the
// create went through; its absence means it did not, and the row is
// pending again. A row another process marked is left alone for
// createGrace, in case its create is still on its way.
func (e *Engine) resolveCreate(ctx context.Context, r record, j *jobRow) error {
	now := e.now()
	if !e.isMine(j.id) && now.Sub(j.updated) < createGrace {
		return nil
	}
	reader, ok := e.hubs[r.hub]
	if !ok {
		return fmt.Errorf("hub %q is not configured", r.hub)
	}
	f, err := e.readJob(ctx, reader, r.hub, j.id)
	switch {
	case errors.Is(err, hub.ErrNotFound):
		return e.recorded(ctx, j, jobCreating, jobPending, "resolve.recorded")
	case err != nil || f.Stale:
		return nil // no fresh answer: next poll
	}
	e.learn(j, f.Value, now)
	j.created = now
	return e.recorded(ctx, j, jobCreating, jobCreated, "resolve.recorded")
}

// readJob reads one of the engine's jobs through its hub's budget, counts
// the call, and hands a fresh answer to the jobs service, which keeps the
// job's snapshot and reports it finishing with failures, as it does for
// the jobs people look at.
func (e *Engine) readJob(ctx context.Context, reader HubReader, hubName, id string) (hub.Fresh[*hub.Job], error) {
	f, err := reader.GetJob(ctx, id)
	e.metrics.call(hubName, "get_job", err)
	if err == nil && !f.Stale {
		e.jobs.Remember(ctx, hubName, f.Value, e.now())
	}
	return f, err
}

// read reads a created job; a terminal status finishes its row.
func (e *Engine) read(ctx context.Context, r record, j *jobRow) error {
	reader, ok := e.hubs[r.hub]
	if !ok {
		return fmt.Errorf("hub %q is not configured", r.hub)
	}
	f, err := e.readJob(ctx, reader, r.hub, j.id)
	now := e.now()
	switch {
	case errors.Is(err, hub.ErrNotFound): // the hub forgot it (30 days): over, with the last statistics read
		j.finished = now
		return e.recorded(ctx, j, jobCreated, jobFinished, "poll.recorded")
	case err != nil:
		return nil // budget or hub trouble: the last known state stands until next poll
	}
	before := *j
	e.learn(j, f.Value, now)
	to := jobCreated
	if jobs.Terminal(j.status) {
		to = jobFinished
	}
	if to == jobCreated && sameJob(before, *j) {
		return nil
	}
	return e.recorded(ctx, j, jobCreated, to, "poll.recorded")
}

func sameJob(a, b jobRow) bool {
	return a.status == b.status && a.stops.Equal(b.stops) &&
		(a.stats == nil) == (b.stats == nil) && (a.stats == nil || *a.stats == *b.stats)
}

// settle is a halted rollout's step: nothing pending is ever sent, every
// job that has not started is cancelled, and running jobs are read until
// they stop by themselves (the page says when).
func (e *Engine) settle(ctx context.Context, r record, rows []jobRow) error {
	var errs []error
	for i := range rows {
		j := &rows[i]
		var err error
		switch j.state {
		case jobPending:
			j.finished = e.now()
			err = e.recorded(ctx, j, jobPending, jobCancelled, "settle.recorded")
		case jobCreating:
			err = e.settleCreate(ctx, r, j)
		case jobCreated:
			if jobs.Cancellable(j.status) || j.status == "" {
				err = e.cancel(ctx, r, j, r.status.Note)
			} else {
				err = e.read(ctx, r, j)
			}
		case jobCancelling:
			err = e.cancel(ctx, r, j, r.status.Note)
		}
		if errors.Is(err, errCrashed) {
			return err
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settleCreate settles a halted rollout's "creating" row. It is never
// made final before createGrace has passed since it was marked, even when
// this process sent the create and saw it fail: a PUT that timed out may
// still land at the hub, and its job would then run after the halt with
// nobody watching. After the grace the job is read: on the hub, it is
// cancelled like any other; absent, a cancel by id is still sent (the jobs
// service reads the job first, so a job the hub does not know costs one
// read and an audited "not attempted") before the row is final.
func (e *Engine) settleCreate(ctx context.Context, r record, j *jobRow) error {
	now := e.now()
	if now.Sub(j.updated) < createGrace {
		return nil
	}
	reader, ok := e.hubs[r.hub]
	if !ok {
		return fmt.Errorf("hub %q is not configured", r.hub)
	}
	f, err := e.readJob(ctx, reader, r.hub, j.id)
	switch {
	case err == nil && !f.Stale:
		e.learn(j, f.Value, now)
		j.created = now
		if err := e.recorded(ctx, j, jobCreating, jobCreated, "resolve.recorded"); err != nil {
			return err
		}
		if jobs.Cancellable(j.status) || j.status == "" {
			return e.cancel(ctx, r, j, r.status.Note)
		}
		return nil
	case !errors.Is(err, hub.ErrNotFound):
		return nil // no fresh answer: next poll
	}
	out, err := e.jobs.Cancel(ctx, engineOrigin(), jobs.CancelRequest{Hub: r.hub, JobID: j.id,
		Reason: fmt.Sprintf("rollout %s halted; its create may have landed late", r.id), Confirm: j.id})
	e.metrics.call(r.hub, "cancel_job", errors.Join(err, out.Err))
	switch {
	case err != nil:
		return nil // not recorded, so not sent: next poll
	case out.Kind == jobs.NotAttempted && errors.Is(out.Err, hub.ErrNotFound),
		out.Kind == jobs.Cancelled, out.Kind == jobs.AlreadyCancelled, out.Kind == jobs.CancelledByOther:
		e.learn(j, out.Job, now)
		j.finished = now
		if out.Job != nil {
			j.status = hub.StatusCancelled
		}
		return e.recorded(ctx, j, jobCreating, jobCancelled, "settle.recorded")
	case out.Kind == jobs.NotCancellable: // it landed and started: it runs to its end, watched
		e.learn(j, out.Job, now)
		to := jobCreated
		if jobs.Terminal(j.status) {
			to = jobFinished
		}
		j.created = now
		return e.recorded(ctx, j, jobCreating, to, "settle.recorded")
	}
	return nil // refused or unknown: next poll
}

// cancel cancels one job of a halted rollout through the jobs service
// (audited; the typed confirmation is the job id itself).
func (e *Engine) cancel(ctx context.Context, r record, j *jobRow, why string) error {
	if j.state == jobCreated {
		if err := e.move(ctx, j, jobCancelling); err != nil {
			return err
		}
		if err := e.at("cancel.marked"); err != nil {
			return err
		}
	}
	reason := fmt.Sprintf("rollout %s halted", r.id)
	if why != "" {
		reason += ": " + why
	}
	out, err := e.jobs.Cancel(ctx, engineOrigin(), jobs.CancelRequest{Hub: r.hub, JobID: j.id, Reason: reason, Confirm: j.id})
	e.metrics.call(r.hub, "cancel_job", errors.Join(err, out.Err))
	if err := e.at("cancel.sent"); err != nil {
		return err
	}
	if err != nil {
		return nil // not recorded, so not sent: next poll
	}
	now := e.now()
	switch out.Kind {
	case jobs.Cancelled, jobs.AlreadyCancelled, jobs.CancelledByOther:
		e.learn(j, out.Job, now)
		j.status, j.finished = hub.StatusCancelled, now
		return e.recorded(ctx, j, jobCancelling, jobCancelled, "cancel.recorded")
	case jobs.NotCancellable: // it started meanwhile: it runs to its end
		e.learn(j, out.Job, now)
		to := jobCreated
		if jobs.Terminal(j.status) {
			to = jobFinished
		}
		return e.recorded(ctx, j, jobCancelling, to, "cancel.recorded")
	}
	return nil // not attempted, refused or unknown: cancelled again next poll
}
