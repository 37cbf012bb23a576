package web_test

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
	"github.com/hubjobs/hubjobs/web"
)

// t0 is the fixture's "now": hub simulators and the portal share one
// manual clock, so job states, the budget's TTL and ages are deterministic.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// portal is the real router with real auth (an in-process devidp for
// discovery, cookies minted through auth's test seam), a real audit store
// on a temp SQLite file, and real hub clients talking to hub simulators
// over HTTP.
type portal struct {
	t      testing.TB
	srv    *httptest.Server
	web    *web.Server
	auth   *auth.Authenticator
	store  *audit.Store
	clock  *testkit.Clock
	sims   map[string]*hubsim.Sim
	direct map[string]*hub.Client // unbudgeted clients, to set up and check jobs
	logs   *testkit.Buffer
	issuer string // the IdP's issuer, which signed-in users carry
}

type hubSpec struct {
	name      string
	devices   int
	operators []string
	opsPerMin int     // portal's jobs budget per minute (0: 6000, so a frozen clock never runs dry)
	failures  float64 // share of devices that fail
	authors   []string
	registry  []hubsim.Device // a known fleet instead of the generated one
	maxActive int             // the hub's configured max_active_jobs
}

type portalOptions struct {
	hubs      []hubSpec
	budgetTTL time.Duration
	// revocationsInStore checks sessions against the audit store, as
	// `hubjobs serve` does, instead of auth.MemoryRevocations.
	revocationsInStore bool
	// quietLogs logs warnings and errors only, as `hubjobs demo` does
	// (otherwise every access line is kept at debug level).
	quietLogs bool
	// rollouts is the rollout engine the portal is wired to (nil: none).
	rollouts handlers.Rollouts
}

var testRoleMap = map[auth.Role][]string{
	auth.RoleViewer: {"Jobs.Read"}, auth.RoleOperator: {"Jobs.Cancel"},
	auth.RoleAuditor: {"Audit.Read"}, auth.RoleAdmin: {"Jobs.Admin"},
	auth.RoleAuthor: {"Jobs.Write"}, auth.RoleApprover: {"Jobs.Approve"},
}

