package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

var simStart = time.Date(2030, 3, 1, 8, 0, 0, 0, time.UTC)

// simHub is the simulator behind a real loopback server, on a manual clock
// the client's SAS signer shares (tokens are issued and checked on the
// same clock).
type simHub struct {
	sim   *hubsim.Sim
	srv   *httptest.Server
	clock *testkit.Clock
	cs    hub.ConnectionString
}

func newSimHub(t testing.TB, o hubsim.Options) *simHub {
	t.Helper()
	clock := testkit.NewClock(simStart)
	o.Clock = clock
	if o.Devices == 0 {
		o.Devices = 40
	}
	sim := hubsim.New(o)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close) // runs first: releases hung requests
	cs, err := hub.ParseConnectionString(sim.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	return &simHub{sim: sim, srv: srv, clock: clock, cs: cs}
}

// client is a hub.Client for the simulator. Its backoff waits move the
// simulator's clock instead of sleeping, so a throttled hub refills.
func (s *simHub) client(t testing.TB, mods ...func(*hub.Config)) *hub.Client {
	t.Helper()
	cred, err := hub.NewSASCredentialWithOptions(s.cs, hub.SASOptions{Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.Config{
		Host: s.cs.HostName, Endpoint: s.srv.URL, Credential: cred,
		Sleep:  func(ctx context.Context, d time.Duration) error { s.clock.Advance(d); return ctx.Err() },
		Jitter: func(d time.Duration) time.Duration { return d },
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := hub.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func methodJob(id string, start time.Time) hub.JobRequest {
	return hub.JobRequest{
		JobID: id, Type: hub.TypeScheduleDeviceMethod, QueryCondition: "*", StartTime: hub.Time{Time: start},
		CloudToDeviceMethod:       &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: []byte(`{"delay":5}`), ResponseTimeoutInSeconds: 30},
		MaxExecutionTimeInSeconds: 3600,
	}
}

func twinJob(id string) hub.JobRequest {
	return hub.JobRequest{
		JobID: id, Type: hub.TypeScheduleUpdateTwin, QueryCondition: "*",
		UpdateTwin: &hub.Twin{Tags: map[string]any{"ring": "2"}, Properties: &hub.TwinProperties{Desired: map[string]any{"interval": 60}}},
	}
}

func TestSimLifecycleAndCancel(t *testing.T) {
	s := newSimHub(t, hubsim.Options{DeviceRate: 10, FailureRate: 0.25, Seed: 7})
	c := s.client(t)
	ctx := context.Background()

	// A job starting tomorrow: queued, then scheduled, then cancelled.
	created, err := c.CreateJob(ctx, methodJob("later", simStart.Add(24*time.Hour)))
	if err != nil || created.JobID != "later" || created.Status != hub.StatusQueued {
		t.Fatalf("CreateJob = %+v, %v; want the minimal queued answer", created, err)
	}
	s.clock.Advance(2 * time.Second)
	got, err := c.GetJob(ctx, "later")
	if err != nil || got.Status != hub.StatusScheduled || got.CloudToDeviceMethod.MethodName != "reboot" || !got.StartTime.Equal(simStart.Add(24*time.Hour)) {
		t.Fatalf("GetJob = %+v, %v; want the scheduled job", got, err)
	}
	cancelled, err := c.CancelJob(ctx, "later")
	if err != nil || cancelled.Status != hub.StatusCancelled {
		t.Fatalf("CancelJob of a scheduled job = %+v, %v", cancelled, err)
	}
	again, err := c.CancelJob(ctx, "later")
	if again != nil || !errors.Is(err, hub.ErrNotCancellable) || errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Fatalf("second CancelJob = %+v, %v; want a definite refusal", again, err)
	}

	// A job starting now: running, not cancellable, then completed.
	if _, err := c.CreateJob(ctx, twinJob("now")); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Second)
	running, err := c.GetJob(ctx, "now")
	if err != nil || running.Status != hub.StatusRunning || running.UpdateTwin.ETag != "*" {
		t.Fatalf("GetJob = %+v, %v; want running", running, err)
	}
	_, err = c.CancelJob(ctx, "now")
	var he *hub.Error
	if !errors.Is(err, hub.ErrNotCancellable) || !errors.As(err, &he) || he.Code != "OperationNotAllowedInCurrentState" ||
		!strings.Contains(he.Message, "Running") || he.RequestID == "" {
		t.Fatalf("cancel of a running job: %v", err)
	}
	s.clock.Advance(time.Minute) // 40 devices at 10/s
	done, err := c.GetJob(ctx, "now")
	if err != nil || done.Status != hub.StatusCompleted || done.EndTime.IsZero() {
		t.Fatalf("GetJob after a minute = %+v, %v; want completed", done, err)
	}
	stats := done.DeviceJobStatistics
	if stats == nil || stats.DeviceCount != 40 || stats.SucceededCount+stats.FailedCount != 40 || stats.FailedCount == 0 {
		t.Fatalf("statistics %+v", stats)
	}

	// Per-device results, paged 7 at a time, agree with the statistics.
	var devices []hub.DeviceJob
	pages, cont := 0, ""
	for {
		page, err := c.QueryDeviceJobs(ctx, "now", hub.PageOptions{PageSize: 7, Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		devices = append(devices, page.Devices...)
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	failed, seen := 0, map[string]bool{}
	for _, d := range devices {
		seen[d.DeviceID] = true
		if d.JobID != "now" || d.JobType != hub.TypeScheduleUpdateTwin {
			t.Errorf("device record %+v", d)
		}
		if d.Status == hub.DeviceStatusFailed {
			failed++
			if d.Error == nil || d.Error.Code == "" {
				t.Errorf("failed device without an error: %+v", d)
			}
		}
	}
	if pages != 6 || len(devices) != 40 || len(seen) != 40 || int32(failed) != stats.FailedCount {
		t.Errorf("%d pages, %d records, %d distinct, %d failed; want 6, 40, 40, %d", pages, len(devices), len(seen), failed, stats.FailedCount)
	}
	cancelledDevices, err := c.QueryDeviceJobs(ctx, "later", hub.PageOptions{})
	if err != nil || len(cancelledDevices.Devices) != 40 || cancelledDevices.Devices[0].Status != hub.DeviceStatusCanceled {
		t.Errorf("devices of the cancelled job: %+v, %v", cancelledDevices, err)
	}
}

func TestSimQueryJobsPagesAndFilters(t *testing.T) {
	s := newSimHub(t, hubsim.Options{MaxActiveJobs: 50})
	c := s.client(t)
	ctx := context.Background()
	for i := range 12 {
		req := methodJob(fmt.Sprintf("m-%02d", i), simStart.Add(time.Hour))
		if i%3 == 0 {
			req = twinJob(fmt.Sprintf("t-%02d", i))
		}
		if _, err := c.CreateJob(ctx, req); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(time.Second)
	}
	collect := func(o hub.QueryJobsOptions) (ids []string, pages int) {
		for {
			page, err := c.QueryJobs(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, j := range page.Jobs {
				ids = append(ids, j.JobID)
			}
			if o.Continuation = page.Continuation; o.Continuation == "" {
				return ids, pages
			}
		}
	}
	all, pages := collect(hub.QueryJobsOptions{PageSize: 5})
	if len(all) != 12 || pages != 3 || all[0] != "m-11" {
		t.Errorf("all jobs: %v in %d pages; want 12 newest first in 3", all, pages)
	}
	twins, _ := collect(hub.QueryJobsOptions{Type: hub.TypeScheduleUpdateTwin, PageSize: 2})
	if strings.Join(twins, ",") != "t-09,t-06,t-03,t-00" {
		t.Errorf("twin jobs: %v", twins)
	}
	c.CancelJob(ctx, "m-01")
	cancelled, _ := collect(hub.QueryJobsOptions{Status: hub.StatusCancelled})
	if strings.Join(cancelled, ",") != "m-01" {
		t.Errorf("cancelled jobs: %v", cancelled)
	}
}

func TestSimNotFound(t *testing.T) {
	s := newSimHub(t, hubsim.Options{})
	s.sim.AddImportExportJob("export-1")
	c := s.client(t)
	ctx := context.Background()
	for _, id := range []string{"nope", "export-1"} { // 404 JobNotFound; 200 status unknown
		if job, err := c.GetJob(ctx, id); job != nil || !errors.Is(err, hub.ErrNotFound) {
			t.Errorf("GetJob(%s) = %+v, %v; want ErrNotFound", id, job, err)
		}
	}
	if _, err := c.CancelJob(ctx, "nope"); !errors.Is(err, hub.ErrNotFound) || errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Errorf("CancelJob of an unknown job: %v", err)
	}
	lenient := newSimHub(t, hubsim.Options{MissingJobsUnknown: true})
	if _, err := lenient.client(t).GetJob(ctx, "nope"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("200 unknown: %v", err)
	}
}

func TestSimRejectsBadCredentials(t *testing.T) {
	s := newSimHub(t, hubsim.Options{})
	ctx := context.Background()
	wrongKey := s.cs
	wrongKey.SharedAccessKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	expired := func(cs hub.ConnectionString) hub.Credential {
		cred, _ := hub.NewSASCredentialWithOptions(cs, hub.SASOptions{TTL: time.Hour, Now: func() time.Time { return simStart.Add(-2 * time.Hour) }})
		return cred
	}
	wrong, _ := hub.NewSASCredential(wrongKey)
	for name, cred := range map[string]hub.Credential{"wrong key": wrong, "expired": expired(s.cs)} {
		c := s.client(t, func(cfg *hub.Config) { cfg.Credential = cred })
		_, err := c.GetJob(ctx, "any")
		var he *hub.Error
		if !errors.Is(err, hub.ErrUnauthorized) || !errors.As(err, &he) || he.StatusCode != 401 || he.Code != "IotHubUnauthorizedAccess" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := s.sim.Calls(hubsim.OpGetJob); n != 2 {
		t.Errorf("%d GETs: a 401 must not be retried", n)
	}
}

type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestSimEntraBearer(t *testing.T) {
	s := newSimHub(t, hubsim.Options{BearerToken: "entra-token"})
	c := s.client(t, func(cfg *hub.Config) { cfg.Credential = hub.NewEntraCredential(staticToken("entra-token")) })
	if _, err := c.QueryJobs(context.Background(), hub.QueryJobsOptions{}); err != nil {
		t.Fatalf("bearer token refused: %v", err)
	}
}

func TestSimThrottling(t *testing.T) {
	ctx := context.Background()

	// The hub's jobs-operations bucket: 6/min leaves a Retry-After of 10 s
	// on the 7th call; the client waits it (on the simulator's clock) and
	// gets through.
	s := newSimHub(t, hubsim.Options{JobOpsPerMinute: 6})
	c := s.client(t)
	for range 6 {
		c.QueryJobs(ctx, hub.QueryJobsOptions{})
	}
	before := s.clock.Now()
	if _, err := c.QueryJobs(ctx, hub.QueryJobsOptions{}); err != nil {
		t.Fatalf("throttled query not retried after Retry-After: %v", err)
	}
	if waited := s.clock.Now().Sub(before); waited != 10*time.Second {
		t.Errorf("waited %v, want the hub's Retry-After of 10s", waited)
	}

	// S1: one active job. The second create is a 429 the client retries
	// until its budget would be overrun, then reports.
	s1 := newSimHub(t, hubsim.Options{MaxActiveJobs: 1})
	c1 := s1.client(t)
	if _, err := c1.CreateJob(ctx, methodJob("first", simStart.Add(24*time.Hour))); err != nil { // stays unfinished
		t.Fatal(err)
	}
	_, err := c1.CreateJob(ctx, twinJob("second"))
	var he *hub.Error
	if !errors.Is(err, hub.ErrThrottled) || !errors.As(err, &he) || he.Code != "ThrottlingMaxActiveJobCountExceeded" || errors.Is(err, hub.ErrOutcomeUnknown) {
		t.Fatalf("second active job: %v", err)
	}
	if n := s1.sim.Calls(hubsim.OpCreateJob); n < 2 || n > hub.DefaultMaxAttempts+1 {
		t.Errorf("%d creates: a 429 is retried, boundedly", n)
	}
}

func TestSimFaults(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		fault  hubsim.Fault
		cfg    func(*hub.Config)
		call   func(c *hub.Client) (*hub.Job, error)
		calls  map[hubsim.Op]int
		status hub.JobStatus // of the returned job; "" for none
		is     []error
	}{
		{
			name:  "5xx burst on GET is retried",
			fault: hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.Fault5xx, Times: 2},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.GetJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpGetJob: 3}, status: hub.StatusScheduled,
		},
		{
			name:  "connection reset on GET is retried",
			fault: hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultReset, Times: 1},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.GetJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpGetJob: 2}, status: hub.StatusScheduled,
		},
		{
			name:  "hanging cancel is reconciled, not re-sent",
			fault: hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultHang, Times: 1},
			cfg:   func(c *hub.Config) { c.AttemptTimeout = 50 * time.Millisecond },
			call:  func(c *hub.Client) (*hub.Job, error) { return c.CancelJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpCancelJob: 1, hubsim.OpGetJob: 1}, status: hub.StatusScheduled,
			is: []error{hub.ErrOutcomeUnknown, hub.ErrTimeout},
		},
		{
			name:  "cancel answered 503 is reconciled, not re-sent",
			fault: hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.Fault5xx, Times: 1},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.CancelJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpCancelJob: 1, hubsim.OpGetJob: 1}, status: hub.StatusScheduled,
			is: []error{hub.ErrOutcomeUnknown, hub.ErrUnavailable},
		},
		{
			name:  "cancel whose body is cut off: the hub acted, the GET shows it",
			fault: hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultMalformedJSON, Times: 1},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.CancelJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpCancelJob: 1, hubsim.OpGetJob: 1}, status: hub.StatusCancelled,
			is: []error{hub.ErrOutcomeUnknown, hub.ErrBadResponse},
		},
		{
			name:  "cancel connection reset after sending: reconciled",
			fault: hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultReset, Times: 1},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.CancelJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpCancelJob: 1, hubsim.OpGetJob: 1}, status: hub.StatusScheduled,
			is: []error{hub.ErrOutcomeUnknown},
		},
		{
			name:  "cancel throttled before acting is retried",
			fault: hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultThrottle, Times: 1, RetryAfter: "2"},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.CancelJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpCancelJob: 2}, status: hub.StatusCancelled,
		},
		{
			name:  "HTML error page from a proxy",
			fault: hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultHTMLError, Status: 403},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.GetJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpGetJob: 1},
			is:    []error{hub.ErrUnauthorized},
		},
		{
			name:  "oversized body",
			fault: hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultOversized},
			call:  func(c *hub.Client) (*hub.Job, error) { return c.GetJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpGetJob: 1},
			is:    []error{hub.ErrResponseTooLarge},
		},
		{
			name:  "slow hub: each attempt times out",
			fault: hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultLatency, Delay: time.Second},
			cfg:   func(c *hub.Config) { c.AttemptTimeout = 20 * time.Millisecond; c.MaxAttempts = 2 },
			call:  func(c *hub.Client) (*hub.Job, error) { return c.GetJob(ctx, "j") },
			calls: map[hubsim.Op]int{hubsim.OpGetJob: 2},
			is:    []error{hub.ErrTimeout},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSimHub(t, hubsim.Options{})
			var mods []func(*hub.Config)
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c := s.client(t, mods...)
			// The job is set up by a client without the case's tight
			// timeouts: on a loaded machine (-race) a 20 ms attempt timeout
			// fails the setup, not the case.
			if _, err := s.client(t).CreateJob(ctx, methodJob("j", simStart.Add(time.Hour))); err != nil {
				t.Fatal(err)
			}
			s.clock.Advance(2 * time.Second)
			s.sim.ResetCalls()
			s.sim.Inject(tt.fault)
			job, err := tt.call(c)
			for op, want := range tt.calls {
				if got := s.sim.Calls(op); got != want {
					t.Errorf("%s calls = %d, want %d", op, got, want)
				}
			}
			if tt.status == "" && job != nil || tt.status != "" && (job == nil || job.Status != tt.status) {
				t.Errorf("job = %+v, want status %q", job, tt.status)
			}
			if len(tt.is) == 0 && err != nil {
				t.Errorf("err = %v", err)
			}
			for _, want := range tt.is {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want it to match %v", err, want)
				}
			}
		})
	}
}

