package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// throughput is one load round's result.
type throughput struct {
	rps      float64
	requests int
	p50, p99 time.Duration
	errors   int           // non-2xx answers or failed requests
	cpu      time.Duration // the server process's CPU time (user+system) during the round
}

// cpuPerRequest is what one request cost the server in CPU time: unlike
// requests/s, it hardly moves when other processes load the machine.
func (t throughput) cpuPerRequest() time.Duration {
	if t.requests == 0 {
		return 0
	}
	return t.cpu / time.Duration(t.requests)
}

// generator drives keep-alive GETs at full speed.
type generator interface {
	name() string
	run(ctx context.Context, url, cookie string, d time.Duration) (throughput, error)
}

func newGenerator(connections int) generator {
	if path, err := exec.LookPath("wrk"); err == nil {
		return wrkGenerator{path: path, connections: connections}
	}
	return goGenerator{connections: connections}
}

// wrkGenerator runs wrk: a C load generator leaves more of a small
// machine's CPU to the server than a Go one does.
type wrkGenerator struct {
	path        string
	connections int
}

func (w wrkGenerator) name() string { return "wrk" }

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkCount   = regexp.MustCompile(`(\d+) requests in`)
	wrkLatency = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkErrors  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func (w wrkGenerator) run(ctx context.Context, url, cookie string, d time.Duration) (throughput, error) {
	args := []string{"-t2", "-c" + strconv.Itoa(w.connections), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--latency"}
	if cookie != "" {
		args = append(args, "-H", "Cookie: "+cookie)
	}
	out, err := exec.CommandContext(ctx, w.path, append(args, url)...).CombinedOutput()
	if err != nil {
		return throughput{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	text := string(out)
	m := wrkRPS.FindStringSubmatch(text)
	if m == nil {
		return throughput{}, fmt.Errorf("wrk: no Requests/sec in %q", text)
	}
	var t throughput
	t.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := wrkCount.FindStringSubmatch(text); m != nil {
		t.requests, _ = strconv.Atoi(m[1])
	}
	for _, l := range wrkLatency.FindAllStringSubmatch(text, -1) {
		v, _ := strconv.ParseFloat(l[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[l[3]]
		if l[1] == "50" {
			t.p50 = time.Duration(v * float64(unit))
		} else {
			t.p99 = time.Duration(v * float64(unit))
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(text); m != nil {
		t.errors, _ = strconv.Atoi(m[1])
	}
	if m := wrkErrors.FindStringSubmatch(text); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			t.errors += n
		}
	}
	return t, nil
}

// goGenerator is the fallback when wrk is not installed.
type goGenerator struct{ connections int }

func (g goGenerator) name() string { return "Go (wrk not installed)" }

func (g goGenerator) run(ctx context.Context, url, cookie string, d time.Duration) (throughput, error) {
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: g.connections, DisableCompression: true,
	}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failed    atomic.Int64
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range g.connections {
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return throughput{}, fmt.Errorf("no request to %s completed", url)
	}
	slices.Sort(latencies)
	return throughput{
		rps:      float64(len(latencies)) / elapsed.Seconds(),
		requests: len(latencies),
		p50:      latencies[len(latencies)/2],
		p99:      latencies[len(latencies)*99/100],
		errors:   int(failed.Load()),
	}, nil
}

// hubGets reads the portal's count of GetJob calls to the prod hub from
// /metrics (every outcome).
func hubGets(ctx context.Context, base string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	total := 0
	for line := range strings.SplitSeq(string(body), "\n") {
		if !strings.HasPrefix(line, "hubjobs_hub_calls_total{") ||
			!strings.Contains(line, `hub="prod"`) || !strings.Contains(line, `operation="GetJob"`) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics line %q: %w", line, err)
		}
		total += int(v)
	}
	return total, nil
}
