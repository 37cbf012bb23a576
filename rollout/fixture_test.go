package rollout

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
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

// The engine is tested against the real thing everywhere it can be: the
// hub simulator with a known registry behind the real client and budget,
// a real audit trail (SQLite in a temp file, or a fresh PostgreSQL
// schema), the real jobs service. Only the clock is fake, shared by all of
// them, so a test moves time and every component agrees on it.

const testPoll = 15 * time.Second

type fixtureOptions struct {
	devices   []hubsim.Device
	maxActive int     // the hub's active-job limit (default 1: S1)
	rate      float64 // devices per second per job (default 1000)
	dsn       string  // audit database; default a SQLite temp file
	hubs      []string
	budget    hub.BudgetConfig
	realClock bool          // wall time everywhere (the latency figure), instead of the manual clock
	poll      time.Duration // the engine's poll interval; default testPoll
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now().UTC() }

type fixture struct {
	t      testing.TB
	opts   fixtureOptions
	clock  *testkit.Clock
	now    func() time.Time // clock.Now, or the wall clock
	sims   map[string]*hubsim.Sim
	direct map[string]*hub.Client // outside the budget: inspects the hub
	budget map[string]*hub.Budgeted
	audit  *audit.Store
	store  *Store
	jobs   *jobs.Service
}

// registry is n devices dev-0000…, each ok unless listed in fail or sick.
func registry(n int, fail, sick map[int]bool) []hubsim.Device {
	out := make([]hubsim.Device, n)
	for i := range out {
		out[i] = hubsim.Device{DeviceID: fmt.Sprintf("dev-%04d", i), Tags: map[string]any{"ring": fmt.Sprint(i % 3)}}
		switch {
		case fail[i]:
			out[i].Behaviour = hubsim.BehaviourFail
		case sick[i]:
			out[i].Behaviour = hubsim.BehaviourUnhealthy
		}
	}
	return out
}

