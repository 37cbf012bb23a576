// Package jobs is what hubjobs does to IoT Hub jobs, without HTTP: the
// audited cancel (intent → re-read → one coalesced hub call → outcome →
// reconciliation of intents a crash left pending), the audited create, the
// job's history and snapshots, and the job vocabulary. Handlers translate
// its outcomes into pages; background work (rollouts) calls it directly.
// See README.md for the decisions behind it.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// HubJobs is one hub's jobs as the service needs them: today *hub.Budgeted,
// so that the service's calls share the hub's traffic budget with pages.
type HubJobs interface {
	GetJob(ctx context.Context, id string) (hub.Fresh[*hub.Job], error)
	CancelJob(ctx context.Context, id string) (*hub.Job, error)
	CreateJob(ctx context.Context, req hub.JobRequest) (*hub.Job, error)
}

// Trail is what the service needs from the audit store (*audit.Store).
type Trail interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
	// AppendWith appends e and runs also in the same transaction: a
	// cancel's outcome and its job.cancelled event commit together.
	AppendWith(ctx context.Context, e audit.Entry, also audit.AlsoFunc) (audit.Entry, error)
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
	SaveSnapshot(ctx context.Context, snap audit.Snapshot) error
	Reconcile(ctx context.Context, lookup audit.StatusLookup) (int, error)
}

// Origin is who asks and from where, as the audit entry records it.
// Handlers build it once per request from the signed-in user; background
// work uses its own actor.
type Origin struct {
	Actor     audit.Actor
	ClientIP  string
	UserAgent string
	RequestID string // the intent and outcome of one action share it
}

// Defaults of Config.
const (
	// DefaultWorkTimeout bounds an action once its intent is on record:
	// the hub client's write budget (≤ 25 s) plus the outcome append.
	DefaultWorkTimeout = 40 * time.Second
	// DefaultReconcileEvery is how often pending intents are settled after
	// the pass at start-up.
	DefaultReconcileEvery = 5 * time.Minute
	// HistoryTTL is how long a job's audit history is reused between page
	// loads; the service's own writes drop the copy at once.
	HistoryTTL = 2 * time.Second
	// HistoryLimit is how many audit entries a job's history holds.
	HistoryLimit = 50
	// snapshotEvery: a job's snapshot is rewritten when its status changes,
	// else at most this often.
	snapshotEvery = time.Minute
	cacheEntries  = 10_000
)

// Config is what New needs.
type Config struct {
	Hubs   map[string]HubJobs // by configured hub name
	Audit  Trail
	Logger *slog.Logger
	Now    func() time.Time
	// WorkTimeout bounds an action after its intent is written (detached
	// from the caller's cancellation); default DefaultWorkTimeout.
	WorkTimeout time.Duration
	// ReconcileEvery is Run's period; default DefaultReconcileEvery.
	ReconcileEvery time.Duration
	// Registerer receives hubjobs_cancels_total; nil keeps it private.
	Registerer prometheus.Registerer
	// Announce sends job.cancelled and job.finished_with_failures to the
	// webhooks; nil sends nothing.
	Announce Announcer
}

// Service performs and records what hubjobs does to jobs. It is safe for
// concurrent use.
type Service struct {
	hubs           map[string]HubJobs
	audit          Trail
	log            *slog.Logger
	now            func() time.Time
	workTimeout    time.Duration
	reconcileEvery time.Duration
	announce       Announcer

	// cancels coalesces concurrent cancels of one job (key hub/job) into
	// one hub call whose answer every caller shares.
	cancels   singleflight.Group
	histories *expirable.LRU[string, []audit.Entry]
	// snapshots remembers the status last saved per job: the "status
	// changed or once a minute" rule (entries expire after snapshotEvery).
	snapshots *expirable.LRU[string, hub.JobStatus]
	// cancelOutcomes counts cancel attempts by hub and outcome (succeeded,
	// refused, unknown, denied, audit_unavailable): the number operators
	// alert on when cancels start failing.
	cancelOutcomes *prometheus.CounterVec
	// reported holds the jobs this process announced as finished with
	// failures (the outbox de-duplicates across processes).
	reported *expirable.LRU[string, struct{}]
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.WorkTimeout <= 0 {
		cfg.WorkTimeout = DefaultWorkTimeout
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = DefaultReconcileEvery
	}
	s := &Service{
		hubs: cfg.Hubs, audit: cfg.Audit, log: cfg.Logger, now: cfg.Now,
		workTimeout: cfg.WorkTimeout, reconcileEvery: cfg.ReconcileEvery, announce: cfg.Announce,
		histories:      expirable.NewLRU[string, []audit.Entry](cacheEntries, nil, HistoryTTL),
		snapshots:      expirable.NewLRU[string, hub.JobStatus](cacheEntries, nil, snapshotEvery),
		reported:       expirable.NewLRU[string, struct{}](cacheEntries, nil, failuresReportWindow),
		cancelOutcomes: newCancelOutcomes(cfg.Registerer),
	}
	return s
}

