package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Append stores e at the head of the chain and returns it as stored: Seq,
// Time (when zero), PrevHash and Hash filled in, every string escaped and
// capped. The entry is committed (on disk for SQLite, synchronous=FULL)
// before Append returns; a storage failure wraps ErrUnavailable and leaves
// nothing behind, and an entry that makes no sense wraps ErrInvalid.
//
// Append does not stop when ctx is cancelled or its deadline passes: it
// keeps ctx's values (for the log line) but runs under its own bound,
// appendTimeout. A client that hangs up mid-request must not erase the
// record of what it did (an attacker could probe without a trace), and its
// hang-up is no store failure (it would trip the failure alert). A store
// that is really down still fails at once (connection refused, closed
// handle) or, if it hangs, within appendTimeout.
func (s *Store) Append(ctx context.Context, e Entry) (Entry, error) {
	return s.append(ctx, e, false, nil)
}

// AlsoFunc runs inside an append's transaction, after the entry is inserted
// and before the commit, with the chain lock held. It writes the change the
// entry records (a rollout's new state, a notification for the outbox), so
// that the change, its audit entry and its notification are committed
// together or not at all. It must only use tx, and return quickly: every
// other append waits for it.
type AlsoFunc func(ctx context.Context, tx *sql.Tx) error

// AppendWith is Append with also run in the same transaction: an error from
// also rolls everything back (nothing is appended) and is returned wrapped
// as it came, not as ErrUnavailable, so callers can tell their own refusal
// (a state that changed meanwhile) from a store failure.
func (s *Store) AppendWith(ctx context.Context, e Entry, also AlsoFunc) (Entry, error) {
	return s.append(ctx, e, false, also)
}

// DB is the database the trail lives in, for stores that keep their own
// tables beside it (rollouts, the notification outbox) and join an append's
// transaction through AppendWith. The audit tables stay append-only: their
// triggers refuse any UPDATE or DELETE whoever sends it.
func (s *Store) DB() *sql.DB { return s.db }

// Dialect is "sqlite" or "postgres": which SQL the tables beside the trail
// must speak. Both drivers take $N placeholders.
func (s *Store) Dialect() string { return s.dialect.name }

// appendTimeout bounds one append, the wait for the writer included. It is
// above SQLite's 5 s busy timeout, so a second process holding the file's
// lock is waited for, and well under a cancel's 25 s hub budget, which the
// intent's append delays.
const appendTimeout = 10 * time.Second

// errSettled: the intent got an outcome meanwhile (see append's unlessSettled).
var errSettled = errors.New("audit: intent already settled")

// append is Append; with unlessSettled it writes nothing and returns
// errSettled when an outcome for e.RequestID already exists, checked under
// the chain lock so two replicas reconciling at once write one outcome.
func (s *Store) append(ctx context.Context, e Entry, unlessSettled bool, also AlsoFunc) (Entry, error) {
	if err := validate(e); err != nil {
		return Entry{}, err
	}
	e = sanitizeEntry(e)
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond) // what the database keeps

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	start := time.Now()
	stored, err := s.appendSerialised(ctx, e, unlessSettled, also)
	var refused *alsoError
	if errors.As(err, &refused) {
		return Entry{}, refused.err // the caller's refusal, not a store failure
	}
	s.metrics.observe(time.Since(start), err)
	if err != nil {
		return Entry{}, err
	}
	s.log(ctx, stored)
	return stored, nil
}

// alsoError carries an AlsoFunc's own error out of the transaction.
type alsoError struct{ err error }

func (e *alsoError) Error() string { return e.err.Error() }

