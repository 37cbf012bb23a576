// Command bench measures hubjobs against the performance budgets of
// docs/contract.md on this machine, in one run, against `hubjobs demo`:
//
//	go run ./bench                 # ~2 minutes
//	go run ./bench -poll 20s -rounds 1   # quicker, rougher
//
// It builds the binary, starts the demo on 127.0.0.1 (several times, for
// the cold start), signs in through the demo identity provider, and then
// measures: pages/s of a job page against a bare echo handler serving a
// static 2 KB page (a separate process, same load generator, same run,
// alternating rounds); the hub GETs made while 200 clients poll one running
// job's status every 5 s, per hub-cache TTL window; the portal's RSS under
// that load; and the bytes (gzip) of a first job-page load with its assets.
// Machines are shared and noisy, so the figures that matter are the ratios.
//
// Everything binds 127.0.0.1 and stops by itself. The load generator is wrk
// when it is installed (apt-get install wrk), else a Go one; the output says
// which.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// bareEnv makes the bench binary serve the bare page instead (a child
// process, so the bare server and the portal are measured alike).
const bareEnv = "HUBJOBS_BENCH_BARE"

type options struct {
	duration    time.Duration // per throughput round
	rounds      int
	connections int
	pollers     int
	pollEvery   time.Duration
	poll        time.Duration
	coldStarts  int
	binary      string // a hubjobs binary to measure instead of building one
}

func main() {
	if os.Getenv(bareEnv) != "" {
		serveBare()
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each throughput round")
	flag.IntVar(&o.rounds, "rounds", 3, "throughput rounds (bare and portal alternate; medians reported)")
	flag.IntVar(&o.connections, "connections", 64, "concurrent connections for throughput")
	flag.IntVar(&o.pollers, "pollers", 200, "simulated browsers polling one running job")
	flag.DurationVar(&o.pollEvery, "poll-every", 5*time.Second, "how often each poller asks")
	flag.DurationVar(&o.poll, "poll", time.Minute, "how long the pollers poll")
	flag.IntVar(&o.coldStarts, "cold-starts", 5, "demo starts measured for the cold start")
	flag.StringVar(&o.binary, "binary", "", "measure this hubjobs binary instead of building ./cmd/hubjobs (to compare two builds)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Demo job pages measured: a finished job (the page people open from a
// ticket) for throughput and first load, the live rollout for polling.
var (
	jobPagePath   = "/hubs/prod/jobs/" + hubsim.DemoCompletedJobID
	statusPollURL = "/hubs/prod/jobs/" + hubsim.DemoLiveJobID + "/status"
)

func run(ctx context.Context, o options, out io.Writer) error {
	work, err := os.MkdirTemp("", "hubjobs-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	log := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }

	bin := o.binary
	if bin == "" {
		log("building hubjobs")
		bin = filepath.Join(work, "hubjobs")
		build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/hubjobs")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build: %w", err)
		}
	}

	var r report
	log("cold start × %d", o.coldStarts)
	var demo *process
	for i := range o.coldStarts {
		p, startup, err := startDemo(ctx, bin)
		if err != nil {
			return err
		}
		r.coldStarts = append(r.coldStarts, startup)
		if i < o.coldStarts-1 {
			if err := p.stop(); err != nil {
				return err
			}
			continue
		}
		demo = p
	}
	defer demo.stop()

	cookie, err := signIn(ctx, demo.url, "viewer")
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if r.firstLoad, err = measureFirstLoad(ctx, demo.url, jobPagePath, cookie); err != nil {
		return fmt.Errorf("first load: %w", err)
	}

	bare, err := startBare(ctx)
	if err != nil {
		return err
	}
	defer bare.stop()
	gen := newGenerator(o.connections)
	log("throughput: %d rounds of %s, %d connections, generator %s", o.rounds, o.duration, o.connections, gen.name())
	for range o.rounds {
		b, err := measureRound(ctx, gen, bare, bare.url+"/", "", o.duration)
		if err != nil {
			return fmt.Errorf("bare handler: %w", err)
		}
		p, err := measureRound(ctx, gen, demo, demo.url+jobPagePath, cookie, o.duration)
		if err != nil {
			return fmt.Errorf("job page: %w", err)
		}
		r.bare, r.portal = append(r.bare, b), append(r.portal, p)
	}
	r.generator = gen.name()

	log("polling: %d clients every %s for %s", o.pollers, o.pollEvery, o.poll)
	if r.poll, err = measurePolling(ctx, demo, cookie, o); err != nil {
		return fmt.Errorf("polling: %w", err)
	}
	if err := demo.stop(); err != nil {
		return fmt.Errorf("demo did not shut down cleanly: %w", err)
	}
	r.print(out, o)
	return nil
}

// measureRound runs one load round against url, served by server, and
// adds the CPU time the server used meanwhile.
func measureRound(ctx context.Context, gen generator, server *process, url, cookie string, d time.Duration) (throughput, error) {
	before, err := cpuTime(server.cmd.Process.Pid)
	if err != nil {
		return throughput{}, err
	}
	t, err := gen.run(ctx, url, cookie, d)
	if err != nil {
		return throughput{}, err
	}
	after, err := cpuTime(server.cmd.Process.Pid)
	if err != nil {
		return throughput{}, err
	}
	t.cpu = after - before
	return t, nil
}

// process is a started server with its URL.
type process struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// stop sends SIGTERM and waits for a clean exit (or kills after 30 s).
func (p *process) stop() error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("no exit 30 s after SIGTERM; killed")
	}
}

// startDemo starts `hubjobs demo` on a free port and measures the time
// from exec to the first /readyz 200.
func startDemo(ctx context.Context, bin string) (*process, time.Duration, error) {
	cmd := exec.Command(bin, "demo", "--listen", "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Portal:"); ok {
				urls <- strings.TrimSuffix(strings.TrimSpace(rest), "/")
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case p.url = <-urls:
	case err := <-p.done:
		return nil, 0, fmt.Errorf("demo exited before printing its URL: %v", err)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, 0, errors.New("demo printed no URL within 30 s")
	}
	if err := waitReady(ctx, p.url+"/readyz", 30*time.Second); err != nil {
		_ = p.stop()
		return nil, 0, err
	}
	return p, time.Since(start), nil
}

// waitReady polls url every millisecond until it answers 200.
func waitReady(ctx context.Context, url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return fmt.Errorf("%s not 200 within %s", url, limit)
}

// bareHTML is the bare handler's page: 2 KB of static HTML.
var bareHTML = "<!doctype html><html lang=en><head><meta charset=utf-8><title>bare</title></head><body><main>" +
	strings.Repeat("<p>hubjobs bench bare page, static text of a fixed size.</p>\n", 32)[:1900] + "</main></body></html>"

// serveBare is the child process: an echo server with one static route.
func serveBare() {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error { return c.HTML(http.StatusOK, bareHTML) })
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = e.Close()
	}()
	ln, err := netListen()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e.Listener = ln
	fmt.Printf("Bare: http://%s\n", ln.Addr())
	if err := e.Start(""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func startBare(ctx context.Context) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), bareEnv+"=1")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { p.done <- cmd.Wait() }()
	if err != nil {
		return nil, fmt.Errorf("bare handler: %w", err)
	}
	p.url = strings.TrimSpace(strings.TrimPrefix(line, "Bare:"))
	return p, waitReady(ctx, p.url+"/", 10*time.Second)
}

// median of durations or rates.
func median[T int | float64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// hubTTL is the window within which one hub GET may serve every poller.
var hubTTL = hub.DefaultBudgetTTL
