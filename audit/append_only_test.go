package audit

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppend_DatabaseRefusesRewritesThatAreNotUpdates: an UPDATE or DELETE
// trigger is not enough on its own. SQLite's REPLACE deletes the row it
// conflicts with without firing DELETE triggers (it does so only with
// recursive_triggers on), and an upsert rewrites through the UPDATE path.
// Each must be refused by the database, leaving the entry as it was.
func TestAppend_DatabaseRefusesRewritesThatAreNotUpdates(t *testing.T) {
	const columns = `seq, time_us, action, result, actor_iss, actor_sub, actor_name, actor_email, actor_roles,
		client_ip, user_agent, request_id, hub, job_id, reason, hub_status, hub_error_code, hub_tracking_id, prev_hash, hash`
	const forged = `SELECT seq, time_us, action, 'forged', actor_iss, actor_sub, actor_name, actor_email, actor_roles,
		client_ip, user_agent, request_id, hub, job_id, reason, hub_status, hub_error_code, hub_tracking_id, prev_hash, hash
		FROM audit_entries WHERE seq = 1`
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s := openStore(t, dsn)
		stored := mustAppend(t, s, cancelIntent("r1", "j1"))
		raw := rawDB(t, dsn)
		stmts := []string{
			`INSERT INTO audit_entries (` + columns + `) ` + forged + ` ON CONFLICT (seq) DO UPDATE SET result = 'forged'`,
		}
		if b.name == "sqlite" {
			stmts = append(stmts,
				`REPLACE INTO audit_entries (`+columns+`) `+forged,
				`INSERT OR REPLACE INTO audit_entries (`+columns+`) `+forged)
		}
		for _, stmt := range stmts {
			if _, err := raw.Exec(stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%.60s…: error = %v, want the append-only refusal", stmt, err)
			}
		}
		got, err := s.List(context.Background(), Filter{})
		if err != nil || len(got) != 1 || got[0].Result != stored.Result {
			t.Errorf("after the refused rewrites: %+v, %v; want the entry unchanged", got, err)
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

// TestSQLiteCommitsAreDurable is docs/security.md H50 ("fsync/commit before
// ack") for SQLite: the store's own connections run in WAL with
// synchronous=FULL, so a commit is on disk when Append returns. Nothing else
// would notice if the DSN parameters stopped being applied.
func TestSQLiteCommitsAreDurable(t *testing.T) {
	s := openStore(t, backends[0].newDSN(t))
	ctx := context.Background()
	conns := make([]*sql.Conn, 3) // pragmas are per connection: look at several
	for i := range conns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	for i, c := range conns {
		var sync int
		var mode string
		if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if sync != 2 || mode != "wal" {
			t.Errorf("connection %d: synchronous=%d journal_mode=%s, want 2 (FULL) and wal", i, sync, mode)
		}
	}
}

// TestOpen_WaitsForAnotherWriterOnANewFile: switching a new SQLite file to
// WAL needs a lock the busy timeout does not wait for, so Open failed at
// once with SQLITE_BUSY when another connection was writing (two processes
// starting on a fresh file; it made TestOpen_MigrationsIdempotentAndConcurrent
// fail about once in 40 runs). Open now waits for the writer.
func TestOpen_WaitsForAnotherWriterOnANewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	other := rawDB(t, "sqlite://"+path)
	mustExec(t, other, `CREATE TABLE other_tool (a INTEGER)`)
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(200 * time.Millisecond) // the other writer's transaction
		conn.ExecContext(ctx, `COMMIT`)
	}()
	s, err := Open(ctx, "sqlite://"+path)
	<-released
	if err != nil {
		t.Fatalf("Open while another connection writes: %v", err)
	}
	defer s.Close()
	mustAppend(t, s, cancelIntent("r1", "j1"))
}
