package auth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

// newTestClock is the injected clock shared by the portal and the IdP. It
// starts at the wall clock's second because go-oidc checks token times
// against the real time as well.
func newTestClock() *testkit.Clock { return testkit.NewClock(time.Now().Truncate(time.Second)) }

// eventLog is a stateful EventSink fake; failOn makes Record fail for one action.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	failOn string
}

func (l *eventLog) Record(_ context.Context, e Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Action == l.failOn {
		return errors.New("audit store is down")
	}
	l.events = append(l.events, e)
	return nil
}

func (l *eventLog) actions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		out = append(out, e.Action)
	}
	return out
}

func (l *eventLog) last(t *testing.T, action string) Event {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.events) - 1; i >= 0; i-- {
		if l.events[i].Action == action {
			return l.events[i]
		}
	}
	t.Fatalf("no %s event; have %v", action, l.events)
	return Event{}
}

// flakyRevocations wraps the memory store; fail makes every call fail.
type flakyRevocations struct {
	*MemoryRevocations
	mu         sync.Mutex
	fail       bool // every call fails
	failRevoke bool // only Revoke fails
}

func (f *flakyRevocations) setFail(v bool)       { f.mu.Lock(); f.fail = v; f.mu.Unlock() }
func (f *flakyRevocations) setFailRevoke(v bool) { f.mu.Lock(); f.failRevoke = v; f.mu.Unlock() }

func (f *flakyRevocations) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("revocation table unreachable")
	}
	return nil
}

func (f *flakyRevocations) Revoke(ctx context.Context, id string, until time.Time) error {
	if err := f.err(); err != nil {
		return err
	}
	f.mu.Lock()
	failRevoke := f.failRevoke
	f.mu.Unlock()
	if failRevoke {
		return errors.New("revocation table is read-only")
	}
	return f.MemoryRevocations.Revoke(ctx, id, until)
}

func (f *flakyRevocations) IsRevoked(ctx context.Context, id string) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.MemoryRevocations.IsRevoked(ctx, id)
}

var (
	testKey    = []byte("0123456789abcdef0123456789abcdef-current")
	testOldKey = []byte("fedcba9876543210fedcba9876543210-retired")
	testRoles  = map[Role][]string{
		RoleViewer: {"Jobs.Read"}, RoleOperator: {"Jobs.Cancel"}, RoleAuditor: {"Audit.Read"}, RoleAdmin: {"Jobs.Admin"},
	}
	jobRoute = regexp.MustCompile(`^/hubs/[a-z0-9-]{1,32}/jobs(/[A-Za-z0-9_-]{1,128})?$`)
)

// portalRoutes is the web package's route allow-list for ?next=, in small.
func portalRoutes(p string) bool { return p == "/" || jobRoute.MatchString(p) }

// testConfig is a complete Config for issuer and public URL.
func testConfig(issuer, publicURL string, clock *testkit.Clock, events *eventLog, rev RevocationStore, logs io.Writer) Config {
	return Config{
		Issuer: issuer, ClientID: "hubjobs", ClientSecret: "hubjobs-demo-secret",
		PublicURL: publicURL, RoleMap: testRoles,
		SessionKeys: [][]byte{testKey},
		NextAllowed: portalRoutes, Revocations: rev, Events: events,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    clock.Now, DiscoveryRetry: 10 * time.Millisecond,
	}
}

// fixture is a portal (real handlers on an httptest server) signed in
// through a real devidp, both on the test clock.
type fixture struct {
	clock  *testkit.Clock
	idp    *devidp.Server
	auth   *Authenticator
	portal *httptest.Server
	events *eventLog
	revs   *flakyRevocations
	logs   *testkit.Buffer
}

