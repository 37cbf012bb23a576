package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend measures committed appends per second on each backend,
// one caller at a time and 16 callers at once (the README has the figures).
// Each append is a durable commit: fsync of the WAL on SQLite
// (synchronous=FULL), a WAL flush on PostgreSQL.
func BenchmarkAppend(b *testing.B) {
	for _, be := range backends {
		for _, workers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/workers=%d", be.name, workers), func(b *testing.B) {
				s := openStore(b, be.newDSN(b))
				var next atomic.Int64
				b.ResetTimer()
				var wg sync.WaitGroup
				for range workers {
					wg.Go(func() {
						for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
							if _, err := s.Append(context.Background(), cancelIntent(fmt.Sprint(i), "job")); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			})
		}
	}
}

// BenchmarkVerify measures how fast a chain is checked, in entries/s.
func BenchmarkVerify(b *testing.B) {
	const entries = 2000
	for _, be := range backends {
		s := openStore(b, be.newDSN(b)) // seeded once, not per b.N round
		for i := range entries {
			mustAppend(b, s, cancelIntent(fmt.Sprint(i), "job"))
		}
		b.Run(be.name, func(b *testing.B) {
			for range b.N {
				if err := s.Verify(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(entries*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
