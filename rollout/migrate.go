package rollout

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

// migrationFiles is the rollout tables' own schema, one folder per dialect,
// one file per version named NNNN_what.sql; a released file is never
// edited. Versions are recorded in rollout_migrations, apart from the audit
// trail's and the outbox's, so the three can share one database.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

// migrate applies the missing migrations in one transaction. On PostgreSQL
// an advisory lock keyed by the schema makes a replica starting at the same
// moment wait, then find everything applied; DDL is transactional on both
// databases, so a failure leaves nothing half-done.
func migrate(ctx context.Context, db *sql.DB, dialect string) error {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if dialect == "postgres" {
		if _, err := tx.ExecContext(ctx,
			`SELECT pg_advisory_xact_lock(hashtextextended('hubjobs.rollout.migrate:' || current_schema(), 0))`); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS rollout_migrations (
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
			`INSERT INTO rollout_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			version, e.Name(), time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func appliedVersions(ctx context.Context, tx *sql.Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM rollout_migrations`)
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
