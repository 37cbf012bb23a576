package main

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
	"github.com/hubjobs/hubjobs/rollout"
)

// demoHubClient starts the named demo hub as the demo does and returns a
// hub client on it.
func demoHubClient(t *testing.T, name string) *hub.Client {
	t.Helper()
	sim, err := newDemoSim(name, 1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	c, err := hub.NewFromConnectionString(sim.ConnectionString(), hub.Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The counts a visitor's plan page shows for the conditions the demo
// invites, through the hub's own COUNT query.
func TestDemoFleetCounts(t *testing.T) {
	tests := map[string][]struct {
		where string
		want  int64
	}{
		demoProdHub: {
			{"*", 1200},
			{"tags.ring = 'canary'", 40},
			{"tags.ring = 'early'", 240},
			{"tags.ring = 'broad'", 920},
			{"tags.site = 'oslo'", 240},
			{"tags.site IN ['lyon','porto','oslo']", 720},
			{"tags.model = 'rx9'", 400},
			{"properties.reported.fw.version = '4.1.3'", 920},
			{"properties.reported.fw.version < '4.2.0'", 920},
			{"tags.ring = 'early' AND tags.site = 'oslo'", 48},
			{"tags.ring = 'broad' AND tags.site = 'lyon'", 184},
			{"tags.ring = 'early' AND tags.site = 'porto'", 48},
			{"tags.ring = 'broad' AND tags.site IN ['berlin','osaka']", 368},
			// SeedDemo's past jobs reached every device: the unhealthy ones
			// already report it.
			{"properties.reported.health = 'error'", 5},
		},
		demoEUHub: {
			{"*", 300},
			{"tags.ring = 'canary'", 10},
			{"tags.ring = 'early'", 60},
			{"tags.ring = 'broad'", 230},
			{"tags.model = 'rx9'", 100},
			{"properties.reported.health = 'error'", 1},
		},
	}
	for name, counts := range tests {
		t.Run(name, func(t *testing.T) {
			c := demoHubClient(t, name)
			for _, tc := range counts {
				got, err := c.CountDevices(context.Background(), tc.where)
				if err != nil || got != tc.want {
					t.Errorf("COUNT WHERE %s = %d, %v; want %d", tc.where, got, err, tc.want)
				}
			}
		})
	}
}

// SeedDemo's jobs keep their states and all have devices on the demo
// registry, and the registry's own jobs are there: a finished job whose
// failed devices are the early ring's fail devices plus transient ones,
// and a running twin update.
func TestDemoJobs(t *testing.T) {
	ctx := context.Background()
	c := demoHubClient(t, demoProdHub)
	want := map[string]hub.JobStatus{
		hubsim.DemoQueuedJobID: hub.StatusQueued, hubsim.DemoScheduledJobID: hub.StatusScheduled,
		hubsim.DemoLiveJobID: hub.StatusRunning, hubsim.DemoCompletedJobID: hub.StatusCompleted,
		hubsim.DemoFailedJobID: hub.StatusFailed, hubsim.DemoCancelledJobID: hub.StatusCancelled,
		hubsim.DemoTimedOutJobID: hub.StatusCompleted, hubsim.DemoLongIDJobID: hub.StatusCompleted,
		demoRerunJobID: hub.StatusCompleted, demoLiveTwinJobID: hub.StatusRunning,
	}
	for id, status := range want {
		job, err := c.GetJob(ctx, id)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if job.Status != status || job.DeviceJobStatistics == nil || job.DeviceJobStatistics.DeviceCount == 0 {
			t.Errorf("%s: %s with %+v, want %s with devices", id, job.Status, job.DeviceJobStatistics, status)
		}
	}
	if job, _ := c.GetJob(ctx, demoLiveTwinJobID); job.Type != hub.TypeScheduleUpdateTwin || job.DeviceJobStatistics.DeviceCount != 920 {
		t.Errorf("live twin job: %s over %d devices", job.Type, job.DeviceJobStatistics.DeviceCount)
	}
	if st, _ := c.GetJob(ctx, hubsim.DemoCompletedJobID); st.DeviceJobStatistics.FailedCount < 9 {
		t.Errorf("the completed update of every device failed on %d, want at least the 9 fail devices", st.DeviceJobStatistics.FailedCount)
	}

	var failed []string
	for cont := "start"; cont != ""; {
		if cont == "start" {
			cont = ""
		}
		page, err := c.QueryDeviceJobs(ctx, demoRerunJobID, hub.PageOptions{Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Devices {
			if d.Status == hub.DeviceStatusFailed {
				failed = append(failed, d.DeviceID)
			}
		}
		cont = page.Continuation
	}
	broken := []string{"lyon-0042", "berlin-0017", "osaka-0031"}
	for _, id := range broken {
		if !slices.Contains(failed, id) {
			t.Errorf("%s (fail) is not among the rerun job's failed devices %v", id, failed)
		}
	}
	if len(failed) <= len(broken) || len(failed) > 20 {
		t.Errorf("rerun job failed on %d devices %v, want the 3 fail devices and a few transient failures", len(failed), failed)
	}
}

// Each demo rollout's plan, recomputed from its fixed id and the registry,
// puts the fail and unhealthy devices where its story needs them: its rules
// halt it after the wave the table says, and never earlier.
func TestDemoRolloutsFitTheRegistry(t *testing.T) {
	ctx := context.Background()
	c := demoHubClient(t, demoProdHub)
	behaviours := demoFleets[demoProdHub].behaviours
	rollouts, err := demoRollouts()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rollouts {
		t.Run(r.rid, func(t *testing.T) {
			if !rollout.ValidID(r.rid) {
				t.Fatalf("rollout id %q", r.rid)
			}
			if err := r.spec.Rules.Validate(); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for cont := "start"; cont != ""; {
				if cont == "start" {
					cont = ""
				}
				page, err := c.DeviceIDs(ctx, r.spec.Condition, hub.PageOptions{Continuation: cont})
				if err != nil {
					t.Fatal(err)
				}
				ids, cont = append(ids, page.DeviceIDs...), page.Continuation
			}
			plan, err := rollout.NewPlan(r.rid, "", ids, r.spec.Waves)
			if err != nil {
				t.Fatal(err)
			}
			var stats []rollout.WaveStats
			unhealthy, reached, haltedAfter := 0, 0, 0
			var verdicts []string
			for _, w := range plan.Waves {
				failed := 0
				for _, id := range w.Devices {
					switch behaviours[id] {
					case hubsim.BehaviourFail:
						failed++
					case hubsim.BehaviourUnhealthy:
						unhealthy++
					}
				}
				reached += w.Size
				stats = append(stats, rollout.WaveStats{Wave: w.Number, Size: w.Size, Finished: w.Size, Failed: failed})
				v := r.spec.Rules.EvaluateFailures(stats)
				verdicts = append(verdicts, v.Text)
				if !v.Fired && w.Number < len(plan.Waves) {
					v = r.spec.Rules.EvaluateHealth(w.Number+1, unhealthy, reached)
					verdicts = append(verdicts, v.Text)
				}
				if v.Fired {
					haltedAfter = w.Number
					break
				}
			}
			if haltedAfter != r.haltsAfterWave {
				t.Errorf("halts after wave %d, want %d (0: never); verdicts:\n%s", haltedAfter, r.haltsAfterWave, strings.Join(verdicts, "\n"))
			}
			t.Logf("%d devices in waves of %v; %s", plan.Devices, waveSizes(plan), strings.Join(verdicts, "; "))
		})
	}
}

func waveSizes(p *rollout.Plan) []int {
	sizes := make([]int, len(p.Waves))
	for i, w := range p.Waves {
		sizes[i] = w.Size
	}
	return sizes
}

var userRolesRE = regexp.MustCompile(`<span id="user-roles"[^>]*>([^<]*)</span>`)

// Every demo user signs in to the demo, run in process as `hubjobs demo`,
// and gets the portal roles its claim values map to through the demo
// config: author and approver are viewers too, admin is everything. The
// registry's own jobs have working pages.
func TestDemoUsersSignInWithTheirRoles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout testkit.Buffer
	done := make(chan error, 1)
	go func() { done <- runDemo(ctx, []string{"--listen", "127.0.0.1:0"}, env{}.get, &stdout, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	base := ""
	for deadline := time.Now().Add(10 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, rest, ok := strings.Cut(stdout.String(), "Portal:"); ok && strings.Contains(rest, "\n") {
			base = strings.TrimSuffix(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]), "/")
		}
	}
	if base == "" {
		t.Fatalf("no portal URL; stdout:\n%s", stdout.String())
	}
	for _, want := range []string{"author", "Jobs.Write", "approver", "Jobs.Approve", "rollouts/new?from_job=" + demoRerunJobID + "&devices=failed"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	tests := []struct{ user, page, roles string }{
		{"viewer", "/hubs", "viewer"},
		{"operator", "/hubs", "viewer, operator"},
		{"author", "/hubs", "viewer, author"},
		{"approver", "/hubs", "viewer, approver"},
		{"auditor", "/audit", "auditor"},
		{"admin", "/hubs", "admin"},
	}
	t.Run("pages", func(t *testing.T) {
		b := newBrowser(t)
		b.signIn(base, "viewer")
		prod := base + "/hubs/" + demoProdHub
		pages := []struct{ path, want string }{
			{"/jobs", demoLiveTwinJobID},
			{"/jobs/" + demoLiveTwinJobID, "telemetry"},
			{"/jobs/" + demoRerunJobID, "applyFirmware"},
			{"/jobs/" + demoRerunJobID + "/devices?status=failed", "lyon-0042"},
		}
		for _, p := range pages {
			resp, body := b.get(prod + p.path)
			if resp.StatusCode != http.StatusOK || !strings.Contains(body, p.want) {
				t.Errorf("%s: %s, shows %q: %v", p.path, resp.Status, p.want, strings.Contains(body, p.want))
			}
		}
	})
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			b := newBrowser(t)
			b.signInTo(base, tc.user, tc.page)
			resp, body := b.get(base + tc.page)
			m := userRolesRE.FindStringSubmatch(body)
			if resp.StatusCode != http.StatusOK || m == nil || html.UnescapeString(m[1]) != tc.roles {
				t.Errorf("%s on %s: %s, roles %q; want 200 and %q", tc.user, tc.page, resp.Status, m, tc.roles)
			}
		})
	}
}
