package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/config"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

// inProcess runs a portal from setup inside the test process, stopping it at
// cleanup.
func inProcess(t *testing.T, setup portalSetup) *portal {
	t.Helper()
	cfg, err := config.Load(setup.configPath, setup.env.get)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.DrainDelay = 0 // no load balancer to wait for
	var logs testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	p, err := newPortal(ctx, cfg, logger, portalOptions{})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", setup.addr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := p.serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		p.Close()
		if t.Failed() {
			t.Logf("portal log:\n%s", logs.String())
		}
	})
	return p
}

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Readiness means "send traffic here": it waits for OIDC discovery and
// fails when the audit store does, but a hub outage must not take the
// portal out of the load balancer.
func TestReadinessFollowsDiscoveryAndStoreNotHub(t *testing.T) {
	w := newWorld(t)
	// The IdP must come back on the same address later. An address from the
	// ephemeral range could be taken by another test's port-0 bind while the
	// IdP is down, so move it below that range first.
	w.idp.Close()
	idpAddr := portBelowEphemeralRange(t)
	low, err := devidp.Listen(idpAddr, devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.idp = low
	w.idp.Close() // the IdP is down when the portal starts
	setup := newPortalSetup(t, w, "sqlite://"+filepath.Join(t.TempDir(), "audit.db"), "")
	p := inProcess(t, setup)

	if code, body := readyz(t, setup.publicURL); code != http.StatusServiceUnavailable || !strings.Contains(body, "oidc") {
		t.Fatalf("readyz before discovery = %d %q, want 503 naming oidc", code, body)
	}
	if code, _ := getStatus(t, setup.publicURL+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz while not ready = %d, want 200 (no dependency checks)", code)
	}

	idp, err := devidp.Listen(idpAddr, devidp.Options{ClientSecret: low.ClientSecret(), RedirectURIs: []string{setup.publicURL + "/auth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	waited := waitStatus(t, setup.publicURL+"/readyz", http.StatusOK, 15*time.Second)
	t.Logf("ready %s after the IdP came up (discovery retries with backoff)", waited.Round(time.Millisecond))

	// The hub goes down; the portal notices (a signed-in page asks it, and
	// retries within its call budget) and stays ready throughout.
	b := newBrowser(t)
	b.signIn(setup.publicURL, "viewer")
	w.sim.Inject(hubsim.Fault{Kind: hubsim.FaultReset})
	page := make(chan int, 1)
	go func() {
		resp, err := b.client.Get(setup.publicURL + "/hubs/prod/jobs/" + hubsim.DemoLiveJobID)
		if err != nil {
			page <- 0
			return
		}
		resp.Body.Close()
		page <- resp.StatusCode
	}()
	for waiting := true; waiting; {
		select {
		case status := <-page:
			if status < 500 {
				t.Errorf("job page with the hub down = %d, want a 5xx error page", status)
			}
			waiting = false
		case <-time.After(200 * time.Millisecond):
		}
		if code, body := readyz(t, setup.publicURL); code != http.StatusOK {
			t.Fatalf("readyz with the hub down = %d %q, want 200", code, body)
		}
	}

	// The audit store fails: not ready.
	p.store.Close()
	if code, body := readyz(t, setup.publicURL); code != http.StatusServiceUnavailable || !strings.Contains(body, "audit") {
		t.Errorf("readyz with the store closed = %d %q, want 503 naming audit", code, body)
	}
}

func getStatus(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// /metrics carries what a platform team alerts on, by area.
func TestMetricsByArea(t *testing.T) {
	w := newWorld(t)
	setup := newPortalSetup(t, w, "sqlite://"+filepath.Join(t.TempDir(), "audit.db"), "")
	inProcess(t, setup)
	waitStatus(t, setup.publicURL+"/readyz", http.StatusOK, 15*time.Second)

	b := newBrowser(t)
	b.signIn(setup.publicURL, "operator")
	w.sim.Inject(hubsim.Fault{Op: hubsim.OpGetJob, Kind: hubsim.FaultThrottle, RetryAfter: "0", Times: 1})
	if resp, _ := b.get(setup.publicURL + "/hubs/prod/jobs/" + hubsim.DemoCompletedJobID); resp.StatusCode != http.StatusOK {
		t.Fatalf("job page: %s", resp.Status)
	}
	resp, body, err := b.cancel(context.Background(), setup.publicURL, "prod", hubsim.DemoQueuedJobID, "metrics test")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("cancel: %v %v %.300s", err, resp, body)
	}
	_, metrics := getStatus(t, setup.publicURL+"/metrics")

	areas := map[string][]string{
		"http":    {"hubjobs_http_requests_total", "hubjobs_http_request_duration_seconds"},
		"hub":     {"hubjobs_hub_calls_total", "hubjobs_hub_call_duration_seconds", "hubjobs_hub_throttled_total", "hubjobs_hub_retries_total", "hubjobs_hub_budget_reads_total"},
		"cancel":  {`hubjobs_hub_calls_total{hub="prod",operation="CancelJob",outcome="ok"}`},
		"audit":   {"hubjobs_audit_append_duration_seconds"},
		"auth":    {"hubjobs_auth_sessions_started_total"},
		"process": {"go_goroutines", "process_resident_memory_bytes"},
	}
	for area, names := range areas {
		for _, name := range names {
			if !strings.Contains(metrics, "\n"+name) {
				t.Errorf("%s: metric %s missing from /metrics", area, name)
			}
		}
	}
}

// A cancel whose outcome was never written (the process died between the
// hub call and the audit write) is settled at start-up by asking the hub.
func TestStartupReconcilesPendingIntents(t *testing.T) {
	w := newWorld(t)
	dsn := "sqlite://" + filepath.Join(t.TempDir(), "audit.db")
	store, err := audit.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	intent := audit.Entry{Action: audit.JobCancelIntent, Result: "requested", RequestID: "crashed-request",
		Hub: "prod", JobID: hubsim.DemoCompletedJobID, Actor: audit.Actor{Issuer: "test", Subject: "op"}}
	if _, err := store.Append(context.Background(), intent); err != nil {
		t.Fatal(err)
	}
	store.Close()

	p := inProcess(t, newPortalSetup(t, w, dsn, ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending, err := p.store.PendingIntents(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("intent still pending 10 s after start-up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	entries, err := p.store.List(context.Background(), audit.Filter{JobID: hubsim.DemoCompletedJobID})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Action != audit.JobCancelReconciled || entries[0].RequestID != "crashed-request" || entries[0].Result != "completed" {
		t.Errorf("newest entry = %+v, want job.cancel.reconciled with the job's status (completed)", entries[0])
	}
}

// SIGTERM while a cancel is at the hub: readiness turns 503 at once, the
// cancel completes and is audited (intent and outcome), the process exits 0.
func TestSIGTERMDuringCancel(t *testing.T) {
	w := newWorld(t)
	dbPath := filepath.Join(t.TempDir(), "audit.db")
	setup := newPortalSetup(t, w, "sqlite://"+dbPath, "server:\n  drain_delay: 1s\n  shutdown_timeout: 15s\n")
	sp := startServe(t, setup)
	b := newBrowser(t)
	b.signIn(setup.publicURL, "operator")
	const slow = 3 * time.Second
	w.sim.Inject(hubsim.Fault{Op: hubsim.OpCancelJob, Kind: hubsim.FaultLatency, Delay: slow, Times: 1})

	type answer struct {
		resp *http.Response
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body, err := b.cancel(context.Background(), setup.publicURL, "prod", hubsim.DemoScheduledJobID, "sigterm test")
		answered <- answer{resp, body, err}
	}()
	for w.cancels.Load() == 0 {
		time.Sleep(5 * time.Millisecond) // until the cancel is at the hub
	}
	sentAt := time.Now()
	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, setup.publicURL+"/readyz", http.StatusServiceUnavailable, time.Second)

	a := <-answered
	if a.err != nil || a.resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(a.body), "cancelled") {
		t.Fatalf("in-flight cancel: err %v, status %v, body %.400q", a.err, a.resp, a.body)
	}
	if code := sp.wait(t, 20*time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	t.Logf("exited %s after SIGTERM (cancel at the hub for %s, drain 1s)", time.Since(sentAt).Round(time.Millisecond), slow)
	if !strings.Contains(sp.output.String(), "shutdown complete") {
		t.Errorf("no shutdown log line")
	}

	store, err := audit.Open(context.Background(), "sqlite://"+dbPath, audit.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	entries, err := store.List(context.Background(), audit.Filter{JobID: hubsim.DemoScheduledJobID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, string(e.Action))
	}
	if len(entries) != 2 || entries[1].Action != audit.JobCancelIntent || entries[0].Action != audit.JobCancelSucceeded ||
		entries[0].RequestID != entries[1].RequestID || entries[0].Reason != "sigterm test" {
		t.Errorf("audit for the job = %v (newest first), want intent then succeeded sharing a request id", actions)
	}
	if err := store.Verify(context.Background()); err != nil {
		t.Errorf("audit chain: %v", err)
	}
}

// The demo is the README's run command: it must come up ready, quickly,
// with its archived job, and leave nothing behind.
func TestDemo(t *testing.T) {
	bin := hubjobsBinary(t)
	start := time.Now()
	cmd := exec.Command(bin, "demo", "--listen", "127.0.0.1:0")
	var stdout, stderr testkit.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("demo stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	var base, dataDir string
	for base == "" && time.Since(start) < 10*time.Second {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Portal:"); ok {
				base = strings.TrimSuffix(strings.TrimSpace(rest), "/")
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Data:"); ok {
				dataDir = strings.Fields(rest)[0]
			}
		}
		time.Sleep(time.Millisecond)
	}
	if base == "" || !strings.HasPrefix(base, "http://127.0.0.1:") || strings.HasSuffix(base, ":0") {
		t.Fatalf("no real portal URL printed; stdout:\n%s", stdout.String())
	}
	waitStatus(t, base+"/readyz", http.StatusOK, 10*time.Second)
	t.Logf("cold start, exec → /readyz 200: %s", time.Since(start).Round(time.Millisecond))
	for _, want := range []string{"viewer", "operator", "auditor", "admin", "password = user name", "demo"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("banner lacks %q", want)
		}
	}

	b := newBrowser(t)
	b.signIn(base, "viewer")
	resp, body := b.get(base + "/hubs/prod/jobs/" + demoArchivedJobID)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Archived") {
		t.Errorf("archived job page: %s, archived notice shown: %v", resp.Status, strings.Contains(body, "Archived"))
	}
	if resp, _ := b.get(base + "/hubs/eu/jobs/" + hubsim.DemoLiveJobID); resp.StatusCode != http.StatusOK {
		t.Errorf("eu live job page: %s", resp.Status)
	}

	sigtermAndWait(t, "demo", cmd, done)
	if _, err := os.Stat(dataDir); err == nil {
		t.Errorf("demo data dir %s left behind", dataDir)
	}
}

func TestDemoRefusesNonLoopback(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"demo", "--listen", "0.0.0.0:8080"}, env{}.get, io.Discard, &stderr)
	if code := exitCode(err, &stderr); code != 2 || !strings.Contains(stderr.String(), "loopback") {
		t.Errorf("exit %d, stderr %q; want 2 and a loopback explanation", code, stderr.String())
	}
}
