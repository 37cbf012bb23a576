package web_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/views"
)

// benchJob is a realistic running method job with history, as views get it.
func benchJob() views.JobPage {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	j := views.Job{Hub: "prod", ID: "firmware-rollout-2026-03-10-ring-2", Type: "scheduleDeviceMethod", Status: "running",
		Created: now.Add(-time.Hour), Started: now.Add(-50 * time.Minute), PlannedStop: now.Add(10 * time.Minute),
		MaxExecution: time.Hour, Query: "tags.ring = 'two' AND properties.reported.fw < '4.2.1'",
		Method: &views.Method{Name: "applyFirmware", ResponseTimeout: 30, ConnectTimeout: 10,
			Payload: "{\n  \"version\": \"4.2.1\",\n  \"url\": \"https://updates.example.com/fw/4.2.1.bin\"\n}"},
		Stats: &views.Stats{Devices: 12000, Succeeded: 7000, Failed: 120, Running: 900, Pending: 3980}, Now: now}
	var hist []views.AuditEntry
	for i := range 10 {
		hist = append(hist, views.AuditEntry{Seq: int64(i), Time: now, Action: "job.cancel.refused", Actor: "Otto Operator",
			Result: "not attempted: job is running", Reason: "wrong ring"})
	}
	return views.JobPage{Job: j, History: hist, Cancel: views.CancelControl{Allowed: true, MaxReason: 500, CSRFToken: "tok"}}
}

// BenchmarkJobPageRender renders the full job page in-process (templ only,
// fake data) and reports the latency distribution.
func BenchmarkJobPageRender(b *testing.B) {
	m := benchJob()
	l := views.Layout{Title: "Job", User: &views.User{Name: "Otto", Roles: []string{"operator"}}, Hubs: []string{"prod", "eu"},
		CSRFToken: "tok", Assets: views.Assets{CSS: "/static/a.css", HTMX: "/static/h.js", JS: "/static/a.js"}}
	ctx := templ.WithNonce(context.Background(), "nonce")
	var buf bytes.Buffer
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		start := time.Now()
		if err := views.JobFullPage(l, m).Render(ctx, &buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportPercentiles(b, lat)
	b.ReportMetric(float64(buf.Len()), "html_bytes")
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) }
	b.ReportMetric(pct(0.50), "p50_µs")
	b.ReportMetric(pct(0.99), "p99_µs")
}

