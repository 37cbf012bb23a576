package audit

// CONTRACT STUB — owned by the audit helper, who replaces this file with the
// real implementation. Signatures below are what handlers/, web/ and
// cmd/hubjobs compile against; keep them (add freely).

import (
	"context"
	"errors"
	"io"
	"time"
)

// Action names are public surface (design.md "Audit entry").
type Action string

const (
	JobCancelIntent     Action = "job.cancel.intent"
	JobCancelSucceeded  Action = "job.cancel.succeeded"
	JobCancelRefused    Action = "job.cancel.refused"
	JobCancelUnknown    Action = "job.cancel.unknown"
	JobCancelDenied     Action = "job.cancel.denied"
	JobCancelReconciled Action = "job.cancel.reconciled"
	AuthLogin           Action = "auth.login"
	AuthLoginFailed     Action = "auth.login_failed"
	AuthLogout          Action = "auth.logout"
	CSRFBlocked         Action = "csrf.blocked"
	AuthzDenied         Action = "authz.denied"
)

// Actor is who acted, with the roles they held at the time.
type Actor struct {
	Issuer, Subject, Name, Email string
	Roles                        []string
}

// Entry is one audit record. Seq, Time (when zero), PrevHash and Hash are set by Append.
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

// Filter selects entries for GET /audit (newest first).
type Filter struct {
	User, Hub, JobID string
	Action           Action
	Since, Until     time.Time
	BeforeSeq        int64 // paging: entries with Seq < BeforeSeq; 0 = newest
	Limit            int
}

// Snapshot is the last answer the hub gave for a job.
type Snapshot struct {
	Hub, JobID string
	Body       []byte // the job's JSON as the hub sent it
	LastSeen   time.Time
}

var (
	ErrNotFound    = errors.New("audit: not found")
	ErrUnavailable = errors.New("audit: store unavailable")
)

// BrokenChainError names the first entry that does not verify.
type BrokenChainError struct {
	Seq    int64
	Reason string
}

func (e *BrokenChainError) Error() string { panic("stub") }

// Store is the audit trail plus the portal's small persistent state
// (job snapshots, session revocations), on SQLite or PostgreSQL.
type Store struct{}

// Open opens sqlite://PATH or postgres://… and applies migrations.
func Open(ctx context.Context, dsn string) (*Store, error) { panic("stub") }

func (s *Store) Close() error                                        { panic("stub") }
func (s *Store) Ping(ctx context.Context) error                      { panic("stub") } // writable?
func (s *Store) Append(ctx context.Context, e Entry) (Entry, error)  { panic("stub") }
func (s *Store) List(ctx context.Context, f Filter) ([]Entry, error) { panic("stub") }
func (s *Store) Verify(ctx context.Context) error                    { panic("stub") } // nil or *BrokenChainError
func (s *Store) Export(ctx context.Context, w io.Writer, format string, since time.Time) error {
	panic("stub")
}

// PendingIntents are job.cancel.intent entries with no outcome sharing their RequestID.
func (s *Store) PendingIntents(ctx context.Context) ([]Entry, error) { panic("stub") }

func (s *Store) SaveSnapshot(ctx context.Context, snap Snapshot) error { panic("stub") }
func (s *Store) Snapshot(ctx context.Context, hub, jobID string) (Snapshot, error) {
	panic("stub")
}

func (s *Store) Revoke(ctx context.Context, sessionID string, until time.Time) error {
	panic("stub")
}
func (s *Store) IsRevoked(ctx context.Context, sessionID string) (bool, error) { panic("stub") }
