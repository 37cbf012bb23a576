package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Ping proves the store accepts writes right now (for /readyz): it rewrites
// the one heartbeat row. A read-only file, a full disk or a database that is
// down fail here with ErrUnavailable, before a cancel finds out.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO heartbeat (id, at_us) VALUES (1, $1)
		ON CONFLICT (id) DO UPDATE SET at_us = excluded.at_us`, s.now().UnixMicro())
	if err != nil {
		return unavailable("ping", err)
	}
	return nil
}

// Snapshot freshness: SaveSnapshot skips the write when the body is the one
// it last wrote for that job less than snapshotRefresh ago, so calling it
// on every successful hub read (a page polled every 5 s by 200 browsers)
// costs a hash, not a disk write. LastSeen is therefore accurate to within
// snapshotRefresh. The memo holds at most snapshotMemoMax jobs and is reset
// when full: forgetting only costs one extra write per job.
const (
	snapshotRefresh = time.Minute
	snapshotMemoMax = 10_000
	// MaxSnapshotBytes bounds one stored job body (a hub job is a few KB).
	MaxSnapshotBytes = 1 << 20
)

type snapshotKey struct{ hub, jobID string }

type snapshotMemo struct {
	sum     [sha256.Size]byte
	written time.Time
}

// SaveSnapshot records snap.Body as the last answer the hub gave for
// (snap.Hub, snap.JobID), seen at snap.LastSeen (now when zero).
func (s *Store) SaveSnapshot(ctx context.Context, snap Snapshot) error {
	if snap.Hub == "" || snap.JobID == "" {
		return fmt.Errorf("%w: snapshot needs a hub and a job id", ErrInvalid)
	}
	if len(snap.Body) > MaxSnapshotBytes {
		return fmt.Errorf("%w: snapshot of %s/%s is %d bytes, over %d", ErrInvalid, snap.Hub, snap.JobID, len(snap.Body), MaxSnapshotBytes)
	}
	seen := snap.LastSeen
	if seen.IsZero() {
		seen = s.now()
	}
	key := snapshotKey{snap.Hub, snap.JobID}
	sum := sha256.Sum256(snap.Body)

	s.snapMu.Lock()
	memo, ok := s.snapMemo[key]
	s.snapMu.Unlock()
	if ok && memo.sum == sum && seen.Sub(memo.written) < snapshotRefresh {
		return nil
	}

	_, err := s.db.ExecContext(ctx, `INSERT INTO job_snapshots (hub, job_id, body, last_seen_us)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (hub, job_id) DO UPDATE SET body = excluded.body, last_seen_us = excluded.last_seen_us`,
		snap.Hub, snap.JobID, snap.Body, seen.UnixMicro())
	if err != nil {
		return unavailable("save snapshot", err)
	}
	s.snapMu.Lock()
	if len(s.snapMemo) >= snapshotMemoMax {
		clear(s.snapMemo)
	}
	s.snapMemo[key] = snapshotMemo{sum: sum, written: seen}
	s.snapMu.Unlock()
	return nil
}

// Snapshot returns the last answer kept for (hub, jobID), or ErrNotFound.
func (s *Store) Snapshot(ctx context.Context, hub, jobID string) (Snapshot, error) {
	snap := Snapshot{Hub: hub, JobID: jobID}
	var seenUS int64
	err := s.db.QueryRowContext(ctx, `SELECT body, last_seen_us FROM job_snapshots WHERE hub = $1 AND job_id = $2`,
		hub, jobID).Scan(&snap.Body, &seenUS)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Snapshot{}, fmt.Errorf("snapshot of %s/%s: %w", hub, jobID, ErrNotFound)
	case err != nil:
		return Snapshot{}, unavailable("snapshot", err)
	}
	snap.LastSeen = time.UnixMicro(seenUS).UTC()
	return snap, nil
}

// revocationPurgeEvery: Revoke deletes expired records at most this often.
const revocationPurgeEvery = 10 * time.Minute

// Revoke marks sessionID revoked until the given time (the session's own
// absolute expiry is the natural choice: after it the cookie is dead anyway).
// Only SHA-256 of the id is stored. Revoking twice keeps the later time.
func (s *Store) Revoke(ctx context.Context, sessionID string, until time.Time) error {
	if sessionID == "" {
		return fmt.Errorf("%w: empty session id", ErrInvalid)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO revoked_sessions (session_hash, until_us) VALUES ($1, $2)
		ON CONFLICT (session_hash) DO UPDATE SET until_us =
			CASE WHEN excluded.until_us > revoked_sessions.until_us THEN excluded.until_us ELSE revoked_sessions.until_us END`,
		sessionHash(sessionID), until.UnixMicro())
	if err != nil {
		return unavailable("revoke", err)
	}
	if s.revocationMemo != nil {
		s.revocationMemo.remember(sessionHash(sessionID), revocationAnswer{until: time.UnixMicro(until.UnixMicro()).UTC()}, s.now()) // as stored
	}
	return s.purgeExpiredRevocations(ctx)
}

