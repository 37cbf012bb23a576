package jobs_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
	"github.com/hubjobs/hubjobs/jobs"
)

// t0 is the fixture's frozen "now" (the simulator and the budget share it).
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// fixture is one simulated hub "prod" behind its real client and budget,
// a real SQLite audit trail, and the service over both.
type fixture struct {
	t      testing.TB
	clock  *testkit.Clock
	sim    *hubsim.Sim
	direct *hub.Client // outside the budget: sets up and inspects the hub
	budget *hub.Budgeted
	store  *audit.Store
	reg    *prometheus.Registry
	svc    *jobs.Service
}

type fixtureOptions struct {
	devices   int
	budgetTTL time.Duration
	auditOpts []audit.Option
	announce  jobs.Announcer
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	if o.devices == 0 {
		o.devices = 40
	}
	f := &fixture{t: t, clock: testkit.NewClock(t0), reg: prometheus.NewRegistry()}
	f.sim = hubsim.New(hubsim.Options{Hostname: "prod.azure-devices.net", Devices: o.devices, DeviceRate: 1,
		Clock: f.clock, QueuedPhase: -1, MaxActiveJobs: 100})
	srv := httptest.NewServer(f.sim)
	t.Cleanup(func() { f.sim.Close(); srv.Close() })
	cfg := hub.Config{Endpoint: srv.URL, HubName: "prod", MaxAttempts: 2, AttemptTimeout: 300 * time.Millisecond,
		CallBudget: time.Second, ReconcileTimeout: 300 * time.Millisecond,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	var err error
	if f.direct, err = hub.NewFromConnectionString(f.sim.ConnectionString(), cfg); err != nil {
		t.Fatal(err)
	}
	client, err := hub.NewFromConnectionString(f.sim.ConnectionString(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.budget = hub.NewBudgeted(client, hub.BudgetConfig{TTL: o.budgetTTL, JobsOpsPerMinute: 6000, Now: f.clock.Now})
	opts := append([]audit.Option{audit.WithClock(f.clock.Now)}, o.auditOpts...)
	if f.store, err = audit.Open(t.Context(), "sqlite://"+t.TempDir()+"/audit.db", opts...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	f.svc = jobs.New(jobs.Config{Hubs: map[string]jobs.HubJobs{"prod": f.budget}, Audit: f.store,
		Now: f.clock.Now, Registerer: f.reg, Announce: o.announce})
	return f
}

// origin is a signed-in person's request.
func origin(name, requestID string) jobs.Origin {
	return jobs.Origin{Actor: audit.Actor{Issuer: "https://idp.example", Subject: "sub-" + name, Name: name, Roles: []string{"operator"}},
		ClientIP: "192.0.2.7", UserAgent: "test", RequestID: requestID}
}

// job creates a method job on the hub starting at start.
func (f *fixture) job(id string, start time.Time) {
	f.t.Helper()
	if _, err := f.direct.CreateJob(f.t.Context(), methodJob(id, start)); err != nil {
		f.t.Fatalf("create %s: %v", id, err)
	}
}

func methodJob(id string, start time.Time) hub.JobRequest {
	return hub.JobRequest{JobID: id, Type: hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: []byte(`{}`), ResponseTimeoutInSeconds: 30},
		QueryCondition:      "*", StartTime: hub.Time{Time: start}, MaxExecutionTimeInSeconds: 3600}
}

func (f *fixture) hubStatus(id string) hub.JobStatus {
	f.t.Helper()
	j, err := f.direct.GetJob(f.t.Context(), id)
	if err != nil {
		f.t.Fatalf("get %s: %v", id, err)
	}
	return j.Status
}

// trail is the job's audit entries, oldest first.
func (f *fixture) trail(id string) []audit.Entry {
	f.t.Helper()
	es, err := f.store.List(f.t.Context(), audit.Filter{JobID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

func actions(es []audit.Entry) string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Action)
	}
	return strings.Join(out, ",")
}

// cancels is hubjobs_cancels_total for prod and outcome.
func (f *fixture) cancels(outcome string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hubjobs_cancels_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["hub"] == "prod" && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
