package notify

import (
	"context"
	"database/sql"
	"embed"

	"github.com/hubjobs/hubjobs/audit"
)

// migrationFiles is notify's own schema, one folder per dialect, one file
// per version named NNNN_what.sql; a released file is never edited. The
// audit package applies it (audit.MigrateBeside) by the trail's own rules,
// recording the versions in notify_migrations apart from any other
// package's, so the outbox lives in the audit database beside the trail.
//
//go:embed migrations/*/*.sql
var migrationFiles embed.FS

// migrate brings the package's tables up to date.
func migrate(ctx context.Context, db *sql.DB, dialect string) error {
	return audit.MigrateBeside(ctx, db, dialect, "notify", migrationFiles)
}
