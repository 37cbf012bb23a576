package rollout

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/notify"
)

// EngineCaller is the name the engine's hub calls carry (hub.WithCaller):
// cmd maps it to rollouts.max_share_of_budget in hub.BudgetConfig.CallerShares,
// which caps everything the engine spends of a hub's budgets.
const EngineCaller = "hubjobs-engine"

// Defaults of EngineConfig.
const (
	DefaultPollInterval = 15 * time.Second
	// DefaultLeaseFor is how long a replica drives rollouts without
	// renewing; another takes over at most this long after it dies.
	DefaultLeaseFor = 30 * time.Second
	// createGrace is how long a "creating" row written by another process
	// is left alone: its create may still be on its way (the jobs service
	// bounds one at jobs.DefaultWorkTimeout), and resolving it early could
	// mark a job cancelled that then appears on the hub.
	createGrace = jobs.DefaultWorkTimeout + 20*time.Second
	// stepsPerTick bounds how many transitions one rollout makes in one
	// poll, so that one poll can go planned → running → jobs created.
	stepsPerTick = 4
)

// HubReader is what the engine reads from a hub: *hub.Budgeted, so that
// its reads share the hub's budgets with people and are capped by the
// engine's share.
type HubReader interface {
	GetJob(ctx context.Context, id string) (hub.Fresh[*hub.Job], error)
	QueryJobs(ctx context.Context, o hub.QueryJobsOptions) (hub.Fresh[*hub.JobsPage], error)
	CountDevices(ctx context.Context, where string) (hub.Fresh[int64], error)
	DeviceIDs(ctx context.Context, where string, o hub.PageOptions) (hub.Fresh[*hub.DeviceIDsPage], error)
}

// JobsService is how the engine changes a hub's jobs: *jobs.Service, whose
// every create and cancel is audited (intent, then outcome). Remember is
// told of every job the engine reads, as the pages tell it of those they
// show, so that a job the engine drives gets job.finished_with_failures
// and an archived snapshot like any other.
type JobsService interface {
	Create(ctx context.Context, origin jobs.Origin, hubName string, req hub.JobRequest, reason string) (jobs.CreateOutcome, error)
	Cancel(ctx context.Context, origin jobs.Origin, r jobs.CancelRequest) (jobs.Outcome, error)
	Remember(ctx context.Context, hubName string, j *hub.Job, seen time.Time)
}

// Trail is the audit store: a transition and its entry commit together.
type Trail interface {
	AppendWith(ctx context.Context, e audit.Entry, also audit.AlsoFunc) (audit.Entry, error)
}

// Outbox takes notifications in the transaction of the change they report
// (*notify.Outbox).
type Outbox interface {
	Enqueue(ctx context.Context, tx notify.Execer, ev notify.Event) error
}

