package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers driver "pgx"
	_ "modernc.org/sqlite"             // registers driver "sqlite"
)

// dialect holds what differs between SQLite and PostgreSQL. All queries use
// $N placeholders, which both drivers accept, and portable SQL
// (ON CONFLICT … DO UPDATE, CASE, lower, LIKE … ESCAPE).
type dialect struct {
	name           string // "sqlite" or "postgres"
	open           func() (*sql.DB, error)
	migrations     string // folder under migrations/
	reconcileGrace time.Duration
	// lock serialises a transaction against every other process using the
	// same trail, until it ends. scope separates independent locks (the
	// chain head, migrations).
	lock func(ctx context.Context, tx *sql.Tx, scope string) error
}

// sqliteParams: WAL so readers never block the writer; synchronous=FULL so a
// commit is on disk before Append returns; a busy timeout so a second process
// (audit verify, a backup) waits instead of failing; _txlock=immediate so
// every transaction takes the write lock at BEGIN, which serialises appends
// across processes sharing the file.
const sqliteParams = "_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_txlock=immediate"

func dialectFor(dsn string, mustExist bool) (dialect, error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path, err := sqlitePath(dsn, mustExist)
		if err != nil {
			return dialect{}, err
		}
		return dialect{
			name:       "sqlite",
			migrations: "sqlite",
			open: func() (*sql.DB, error) {
				db, err := sql.Open("sqlite", path+"?"+sqliteParams)
				if err != nil {
					return nil, err
				}
				// Readers run in parallel under WAL; the writer is one at a
				// time anyway (appendSlot and BEGIN IMMEDIATE).
				db.SetMaxOpenConns(8)
				keepIdle(db, 8)
				return db, nil
			},
			// BEGIN IMMEDIATE already holds the database's only write lock.
			lock: func(context.Context, *sql.Tx, string) error { return nil },
		}, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		if _, err := url.Parse(dsn); err != nil {
			return dialect{}, fmt.Errorf("%w: audit.database: not a postgres URL", ErrInvalid)
		}
		return dialect{
			name:           "postgres",
			migrations:     "postgres",
			reconcileGrace: 2 * time.Minute,
			open: func() (*sql.DB, error) {
				db, err := sql.Open("pgx", dsn)
				if err != nil {
					return nil, err
				}
				db.SetMaxOpenConns(16)
				keepIdle(db, 16)
				return db, nil
			},
			lock: postgresLock,
		}, nil
	}
	return dialect{}, fmt.Errorf("%w: audit.database must start with sqlite:// or postgres://", ErrInvalid)
}

// keepIdle keeps up to n connections open between queries. database/sql's
// default of 2 idle connections makes a busy portal (every signed-in
// request checks its session's revocation) close and reopen connections
// continuously: a file open and pragmas on SQLite, a TCP and auth handshake
// on PostgreSQL, and a re-prepare of every prepared statement either way.
func keepIdle(db *sql.DB, n int) { db.SetMaxIdleConns(n) }

// sqlitePath turns sqlite://PATH into a file path and makes sure the file can
// be created with owner-only permissions (the trail holds e-mail and IP
// addresses; SQLite's -wal and -shm files inherit the database's mode).
func sqlitePath(dsn string, mustExist bool) (string, error) {
	path := strings.TrimPrefix(dsn, "sqlite://")
	switch {
	case path == "":
		return "", fmt.Errorf("%w: audit.database: sqlite:// needs a file path", ErrInvalid)
	case strings.ContainsAny(path, "?#"):
		return "", fmt.Errorf("%w: audit.database: the sqlite file path may not contain ? or #", ErrInvalid)
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || !info.IsDir() {
		return "", fmt.Errorf("%w: audit.database: directory %s does not exist", ErrInvalid, filepath.Dir(path))
	}
	if mustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w: audit.database: %s does not exist", ErrInvalid, path)
		}
		return path, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("%w: audit.database: %w", ErrUnavailable, err)
	}
	return path, f.Close()
}

// postgresLock is a transaction-scoped advisory lock keyed by the scope and
// the schema, so replicas sharing one trail queue up and release it by
// committing; two trails in different schemas do not contend.
func postgresLock(ctx context.Context, tx *sql.Tx, scope string) error {
	_, err := tx.ExecContext(ctx,
		`SELECT pg_advisory_xact_lock(hashtextextended($1 || current_schema(), 0))`,
		"hubjobs.audit."+scope+":")
	return err
}