// BenchmarkJobPageHandler is one signed-in job page through the real
// router, in-process (no sockets, no load generator): the hot path to
// profile with -cpuprofile / -memprofile. Wired as production is: the
// session's revocation is checked in the audit store (SQLite), the job has
// an audit history, logs at warning level as the demo does.
func BenchmarkJobPageHandler(b *testing.B) {
	p := newPortal(b, portalOptions{budgetTTL: time.Hour, revocationsInStore: true, quietLogs: true})
	p.runningJob("prod", "job-run")
	op := p.as(operatorU)
	if r := p.cancel(op, "prod", "job-run", url.Values{"id": {"job-run"}, "reason": {"bench history"}}); r.StatusCode != http.StatusConflict {
		b.Fatalf("refused cancel for the history: %d", r.StatusCode) // a running job: 409, audited
	}
	h := p.web.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, "/hubs/prod/jobs/job-run", nil)
			req.AddCookie(op.cookie)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("job page: %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkJobPageOverHTTP serves the job page through the whole portal
// (router, middleware, session cookie and its revocation check in the audit
// store, budget cache, audit history on SQLite, templ; logging at warning
// level as the demo does) and, in the same run, a bare echo handler
// answering a static 2 KB page; both over real HTTP with 8 concurrent
// keep-alive clients. portal/bare is the share of the bare handler's rate
// the portal reaches.
func BenchmarkJobPageOverHTTP(b *testing.B) {
	p := newPortal(b, portalOptions{budgetTTL: time.Hour, revocationsInStore: true, quietLogs: true})
	p.runningJob("prod", "job-run")
	v := p.as(viewerU)

	bare := echo.New()
	page := []byte("<!doctype html><title>x</title>" + strings.Repeat("<p>static filler text</p>", 80))
	page = page[:2048]
	bare.GET("/", func(c echo.Context) error { return c.HTMLBlob(http.StatusOK, page) })
	bareSrv := httptest.NewServer(bare)
	defer bareSrv.Close()

	// run sends n requests from 8 concurrent clients and returns the time taken.
	run := func(url string, cookie *http.Cookie, n int) time.Duration {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		defer client.CloseIdleConnections()
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for range 8 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					req, _ := http.NewRequest(http.MethodGet, url, nil)
					if cookie != nil {
						req.AddCookie(cookie)
					}
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("%s: %d", url, resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	portalURL := p.srv.URL + "/hubs/prod/jobs/job-run"
	run(portalURL, v.cookie, 50) // warm up
	// Interleave rounds so that load from other processes on a shared
	// machine hits both sides alike.
	const rounds = 10
	per := max(b.N/rounds, 20)
	var portalTime, bareTime time.Duration
	b.ResetTimer()
	for range rounds {
		portalTime += run(portalURL, v.cookie, per)
		bareTime += run(bareSrv.URL+"/", nil, per)
	}
	portalRate := float64(per*rounds) / portalTime.Seconds()
	bareRate := float64(per*rounds) / bareTime.Seconds()
	b.ReportMetric(portalRate, "portal_pages/s")
	b.ReportMetric(bareRate, "bare_pages/s")
	b.ReportMetric(100*portalRate/bareRate, "portal/bare_%")
}

// BenchmarkPollingHubCalls has 200 browsers poll one running job's status
// every 5 s for a simulated minute (staggered, as real browsers are) and
// counts the GETs that reached the hub. With the budget's TTL of 2 s, the
// minute has 30 TTL windows: the target is ≤ 1 hub GET per window.
func BenchmarkPollingHubCalls(b *testing.B) {
	const clients, every, minute, step = 200, 5 * time.Second, time.Minute, 100 * time.Millisecond
	for b.Loop() {
		p := newPortal(b, portalOptions{hubs: []hubSpec{{name: "prod", devices: 400}}})
		p.runningJob("prod", "job-run")
		users := make([]*user, clients)
		for i := range users {
			users[i] = p.as(viewerU)
		}
		p.sims["prod"].ResetCalls()
		requests := 0
		for elapsed := time.Duration(0); elapsed < minute; elapsed += step {
			var wg sync.WaitGroup
			for i, u := range users {
				// clients spread over the 5 s period, 4 per 100 ms step
				if offset := time.Duration(i%int(every/step)) * step; elapsed >= offset && (elapsed-offset)%every == 0 {
					requests++
					wg.Go(func() {
						r := p.get(u, "/hubs/prod/jobs/job-run/status", "HX-Request", "true")
						if r.StatusCode != 200 {
							b.Errorf("poll: %d", r.StatusCode)
						}
					})
				}
			}
			wg.Wait()
			p.clock.Advance(step)
		}
		gets := p.sims["prod"].Calls(hubsim.OpGetJob)
		windows := float64(minute / (2 * time.Second))
		b.ReportMetric(float64(requests), "polls")
		b.ReportMetric(float64(gets), "hub_gets")
		b.ReportMetric(float64(gets)/windows, "hub_gets/TTL_window")
	}
}

// BenchmarkFirstLoadBytes is what a browser downloads to open a job page
// with a cold cache: the HTML plus every asset it references, gzipped
// (assets are served pre-gzipped; the HTML is gzipped here as a reverse
// proxy would, and also reported uncompressed).
func BenchmarkFirstLoadBytes(b *testing.B) {
	p := newPortal(b, portalOptions{})
	p.scheduledJob("prod", "job-1")
	op := p.as(operatorU)
	for b.Loop() {
		r := p.get(op, "/hubs/prod/jobs/job-1")
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write([]byte(r.body))
		zw.Close()
		assets := 0
		d, _ := goqueryDoc(r.body)
		var urls []string
		d.Find(`link[rel=stylesheet]`).Each(func(_ int, s *goquerySelection) { h, _ := s.Attr("href"); urls = append(urls, h) })
		d.Find(`script[src]`).Each(func(_ int, s *goquerySelection) { h, _ := s.Attr("src"); urls = append(urls, h) })
		for _, u := range urls {
			if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
				b.Fatalf("third-party request %q", u)
			}
			a := p.get(nil, u, "Accept-Encoding", "gzip")
			if a.Header.Get("Content-Encoding") != "gzip" {
				b.Fatalf("%s not gzipped", u)
			}
			assets += len(a.body)
		}
		b.ReportMetric(float64(len(r.body)), "html_bytes")
		b.ReportMetric(float64(gz.Len()), "html_gzip_bytes")
		b.ReportMetric(float64(assets), "assets_gzip_bytes")
		b.ReportMetric(float64(gz.Len()+assets), "total_gzip_bytes")
		b.ReportMetric(float64(len(r.body)+assets), "total_bytes_html_plain")
	}
}