// IsRevoked reports whether sessionID has an unexpired revocation. The
// portal asks on every signed-in request, so the query is prepared once
// (see preparedQuery) instead of being parsed and planned each time, and on
// SQLite the answer is memoised (see revocationMemo).
func (s *Store) IsRevoked(ctx context.Context, sessionID string) (bool, error) {
	hash, now := sessionHash(sessionID), s.now()
	if s.revocationMemo != nil {
		if revoked, ok := s.revocationMemo.lookup(hash, now); ok {
			return revoked, nil
		}
	}
	stmt, err := s.isRevoked.prepare(ctx, s.db)
	if err != nil {
		return false, unavailable("is revoked", err)
	}
	var untilUS int64
	err = stmt.QueryRowContext(ctx, hash, now.UnixMicro()).Scan(&untilUS)
	var answer revocationAnswer
	switch {
	case errors.Is(err, sql.ErrNoRows):
		answer = revocationAnswer{checked: now}
	case err != nil:
		return false, unavailable("is revoked", err)
	default:
		answer = revocationAnswer{until: time.UnixMicro(untilUS).UTC()}
	}
	if s.revocationMemo != nil {
		s.revocationMemo.remember(hash, answer, now)
	}
	return answer.revoked(now), nil
}

// isRevokedQuery is the one lookup of the per-request session check: the
// primary key, plus expiry (expired records linger until the next purge).
const isRevokedQuery = `SELECT until_us FROM revoked_sessions WHERE session_hash = $1 AND until_us > $2`

// revocationMemo keeps IsRevoked's answers in memory when the store is
// SQLite, so that a signed-in request costs a map lookup instead of a query
// (the query, prepared, was still 14 % of the demo's CPU per job page).
//
// Why this is exact: a SQLite trail belongs to one hubjobs process (see the
// package doc; replicas share PostgreSQL, which is never memoised), so
// every revocation is written through this Store's Revoke, which records it
// here at once, after it is committed. A known revocation is kept until it
// expires and is never replaced by an older "not revoked" read that raced
// with it. "Not revoked" is believed for revocationMemoTTL only: that is
// the bound on how late a revocation written by ANOTHER process to the same
// file (two processes overlapping on it during a restart, which SQLite
// allows) is honoured here.
//
// Memory is bounded: at most revocationMemoMax session hashes; a full memo
// starts over, which only costs queries.
type revocationMemo struct {
	mu      sync.Mutex
	entries map[string]revocationAnswer // by session hash
}

const (
	revocationMemoTTL = time.Second
	revocationMemoMax = 10_000
)

// revocationAnswer is what the database said: revoked until `until`, or
// (zero until) not revoked as of `checked`.
type revocationAnswer struct {
	until   time.Time
	checked time.Time
}

func (a revocationAnswer) revoked(now time.Time) bool { return now.Before(a.until) }

func (m *revocationMemo) lookup(hash string, now time.Time) (revoked, ok bool) {
	m.mu.Lock()
	a, found := m.entries[hash]
	m.mu.Unlock()
	switch {
	case !found:
		return false, false
	case a.revoked(now):
		return true, true
	case a.until.IsZero() && !now.Before(a.checked) && now.Sub(a.checked) < revocationMemoTTL:
		return false, true
	}
	return false, false // stale, or a revocation that has expired: ask the database
}

// remember records a, unless the memo already holds a revocation that is
// still in force and lasts at least as long (an answer read before it was
// written must not undo it; revoking twice keeps the later time).
func (m *revocationMemo) remember(hash string, a revocationAnswer, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.entries[hash]; ok && old.revoked(now) && !a.until.After(old.until) {
		return
	}
	if m.entries == nil || len(m.entries) >= revocationMemoMax {
		m.entries = make(map[string]revocationAnswer)
	}
	m.entries[hash] = a
}

// preparedQuery is a statement prepared on first use and kept for the
// Store's life. On SQLite, parsing and planning a statement costs several
// times more than running a primary-key lookup, and the driver keeps no
// statement cache; database/sql re-prepares it per pooled connection by
// itself. A failed prepare (database down) is retried on the next call.
type preparedQuery struct {
	query string
	mu    sync.Mutex
	stmt  atomic.Pointer[sql.Stmt]
}

func (p *preparedQuery) prepare(ctx context.Context, db *sql.DB) (*sql.Stmt, error) {
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if stmt := p.stmt.Load(); stmt != nil {
		return stmt, nil
	}
	stmt, err := db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, err
	}
	p.stmt.Store(stmt)
	return stmt, nil
}

// purgeExpiredRevocations deletes expired records, at most once per
// revocationPurgeEvery; IsRevoked ignores them meanwhile.
func (s *Store) purgeExpiredRevocations(ctx context.Context) error {
	now := s.now()
	s.purgeMu.Lock()
	due := now.Sub(s.lastPurge) >= revocationPurgeEvery
	if due {
		s.lastPurge = now
	}
	s.purgeMu.Unlock()
	if !due {
		return nil
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM revoked_sessions WHERE until_us <= $1`, now.UnixMicro()); err != nil {
		return unavailable("purge revocations", err)
	}
	return nil
}

func sessionHash(sessionID string) string {
	sum := sha256.Sum256([]byte(sessionID))
	return hex.EncodeToString(sum[:])
}
