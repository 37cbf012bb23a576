package e2e

import (
	"context"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// requireInfra stops a test that cannot run on this machine: in CI
// (CI=true) a missing browser or IdP is a failure, elsewhere a skip that says
// how to get it.
func requireInfra(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run `make e2e`, which installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// freePort finds a loopback port for a process that must know its port
// before it starts (Dex's issuer URL, the portal's public_url and redirect
// URI). The port is chosen at random BELOW the kernel's ephemeral range and
// checked by binding it: the port-0 trick would hand out an ephemeral port
// that any other test on the machine can be given too between our check and
// the process's bind (seen as "address already in use" under load); ports
// below the range are only ever taken by someone asking for them by number.
func freePort(t testing.TB) int {
	t.Helper()
	low, high := 20000, ephemeralLow()
	for range 100 {
		port := low + mathrand.IntN(high-low)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken; try another
		}
		l.Close()
		return port
	}
	t.Fatalf("no free loopback port in [%d, %d)", low, high)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux
// default 32768), or 32768 when it cannot be read or leaves no room.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low < 21000 {
		return 32768
	}
	return low
}

// process is a child process of a test, in its own process group so that
// stopping it also stops anything it started.
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr testkit.Buffer
	exited         chan struct{} // closed when the process has exited
	waitErr        error
}

// childEnv is the environment for child processes: the test's own, minus
// HUBJOBS_* variables, which `hubjobs serve` would read as config overrides.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUBJOBS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// startProcess starts bin with args. The process is stopped (SIGTERM to its
// group, SIGKILL after 5 s) when the test ends; if the test failed, its
// output is logged and saved under e2e/artifacts/.
func startProcess(t testing.TB, name, bin string, args ...string) *process {
	t.Helper()
	p := &process{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = childEnv()
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	// Own process group, and killed with the test binary if it dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.saveLogs(t)
		}
	})
	return p
}

// stop ends the process group gracefully, then forcibly.
func (p *process) stop() {
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.exited
	}
}

func (p *process) output() string {
	return fmt.Sprintf("--- %s stdout ---\n%s--- %s stderr ---\n%s", p.name, p.stdout.String(), p.name, p.stderr.String())
}

func (p *process) saveLogs(t testing.TB) {
	out := p.output()
	const tail = 4000
	if len(out) > tail {
		t.Logf("%s output (last %d bytes; full log in artifacts):\n%s", p.name, tail, out[len(out)-tail:])
	} else {
		t.Logf("%s output:\n%s", p.name, out)
	}
	path := artifactPath(t, p.name+".log")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Logf("save %s log: %v", p.name, err)
	}
}

// firstStdoutLine waits for the process's first line of output.
func (p *process) firstStdoutLine(t testing.TB, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if line, _, ok := strings.Cut(p.stdout.String(), "\n"); ok {
			return strings.TrimSpace(line)
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited before printing a line (%v)\n%s", p.name, p.waitErr, p.output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no line within %s\n%s", p.name, timeout, p.output())
		}
	}
}

// waitHTTP polls url until it answers 200, failing early if the process
// exits.
func (p *process) waitHTTP(t testing.TB, url string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited (%v) before %s answered 200\n%s", p.name, p.waitErr, url, p.output())
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 within %s (last: %s)\n%s", p.name, url, timeout, last, p.output())
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// artifactPath is where a test keeps a file worth looking at after the run:
// e2e/artifacts/<TestName>/<name>.
func artifactPath(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join("artifacts", unsafeName.ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// testContext is a context that ends with the test or after d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
