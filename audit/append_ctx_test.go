package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A client that hangs up mid-request does not erase its own record, and its
// hang-up is not a store failure.
func TestAppend_OutlivesTheCallersCancellation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		reg := prometheus.NewRegistry()
		s := openStore(t, b.newDSN(t), WithRegisterer(reg))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		stored, err := s.Append(ctx, cancelIntent("r-hangup", "job-1"))
		if err != nil {
			t.Fatalf("Append with a cancelled context = %v, want it stored", err)
		}
		expired, stop := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer stop()
		if _, err := s.Append(expired, cancelIntent("r-late", "job-2")); err != nil {
			t.Fatalf("Append past the caller's deadline = %v, want it stored", err)
		}
		got, err := s.List(context.Background(), Filter{OldestFirst: true})
		if err != nil || len(got) != 2 || got[0].Hash != stored.Hash {
			t.Fatalf("List = %v, %v; want both entries, the first as Append returned it", seqs(got), err)
		}
		wantAppendMetrics(t, reg, 2, 0)
	})
}

// A store that is really down fails at once, cancelled caller or not, and
// that failure is counted.
func TestAppend_StoreDownFailsFastAndIsCounted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		reg := prometheus.NewRegistry()
		s := openStore(t, b.newDSN(t), WithRegisterer(reg))
		s.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		start := time.Now()
		_, err := s.Append(ctx, cancelIntent("r-down", "job-1"))
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Append on a closed store = %v, want ErrUnavailable", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("Append on a closed store took %s, want it at once", took)
		}
		wantAppendMetrics(t, reg, 1, 1)
	})
}

// Invalid entries are the caller's mistake, not a store failure.
func TestAppend_InvalidEntryIsNoStoreFailure(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := openStore(t, backends[0].newDSN(t), WithRegisterer(reg))
	if _, err := s.Append(context.Background(), Entry{Action: "Not An Action"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append(bad action) = %v, want ErrInvalid", err)
	}
	wantAppendMetrics(t, reg, 0, 0)
}

// wantAppendMetrics checks how many appends were timed and how many counted
// as store failures.
func wantAppendMetrics(t *testing.T, reg *prometheus.Registry, appends, failures int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		switch mf.GetName() {
		case "hubjobs_audit_append_duration_seconds":
			got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
		case "hubjobs_audit_append_failures_total":
			got[mf.GetName()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"hubjobs_audit_append_duration_seconds": float64(appends),
		"hubjobs_audit_append_failures_total":   float64(failures),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %v, want %v", name, got[name], w)
		}
	}
}