// EngineConfig is what NewEngine needs.
type EngineConfig struct {
	Store  *Store
	Trail  Trail
	Jobs   JobsService
	Hubs   map[string]HubReader // by configured hub name
	Outbox Outbox               // nil: no notifications
	Now    func() time.Time
	// PollInterval is how often every rollout is looked at (rollouts.poll_interval).
	PollInterval time.Duration
	// LeaseFor is the lease on driving rollouts; default DefaultLeaseFor.
	LeaseFor time.Duration
	// ApprovalOverDevices gates waves above this size when the spec sets
	// no limit of its own (rollouts.approval_over_devices; 0: never).
	ApprovalOverDevices int
	// MaxActiveJobs is each hub's active-job limit (hubs[].max_active_jobs);
	// a hub missing here gets 1, the smallest tiers' limit.
	MaxActiveJobs map[string]int
	// Owner names this replica in the lease; default a random id.
	Owner string
	// PlanSecret draws the secret that keys a new rollout's device order
	// with its id (NewPlan); default NewPlanSecret. Only the demo changes
	// it, to "", so that its seeded rollouts keep the order its registry
	// was laid out for.
	PlanSecret func() string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Engine stores rollouts and drives them: one idempotent step per rollout
// per poll, every step persisted before and after its hub call. It is safe
// for concurrent use; the pages call its operations while Run drives.
type Engine struct {
	store        *Store
	trail        Trail
	jobs         JobsService
	hubs         map[string]HubReader
	outbox       Outbox
	now          func() time.Time
	poll         time.Duration
	leaseFor     time.Duration
	approvalOver int
	maxActive    map[string]int
	owner        string
	log          *slog.Logger
	metrics      *metrics
	kick         chan struct{}
	planSecret   func() string

	mu       sync.Mutex
	locks    map[string]*rolloutLock // one step at a time per rollout in this process; dropped when unused
	plans    map[string]*Plan        // frozen plans, rebuilt from the stored device list
	freezing map[string]*freeze      // device lists being read, page by page
	health   map[string]*healthCount
	mine     map[string]bool // job ids this process marked "creating" and finished trying

	// crash, set by tests, stops a step at a named point as a SIGKILL
	// would: nothing after it runs.
	crash func(point string) bool
}

// errCrashed is the test's simulated SIGKILL.
var errCrashed = errors.New("rollout engine: crashed (test)")

// at is a crash point: the engine persists before and after every hub
// call, and tests stop it at each of these names in turn.
func (e *Engine) at(point string) error {
	if e.crash != nil && e.crash(point) {
		return fmt.Errorf("%w at %s", errCrashed, point)
	}
	return nil
}

// NewEngine builds the engine; Run drives it.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("rollout engine: Store is required")
	case cfg.Trail == nil:
		return nil, errors.New("rollout engine: Trail is required")
	case cfg.Jobs == nil:
		return nil, errors.New("rollout engine: Jobs is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.LeaseFor <= 0 {
		cfg.LeaseFor = DefaultLeaseFor
	}
	if cfg.Owner == "" {
		cfg.Owner = randomID()
	}
	if cfg.PlanSecret == nil {
		cfg.PlanSecret = NewPlanSecret
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Engine{
		store: cfg.Store, trail: cfg.Trail, jobs: cfg.Jobs, hubs: cfg.Hubs, outbox: cfg.Outbox,
		now: func() time.Time { return cfg.Now().UTC() }, poll: cfg.PollInterval, leaseFor: cfg.LeaseFor,
		approvalOver: cfg.ApprovalOverDevices, maxActive: cfg.MaxActiveJobs, owner: cfg.Owner,
		log: cfg.Logger, metrics: m, kick: make(chan struct{}, 1), planSecret: cfg.PlanSecret,
		locks: map[string]*rolloutLock{}, plans: map[string]*Plan{}, freezing: map[string]*freeze{},
		health: map[string]*healthCount{}, mine: map[string]bool{},
	}, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Run drives rollouts every PollInterval (and at once when a page changes
// one) until ctx ends, while this replica holds the lease; it gives the
// lease up on the way out so another replica need not wait for it.
func (e *Engine) Run(ctx context.Context) {
	t := time.NewTicker(e.poll)
	defer t.Stop()
	for {
		if err := e.tick(ctx); err != nil && ctx.Err() == nil {
			e.log.WarnContext(ctx, "rollout engine poll failed", "err", err)
		}
		select {
		case <-ctx.Done():
			if err := e.store.releaseLease(context.WithoutCancel(ctx), e.owner); err != nil {
				e.log.Warn("rollout engine: releasing the lease", "err", err)
			}
			return
		case <-t.C:
		case <-e.kick:
		}
	}
}

// nudge asks Run for a poll now (a page halted or approved something).
func (e *Engine) nudge() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// tick is one poll: take or renew the lease, then one step for every
// rollout with work left, renewing the lease before each (a slow hub must
// not let the lease lapse under a poll that is still driving). A failing
// rollout does not hold up the others.
func (e *Engine) tick(ctx context.Context) error {
	if held, err := e.renew(ctx); err != nil || !held {
		return err
	}
	e.metrics.steps.WithLabelValues("poll").Inc()
	recs, err := e.store.list(ctx, "", "", true)
	if err != nil {
		return fmt.Errorf("listing rollouts: %w", err)
	}
	slots := e.newSlots()
	var errs []error
	for i, r := range recs {
		if i > 0 {
			if held, err := e.renew(ctx); err != nil || !held {
				return errors.Join(append(errs, err)...)
			}
		}
		if err := e.advance(ctx, r.id, slots); err != nil {
			if errors.Is(err, errCrashed) {
				return err
			}
			errs = append(errs, fmt.Errorf("rollout %s: %w", r.id, err))
		}
	}
	return errors.Join(errs...)
}

// renew takes or renews the lease: one UPDATE that succeeds only for the
// holder or once the lease has expired.
func (e *Engine) renew(ctx context.Context) (bool, error) {
	now := e.now()
	held, err := e.store.takeLease(ctx, e.owner, now, now.Add(e.leaseFor))
	if err != nil {
		return false, fmt.Errorf("lease: %w", err)
	}
	e.metrics.leader.Set(float64(boolInt(held)))
	return held, nil
}

// lock serialises the steps of one rollout within this process (the page's
// synchronous create against the loop); across processes the lease and the
// rows' versions do. A lock lives only while someone holds or waits for
// it, so the map never outgrows the rollouts being worked on (a final
// rollout's lock goes with its last step, as its plan does).
func (e *Engine) lock(rid string) func() {
	e.mu.Lock()
	l, ok := e.locks[rid]
	if !ok {
		l = &rolloutLock{}
		e.locks[rid] = l
	}
	l.users++
	e.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		e.mu.Lock()
		defer e.mu.Unlock()
		if l.users--; l.users == 0 {
			delete(e.locks, rid)
		}
	}
}

// rolloutLock is one rollout's lock and how many hold or wait for it.
type rolloutLock struct {
	mu    sync.Mutex
	users int
}

// advance makes up to stepsPerTick steps of one rollout, reading it afresh
// before each: a step either changes something and the next one builds on
// it, or finds nothing to do and ends the poll for this rollout.
func (e *Engine) advance(ctx context.Context, rid string, slots *slots) error {
	defer e.lock(rid)()
	final := false
	defer func() {
		if final { // nothing more to plan: drop what memory holds for it
			e.forget(rid)
		}
	}()
	for range stepsPerTick {
		r, err := e.store.load(ctx, e.store.db, rid)
		if err != nil {
			return err
		}
		final = r.status.State.Final()
		moved, err := e.step(ctx, r, slots)
		if errors.Is(err, errStale) {
			continue // someone else moved it: read it again
		}
		if err != nil || !moved {
			return err
		}
	}
	return nil
}

// step does what r's state asks for; moved reports a persisted change
// that the next step may build on.
func (e *Engine) step(ctx context.Context, r record, slots *slots) (bool, error) {
	ctx = hub.WithCaller(ctx, EngineCaller)
	rows, err := e.store.jobs(ctx, e.store.db, r.id)
	if err != nil {
		return false, err
	}
	e.metrics.steps.WithLabelValues(string(r.status.State)).Inc()
	switch r.status.State {
	case Planned:
		return e.start(ctx, r)
	case Running:
		return e.running(ctx, r, rows, slots)
	case Baking:
		return e.baking(ctx, r, rows, slots)
	case AwaitingApproval:
		return false, e.wait(ctx, r, fmt.Sprintf("wave %d waits for an approver who is not the author", r.status.Wave))
	case Halted:
		return false, e.settle(ctx, r, rows)
	}
	return false, nil
}

// wait records why r does not move, for the page.
func (e *Engine) wait(ctx context.Context, r record, why string) error {
	if r.waiting == why {
		return nil
	}
	return e.store.setWaiting(ctx, r.id, why)
}

// change is one transition to persist: the new status, the audit entry
// that records it (nil for moves no action names, such as entering a
// bake), what else must commit with it, and the notifications it causes.
type change struct {
	next   Status
	entry  *audit.Entry
	also   func(ctx context.Context, tx *sql.Tx) error
	events []notify.Event
}

// commit writes c atomically: status (only if r is still at its version),
// extra rows, audit entry and notifications, or nothing.
func (e *Engine) commit(ctx context.Context, r record, c change) error {
	work := func(ctx context.Context, tx *sql.Tx) error {
		if err := e.store.setStatus(ctx, tx, r, c.next); err != nil {
			return err
		}
		if c.also != nil {
			if err := c.also(ctx, tx); err != nil {
				return err
			}
		}
		if e.outbox == nil {
			return nil
		}
		for _, ev := range c.events {
			if err := e.outbox.Enqueue(ctx, tx, ev); err != nil {
				return fmt.Errorf("notification: %w", err)
			}
		}
		return nil
	}
	if c.entry != nil {
		if _, err := e.trail.AppendWith(ctx, *c.entry, work); err != nil {
			return err
		}
		return e.at("committed")
	}
	tx, err := e.store.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := work(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return e.at("committed")
}

// entry is an audit entry about rollout r; a rollout's entries carry its id
// in job_id, so its page lists them with audit.Filter{JobID: rid}.
func entry(o jobs.Origin, action audit.Action, r record, reason, result string) *audit.Entry {
	return &audit.Entry{Action: action, Result: result, Actor: o.Actor, ClientIP: o.ClientIP, UserAgent: o.UserAgent,
		RequestID: o.RequestID, Hub: r.hub, JobID: r.id, Reason: reason}
}

// engineOrigin is the engine acting by itself; each action gets its own
// request id so that its intent and outcome pair up in the trail.
func engineOrigin() jobs.Origin {
	return jobs.Origin{Actor: audit.EngineActor, RequestID: "engine-" + randomID()}
}

// event is a notification about r.
func event(kind notify.EventType, r record, summary string, details map[string]any) notify.Event {
	return notify.Event{Event: kind, Hub: r.hub, Rollout: r.id, Summary: summary, Details: details}
}
