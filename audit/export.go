package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Export writes the entries with Time ≥ since (all when zero), oldest first,
// with exactly the export keys: format "jsonl" is one JSON object per line,
// byte for byte the canonical encoding plus "hash" — the format to recompute
// hashes from; format "csv" is a header row and one row per entry for
// spreadsheets (actor_roles joined by spaces; formula-neutralised, see
// csvCell). Rows are streamed, not loaded.
func (s *Store) Export(ctx context.Context, w io.Writer, format string, since time.Time) error {
	var write func(record) error
	var flush func() error
	switch format {
	case "jsonl":
		bw := bufio.NewWriter(w)
		write = func(r record) error {
			bw.Write(r.jsonLine())
			return bw.WriteByte('\n')
		}
		flush = bw.Flush
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(exportKeys); err != nil {
			return err
		}
		write = func(r record) error { return cw.Write(csvRow(r)) }
		flush = func() error { cw.Flush(); return cw.Error() }
	default:
		return fmt.Errorf("%w: export format %q: want csv or jsonl", ErrInvalid, format)
	}

	q := `SELECT ` + entryColumns + ` FROM audit_entries`
	var args []any
	if !since.IsZero() {
		q += ` WHERE time_us >= $1`
		args = append(args, since.UnixMicro())
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY seq`, args...)
	if err != nil {
		return unavailable("export", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return unavailable("export", err)
		}
		if err := write(recordOf(e)); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return unavailable("export", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

func csvRow(r record) []string {
	cells := []string{
		strconv.FormatInt(r.Seq, 10), r.Time, r.Action, r.Result,
		r.ActorIss, r.ActorSub, r.ActorName, r.ActorEmail, strings.Join(r.ActorRoles, " "),
		r.ClientIP, r.UserAgent, r.RequestID, r.Hub, r.JobID, r.Reason,
		strconv.Itoa(r.HubStatus), r.HubErrorCode, r.HubTrackingID, r.PrevHash, r.Hash,
	}
	for i, c := range cells {
		cells[i] = csvCell(c)
	}
	return cells
}

// csvCell defuses spreadsheet formula injection (OWASP "CSV Injection"): a
// cell starting with =, +, - or @ gets a leading apostrophe, so a display
// name like "=HYPERLINK(…)" shows as text. Tab and CR, the other triggers,
// never reach a cell: sanitize escaped them at append time. No number this
// export writes is negative, so no number is altered.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@", rune(v[0])) {
		return "'" + v
	}
	return v
}
