package main

// STUB — owned by the audit helper; replace with audit.go (audit verify / export).

import (
	"context"
	"io"
)

func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	panic("stub")
}