func TestSimBudget(t *testing.T) {
	s := newSimHub(t, hubsim.Options{})
	b := hub.NewBudgeted(s.client(t), hub.BudgetConfig{Now: s.clock.Now})
	ctx := context.Background()
	if _, err := b.CreateJob(ctx, methodJob("j", simStart.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Second)
	s.sim.ResetCalls()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if got, err := b.GetJob(ctx, "j"); err != nil || got.Value.Status != hub.StatusScheduled {
				t.Errorf("budgeted GetJob = %+v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := s.sim.Calls(hubsim.OpGetJob); n != 1 {
		t.Errorf("200 concurrent readers made %d hub GETs, want 1", n)
	}

	// A cancel goes to the hub once per call (the jobs service coalesces
	// concurrent ones); its answer is what a read then sees.
	if job, err := b.CancelJob(ctx, "j"); err != nil || job.Status != hub.StatusCancelled {
		t.Fatalf("cancel: %+v, %v", job, err)
	}
	if got, err := b.GetJob(ctx, "j"); err != nil || got.Value.Status != hub.StatusCancelled || s.sim.Calls(hubsim.OpGetJob) != 1 {
		t.Errorf("read after the cancel: %+v, %v (%d GETs)", got, err, s.sim.Calls(hubsim.OpGetJob))
	}
}

// BenchmarkClientOverhead compares Client.GetJob with a bare net/http GET
// of the same URL, with the same Authorization header, against the same
// simulator on a loopback server. The difference is the client's own cost:
// request building, the retry loop's bookkeeping, the body cap, JSON
// decoding and the not-found check. A third variant, the bare GET plus
// json.Unmarshal into hub.Job, separates the decoding any caller pays from
// the client's machinery.
//
// The three run interleaved in one loop, in rotating order, so that they
// share whatever else the machine is doing; each is reported as its own
// ns/op metric, with the overheads in percent.
func BenchmarkClientOverhead(b *testing.B) {
	s := newSimHub(b, hubsim.Options{Devices: 1500})
	s.sim.SeedDemo()
	c := s.client(b)
	ctx := context.Background()
	id := hubsim.DemoLiveJobID

	cred, _ := hub.NewSASCredentialWithOptions(s.cs, hub.SASOptions{Now: s.clock.Now})
	auth, _ := cred.Authorization(ctx)
	url := s.srv.URL + "/jobs/v2/" + id + "?api-version=" + hub.APIVersion
	bare := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	get := func() []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Accept", "application/json")
		resp, err := bare.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		return body
	}
	variants := []func(){
		func() { get() },
		func() {
			var job hub.Job
			if err := json.Unmarshal(get(), &job); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			if _, err := c.GetJob(ctx, id); err != nil {
				b.Fatal(err)
			}
		},
	}
	spent := make([]time.Duration, len(variants))
	i := 0
	for b.Loop() {
		for k := range variants {
			v := (i + k) % len(variants)
			start := time.Now()
			variants[v]()
			spent[v] += time.Since(start)
		}
		i++
	}
	per := func(v int) float64 { return float64(spent[v].Nanoseconds()) / float64(b.N) }
	b.ReportMetric(per(0), "net/http-ns/op")
	b.ReportMetric(per(1), "net/http+decode-ns/op")
	b.ReportMetric(per(2), "hub.Client-ns/op")
	b.ReportMetric(100*(per(2)-per(0))/per(0), "overhead-vs-bare-%")
	b.ReportMetric(100*(per(2)-per(1))/per(1), "overhead-vs-bare+decode-%")
}