func newPortal(t testing.TB, o portalOptions) *portal {
	t.Helper()
	if len(o.hubs) == 0 {
		o.hubs = []hubSpec{{name: "prod", devices: 40}, {name: "eu", devices: 40, operators: []string{"Jobs.Cancel.EU"}}}
	}
	ctx := t.Context()
	p := &portal{t: t, clock: testkit.NewClock(t0), sims: map[string]*hubsim.Sim{}, direct: map[string]*hub.Client{}, logs: &testkit.Buffer{}}
	level := slog.LevelDebug
	if o.quietLogs {
		level = slog.LevelWarn
	}
	logger := slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: level}))

	var handler http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		h := handler
		mu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)

	idp, err := devidp.Listen("127.0.0.1:0", devidp.Options{RedirectURIs: []string{p.srv.URL + auth.CallbackPath}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	p.issuer = idp.Issuer()

	p.store, err = audit.Open(ctx, "sqlite://"+t.TempDir()+"/audit.db", audit.WithClock(p.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.store.Close() })

	key := make([]byte, 32)
	rand.Read(key)
	var revocations auth.RevocationStore = auth.NewMemoryRevocations(p.clock.Now)
	if o.revocationsInStore {
		revocations = p.store
	}
	p.auth, err = auth.New(ctx, auth.Config{
		Issuer: idp.Issuer(), ClientID: idp.ClientID(), ClientSecret: idp.ClientSecret(),
		PublicURL: p.srv.URL, RoleMap: testRoleMap, SessionKeys: [][]byte{key},
		NextAllowed: web.NextAllowed, Revocations: revocations,
		Events: web.NewEventSink(p.store, nil), RenderError: web.RenderError, RenderRetry: web.RenderRetry,
		Logger: logger, Now: p.clock.Now, DiscoveryRetry: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.auth.WaitReady(wctx); err != nil {
		t.Fatalf("IdP discovery: %v", err)
	}

	var hubs []web.Hub
	for _, hs := range o.hubs {
		sim := hubsim.New(hubsim.Options{Hostname: hs.name + ".azure-devices.net", Devices: hs.devices, Registry: hs.registry, DeviceRate: 1,
			FailureRate: hs.failures, Clock: p.clock, QueuedPhase: -1, MaxActiveJobs: 100})
		hsrv := httptest.NewServer(sim)
		t.Cleanup(func() { sim.Close(); hsrv.Close() })
		cfg := hub.Config{Endpoint: hsrv.URL, HubName: hs.name, MaxAttempts: 2, AttemptTimeout: 500 * time.Millisecond,
			CallBudget: time.Second, Sleep: func(context.Context, time.Duration) error { return nil }}
		client, err := hub.NewFromConnectionString(sim.ConnectionString(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		direct, err := hub.NewFromConnectionString(sim.ConnectionString(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.sims[hs.name], p.direct[hs.name] = sim, direct
		ops := hs.opsPerMin
		if ops == 0 {
			ops = 6000
		}
		budget := hub.NewBudgeted(client, hub.BudgetConfig{TTL: o.budgetTTL, JobsOpsPerMinute: ops, QueriesPerMinute: ops, Now: p.clock.Now})
		hubs = append(hubs, web.Hub{Name: hs.name, Budget: budget, Operators: hs.operators, Authors: hs.authors, MaxActiveJobs: hs.maxActive})
	}
	p.web, err = web.New(web.Deps{Hubs: hubs, Auth: p.auth, Audit: p.store, Logger: logger, PublicURL: p.srv.URL,
		Version: "test", Now: p.clock.Now, BudgetTTL: o.budgetTTL, Rollouts: handlers.RolloutsConfig{Engine: o.rollouts}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	handler = p.web.Handler()
	mu.Unlock()
	return p
}

// user is a signed-in test user (nil roles = anonymous).
type user struct {
	name   string
	roles  []auth.Role
	claims []string
	cookie *http.Cookie
	csrf   string
}

var (
	anonymous = &user{name: "anonymous"}
	viewerU   = &user{name: "Vera Viewer", roles: []auth.Role{auth.RoleViewer}, claims: []string{"Jobs.Read"}}
	operatorU = &user{name: "Otto Operator", roles: []auth.Role{auth.RoleOperator}, claims: []string{"Jobs.Cancel"}}
	auditorU  = &user{name: "Alma Auditor", roles: []auth.Role{auth.RoleAuditor}, claims: []string{"Audit.Read"}}
	adminU    = &user{name: "Ada Admin", roles: []auth.Role{auth.RoleAdmin}, claims: []string{"Jobs.Admin"}}
	euOpU     = &user{name: "Eva EU-Operator", roles: []auth.Role{auth.RoleOperator}, claims: []string{"Jobs.Cancel", "Jobs.Cancel.EU"}}
)

// as returns u signed in to this portal.
func (p *portal) as(u *user) *user {
	p.t.Helper()
	if u.roles == nil {
		return u
	}
	sid := "sid-" + strings.ReplaceAll(strings.ToLower(u.name), " ", "-") + "-" + rand.Text()[:8]
	c, err := p.auth.NewSessionCookie(auth.User{Subject: "sub-" + u.name, Name: u.name, Email: strings.ToLower(strings.Fields(u.name)[0]) + "@example.com",
		Roles: u.roles, ClaimValues: u.claims, SessionID: sid})
	if err != nil {
		p.t.Fatal(err)
	}
	return &user{name: u.name, roles: u.roles, claims: u.claims, cookie: c, csrf: p.auth.CSRFTokenFor(sid)}
}

type response struct {
	*http.Response
	body string
}

func (r response) doc(t *testing.T) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// do sends a request as u; header pairs follow ("HX-Request", "true").
func (p *portal) do(u *user, method, path string, body io.Reader, header ...string) response {
	p.t.Helper()
	req, err := http.NewRequestWithContext(p.t.Context(), method, p.srv.URL+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if u != nil && u.cookie != nil {
		req.AddCookie(u.cookie)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := testkit.NewNoRedirectBrowser(p.t).Do(req) // u's cookie only, every hop visible
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatal(err)
	}
	return response{resp, string(b)}
}

func (p *portal) get(u *user, path string, header ...string) response {
	p.t.Helper()
	return p.do(u, http.MethodGet, path, nil, header...)
}

// cancel posts the cancel form as a browser would (form field _csrf).
func (p *portal) cancel(u *user, hubName, id string, form url.Values, header ...string) response {
	p.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" && u.csrf != "" {
		form.Set("_csrf", u.csrf)
	}
	header = append([]string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin", "Origin", p.srv.URL}, header...)
	return p.do(u, http.MethodPost, "/hubs/"+hubName+"/jobs/"+id+"/cancel", strings.NewReader(form.Encode()), header...)
}

// Job states the simulator produces on the fixture's frozen clock.
func (p *portal) scheduledJob(hubName, id string) {
	p.t.Helper()
	p.createJob(hubName, id, "*", p.clock.Now().Add(time.Hour))
}

func (p *portal) runningJob(hubName, id string) {
	p.t.Helper()
	p.createJob(hubName, id, "*", p.clock.Now())
}

func (p *portal) createJob(hubName, id, condition string, start time.Time) {
	p.t.Helper()
	_, err := p.direct[hubName].CreateJob(p.t.Context(), hub.JobRequest{JobID: id, Type: hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: []byte(`{"delay":5}`), ResponseTimeoutInSeconds: 30},
		QueryCondition:      condition, StartTime: hub.Time{Time: start}, MaxExecutionTimeInSeconds: 3600})
	if err != nil {
		p.t.Fatalf("create job %s: %v", id, err)
	}
}

func (p *portal) hubJob(hubName, id string) *hub.Job {
	p.t.Helper()
	j, err := p.direct[hubName].GetJob(p.t.Context(), id)
	if err != nil {
		p.t.Fatalf("get job %s: %v", id, err)
	}
	return j
}

// entries lists the audit trail, oldest first.
func (p *portal) entries(f audit.Filter) []audit.Entry {
	p.t.Helper()
	es, err := p.store.List(p.t.Context(), f)
	if err != nil {
		p.t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

func actions(es []audit.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = string(e.Action)
	}
	return out
}
