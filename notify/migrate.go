package notify

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationFiles is notify's own schema, one folder per dialect, one file
// per version named NNNN_what.sql; a released file is never edited. The
// versions are recorded in notify_migrations, apart from any other
// package's, so the outbox can live in the audit database (or any other)
// without the two schemas' version numbers colliding.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

// migrate applies the missing migrations in one transaction. On PostgreSQL
// an advisory lock keyed by the schema makes a second replica starting at
// the same moment wait and then find everything applied; SQLite is one
// process, and DDL is transactional on both, so a failure leaves nothing
// half-done.
func migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d == Postgres {
		if _, err := tx.ExecContext(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('hubjobs.notify.migrate:' || current_schema(), 0))`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS notify_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return err
	}
	for _, e := range entries { // fs.ReadDir sorts by name, hence by version
		prefix, _, _ := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(prefix)
		if err != nil || version <= 0 {
			return fmt.Errorf("migration %s: name must start with a positive version and _", e.Name())
		}
		if slices.Contains(applied, version) {
			continue
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("%s: %w", e.Name(), err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO notify_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			version, e.Name(), time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func appliedVersions(ctx context.Context, tx *sql.Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM notify_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var versions []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		versions = append(versions, v)
	}
	return versions, rows.Err()
}