func (s *Store) appendSerialised(ctx context.Context, e Entry, unlessSettled bool, also AlsoFunc) (Entry, error) {
	select {
	case s.appendSlot <- struct{}{}:
		defer func() { <-s.appendSlot }()
	case <-ctx.Done():
		return Entry{}, unavailable("append: waiting for the writer", ctx.Err())
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Entry{}, unavailable("append: begin", err)
	}
	defer tx.Rollback()
	if err := s.dialect.lock(ctx, tx, "chain"); err != nil {
		return Entry{}, unavailable("append: lock chain", err)
	}
	if unlessSettled {
		settled, err := hasOutcome(ctx, tx, e.Action, e.RequestID)
		if err != nil {
			return Entry{}, unavailable("append: check outcome", err)
		}
		if settled {
			return Entry{}, errSettled
		}
	}
	var head int64
	prev := genesisHash
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_entries ORDER BY seq DESC LIMIT 1`).Scan(&head, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Entry{}, unavailable("append: read chain head", err)
	}
	e.Seq, e.PrevHash = head+1, prev
	r := recordOf(e)
	e.Hash = r.chainHash()
	roles, err := json.Marshal(r.ActorRoles)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: encode roles: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_entries (`+entryColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)`,
		e.Seq, e.Time.UnixMicro(), r.Action, r.Result,
		r.ActorIss, r.ActorSub, r.ActorName, r.ActorEmail, string(roles),
		r.ClientIP, r.UserAgent, r.RequestID, r.Hub, r.JobID, r.Reason,
		r.HubStatus, r.HubErrorCode, r.HubTrackingID, e.PrevHash, e.Hash)
	if err != nil {
		return Entry{}, unavailable("append: insert", err)
	}
	if also != nil {
		if err := also(ctx, tx); err != nil {
			return Entry{}, &alsoError{err}
		}
	}
	if err := tx.Commit(); err != nil {
		return Entry{}, unavailable("append: commit", err)
	}
	return e, nil
}

// log writes the stored entry as one line, group "audit" holding the export
// keys, for SIEM shipping. Values are already escaped, so a JSON or text
// handler alike keeps it on one line.
func (s *Store) log(ctx context.Context, e Entry) {
	if s.logger == nil {
		return
	}
	r := recordOf(e)
	s.logger.LogAttrs(ctx, slog.LevelInfo, "audit", slog.Group("audit",
		slog.Int64("seq", r.Seq), slog.String("time", r.Time),
		slog.String("action", r.Action), slog.String("result", r.Result),
		slog.String("actor_iss", r.ActorIss), slog.String("actor_sub", r.ActorSub),
		slog.String("actor_name", r.ActorName), slog.String("actor_email", r.ActorEmail),
		slog.Any("actor_roles", r.ActorRoles),
		slog.String("client_ip", r.ClientIP), slog.String("user_agent", r.UserAgent),
		slog.String("request_id", r.RequestID), slog.String("hub", r.Hub),
		slog.String("job_id", r.JobID), slog.String("reason", r.Reason),
		slog.Int("hub_status", r.HubStatus), slog.String("hub_error_code", r.HubErrorCode),
		slog.String("hub_tracking_id", r.HubTrackingID),
		slog.String("prev_hash", r.PrevHash), slog.String("hash", r.Hash)))
}

// appendMetrics is nil unless WithRegisterer was given; its methods accept a
// nil receiver so the append path needs no branches.
type appendMetrics struct {
	duration prometheus.Histogram
	failures prometheus.Counter
}

func newAppendMetrics(r prometheus.Registerer) (*appendMetrics, error) {
	m := &appendMetrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hubjobs_audit_append_duration_seconds",
			Help:    "Time to append and commit one audit entry, successful or not.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hubjobs_audit_append_failures_total",
			Help: "Audit appends the store failed (down, read-only, over its time bound); a failed cancel intent refused the cancel with 503.",
		}),
	}
	var errs [2]error
	m.duration, errs[0] = registerOrReuse(r, m.duration)
	m.failures, errs[1] = registerOrReuse(r, m.failures)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("audit: register metrics: %w", err)
	}
	return m, nil
}

// registerOrReuse registers c with reg or, when a collector of the same type
// is already registered under the same name, returns that one, so that two
// instances on one registry share their series instead of failing. It is the
// metrics rule of docs/contract.md, which says why each package has a copy.
func registerOrReuse[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

func (m *appendMetrics) observe(d time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	if err != nil && !errors.Is(err, errSettled) {
		m.failures.Inc()
	}
}
