package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hubjobs/hubjobs/hub"
)

// simOptions are the `hubjobs hubsim` flags a test cares about.
type simOptions struct {
	Devices       int     // registry size (--devices); 0 = the simulator's default
	DeviceRate    float64 // devices per second per running job (--device-rate); 0 = default
	MaxActiveJobs int     // --max-active-jobs; 0 = default
	Seed          bool    // --seed: demo jobs in every state
	// Registry replaces the generated fleet with exactly these devices
	// (--registry, written to a file for the simulator).
	Registry []simDevice
}

// simDevice is one entry of a --registry file (hub/hubsim/README.md).
type simDevice struct {
	DeviceID  string            `json:"deviceId"`
	Tags      map[string]string `json:"tags,omitempty"`
	Behaviour string            `json:"behaviour,omitempty"` // ok (default), fail, unhealthy
}

// simHub is a running `hubjobs hubsim` and a hub client for arranging jobs
// on it (the portal under test only ever reads and cancels).
type simHub struct {
	Endpoint         string // http://127.0.0.1:PORT
	ConnectionString string // first stdout line
	Client           *hub.Client
}

// startHubsim runs the simulator on a free port and waits for it to listen.
func startHubsim(t testing.TB, o simOptions) *simHub {
	t.Helper()
	port := freePort(t)
	args := []string{"hubsim", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}
	if o.Devices > 0 {
		args = append(args, "--devices", strconv.Itoa(o.Devices))
	}
	if o.DeviceRate > 0 {
		args = append(args, "--device-rate", strconv.FormatFloat(o.DeviceRate, 'f', -1, 64))
	}
	if o.MaxActiveJobs > 0 {
		args = append(args, "--max-active-jobs", strconv.Itoa(o.MaxActiveJobs))
	}
	if o.Seed {
		args = append(args, "--seed")
	}
	if len(o.Registry) > 0 {
		b, err := json.Marshal(o.Registry)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "registry.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--registry", path)
	}
	p := startProcess(t, "hubsim", binary(t), args...)
	s := &simHub{
		Endpoint:         fmt.Sprintf("http://127.0.0.1:%d", port),
		ConnectionString: p.firstStdoutLine(t, 10*time.Second),
	}
	waitListening(t, p, fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	client, err := hub.NewFromConnectionString(s.ConnectionString, hub.Config{Endpoint: s.Endpoint})
	if err != nil {
		t.Fatalf("hubsim printed %q, not a usable connection string: %v", s.ConnectionString, err)
	}
	s.Client = client
	return s
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t testing.TB, p *process, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s after %s: %v\n%s", p.name, addr, timeout, err, p.output())
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v)\n%s", p.name, p.waitErr, p.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// jobSpec is a method job to create on the simulator.
type jobSpec struct {
	ID           string
	Query        string        // queryCondition; "*" = every device
	StartIn      time.Duration // 0 = now; > 0 = scheduled in the future
	MaxExecution time.Duration // 0 = one hour
}

