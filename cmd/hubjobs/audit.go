package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hubjobs/hubjobs/audit"
)

const auditUsage = `usage:
  hubjobs audit verify --config FILE
  hubjobs audit export --config FILE [--format csv|jsonl] [--since RFC3339]`

// runAudit is `hubjobs audit verify|export`: the trail checked or exported
// straight from audit.database, with or without a portal running (SQLite
// waits on its busy timeout; appends keep going meanwhile).
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
	configPath := fs.String("config", "", "config file (reads audit.database)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	store, err := openAuditStore(ctx, "audit verify", *configPath, getenv)
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
	configPath := fs.String("config", "", "config file (reads audit.database)")
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
	store, err := openAuditStore(ctx, "audit export", *configPath, getenv)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Export(ctx, stdout, *format, since); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

// openAuditStore opens the trail named by the config without creating one:
// verifying a mistyped path must not report an empty new trail as intact.
func openAuditStore(ctx context.Context, cmd, configPath string, getenv func(string) string) (*audit.Store, error) {
	if configPath == "" {
		return nil, &usageError{fmt.Sprintf("%s: --config FILE is required\n%s", cmd, auditUsage)}
	}
	cfg, err := loadConfig(configPath, getenv)
	if err != nil {
		return nil, err
	}
	store, err := audit.Open(ctx, cfg.Audit.Database, audit.MustExist())
	if errors.Is(err, audit.ErrInvalid) {
		return nil, &usageError{fmt.Sprintf("%s: config: %v", cmd, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	return store, nil
}
