package jobs_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/jobs"
)

// BenchmarkCancel is one audited cancel of a scheduled job: intent, re-read
// (a hub GET), the hub's cancel and the outcome, on SQLite and the
// simulator over loopback HTTP.
func BenchmarkCancel(b *testing.B) {
	f := newFixture(b, fixtureOptions{})
	i := 0
	for b.Loop() {
		b.StopTimer()
		id := fmt.Sprint("bench-", i)
		i++
		f.job(id, t0.Add(time.Hour))
		b.StartTimer()
		o, err := f.svc.Cancel(b.Context(), origin("Otto", "req-"+id), jobs.CancelRequest{Hub: "prod", JobID: id})
		if err != nil || o.Kind != jobs.Cancelled {
			b.Fatalf("cancel %s: %+v, %v", id, o, err)
		}
	}
}