// createJob creates a direct-method job and waits until the hub has moved
// it out of `queued` (to `scheduled` or `running`), so that the page the
// test opens next shows the state the test is about.
func (s *simHub) createJob(t testing.TB, j jobSpec) *hub.Job {
	t.Helper()
	ctx := testContext(t, 15*time.Second)
	req := hub.JobRequest{
		JobID:                     j.ID,
		Type:                      hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod:       &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: json.RawMessage(`{"delaySeconds":5}`), ResponseTimeoutInSeconds: 30},
		QueryCondition:            j.Query,
		MaxExecutionTimeInSeconds: int64(j.MaxExecution / time.Second),
	}
	if req.MaxExecutionTimeInSeconds == 0 {
		req.MaxExecutionTimeInSeconds = 3600
	}
	if j.StartIn > 0 {
		req.StartTime = hub.Time{Time: time.Now().Add(j.StartIn).UTC()}
	}
	if _, err := s.Client.CreateJob(ctx, req); err != nil {
		t.Fatalf("create job %s on the simulator: %v", j.ID, err)
	}
	for {
		job, err := s.Client.GetJob(ctx, j.ID)
		if err != nil {
			t.Fatalf("get job %s: %v", j.ID, err)
		}
		if job.Status.Normalized() != hub.StatusQueued {
			return job
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s still queued: %v", j.ID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitJobStatus polls the simulator until the job reaches want.
func (s *simHub) waitJobStatus(t testing.TB, id string, want hub.JobStatus, timeout time.Duration) *hub.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		job, err := s.Client.GetJob(ctx, id)
		if err == nil && job.Status.Normalized() == want {
			return job
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not reach %s within %s (last: %+v, %v)", id, want, timeout, job, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// portal is a running hubjobs web portal.
type portal struct {
	URL  string // http://127.0.0.1:PORT, no trailing slash
	proc *process
}

// serveStack is `hubjobs serve` signed in through Dex, over one simulated
// hub named prod.
type serveStack struct {
	*portal
	Dex *dex
	Hub *simHub
}

// hubName is the one hub a serveStack configures.
const hubName = "prod"

// serveConfig is the subset of the config file (docs/config.md) the tests write.
type serveConfig struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	Session   struct {
		Keys []string `yaml:"keys"`
	} `yaml:"session"`
	OIDC struct {
		Issuer       string              `yaml:"issuer"`
		ClientID     string              `yaml:"client_id"`
		ClientSecret string              `yaml:"client_secret"`
		Scopes       []string            `yaml:"scopes"`
		RolesClaim   string              `yaml:"roles_claim"`
		Roles        map[string][]string `yaml:"roles"`
	} `yaml:"oidc"`
	Hubs  []serveHub `yaml:"hubs"`
	Audit struct {
		Database string `yaml:"database"`
	} `yaml:"audit"`
	Server struct {
		DrainDelay string `yaml:"drain_delay"`
	} `yaml:"server"`
	Rollouts *serveRollouts `yaml:"rollouts,omitempty"`
}

// serveRollouts is the config's rollouts section; unset keys keep their
// defaults.
type serveRollouts struct {
	PollInterval string `yaml:"poll_interval,omitempty"`
}

// portalOptions are what a test changes in the portal's own config.
type portalOptions struct {
	// RolloutPoll is rollouts.poll_interval (0: the default, 15 s). Tests
	// that watch a rollout move set it to 1 s, the smallest allowed.
	RolloutPoll time.Duration
	// JobsOpsPerMinute is the hub's jobs_ops_per_minute (0: the default,
	// 100), of which the engine spends rollouts.max_share_of_budget.
	JobsOpsPerMinute int
}

type serveHub struct {
	Name             string `yaml:"name"`
	ConnectionString string `yaml:"connection_string"`
	Endpoint         string `yaml:"endpoint"`
	JobsOpsPerMinute int    `yaml:"jobs_ops_per_minute,omitempty"`
}

// startServeStack starts the simulator, then Dex (whose client needs the
// portal's callback URL), then `hubjobs serve` with a config naming both,
// and returns once /readyz answers 200 (the IdP is discovered).
func startServeStack(t testing.TB, o simOptions) *serveStack {
	t.Helper()
	return startServeStackWith(t, o, portalOptions{})
}

// startServeStackWith is startServeStack with portal options.
func startServeStackWith(t testing.TB, o simOptions, po portalOptions) *serveStack {
	t.Helper()
	dexBinary(t) // skip or fail before starting anything
	port := freePort(t)
	appURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	sim := startHubsim(t, o)
	d := startDex(t, appURL+"/auth/callback")

	var c serveConfig
	c.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	c.PublicURL = appURL
	c.Session.Keys = []string{randomKey(t)}
	c.OIDC.Issuer = d.Issuer
	c.OIDC.ClientID = d.ClientID
	c.OIDC.ClientSecret = d.ClientSecret
	c.OIDC.Scopes = []string{"openid", "profile", "email", "groups"}
	c.OIDC.RolesClaim = "groups"
	c.OIDC.Roles = map[string][]string{
		"viewer":   {"jobs-viewers"},
		"operator": {"jobs-operators"},
		"auditor":  {"jobs-auditors"},
		"author":   {"jobs-authors"},
		"approver": {"jobs-approvers"},
		"admin":    {},
	}
	c.Hubs = []serveHub{{Name: hubName, ConnectionString: sim.ConnectionString, Endpoint: sim.Endpoint, JobsOpsPerMinute: po.JobsOpsPerMinute}}
	dir := t.TempDir()
	c.Audit.Database = "sqlite://" + filepath.Join(dir, "audit.db")
	// No load balancer to drain: stop at once when the test ends (the
	// default 5 s drain would be paid by every test).
	c.Server.DrainDelay = "0s"
	if po.RolloutPoll > 0 {
		c.Rollouts = &serveRollouts{PollInterval: po.RolloutPoll.String()}
	}
	b, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "hubjobs.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "hubjobs-serve", binary(t), "serve", "--config", path)
	p.waitHTTP(t, appURL+"/readyz", 15*time.Second)
	return &serveStack{portal: &portal{URL: appURL, proc: p}, Dex: d, Hub: sim}
}

// startDemo runs `hubjobs demo` (portal, two simulated hubs and the demo IdP
// in one process, no configuration) and returns once /readyz answers 200.
func startDemo(t testing.TB) *portal {
	t.Helper()
	port := freePort(t)
	appURL := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := startProcess(t, "hubjobs-demo", binary(t), "demo", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	p.waitHTTP(t, appURL+"/readyz", 15*time.Second)
	return &portal{URL: appURL, proc: p}
}

// randomKey is a fresh session key: 32 random bytes, standard base64.
func randomKey(t testing.TB) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}