func newFixture(t testing.TB, o fixtureOptions) *fixture {
	t.Helper()
	if o.devices == nil {
		o.devices = registry(40, nil, nil)
	}
	if o.maxActive == 0 {
		o.maxActive = 1
	}
	if o.rate == 0 {
		o.rate = 1000
	}
	if o.poll == 0 {
		o.poll = testPoll
	}
	if o.hubs == nil {
		o.hubs = []string{"prod"}
	}
	if o.budget.JobsOpsPerMinute == 0 {
		o.budget.JobsOpsPerMinute, o.budget.QueriesPerMinute, o.budget.QueriesBurst = 60000, 60000, 1000
	}
	f := &fixture{t: t, opts: o, clock: testkit.NewClock(t0), sims: map[string]*hubsim.Sim{},
		direct: map[string]*hub.Client{}, budget: map[string]*hub.Budgeted{}}
	var simClock hubsim.Clock = f.clock
	f.now = f.clock.Now
	if o.realClock {
		simClock, f.now = wallClock{}, wallClock{}.Now
	}
	hubJobs := map[string]jobs.HubJobs{}
	for _, name := range o.hubs {
		sim := hubsim.New(hubsim.Options{Hostname: name + ".azure-devices.net", Registry: o.devices, DeviceRate: o.rate,
			Clock: simClock, QueuedPhase: -1, MaxActiveJobs: o.maxActive})
		srv := httptest.NewServer(sim)
		t.Cleanup(func() { sim.Close(); srv.Close() })
		cfg := hub.Config{Endpoint: srv.URL, HubName: name, MaxAttempts: 1, AttemptTimeout: 2 * time.Second,
			CallBudget: 3 * time.Second, ReconcileTimeout: time.Second, BreakerThreshold: -1,
			Sleep: func(context.Context, time.Duration) error { return nil }}
		direct, err := hub.NewFromConnectionString(sim.ConnectionString(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		client, err := hub.NewFromConnectionString(sim.ConnectionString(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		bc := o.budget
		bc.Now = f.now
		f.sims[name], f.direct[name], f.budget[name] = sim, direct, hub.NewBudgeted(client, bc)
		hubJobs[name] = f.budget[name]
	}
	if o.dsn == "" {
		o.dsn = "sqlite://" + filepath.Join(t.TempDir(), "audit.db")
	}
	var err error
	if f.audit, err = audit.Open(context.Background(), o.dsn, audit.WithClock(f.now)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.audit.Close() })
	if f.store, err = OpenStore(context.Background(), f.audit.DB(), f.audit.Dialect()); err != nil {
		t.Fatal(err)
	}
	f.jobs = jobs.New(jobs.Config{Hubs: hubJobs, Audit: f.audit, Now: f.now})
	return f
}

// engine is a fresh engine over the fixture's database: a restarted
// process knows only what was stored.
func (f *fixture) engine(owner string) *Engine {
	f.t.Helper()
	readers := map[string]HubReader{}
	limits := map[string]int{}
	for name, b := range f.budget {
		readers[name], limits[name] = b, f.opts.maxActive
	}
	e, err := NewEngine(EngineConfig{Store: f.store, Trail: f.audit, Jobs: f.jobs, Hubs: readers, Now: f.now,
		PollInterval: f.opts.poll, ApprovalOverDevices: 0, MaxActiveJobs: limits, Owner: owner,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// poll runs one engine poll, then moves time on by the poll interval.
func (f *fixture) poll(e *Engine) error {
	err := e.tick(context.Background())
	f.clock.Advance(testPoll)
	return err
}

// until polls e until done says so, at most limit polls.
func (f *fixture) until(e *Engine, limit int, done func() bool) {
	f.t.Helper()
	for range limit {
		if done() {
			return
		}
		if err := f.poll(e); err != nil {
			f.t.Fatalf("poll: %v", err)
		}
	}
	if !done() {
		f.t.Fatalf("not done after %d polls", limit)
	}
}

func (f *fixture) get(e *Engine, rid string) *Rollout {
	f.t.Helper()
	ro, err := e.Get(context.Background(), "prod", rid)
	if err != nil {
		f.t.Fatalf("get %s: %v", rid, err)
	}
	return ro
}

func (f *fixture) state(e *Engine, rid string) func() State {
	return func() State { return f.get(e, rid).Status.State }
}

// hubJobs lists every job on the simulated hub, by id.
func (f *fixture) hubJobs(hubName string) map[string]hub.Job {
	f.t.Helper()
	out := map[string]hub.Job{}
	cont := ""
	for {
		page, err := f.direct[hubName].QueryJobs(context.Background(), hub.QueryJobsOptions{PageSize: 100, Continuation: cont})
		if err != nil {
			f.t.Fatal(err)
		}
		for _, j := range page.Jobs {
			out[j.JobID] = j
		}
		if cont = page.Continuation; cont == "" {
			return out
		}
	}
}

// targeted is every device each of the hub's jobs of rollout rid named,
// read from the jobs' conditions (IN lists).
func (f *fixture) targeted(rid string) map[string]int {
	f.t.Helper()
	seen := map[string]int{}
	for id, j := range f.hubJobs("prod") {
		if !strings.HasPrefix(id, "hj-"+rid+"-") {
			continue
		}
		list := strings.TrimSuffix(strings.TrimPrefix(j.QueryCondition, "deviceId IN ["), "]")
		for _, q := range strings.Split(list, ",") {
			seen[strings.Trim(q, "'")]++
		}
	}
	return seen
}

// trail is the audit actions about id (a rollout or a job), oldest first.
func (f *fixture) trail(id string) []string {
	f.t.Helper()
	es, err := f.audit.List(context.Background(), audit.Filter{JobID: id, OldestFirst: true})
	if err != nil {
		f.t.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Action)
	}
	return out
}

func person(name string) jobs.Origin {
	return jobs.Origin{Actor: audit.Actor{Issuer: "https://idp.example", Subject: "sub-" + name, Name: name},
		ClientIP: "192.0.2.1", UserAgent: "test", RequestID: "req-" + name + "-" + randomID()}
}

func methodSpec(condition, waves string) Spec {
	ws, err := ParseWaves(waves)
	if err != nil {
		panic(err)
	}
	return Spec{Hub: "prod", Type: hub.TypeScheduleDeviceMethod,
		Method:    &hub.CloudToDeviceMethod{MethodName: "update", Payload: []byte(`{"v":2}`), ResponseTimeoutInSeconds: 30},
		Condition: condition, MaxExecution: time.Hour, Waves: ws, Bake: 10 * time.Minute, Reason: "firmware 2"}
}

func (f *fixture) create(e *Engine, rid string, s Spec) *Rollout {
	f.t.Helper()
	ro, err := e.Create(context.Background(), person("alice"), rid, s)
	if err != nil {
		f.t.Fatalf("create %s: %v", rid, err)
	}
	return ro
}

// backends runs test on SQLite and PostgreSQL.
func backends(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite://"+filepath.Join(t.TempDir(), "audit.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, testkit.PostgresSchema(t, "rollout_test")) })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
