// Package audit is hubjobs' durable, tamper-evident audit trail and the
// portal's small persistent state (job snapshots, session revocations).
//
// One Store serves both backends: SQLite (modernc.org/sqlite, the default,
// one process) and PostgreSQL (pgx, several replicas sharing one trail).
// Entries form a hash chain: every entry carries the hash of the previous one,
// and its own hash covers its canonical encoding (see README.md, "Canonical
// encoding") so that an outside verifier can recompute it. Appends are
// serialised inside the process and, on PostgreSQL, across replicas, and are
// committed before Append returns. The database itself refuses UPDATE and
// DELETE on the trail (triggers), so only someone who first drops the
// triggers can rewrite history — and Verify then names the first bad entry.
//
// Every storage failure wraps ErrUnavailable: the portal answers 503 and,
// for a cancel, refuses before any hub call.
package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Action names are public surface (docs/contract.md "Audit entry").
type Action string

const (
	JobCancelIntent     Action = "job.cancel.intent"
	JobCancelSucceeded  Action = "job.cancel.succeeded"
	JobCancelRefused    Action = "job.cancel.refused"
	JobCancelUnknown    Action = "job.cancel.unknown"
	JobCancelDenied     Action = "job.cancel.denied"
	JobCancelReconciled Action = "job.cancel.reconciled"
	JobCreateIntent     Action = "job.create.intent"
	JobCreateSucceeded  Action = "job.create.succeeded"
	JobCreateRefused    Action = "job.create.refused"
	JobCreateUnknown    Action = "job.create.unknown"
	// A rollout's transitions. The engine's own steps carry actor
	// EngineActor, with the rule that fired in the result.
	RolloutCreated     Action = "rollout.created"
	RolloutWaveStarted Action = "rollout.wave_started"
	RolloutApproved    Action = "rollout.approved"
	RolloutHalted      Action = "rollout.halted"
	RolloutCompleted   Action = "rollout.completed"
	AuthLogin          Action = "auth.login"
	AuthLoginFailed    Action = "auth.login_failed"
	AuthLogout         Action = "auth.logout"
	CSRFBlocked        Action = "csrf.blocked"
	AuthzDenied        Action = "authz.denied"
)

// Actions lists every action above, in the order the /audit filter offers
// them. Callers outside this package use it (and the constants) rather than
// spelling action names again. A new slice each call.
func Actions() []Action {
	return []Action{
		JobCancelIntent, JobCancelSucceeded, JobCancelRefused, JobCancelUnknown, JobCancelDenied,
		JobCancelReconciled, JobCreateIntent, JobCreateSucceeded, JobCreateRefused, JobCreateUnknown,
		RolloutCreated, RolloutWaveStarted, RolloutApproved, RolloutHalted, RolloutCompleted,
		AuthLogin, AuthLoginFailed, AuthLogout, CSRFBlocked, AuthzDenied,
	}
}

// EngineActor is the actor of what hubjobs does by itself (the rollout
// engine's hub calls and transitions): no person, so no issuer, subject or
// roles, and a name an auditor recognises.
var EngineActor = Actor{Subject: "hubjobs", Name: "hubjobs"}

// cancelOutcomes are the actions that settle a job.cancel.intent sharing
// their RequestID. PendingIntents and Reconcile rely on this list.
var cancelOutcomes = []Action{
	JobCancelSucceeded, JobCancelRefused, JobCancelUnknown, JobCancelDenied, JobCancelReconciled,
}

// Actor is who acted, with the roles they held at the time.
type Actor struct {
	Issuer, Subject, Name, Email string
	Roles                        []string
}

// Entry is one audit record. Seq, Time (when zero), PrevHash and Hash are set
// by Append. Every string is stored escaped and length-capped (see sanitize).
type Entry struct {
	Seq           int64
	Time          time.Time
	Action        Action
	Result        string
	Actor         Actor
	ClientIP      string
	UserAgent     string
	RequestID     string // intent and outcome of one cancel share it
	Hub, JobID    string
	Reason        string
	HubStatus     int
	HubErrorCode  string
	HubTrackingID string
	PrevHash      string
	Hash          string
}

// Filter selects entries for GET /audit (newest first) and GET /audit.csv
// (oldest first, like the CLI's export).
//
// User matches the actor's subject exactly, or a prefix of the actor's name
// or e-mail, case-insensitively (ASCII only on SQLite). Since is inclusive,
// Until exclusive; zero means unbounded. Limit defaults to DefaultListLimit
// and is capped at MaxListLimit.
type Filter struct {
	User, Hub, JobID string
	Action           Action
	Since, Until     time.Time
	BeforeSeq        int64 // paging newest first: entries with Seq < BeforeSeq; 0 = no bound
	AfterSeq         int64 // paging oldest first: entries with Seq > AfterSeq; 0 = no bound
	OldestFirst      bool  // seq order, the order exports and Verify use
	Limit            int
}

