package audit

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIsRevoked is the per-request session check of `hubjobs serve`:
// a session that is not revoked, among 1,000 that are, from GOMAXPROCS
// goroutines (the portal's concurrency). "same-session" asks about one
// session over and over (a browser polling; on SQLite the memo answers),
// "new-session" about a different one each time (the database answers).
func BenchmarkIsRevoked(b *testing.B) {
	for _, be := range backends {
		s := openStore(b, be.newDSN(b))
		ctx := context.Background()
		until := time.Now().Add(time.Hour)
		for i := range 1000 {
			if err := s.Revoke(ctx, fmt.Sprint("revoked-", i), until); err != nil {
				b.Fatal(err)
			}
		}
		var n atomic.Int64
		for _, sc := range []struct {
			name    string
			session func() string
		}{
			{"same-session", func() string { return "live-session" }},
			{"new-session", func() string { return fmt.Sprint("live-", n.Add(1)) }},
		} {
			b.Run(be.name+"/"+sc.name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						revoked, err := s.IsRevoked(ctx, sc.session())
						if err != nil || revoked {
							b.Errorf("IsRevoked = %v, %v; want false, nil", revoked, err)
							return
						}
					}
				})
			})
		}
	}
}
