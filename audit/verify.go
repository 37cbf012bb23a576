package audit

import (
	"context"
	"errors"
	"fmt"
)

// Head is the last entry of an intact chain. Seq is also the number of
// entries. Writing it somewhere the store's owner cannot edit (a ticket, a
// signed log) is what lets a later verify notice a truncated tail, which a
// hash chain alone cannot.
type Head struct {
	Seq  int64
	Hash string
}

// Verify walks the chain; nil when intact, else a *BrokenChainError naming
// the first bad entry, or an error wrapping ErrUnavailable.
func (s *Store) Verify(ctx context.Context) error {
	_, err := s.VerifyHead(ctx)
	return err
}

// VerifyHead walks the whole chain in seq order, streaming (memory stays
// flat however long the trail), and checks for every entry: seq continues
// the previous one (a gap is a deleted entry), prev_hash equals the previous
// entry's hash (a mismatch is a reordered, removed or rewritten entry), and
// the hash recomputed from the stored fields equals the stored hash (a
// mismatch is an edited entry). It returns the head of an intact chain
// (zero for an empty one).
func (s *Store) VerifyHead(ctx context.Context) (Head, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+entryColumns+` FROM audit_entries ORDER BY seq`)
	if err != nil {
		return Head{}, unavailable("verify", err)
	}
	defer rows.Close()
	head := Head{Hash: genesisHash}
	for rows.Next() {
		e, err := scanEntry(rows)
		var broken *BrokenChainError
		if errors.As(err, &broken) {
			return Head{}, broken
		}
		if err != nil {
			return Head{}, unavailable("verify", err)
		}
		if err := checkLink(head, e); err != nil {
			return Head{}, err
		}
		head = Head{Seq: e.Seq, Hash: e.Hash}
	}
	if err := rows.Err(); err != nil {
		return Head{}, unavailable("verify", err)
	}
	if head.Seq == 0 {
		head.Hash = ""
	}
	return head, nil
}

// checkLink verifies that e directly follows prev.
func checkLink(prev Head, e Entry) error {
	want := prev.Seq + 1
	switch {
	case e.Seq != want:
		return &BrokenChainError{Seq: want, Reason: fmt.Sprintf("entry missing (the next stored entry is seq %d)", e.Seq)}
	case e.PrevHash != prev.Hash && want == 1:
		return &BrokenChainError{Seq: e.Seq, Reason: "prev_hash is not the genesis value (entries removed or reordered)"}
	case e.PrevHash != prev.Hash:
		return &BrokenChainError{Seq: e.Seq, Reason: fmt.Sprintf("prev_hash does not match the hash of seq %d (entries reordered, removed or rewritten)", prev.Seq)}
	case recordOf(e).chainHash() != e.Hash:
		return &BrokenChainError{Seq: e.Seq, Reason: "hash does not match the entry's content (entry edited)"}
	}
	return nil
}
