package audit

import (
	"context"
	"database/sql"
	"errors"
	"testing"
)

// AppendWith commits the caller's change with the entry, or neither.
func TestAppendWith_ChangeAndEntryCommitTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.newDSN(t))
		if _, err := s.DB().ExecContext(ctx, `CREATE TABLE side_effects (note TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		insert := func(note string) AlsoFunc {
			return func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO side_effects (note) VALUES ($1)`, note)
				return err
			}
		}

		kept, err := s.AppendWith(ctx, cancelIntent("req-1", "job-1"), insert("kept"))
		if err != nil {
			t.Fatalf("AppendWith: %v", err)
		}

		refusal := errors.New("state changed meanwhile")
		_, err = s.AppendWith(ctx, cancelIntent("req-2", "job-2"), func(ctx context.Context, tx *sql.Tx) error {
			if err := insert("rolled back")(ctx, tx); err != nil {
				return err
			}
			return refusal
		})
		if !errors.Is(err, refusal) || errors.Is(err, ErrUnavailable) {
			t.Fatalf("a refusal from also = %v; want the caller's own error, not ErrUnavailable", err)
		}

		var notes []string
		rows, err := s.DB().QueryContext(ctx, `SELECT note FROM side_effects`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			notes = append(notes, n)
		}
		if len(notes) != 1 || notes[0] != "kept" {
			t.Errorf("side effects = %q; want only the committed one", notes)
		}
		entries, err := s.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Seq != kept.Seq {
			t.Errorf("entries = %v; want only seq %d (the refused append left nothing)", seqs(entries), kept.Seq)
		}
		if got := s.Dialect(); got != b.name {
			t.Errorf("Dialect() = %q; want %q", got, b.name)
		}
	})
}