func newFixture(t *testing.T, options ...func(*Config, *devidp.Options)) *fixture {
	t.Helper()
	f := &fixture{clock: newTestClock(), events: &eventLog{}, logs: &testkit.Buffer{}}
	f.revs = &flakyRevocations{MemoryRevocations: NewMemoryRevocations(f.clock.Now)}
	idpOpts := devidp.Options{Now: f.clock.Now}
	var handler http.Handler
	f.portal = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(f.portal.Close)
	cfg := testConfig("", f.portal.URL, f.clock, f.events, f.revs, f.logs)
	for _, o := range options {
		o(&cfg, &idpOpts)
	}
	idp, err := devidp.Listen("127.0.0.1:0", idpOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	if err := idp.AllowRedirectURI(f.portal.URL + CallbackPath); err != nil {
		t.Fatal(err)
	}
	f.idp = idp
	cfg.Issuer = idp.Issuer()
	f.auth = mustNew(t, cfg)
	handler = testRoutes(f.auth)
	return f
}

func mustNew(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := a.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	return a
}

// testRoutes mounts the handlers the way web does.
func testRoutes(a *Authenticator) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+LoginPath, a.Login())
	mux.Handle("GET "+CallbackPath, a.Callback())
	mux.Handle("POST "+LogoutPath, a.Session(a.Logout()))
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "page for "+u.Subject+" csrf="+CSRFToken(r.Context()))
	})
	mux.Handle("GET /{$}", a.Session(a.RequireUser(page)))
	mux.Handle("GET /hubs/{hub}/jobs/{id}", a.Session(a.RequireUser(page)))
	mux.Handle("POST /hubs/{hub}/jobs/{id}/cancel", a.Session(a.RequireRole(RoleOperator, a.CheckCSRF(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "cancelled") })))))
	return mux
}

// browser is a cookie-keeping client that does not follow redirects, so
// every hop can be checked. It remembers the largest Cookie header it sent.
type browser struct {
	t         *testing.T
	client    *http.Client
	mu        sync.Mutex
	maxCookie int
}

type result struct {
	Status int
	Header http.Header
	Body   string
}

func (r result) location() string { return r.Header.Get("Location") }

func newBrowser(t *testing.T) *browser {
	t.Helper()
	b := &browser{t: t, client: testkit.NewNoRedirectBrowser(t)}
	b.client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		b.mu.Lock()
		b.maxCookie = max(b.maxCookie, len(r.Header.Get("Cookie")))
		b.mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})
	return b
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (b *browser) do(req *http.Request) result {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
}

func (b *browser) get(rawURL string, header ...string) result {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

func (b *browser) post(rawURL string, form url.Values, header ...string) result {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// cookie returns the browser's cookie called name for the portal, or nil.
func (b *browser) cookie(portal, name string) *http.Cookie {
	return testkit.Cookie(b.client, portal, name)
}

func (b *browser) setCookie(portal string, c *http.Cookie) {
	u, _ := url.Parse(portal)
	b.client.Jar.SetCookies(u, []*http.Cookie{c})
}

var formRequestID = regexp.MustCompile(`name="request" value="([^"]+)"`)

// startLogin opens the portal's login URL and signs in at the IdP as user;
// it returns the callback URL the IdP sent the browser to (not yet opened).
func (f *fixture) startLogin(b *browser, user, next string) string {
	b.t.Helper()
	toIdP := b.get(f.portal.URL + LoginURL(next))
	if toIdP.Status != http.StatusSeeOther || !strings.HasPrefix(toIdP.location(), f.idp.Issuer()+"/authorize?") {
		b.t.Fatalf("login: status %d, Location %q", toIdP.Status, toIdP.location())
	}
	return f.signInAtIdP(b, toIdP.location(), user)
}

func (f *fixture) signInAtIdP(b *browser, authorizeURL, user string) string {
	b.t.Helper()
	form := b.get(authorizeURL)
	m := formRequestID.FindStringSubmatch(form.Body)
	if form.Status != http.StatusOK || m == nil {
		b.t.Fatalf("IdP form: status %d\n%s", form.Status, form.Body)
	}
	back := b.post(authorizeURL, url.Values{"request": {m[1]}, "username": {user}, "password": {user}})
	if back.Status != http.StatusSeeOther || !strings.HasPrefix(back.location(), f.portal.URL+CallbackPath+"?") {
		b.t.Fatalf("IdP login: status %d, Location %q\n%s", back.Status, back.location(), back.Body)
	}
	return back.location()
}

// login signs user in and returns the callback's answer.
func (f *fixture) login(b *browser, user, next string) result {
	b.t.Helper()
	return b.get(f.startLogin(b, user, next))
}

// signedIn asserts the browser can open a protected page as subject.
func (f *fixture) signedIn(b *browser) bool {
	b.t.Helper()
	r := b.get(f.portal.URL + "/hubs/prod/jobs/j1")
	return r.Status == http.StatusOK
}
