package audit

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// migrationFiles are the schema, one folder per dialect, one file per version
// named NNNN_what.sql. A file, once released, is never edited: a change is a
// new file.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(files fs.FS, dir string) ([]migration, error) {
	entries, err := fs.ReadDir(files, path.Join("migrations", dir))
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version and _", e.Name())
		}
		body, err := fs.ReadFile(files, path.Join("migrations", dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the migrations not yet recorded in hubjobs_migrations, all
// in one transaction under the dialect's lock: when two replicas start at
// once, the second waits, then finds everything applied. Both SQLite and
// PostgreSQL run DDL transactionally, so a failed migration leaves nothing
// half-done.
//
// On SQLite a new file is switched to WAL when a connection opens it, and
// that switch fails at once with SQLITE_BUSY, without waiting for the busy
// timeout, while another connection is writing (two processes starting on
// a fresh file). Such a failure is retried for up to sqliteBusyWait.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	return migrateSet(ctx, db, d, migrationSet{files: migrationFiles, table: "hubjobs_migrations", scope: "migrate"})
}

// migrationSet is one package's schema: its files (migrations/<dialect>/
// NNNN_what.sql), the table recording its versions apart from every other
// set's, and the lock scope that serialises replicas applying it.
type migrationSet struct {
	files        fs.FS
	table, scope string
}

// MigrateBeside applies the schema of a package that keeps its own tables
// in the trail's database (the rollouts, the notification outbox) by the
// trail's own rules: one transaction, the versions recorded in
// name_migrations apart from the trail's, a replica starting at the same
// moment waits for the first, a busy new SQLite file is retried. files
// holds migrations/sqlite/… and migrations/postgres/…; dialectName is
// Store.Dialect's answer. The audit tables themselves are never touched.
func MigrateBeside(ctx context.Context, db *sql.DB, dialectName, name string, files fs.FS) error {
	d := dialect{name: dialectName, migrations: dialectName, lock: func(context.Context, *sql.Tx, string) error { return nil }}
	switch dialectName {
	case "sqlite":
	case "postgres":
		d.lock = postgresLock
	default:
		return fmt.Errorf("%w: unknown dialect %q", ErrInvalid, dialectName)
	}
	return migrateSet(ctx, db, d, migrationSet{files: files, table: name + "_migrations", scope: "migrate." + name})
}

func migrateSet(ctx context.Context, db *sql.DB, d dialect, set migrationSet) error {
	deadline := time.Now().Add(sqliteBusyWait)
	for {
		err := migrateOnce(ctx, db, d, set)
		if err == nil || d.name != "sqlite" || !isSQLiteBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

// sqliteBusyWait matches the busy timeout of the DSN (_busy_timeout=5000).
const sqliteBusyWait = 5 * time.Second

// isSQLiteBusy reports SQLITE_BUSY (5) and its extended codes from the driver.
func isSQLiteBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5
}

func migrateOnce(ctx context.Context, db *sql.DB, d dialect, set migrationSet) error {
	ms, err := loadMigrations(set.files, d.migrations)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := d.lock(ctx, tx, set.scope); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+set.table+` (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM `+set.table)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO `+set.table+` (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.version, m.name, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
