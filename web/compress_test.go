package web_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/static"
)

// gunzip decodes a gzip body, failing the test if it is not one.
func gunzip(t *testing.T, body string) string {
	t.Helper()
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("body is not gzip: %v (%.40q)", err, body)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return string(b)
}

func TestCompression_PagesFragmentsAndExports(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")
	v, a := p.as(viewerU), p.as(auditorU)
	p.get(v, "/hubs/prod/jobs/job-run") // an audit snapshot for the export

	tests := []struct {
		name   string
		as     *user
		path   string
		header []string
		status int
		want   string // in the decoded body
	}{
		{name: "JobPage", as: v, path: "/hubs/prod/jobs/job-run", status: 200, want: `data-job-id="job-run"`},
		{name: "JobFragment", as: v, path: "/hubs/prod/jobs/job-run", header: []string{"HX-Request", "true"}, status: 200, want: `<article id="job"`},
		{name: "JobList", as: v, path: "/hubs/prod/jobs", status: 200, want: `id="jobs-table"`},
		{name: "AuditPage", as: a, path: "/audit", status: 200, want: "Audit"},
		{name: "ErrorPage", as: v, path: "/hubs/nowhere/jobs", status: 404, want: "request-id"},
		{name: "SameOriginBrowserRequest", as: v, path: "/hubs/prod/jobs/job-run", header: []string{"Sec-Fetch-Site", "same-origin"}, status: 200, want: "job-run"},
		{name: "TypedURL", as: v, path: "/hubs/prod/jobs/job-run", header: []string{"Sec-Fetch-Site", "none"}, status: 200, want: "job-run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.get(tt.as, tt.path, append([]string{"Accept-Encoding", "gzip, deflate, br, zstd"}, tt.header...)...)
			if r.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.status)
			}
			if ce := r.Header.Get("Content-Encoding"); ce != "gzip" {
				t.Fatalf("Content-Encoding %q, want gzip", ce)
			}
			if !varies(r.Header, "Accept-Encoding") || !varies(r.Header, "HX-Request") {
				t.Errorf("Vary %q lacks Accept-Encoding or HX-Request", r.Header.Values("Vary"))
			}
			if r.Header.Get("Content-Security-Policy") == "" || r.Header.Get("Cache-Control") != "no-store" {
				t.Error("security headers lost on a compressed response")
			}
			if body := gunzip(t, r.body); !strings.Contains(body, tt.want) {
				t.Errorf("decoded body lacks %q: %.200s", tt.want, body)
			}
		})
	}

	// The CSV streams (it flushes per page) and is still one valid gzip.
	csv := p.get(v, "/hubs/prod/jobs/job-run/devices.csv", "Accept-Encoding", "gzip")
	body := csv.body
	if csv.Header.Get("Content-Encoding") == "gzip" {
		body = gunzip(t, body)
	}
	if csv.StatusCode != 200 || !strings.HasPrefix(body, "deviceId,") && !strings.Contains(strings.SplitN(body, "\n", 2)[0], "device") {
		t.Errorf("devices CSV: %d %.120q", csv.StatusCode, body)
	}
	if len(body) >= 1024 && csv.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("a %d-byte CSV went out uncompressed", len(body))
	}
	export := p.get(a, "/audit.csv", "Accept-Encoding", "gzip")
	if export.StatusCode != 200 || export.Header.Get("Content-Encoding") == "gzip" && !strings.Contains(gunzip(t, export.body), "job-run") {
		t.Errorf("audit CSV: %d", export.StatusCode)
	}
}

func TestCompression_Exceptions(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")
	v := p.as(viewerU)
	page := "/hubs/prod/jobs/job-run"
	tests := []struct {
		name   string
		path   string
		header []string
		// want: "" = no Content-Encoding; "gzip-once" = gzip, and the
		// decoded body is the plain resource (never gzip inside gzip).
		want     string
		contains string
	}{
		{name: "NoAcceptEncoding", path: page, header: []string{"Accept-Encoding", "identity"}, contains: "job-run"},
		{name: "GzipRefusedByQValue", path: page, header: []string{"Accept-Encoding", "gzip;q=0, identity"}, contains: "job-run"},
		{name: "CrossSiteRequest", path: page, header: []string{"Accept-Encoding", "gzip", "Sec-Fetch-Site", "cross-site"}, contains: "job-run"},
		{name: "SameSiteRequest", path: page, header: []string{"Accept-Encoding", "gzip", "Sec-Fetch-Site", "same-site"}, contains: "job-run"},
		{name: "Healthz", path: "/healthz", header: []string{"Accept-Encoding", "gzip"}, contains: "ok"},
		{name: "MetricsGzipsItselfOnce", path: "/metrics", header: []string{"Accept-Encoding", "gzip"}, want: "gzip-once", contains: "# HELP"},
		{name: "AssetIsPreGzippedOnce", path: static.URL("app.css"), header: []string{"Accept-Encoding", "gzip"}, want: "gzip-once", contains: ":root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := p.get(v, tt.path, tt.header...)
			if r.StatusCode != 200 {
				t.Fatalf("status %d", r.StatusCode)
			}
			body := r.body
			switch ce := r.Header.Get("Content-Encoding"); {
			case tt.want == "" && ce != "":
				t.Fatalf("Content-Encoding %q, want none", ce)
			case tt.want == "gzip-once" && ce != "gzip":
				t.Fatalf("Content-Encoding %q, want gzip", ce)
			case tt.want == "gzip-once":
				body = gunzip(t, body)
				if strings.HasPrefix(body, "\x1f\x8b") {
					t.Fatal("compressed twice")
				}
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body lacks %q: %.120q", tt.contains, body)
			}
		})
	}
}

// htmx stops polling on 286; a compressed answer must keep that status.
func TestCompression_KeepsStopPollingStatus(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")
	v := p.as(viewerU)
	p.clock.Advance(2 * time.Minute) // the simulator finishes the job
	r := p.get(v, "/hubs/prod/jobs/job-run/status", "HX-Request", "true", "Accept-Encoding", "gzip")
	if r.StatusCode != 286 {
		t.Fatalf("status %d, want 286", r.StatusCode)
	}
	body := r.body
	if r.Header.Get("Content-Encoding") == "gzip" {
		body = gunzip(t, body)
	}
	if !strings.HasPrefix(body, `<section id="job-status"`) {
		t.Errorf("286 body %.80q", body)
	}
}

func varies(h http.Header, name string) bool {
	for _, v := range h.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}
