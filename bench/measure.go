package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

var loginRequestRE = regexp.MustCompile(`name="request" value="([^"]+)"`)

// signIn logs user in through the demo identity provider's form (password =
// user name) and returns the portal's cookies as a Cookie header value.
func signIn(ctx context.Context, base, user string) (string, error) {
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/auth/login?next="+url.QueryEscape(jobPagePath), nil)
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	form, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginRequestRE.FindSubmatch(form)
	if m == nil {
		return "", fmt.Errorf("no login form at %s (status %s)", resp.Request.URL, resp.Status)
	}
	resp, err = client.PostForm(resp.Request.URL.String(), url.Values{
		"request": {string(m[1])}, "username": {user}, "password": {user},
	})
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != jobPagePath {
		return "", fmt.Errorf("sign-in ended at %s with %s, want %s 200", resp.Request.URL, resp.Status, jobPagePath)
	}
	baseURL, _ := url.Parse(base)
	var pairs []string
	for _, c := range jar.Cookies(baseURL) {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	return strings.Join(pairs, "; "), nil
}

// firstLoad is what a browser with an empty cache transfers for a job page.
type firstLoad struct {
	pageBytes, assetBytes int
	assets, thirdParty    int
	gzipped               bool // the portal compressed the page itself
	// pageProxyGzip is the page compressed here at gzip's default level: what
	// a gzip-ing reverse proxy would send for a request the portal itself
	// leaves uncompressed (one another site started: the BREACH guard).
	pageProxyGzip int
}

var assetRE = regexp.MustCompile(`<(?:script|img)\b[^>]*\bsrc="([^"]+)"|<link\b[^>]*\bhref="([^"]+)"`)

func measureFirstLoad(ctx context.Context, base, path, cookie string) (firstLoad, error) {
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	get := func(u string) (raw []byte, gzipped bool, err error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("Cookie", cookie)
		resp, err := client.Do(req)
		if err != nil {
			return nil, false, err
		}
		defer resp.Body.Close()
		raw, err = io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return raw, resp.Header.Get("Content-Encoding") == "gzip", err
	}
	raw, gzipped, err := get(base + path)
	if err != nil {
		return firstLoad{}, err
	}
	fl := firstLoad{pageBytes: len(raw), gzipped: gzipped, pageProxyGzip: len(raw)}
	html := raw
	if gzipped {
		zr, err := gzip.NewReader(strings.NewReader(string(raw)))
		if err != nil {
			return firstLoad{}, err
		}
		if html, err = io.ReadAll(zr); err != nil {
			return firstLoad{}, err
		}
	} else {
		var buf strings.Builder
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return firstLoad{}, err
		}
		if err := zw.Close(); err != nil {
			return firstLoad{}, err
		}
		fl.pageProxyGzip = buf.Len()
	}
	seen := map[string]bool{}
	for _, m := range assetRE.FindAllStringSubmatch(string(html), -1) {
		ref := m[1] + m[2]
		if seen[ref] || strings.HasPrefix(ref, "data:") || strings.HasPrefix(ref, "#") {
			continue
		}
		seen[ref] = true
		u, err := url.Parse(ref)
		if err != nil {
			return firstLoad{}, fmt.Errorf("asset %q: %w", ref, err)
		}
		if u.Host != "" {
			fl.thirdParty++
			continue
		}
		if !strings.HasPrefix(u.Path, "/static/") && !strings.Contains(ref, ".") {
			continue // a navigation link, not an asset
		}
		body, _, err := get(base + u.RequestURI())
		if err != nil {
			return firstLoad{}, err
		}
		fl.assets++
		fl.assetBytes += len(body)
	}
	return fl, nil
}

// pollResult is the outcome of many browsers polling one running job.
type pollResult struct {
	requests, refused int
	hubGets           int
	windows           float64
	rssPeak, rssHWM   int64 // bytes
}

func measurePolling(ctx context.Context, demo *process, cookie string, o options) (pollResult, error) {
	before, err := hubGets(ctx, demo.url)
	if err != nil {
		return pollResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.poll)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.pollers}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var requests, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range o.pollers {
		offset := o.pollEvery * time.Duration(i) / time.Duration(o.pollers)
		wg.Go(func() {
			timer := time.NewTimer(offset)
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				timer.Reset(o.pollEvery)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, demo.url+statusPollURL, nil)
				req.Header.Set("HX-Request", "true")
				req.Header.Set("Cookie", cookie)
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						refused.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				requests.Add(1)
				if resp.StatusCode != http.StatusOK && resp.StatusCode != 286 {
					refused.Add(1)
				}
			}
		})
	}
	var peak int64
	sample := time.NewTicker(250 * time.Millisecond)
	defer sample.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-sample.C:
			if rss, _, err := memory(demo.cmd.Process.Pid); err == nil {
				peak = max(peak, rss)
			}
		}
	}
	wg.Wait()
	after, err := hubGets(context.Background(), demo.url)
	if err != nil {
		return pollResult{}, err
	}
	_, hwm, err := memory(demo.cmd.Process.Pid)
	if err != nil {
		return pollResult{}, err
	}
	return pollResult{
		requests: int(requests.Load()), refused: int(refused.Load()),
		hubGets: after - before, windows: o.poll.Seconds() / hubTTL.Seconds(),
		rssPeak: peak, rssHWM: hwm,
	}, nil
}

