package main

import (
	"io"
	"log/slog"

	"github.com/hubjobs/hubjobs/config"
)

// newLogger builds the process logger: JSON lines (for log shippers and the
// audit SIEM feed) or logfmt-style text for people at a terminal.
func newLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level}
	if c.Format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
