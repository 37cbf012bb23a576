package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

// binDir holds the hubjobs binary built once for the subprocess tests; it is
// world-readable so a non-root user can run it (container test).
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// hubjobsBinary builds the command as the Dockerfile does (static,
// trimmed), once per test run.
func hubjobsBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binError = os.MkdirTemp("", "hubjobs-bin-")
		if binError != nil {
			return
		}
		if binError = os.Chmod(binDir, 0o755); binError != nil {
			return
		}
		binPath = filepath.Join(binDir, "hubjobs")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test", "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binError = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// world is what a portal talks to in tests: a real OIDC provider and a
// simulated hub seeded with the demo jobs, both on loopback.
type world struct {
	idp     *devidp.Server
	sim     *hubsim.Sim
	hubURL  string
	cancels atomic.Int32 // cancel requests that reached the hub
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, hubsim.Options{Hostname: "test-fleet.azure-devices.net", Seed: 7})
}

// newWorldWith is newWorld over a simulator with these options.
func newWorldWith(t *testing.T, opts hubsim.Options) *world {
	t.Helper()
	w := &world{sim: hubsim.New(opts)}
	w.sim.SeedDemo()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/cancel") {
			w.cancels.Add(1)
		}
		w.sim.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(w.sim.Close)
	w.hubURL = srv.URL
	idp, err := devidp.Listen("127.0.0.1:0", devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	w.idp = idp
	return w
}

// portalSetup is one portal instance's config file and environment.
type portalSetup struct {
	addr, publicURL string
	configPath      string
	env             env
}

// testSessionKey is shared by every portal of a test, as replicas share it.
const testSessionKey = "c2Vzc2lvbi1rZXktZm9yLXRlc3RzLTMyLWJ5dGVzLWxvbmchIQ=="

// newPortalSetup writes a config for a portal on a free loopback port. The
// secrets come from the environment through ${VAR}, as in production.
func newPortalSetup(t *testing.T, w *world, database string, extra string) portalSetup {
	t.Helper()
	addr := closedAddr(t)
	publicURL := "http://" + addr
	if err := w.idp.AllowRedirectURI(publicURL + "/auth/callback"); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: %s
public_url: %s
session:
  keys: ["${TEST_SESSION_KEY}"]
oidc:
  issuer: %s
  client_id: %s
  client_secret: ${TEST_CLIENT_SECRET}
hubs:
  - name: prod
    connection_string: ${TEST_HUB_CS}
    endpoint: %s
audit:
  database: %s
log:
  format: json
  level: info
%s`, addr, publicURL, w.idp.Issuer(), w.idp.ClientID(), w.hubURL, database, extra)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return portalSetup{addr: addr, publicURL: publicURL, configPath: path, env: env{
		"TEST_SESSION_KEY":   testSessionKey,
		"TEST_CLIENT_SECRET": w.idp.ClientSecret(),
		"TEST_HUB_CS":        w.sim.ConnectionString(),
	}}
}

// environ is the process environment plus the setup's variables.
func (p portalSetup) environ() []string {
	out := os.Environ()
	for k, v := range p.env {
		out = append(out, k+"="+v)
	}
	return out
}

// serveProcess is `hubjobs serve` running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	output *testkit.Buffer
	done   chan struct{}
	err    error
}

// startServe runs the binary's serve command and waits for /readyz 200.
func startServe(t *testing.T, p portalSetup) *serveProcess {
	t.Helper()
	cmd := exec.Command(hubjobsBinary(t), "serve", "--config", p.configPath)
	cmd.Env = p.environ()
	sp := &serveProcess{cmd: cmd, output: &testkit.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = sp.output, sp.output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sp.err = cmd.Wait()
		close(sp.done)
	}()
	t.Cleanup(func() {
		select {
		case <-sp.done:
		default:
			_ = cmd.Process.Kill()
			<-sp.done
		}
		if t.Failed() {
			t.Logf("serve %s output:\n%s", p.addr, sp.output.String())
		}
	})
	waitStatus(t, p.publicURL+"/readyz", http.StatusOK, 15*time.Second)
	return sp
}

// stop sends SIGTERM and returns the exit code.
func (sp *serveProcess) stop(t *testing.T) int {
	t.Helper()
	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return sp.wait(t, 30*time.Second)
}

func (sp *serveProcess) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-sp.done:
		return sp.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("serve did not exit within %s", limit)
		return -1
	}
}

// sigtermAndWait sends SIGTERM to a child started with cmd.Start, whose
// cmd.Wait result arrives on done, and fails unless it exits cleanly within
// 20 s: a graceful shutdown, not a kill.
func sigtermAndWait(t *testing.T, what string, cmd *exec.Cmd, done <-chan error) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s exit after SIGTERM: %v", what, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit after SIGTERM", what)
	}
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	last := "no answer"
	for time.Since(start) < limit {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start)
			}
			last = fmt.Sprintf("%s %q", resp.Status, body)
		} else {
			last = err.Error()
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: want %d within %s; last: %s", url, want, limit, last)
	return 0
}

var (
	loginRequestRE = regexp.MustCompile(`name="request" value="([^"]+)"`)
	csrfMetaRE     = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)"`)
)

