package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/config"
)

const auditUsage = `usage:
  hubjobs audit verify (--config FILE | --database URL)
  hubjobs audit export (--config FILE | --database URL) [--format csv|jsonl] [--since RFC3339]

--database takes the URL audit.database would hold (sqlite:///path.db or
postgres://user@host/db); with --config only audit.database is read.`

// runAudit is `hubjobs audit verify|export`: the trail checked or exported
// straight from its database, with or without a portal running (SQLite
// waits on its busy timeout; appends keep going meanwhile). Neither needs
// the portal's secrets: an auditor on a bastion host has the database URL,
// or a copy of the config whose ${VARS} for secrets are unset there.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{auditUsage}
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], getenv, stdout)
	case "export":
		return runAuditExport(ctx, args[1:], getenv, stdout)
	}
	return &usageError{fmt.Sprintf("hubjobs audit: unknown command %q\n%s", args[0], auditUsage)}
}

// runAuditVerify prints "audit verify: ok, N entries" (and the head to
// anchor elsewhere) or fails with exit 1 and the first bad entry.
func runAuditVerify(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("audit verify")
	source := auditSourceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, err := source.open(ctx, "audit verify", getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	head, err := store.VerifyHead(ctx)
	var broken *audit.BrokenChainError
	if errors.As(err, &broken) {
		return &exitStatusError{code: 1, msg: fmt.Sprintf("audit verify: broken at seq %d: %s", broken.Seq, broken.Reason)}
	}
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	fmt.Fprintf(stdout, "audit verify: ok, %d entries\n", head.Seq)
	if head.Seq > 0 {
		fmt.Fprintf(stdout, "head: seq %d hash %s\n", head.Seq, head.Hash)
	}
	return nil
}

func runAuditExport(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlagSet("audit export")
	source := auditSourceFlags(fs)
	format := fs.String("format", "jsonl", "csv or jsonl (jsonl is the form to recompute hashes from)")
	sinceFlag := fs.String("since", "", "only entries at or after this RFC 3339 time")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "csv" && *format != "jsonl" {
		return &usageError{fmt.Sprintf("audit export: --format %q: want csv or jsonl", *format)}
	}
	var since time.Time
	if *sinceFlag != "" {
		var err error
		if since, err = time.Parse(time.RFC3339, *sinceFlag); err != nil {
			return &usageError{fmt.Sprintf("audit export: --since %q: want an RFC 3339 time such as 2026-01-31T00:00:00Z", *sinceFlag)}
		}
	}
	store, err := source.open(ctx, "audit export", getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Export(ctx, stdout, *format, since); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

// auditSource is where an audit command finds the trail: exactly one of
// --config and --database.
type auditSource struct {
	configPath, database *string
}

func auditSourceFlags(fs *flag.FlagSet) auditSource {
	return auditSource{
		configPath: fs.String("config", "", "config file: only audit.database is read from it"),
		database:   fs.String("database", "", "the audit database URL instead of a config file"),
	}
}

// open opens the trail without creating one: verifying a mistyped path must
// not report an empty new trail as intact.
func (s auditSource) open(ctx context.Context, cmd string, getenv func(string) string) (*audit.Store, error) {
	var dsn string
	switch {
	case *s.configPath != "" && *s.database != "":
		return nil, &usageError{fmt.Sprintf("%s: give --config FILE or --database URL, not both\n%s", cmd, auditUsage)}
	case *s.database != "":
		dsn = *s.database
	case *s.configPath != "":
		var err error
		if dsn, err = config.AuditDatabase(*s.configPath, getenv); err != nil {
			return nil, err
		}
	default:
		return nil, &usageError{fmt.Sprintf("%s: --config FILE or --database URL is required\n%s", cmd, auditUsage)}
	}
	store, err := audit.Open(ctx, dsn, audit.MustExist())
	if errors.Is(err, audit.ErrInvalid) {
		return nil, &usageError{fmt.Sprintf("%s: %s: %v", cmd, s.origin(), err)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return store, nil
}

// origin names where the database URL came from, for messages.
func (s auditSource) origin() string {
	if *s.database != "" {
		return "--database"
	}
	return "config: audit.database"
}
