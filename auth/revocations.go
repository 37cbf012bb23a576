package auth

import (
	"context"
	"sync"
	"time"
)

// MemoryRevocations is an in-process RevocationStore for tests, benchmarks
// and the single-process demo. Revocations vanish on restart and are not
// shared between replicas; production wires the audit database instead.
type MemoryRevocations struct {
	now    func() time.Time
	mu     sync.Mutex
	until  map[string]time.Time
	pruned time.Time // last sweep of expired records
}

// NewMemoryRevocations returns an empty store using now (nil: time.Now) to
// forget records once they no longer matter.
func NewMemoryRevocations(now func() time.Time) *MemoryRevocations {
	if now == nil {
		now = time.Now
	}
	return &MemoryRevocations{now: now, until: map[string]time.Time{}}
}

// Revoke records id as revoked until the given time.
func (m *MemoryRevocations) Revoke(_ context.Context, id string, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now := m.now(); now.Sub(m.pruned) >= time.Minute {
		for k, t := range m.until {
			if !now.Before(t) {
				delete(m.until, k)
			}
		}
		m.pruned = now
	}
	if prev, ok := m.until[id]; !ok || until.After(prev) {
		m.until[id] = until
	}
	return nil
}

// IsRevoked reports whether id is revoked now.
func (m *MemoryRevocations) IsRevoked(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.until[id]
	return ok && m.now().Before(t), nil
}
