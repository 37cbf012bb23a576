package auth

import (
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

func TestSafeNext_KeepsAllowedLocalPathsExactly(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"Home", "/", "/"},
		{"JobList", "/hubs/prod/jobs", "/hubs/prod/jobs"},
		{"JobWithQuery", "/hubs/prod/jobs/job-42?tab=devices&page=2", "/hubs/prod/jobs/job-42?tab=devices&page=2"},
		{"EncodedQueryKept", "/hubs/eu/jobs?q=M%C3%BCller&status=running", "/hubs/eu/jobs?q=M%C3%BCller&status=running"},
		{"FragmentDropped", "/hubs/prod/jobs/j1#devices", "/hubs/prod/jobs/j1"},
		{"BackslashInQueryIsOnlyData", "/hubs/prod/jobs?q=a\\b", "/hubs/prod/jobs?q=a\\b"},
		{"NotARoute", "/hubs/prod/elsewhere", "/"},
		{"Empty", "", "/"},
		{"HomeWithQuery", "/?x=1", "/?x=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := safeNext(tc.in, portalRoutes); got != tc.want {
				t.Errorf("safeNext(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if got := safeNext("/hubs/prod/jobs", nil2default()); got != "/" {
		t.Errorf("default allow-list let %q through", got)
	}
}

func nil2default() func(string) bool {
	c, _ := Config{}.withDefaults()
	return c.NextAllowed
}

// openRedirectPayloads reads testdata/openredirects.txt: one payload per
// line, used both as written and URL-unescaped once (as a browser or proxy
// might deliver it). Control characters are written percent-encoded.
func openRedirectPayloads(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile("testdata/openredirects.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		out = append(out, line)
		if un, err := url.QueryUnescape(line); err == nil && un != line {
			out = append(out, un)
		}
	}
	if lines := strings.Count(string(raw), "\n"); lines < 200 {
		t.Fatalf("corpus has %d payloads, want at least 200", lines)
	}
	return out
}

// staysLocal reports whether a Location value can only mean a path on the
// portal's own origin.
func staysLocal(loc string) bool {
	if loc == "" || loc[0] != '/' || len(loc) > 1 && (loc[1] == '/' || loc[1] == '\\') || !printableASCII(loc) {
		return false
	}
	base, _ := url.Parse("https://portal.example.com/hubs/x")
	ref, err := url.Parse(loc)
	return err == nil && base.ResolveReference(ref).Host == "portal.example.com"
}

// landsSafely reports whether a Location value is "/" or an allowed route
// on our own origin (a payload hidden in the query of a real route is just
// data and may stay).
func landsSafely(loc string) bool {
	if loc == "/" {
		return true
	}
	u, err := url.Parse(loc)
	return err == nil && staysLocal(loc) && portalRoutes(u.Path)
}

func TestSafeNext_OpenRedirectCorpus(t *testing.T) {
	allowAll := func(string) bool { return true }
	for _, p := range openRedirectPayloads(t) {
		if got := safeNext(p, portalRoutes); !landsSafely(got) {
			t.Errorf("safeNext(%q, routes) = %q, want \"/\" or an allowed route", p, got)
		}
		if got := safeNext(p, nil2default()); got != "/" && !strings.HasPrefix(got, "/?") {
			t.Errorf("safeNext(%q, default) = %q, want \"/\"", p, got)
		}
		// Even with an allow-list that says yes to everything, the shape
		// check alone must keep the browser on our origin.
		if got := safeNext(p, allowAll); !staysLocal(got) || strings.HasPrefix(got, "/auth") {
			t.Errorf("safeNext(%q, allow-all) = %q: not a local, non-auth path", p, got)
		}
	}
}

// TestLogin_OpenRedirectCorpusEndsAtHome sends every payload through the
// real handlers, /auth/login?next=… then the callback: the browser must land
// on "/" or an allowed route of our own every time, and the transaction
// cookie must stay small.
func TestLogin_OpenRedirectCorpusEndsAtHome(t *testing.T) {
	f := newOPFixture(t)
	for _, p := range openRedirectPayloads(t) {
		state, nonce, tx := f.begin(t, p)
		if len(tx.Name)+len(tx.Value) > 1024 {
			t.Errorf("next=%q: transaction cookie is %d bytes", p, len(tx.Name)+len(tx.Value))
		}
		f.op.setIDToken(f.op.sign(f.claims(nonce)))
		rec := f.callback("code=c&state="+state, tx)
		if rec.Code != http.StatusSeeOther || !landsSafely(rec.Header().Get("Location")) {
			t.Errorf("next=%q: callback %d Location %q, want 303 to \"/\" or an allowed route", p, rec.Code, rec.Header().Get("Location"))
		}
	}
}