// ErrUnknownHub: the hub named is not configured. Handlers validate the
// hub before calling, so this is a caller's mistake.
var ErrUnknownHub = errors.New("jobs: hub not configured")

// NotRecordedError is an action refused because its intent could not be
// written to the audit trail: nothing was sent to the hub. It wraps the
// store's error (audit.ErrUnavailable).
type NotRecordedError struct {
	Action string // "Cancel", "Create"
	Err    error
}

func (e *NotRecordedError) Error() string {
	return fmt.Sprintf("jobs: %s not attempted, its intent could not be recorded: %v", e.Action, e.Err)
}

func (e *NotRecordedError) Unwrap() error { return e.Err }

func (s *Service) hub(name string) (HubJobs, error) {
	h, ok := s.hubs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownHub, name)
	}
	return h, nil
}

// entry is an audit record of origin about one job.
func (o Origin) entry(action audit.Action, hubName, jobID, reason, result string) audit.Entry {
	return audit.Entry{Action: action, Result: result, Actor: o.Actor, ClientIP: o.ClientIP, UserAgent: o.UserAgent,
		RequestID: o.RequestID, Hub: hubName, JobID: jobID, Reason: reason}
}

// withHubError copies the hub's status, code and tracking id into e.
func withHubError(e audit.Entry, err error) audit.Entry {
	if he, ok := errors.AsType[*hub.Error](err); ok {
		e.HubStatus, e.HubErrorCode, e.HubTrackingID = he.StatusCode, he.Code, he.TrackingID
	}
	return e
}

// detached is the context an action runs on once its intent is written: a
// client hanging up must not leave an intent without its outcome.
func (s *Service) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.workTimeout)
}

// record appends e; on failure it logs and returns the error for the
// outcome value (the hub has acted; reconciliation settles the intent).
func (s *Service) record(ctx context.Context, e audit.Entry) error {
	if _, err := s.audit.Append(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit of an outcome failed; the intent will be reconciled",
			"action", e.Action, "hub", e.Hub, "job", e.JobID, "err", err)
		return err
	}
	return nil
}

func historyKey(hubName, id string) string { return hubName + "/" + id }

// History is the job's audit entries, newest first (at most HistoryLimit).
// Reads are reused for HistoryTTL — many people open a job page that was
// just linked in a ticket — and every entry the service writes about the
// job drops the copy at once.
func (s *Service) History(ctx context.Context, hubName, id string) ([]audit.Entry, error) {
	key := historyKey(hubName, id)
	if entries, ok := s.histories.Get(key); ok {
		return entries, nil
	}
	entries, err := s.audit.List(ctx, audit.Filter{Hub: hubName, JobID: id, Limit: HistoryLimit})
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", key, err)
	}
	s.histories.Add(key, entries)
	return entries, nil
}

// forgetHistory drops the cached history of a job the service is writing
// about.
func (s *Service) forgetHistory(hubName, id string) { s.histories.Remove(historyKey(hubName, id)) }

// Remember keeps the hub's answer for a job so that its page still opens
// after IoT Hub forgets the job (30 days). Call it with every answer read:
// it writes when the status changed, else at most once a minute per job,
// not on every poll. A failed write is logged and retried next time.
// A job seen finished with failed devices is announced to the webhooks.
func (s *Service) Remember(ctx context.Context, hubName string, j *hub.Job, seen time.Time) {
	if j == nil || j.JobID == "" {
		return
	}
	s.announceFailures(ctx, hubName, j)
	key := historyKey(hubName, j.JobID)
	if last, ok := s.snapshots.Get(key); ok && last == j.Status {
		return
	}
	body, err := json.Marshal(j)
	if err == nil {
		err = s.audit.SaveSnapshot(ctx, audit.Snapshot{Hub: hubName, JobID: j.JobID, Body: body, LastSeen: seen})
	}
	if err != nil {
		s.log.WarnContext(ctx, "job snapshot not saved", "hub", hubName, "job", j.JobID, "err", err)
		return
	}
	s.snapshots.Add(key, j.Status)
}