// Page sizes of List.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// Snapshot is the last answer the hub gave for a job.
type Snapshot struct {
	Hub, JobID string
	Body       []byte // the job's JSON as the hub sent it
	LastSeen   time.Time
}

var (
	ErrNotFound    = errors.New("audit: not found")
	ErrUnavailable = errors.New("audit: store unavailable")
	// ErrInvalid is a caller mistake: a bad DSN, an entry without an action,
	// an unknown export format. It never means the store is down.
	ErrInvalid = errors.New("audit: invalid input")
)

// BrokenChainError names the first entry that does not verify.
type BrokenChainError struct {
	Seq    int64
	Reason string
}

func (e *BrokenChainError) Error() string {
	return fmt.Sprintf("audit: chain broken at seq %d: %s", e.Seq, e.Reason)
}

// Store is the audit trail plus the portal's small persistent state
// (job snapshots, session revocations), on SQLite or PostgreSQL.
// It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	clock   func() time.Time
	logger  *slog.Logger
	metrics *appendMetrics

	// appendSlot serialises appends inside the process (capacity 1). It is a
	// channel rather than a mutex so that the append's time bound
	// (appendTimeout) still applies while it waits its turn.
	appendSlot     chan struct{}
	reconcileGrace time.Duration
	// opened is when this Store was opened: intents stamped since then may
	// belong to a cancel this process is performing right now.
	opened time.Time

	snapMu   sync.Mutex
	snapMemo map[snapshotKey]snapshotMemo

	purgeMu   sync.Mutex
	lastPurge time.Time

	isRevoked      *preparedQuery  // see state.go
	revocationMemo *revocationMemo // SQLite only; see state.go
}

// Option configures Open.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	registerer     prometheus.Registerer
	clock          func() time.Time
	reconcileGrace *time.Duration
	mustExist      bool
}

// WithLogger emits every appended entry as one structured line (group
// "audit", the export keys) on logger, for SIEM shipping. Without it entries
// are stored but not logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithRegisterer registers the append-latency histogram
// (hubjobs_audit_append_duration_seconds) and failure counter
// (hubjobs_audit_append_failures_total) on r.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(o *options) { o.registerer = r }
}

// WithClock replaces time.Now (entry times, snapshot freshness, revocation
// expiry, reconcile grace) — for tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.clock = now } }

// WithReconcileGrace sets how old a pending intent must be before Reconcile
// settles it. The default is 0 on SQLite (one process owns the file, so an
// intent written before this process opened it is not in flight) and 2
// minutes on PostgreSQL, where another replica may be between its intent and
// its outcome right now (a cancel's whole hub budget is ≤ 25 s). Whatever
// the grace, intents stamped since this Store was opened wait at least
// inFlightGrace: Reconcile also runs periodically, while this process may
// itself be in the middle of those cancels.
func WithReconcileGrace(d time.Duration) Option {
	return func(o *options) { o.reconcileGrace = &d }
}

// MustExist makes Open fail instead of creating a missing SQLite file, for
// tools (audit verify/export) that must not report on an empty new trail.
func MustExist() Option { return func(o *options) { o.mustExist = true } }

// Open opens sqlite://PATH or postgres://… and applies the embedded
// migrations. sqlite:///var/lib/x.db is the absolute /var/lib/x.db,
// sqlite://x.db is relative to the working directory.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	d, err := dialectFor(dsn, o.mustExist)
	if err != nil {
		return nil, err
	}
	db, err := d.open()
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrUnavailable, d.name, err)
	}
	s := &Store{
		db:             db,
		dialect:        d,
		clock:          time.Now,
		logger:         o.logger,
		appendSlot:     make(chan struct{}, 1),
		reconcileGrace: d.reconcileGrace,
		snapMemo:       make(map[snapshotKey]snapshotMemo),
		isRevoked:      &preparedQuery{query: isRevokedQuery},
	}
	if d.name == "sqlite" {
		s.revocationMemo = &revocationMemo{}
	}
	if o.clock != nil {
		s.clock = o.clock
	}
	if o.reconcileGrace != nil {
		s.reconcileGrace = *o.reconcileGrace
	}
	s.opened = s.now()
	if o.registerer != nil {
		if s.metrics, err = newAppendMetrics(o.registerer); err != nil {
			db.Close()
			return nil, err
		}
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("%w: migrate %s: %w", ErrUnavailable, d.name, err)
	}
	return s, nil
}

// Close releases the database handle; later calls fail with ErrUnavailable.
func (s *Store) Close() error { return s.db.Close() }

// now is the store's clock in UTC at the precision the database keeps.
func (s *Store) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// unavailable wraps a storage failure so callers can test for ErrUnavailable.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}