// browser is a testkit browser profile that knows the portal's pages: its
// sign-in, the CSRF token and the cancel form. One browser shares its session
// between portals on different 127.0.0.1 ports — like replicas behind one
// host name.
type browser struct {
	t      *testing.T
	client *http.Client
}

func newBrowser(t *testing.T) *browser {
	return &browser{t: t, client: testkit.NewBrowser(t)}
}

// signIn goes through the portal's login and the demo IdP's form.
func (b *browser) signIn(portalURL, user string) {
	b.t.Helper()
	b.signInTo(portalURL, user, "/hubs")
}

// signInTo signs in and lands on next, which the user must be allowed to see.
func (b *browser) signInTo(portalURL, user, next string) {
	b.t.Helper()
	resp, body := b.get(portalURL + "/auth/login?next=" + url.QueryEscape(next))
	m := loginRequestRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no login form at %s: %s", resp.Request.URL, resp.Status)
	}
	resp, err := b.client.PostForm(resp.Request.URL.String(), url.Values{"request": {m[1]}, "username": {user}, "password": {user}})
	if err != nil {
		b.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != next {
		b.t.Fatalf("sign-in as %s ended at %s with %s", user, resp.Request.URL, resp.Status)
	}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// csrf reads the session's CSRF token from a page.
func (b *browser) csrf(pageURL string) string {
	b.t.Helper()
	_, body := b.get(pageURL)
	m := csrfMetaRE.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no csrf-token meta on %s", pageURL)
	}
	return m[1]
}

// post sends a same-origin form POST, as the portal's own pages do.
func (b *browser) post(ctx context.Context, portalURL, path string, form url.Values) (*http.Response, string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, portalURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", portalURL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body), nil
}

// cancel posts the job page's cancel form (typing the id to confirm).
func (b *browser) cancel(ctx context.Context, portalURL, hubName, jobID, reason string) (*http.Response, string, error) {
	token := b.csrf(portalURL + "/hubs/" + hubName + "/jobs/" + jobID)
	return b.post(ctx, portalURL, "/hubs/"+hubName+"/jobs/"+jobID+"/cancel",
		url.Values{"_csrf": {token}, "confirm": {jobID}, "reason": {reason}})
}

// cookies returns the browser's cookies for u (to replay them later).
func (b *browser) cookies(u string) []*http.Cookie {
	parsed, _ := url.Parse(u)
	return b.client.Jar.Cookies(parsed)
}

// portBelowEphemeralRange is a free loopback address whose port the kernel
// never hands out for a port-0 bind (Linux's ephemeral range starts at
// 32768), so it stays ours while the process that uses it is down.
func portBelowEphemeralRange(t *testing.T) string {
	t.Helper()
	for range 50 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(10000)))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}
