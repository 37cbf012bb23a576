package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A revocation written through a Store is honoured by that Store at once,
// even for a session it has just answered "not revoked" for.
func TestRevocations_HonouredAtOnceByTheWritingStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		ctx := context.Background()
		mustNotRevoked(t, s, "sid-1")
		if err := s.Revoke(ctx, "sid-1", clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		mustRevoked(t, s, "sid-1")
		clock.Advance(time.Hour)
		mustNotRevoked(t, s, "sid-1") // expired: the cookie is dead by its own timeout anyway
	})
}

// Another Store on the same database stands for another process: on
// PostgreSQL (replicas) it sees a revocation on its next check; on SQLite
// (one process; a second one only overlaps during a restart) within
// revocationMemoTTL.
func TestRevocations_WrittenByAnotherProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		dsn := b.newDSN(t)
		mine, other := openStore(t, dsn, WithClock(clock.Now)), openStore(t, dsn, WithClock(clock.Now))
		ctx := context.Background()
		mustNotRevoked(t, mine, "sid-1")
		if err := other.Revoke(ctx, "sid-1", clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if b.name == "postgres" {
			mustRevoked(t, mine, "sid-1")
			return
		}
		clock.Advance(revocationMemoTTL)
		mustRevoked(t, mine, "sid-1")
	})
}

func TestRevocationMemo_ARaceCannotUndoARevocation(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var m revocationMemo
	// Revoke commits and records...
	m.remember("h", revocationAnswer{until: now.Add(time.Hour)}, now)
	// ...while a check that read the table just before the commit finishes.
	m.remember("h", revocationAnswer{checked: now.Add(-time.Millisecond)}, now)
	if revoked, ok := m.lookup("h", now.Add(time.Minute)); !ok || !revoked {
		t.Fatalf("lookup = %v, %v; want the revocation to stand", revoked, ok)
	}
	// Revoking again with an earlier time does not shorten it.
	m.remember("h", revocationAnswer{until: now.Add(time.Minute)}, now)
	if revoked, _ := m.lookup("h", now.Add(30*time.Minute)); !revoked {
		t.Fatal("an earlier second revocation shortened the first")
	}
}

func TestRevocationMemo_NotRevokedIsBelievedForTheTTLOnly(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var m revocationMemo
	m.remember("h", revocationAnswer{checked: now}, now)
	tests := []struct {
		at     time.Time
		wantOK bool
	}{
		{now, true},
		{now.Add(revocationMemoTTL - time.Nanosecond), true},
		{now.Add(revocationMemoTTL), false},
		{now.Add(-time.Second), false}, // the clock went back: ask
	}
	for _, tc := range tests {
		if revoked, ok := m.lookup("h", tc.at); ok != tc.wantOK || revoked {
			t.Errorf("lookup at %s = %v, %v; want false, %v", tc.at.Sub(now), revoked, ok, tc.wantOK)
		}
	}
}

func TestRevocationMemo_Bounded(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var m revocationMemo
	for i := range revocationMemoMax + 10 {
		m.remember(fmt.Sprint("h", i), revocationAnswer{checked: now}, now)
		if len(m.entries) > revocationMemoMax {
			t.Fatalf("%d entries, want at most %d", len(m.entries), revocationMemoMax)
		}
	}
}

func mustRevoked(t *testing.T, s *Store, sid string) {
	t.Helper()
	if revoked, err := s.IsRevoked(context.Background(), sid); err != nil || !revoked {
		t.Fatalf("IsRevoked(%s) = %v, %v; want true", sid, revoked, err)
	}
}

func mustNotRevoked(t *testing.T, s *Store, sid string) {
	t.Helper()
	if revoked, err := s.IsRevoked(context.Background(), sid); err != nil || revoked {
		t.Fatalf("IsRevoked(%s) = %v, %v; want false", sid, revoked, err)
	}
}
