package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
)

// Who may open what: every route × every role, as docs/contract.md "Roles" says.
func TestRouteAccessByRole(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.scheduledJob("prod", "job-1")
	users := map[string]*user{"viewer": p.as(viewerU), "operator": p.as(operatorU), "auditor": p.as(auditorU), "admin": p.as(adminU)}
	jobs := map[string]int{"viewer": 200, "operator": 200, "auditor": 403, "admin": 200}
	trail := map[string]int{"viewer": 403, "operator": 403, "auditor": 200, "admin": 200}
	routes := []struct {
		path string
		want map[string]int
	}{
		{"/hubs", jobs},
		{"/hubs/prod/jobs", jobs},
		{"/hubs/prod/jobs?status=scheduled&type=scheduleDeviceMethod", jobs},
		{"/hubs/prod/jobs/job-1", jobs},
		{"/hubs/prod/jobs/job-1/status", jobs},
		{"/hubs/prod/jobs/job-1/devices", jobs},
		{"/hubs/prod/jobs/job-1/devices.csv", jobs},
		{"/audit", trail},
		{"/audit.csv", trail},
	}
	for _, rt := range routes {
		for role, u := range users {
			t.Run(role+" "+rt.path, func(t *testing.T) {
				r := p.get(u, rt.path)
				if r.StatusCode != rt.want[role] {
					t.Fatalf("GET %s as %s = %d, want %d\n%s", rt.path, role, r.StatusCode, rt.want[role], r.body)
				}
				if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", cc)
				}
			})
		}
		t.Run("anonymous "+rt.path, func(t *testing.T) {
			r := p.get(anonymous, rt.path)
			loc, _ := url.Parse(r.Header.Get("Location"))
			wantNext := "/" // fragments and exports are not bookmarks
			if path, _, _ := strings.Cut(rt.path, "?"); webNextAllowed(path) {
				wantNext = rt.path
			}
			if r.StatusCode != http.StatusSeeOther || loc.Path != "/auth/login" || loc.Query().Get("next") != wantNext {
				t.Fatalf("anonymous GET %s = %d Location %q, want 303 to login with next=%s", rt.path, r.StatusCode, loc, wantNext)
			}
			if strings.Contains(r.body, "reboot") || strings.Contains(r.body, "job-status") {
				t.Error("an anonymous answer leaks job data")
			}
			hx := p.get(anonymous, rt.path, "HX-Request", "true")
			if hx.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(hx.Header.Get("HX-Redirect"), "/auth/login?next=") {
				t.Fatalf("anonymous htmx GET %s = %d HX-Redirect %q", rt.path, hx.StatusCode, hx.Header.Get("HX-Redirect"))
			}
		})
	}
	// Denied pages are audited by auth as authz.denied.
	if got := p.entries(audit.Filter{Action: audit.AuthzDenied}); len(got) == 0 {
		t.Error("role refusals were not audited")
	}
}

func TestHomeRedirects(t *testing.T) {
	p := newPortal(t, portalOptions{})
	for _, tc := range []struct {
		u    *user
		want string
	}{
		{p.as(viewerU), "/hubs/prod/jobs"},
		{p.as(adminU), "/hubs/prod/jobs"},
		{p.as(auditorU), "/audit"},
	} {
		r := p.get(tc.u, "/")
		if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != tc.want {
			t.Errorf("GET / as %s = %d → %q, want 303 → %q", tc.u.name, r.StatusCode, r.Header.Get("Location"), tc.want)
		}
	}
	if r := p.get(anonymous, "/"); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/auth/login") {
		t.Errorf("anonymous GET / = %d → %q, want the login", r.StatusCode, r.Header.Get("Location"))
	}
}

func TestNextAllowed(t *testing.T) {
	for path, want := range map[string]bool{
		"/": true, "/hubs": true, "/hubs/prod/jobs": true, "/hubs/prod/jobs/job-1": true,
		"/hubs/prod/jobs/job-1/devices": true, "/audit": true,
		"/hubs/prod/jobs/job-1/status": false, "/hubs/prod/jobs/job-1/cancel": false,
		"/hubs/prod/jobs/job-1/devices.csv": false, "/audit.csv": false, "/auth/logout": false,
		"/hubs/PROD/jobs": false, "/hubs/prod/jobs/a/b": false, "//evil.com": false, "/metrics": false,
		"/hubs/prod/jobs/" + strings.Repeat("a", 129): false, "/static/app.css": false,
	} {
		if got := webNextAllowed(path); got != want {
			t.Errorf("NextAllowed(%q) = %v, want %v", path, got, want)
		}
	}
}