// memory reads a process's resident set and its high-water mark (bytes).
func memory(pid int) (rss, hwm int64, err error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return 0, 0, err
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if rss == 0 {
		return 0, 0, errors.New("no VmRSS in /proc status")
	}
	return rss, hwm, nil
}

// clockTicks is Linux's USER_HZ, the unit of /proc/PID/stat's CPU times
// (100 on every architecture Go supports on Linux).
const clockTicks = 100

// cpuTime is the CPU time (user + system, all threads) pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: count from after it.
	i := strings.LastIndexByte(string(stat), ')')
	f := strings.Fields(string(stat[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, stat)
	}
	var ticks int64
	for _, field := range f[11:13] { // utime, stime: fields 14 and 15
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// report holds every figure for the table.
type report struct {
	coldStarts   []time.Duration
	firstLoad    firstLoad
	bare, portal []throughput
	generator    string
	poll         pollResult
}

func (r report) print(w io.Writer, o options) {
	rps := func(ts []throughput) float64 {
		xs := make([]float64, len(ts))
		for i, t := range ts {
			xs[i] = t.rps
		}
		return median(xs)
	}
	lat := func(ts []throughput) (p50, p99 time.Duration, errs int) {
		var a, b []time.Duration
		for _, t := range ts {
			a, b, errs = append(a, t.p50), append(b, t.p99), errs+t.errors
		}
		return median(a), median(b), errs
	}
	cpu := func(ts []throughput) time.Duration {
		xs := make([]time.Duration, len(ts))
		for i, t := range ts {
			xs[i] = t.cpuPerRequest()
		}
		return median(xs)
	}
	bareRPS, portalRPS := rps(r.bare), rps(r.portal)
	bareCPU, portalCPU := cpu(r.bare), cpu(r.portal)
	b50, b99, bErr := lat(r.bare)
	p50, p99, pErr := lat(r.portal)
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	kb := func(b int) string { return fmt.Sprintf("%.1f KB", float64(b)/1024) }
	page := "page gzip (by the portal)"
	if !r.firstLoad.gzipped {
		page = "page NOT compressed"
	}
	fl := r.firstLoad

	fmt.Fprintf(w, "hubjobs bench: %s, %d CPUs, load generator %s, %d rounds × %s, %d connections\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), r.generator, o.rounds, o.duration, o.connections)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasured\tbudget (docs/contract.md)")
	fmt.Fprintf(tw, "cold start, exec → /readyz 200 (demo)\tmedian %s of %d (min %s, max %s)\t< 300 ms\n",
		ms(median(r.coldStarts)), len(r.coldStarts), ms(slices.Min(r.coldStarts)), ms(slices.Max(r.coldStarts)))
	fmt.Fprintf(tw, "bare echo handler, static 2 KB page\t%.0f req/s, p50 %s, p99 %s, %d errors\t\n", bareRPS, ms(b50), ms(b99), bErr)
	fmt.Fprintf(tw, "job page over HTTP, signed in\t%.0f req/s, p50 %s, p99 %s, %d errors\t\n", portalRPS, ms(p50), ms(p99), pErr)
	fmt.Fprintf(tw, "  ratio job page / bare\t%.1f %%\t≥ 15 %%\n", 100*portalRPS/bareRPS)
	fmt.Fprintf(tw, "  server CPU per request, bare / job page\t%s / %s = %.1f %% (steadier than req/s on a busy machine)\t\n",
		us(bareCPU), us(portalCPU), 100*float64(bareCPU)/float64(max(portalCPU, 1)))
	fmt.Fprintf(tw, "%d clients polling a running job every %s\t%d polls in %s, %d failed\t\n",
		o.pollers, o.pollEvery, r.poll.requests, o.poll, r.poll.refused)
	fmt.Fprintf(tw, "  hub GETs per %s TTL window\t%d GETs / %.1f windows = %.2f\t≤ 1\n",
		hubTTL, r.poll.hubGets, r.poll.windows, float64(r.poll.hubGets)/r.poll.windows)
	fmt.Fprintf(tw, "  hub GETs per poll\t%.4f\t\n", float64(r.poll.hubGets)/float64(max(r.poll.requests, 1)))
	fmt.Fprintf(tw, "RSS under that load\tpeak %s (VmHWM over the whole run %s)\t< 60 MB\n", mb(r.poll.rssPeak), mb(r.poll.rssHWM))
	fmt.Fprintf(tw, "first load of a job page, as served\t%s %s + %d assets (gzip) %s = %s; %d third-party\t< 100 KB, none\n",
		page, kb(fl.pageBytes), fl.assets, kb(fl.assetBytes), kb(fl.pageBytes+fl.assetBytes), fl.thirdParty)
	if !fl.gzipped {
		fmt.Fprintf(tw, "  behind a gzip-ing reverse proxy\tpage %s + assets %s = %s, all compressed\t< 100 KB compressed\n",
			kb(fl.pageProxyGzip), kb(fl.assetBytes), kb(fl.pageProxyGzip+fl.assetBytes))
	}
	tw.Flush()
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond)) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
