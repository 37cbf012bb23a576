package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// Browsers ask for /favicon.ico whatever the page links: it must answer
// without a sign-in and without a 404, and the icon the layout links must
// be served and allowed by the CSP.
func TestFavicon(t *testing.T) {
	p := newPortal(t, portalOptions{})
	p.runningJob("prod", "job-run")

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		r := p.do(anonymous, method, "/favicon.ico", nil)
		if r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/static/favicon.svg" {
			t.Errorf("%s /favicon.ico = %d → %q, want 301 → /static/favicon.svg", method, r.StatusCode, r.Header.Get("Location"))
		}
		if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
			t.Errorf("%s /favicon.ico Cache-Control %q: the redirect should be cacheable", method, cc)
		}
	}

	page := p.get(p.as(viewerU), "/hubs/prod/jobs/job-run")
	href, ok := page.doc(t).Find(`head link[rel="icon"]`).Attr("href")
	if !ok || !strings.HasPrefix(href, "/static/favicon.") || !strings.HasSuffix(href, ".svg") {
		t.Fatalf("layout links icon %q", href)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self'") {
		t.Errorf("CSP %q does not allow a same-origin icon", csp)
	}
	for _, path := range []string{href, "/static/favicon.svg"} {
		r := p.get(anonymous, path)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(r.body, "<svg") {
			t.Errorf("GET %s = %d %q %.40q, want the SVG", path, r.StatusCode, r.Header.Get("Content-Type"), r.body)
		}
	}

	if logs := p.logs.String(); strings.Contains(logs, "status=404") {
		t.Errorf("a 404 was logged:\n%s", logs)
	}
}
