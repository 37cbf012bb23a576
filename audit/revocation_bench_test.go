package audit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkIsRevoked is the per-request session check of `hubjobs serve`:
// one indexed lookup of a session that is not revoked, among 1,000 that
// are, from as many goroutines as GOMAXPROCS (the portal's concurrency).
func BenchmarkIsRevoked(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := openStore(b, be.newDSN(b))
			ctx := context.Background()
			until := time.Now().Add(time.Hour)
			for i := range 1000 {
				if err := s.Revoke(ctx, fmt.Sprint("revoked-", i), until); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					revoked, err := s.IsRevoked(ctx, "live-session")
					if err != nil || revoked {
						b.Errorf("IsRevoked = %v, %v; want false, nil", revoked, err)
						return
					}
				}
			})
		})
	}
}
