package audit

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Export writes the entries with Time ≥ since (all when zero), oldest first
// (seq order, the order the chain is verified in), with exactly the export
// keys: format "jsonl" through a JSONLinesWriter — the form to recompute
// hashes from; format "csv" through a CSVWriter, the same rows GET
// /audit.csv sends. Rows are streamed from one query, not loaded.
func (s *Store) Export(ctx context.Context, w io.Writer, format string, since time.Time) error {
	var out interface {
		Write(Entry) error
		Flush() error
	}
	switch format {
	case "jsonl":
		out = NewJSONLinesWriter(w)
	case "csv":
		out = NewCSVWriter(w)
	default:
		return fmt.Errorf("%w: export format %q: want csv or jsonl", ErrInvalid, format)
	}
	where, args := Filter{Since: since}.conditions()
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_entries`+where+` ORDER BY seq`, args...)
	if err != nil {
		return unavailable("export", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return unavailable("export", err)
		}
		if err := out.Write(e); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return unavailable("export", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}
