package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/config"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
)

// The demo's fixed cast. Hub "eu" narrows who may cancel there to the admin
// role's claim value, so the operator user sees hub-level narrowing: cancel
// offered on prod, not on eu.
const (
	demoProdHub       = "prod"
	demoEUHub         = "eu"
	demoEUOperator    = "Jobs.Admin"
	demoArchivedJobID = "demo-archived-firmware-2025-q4"
)

// runDemo is `hubjobs demo [--listen 127.0.0.1:8080]`: the whole product
// with no configuration, on loopback only: two simulated hubs, the demo
// identity provider, SQLite in a temporary directory removed on exit, and
// session keys made at start (so a restart signs everyone out).
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo")
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address for the portal (port 0 picks a free one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkLoopback(*listen); err != nil {
		return &usageError{fmt.Sprintf("demo: --listen %q: %v", *listen, err)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	publicURL := "http://" + ln.Addr().String()
	dir, err := os.MkdirTemp("", "hubjobs-demo-")
	if err != nil {
		ln.Close()
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	world, err := startDemoWorld(publicURL, logger)
	if err != nil {
		ln.Close()
		return err
	}
	defer world.Close()

	cfg, err := demoConfig(publicURL, world, filepath.Join(dir, "hubjobs.db"))
	if err != nil {
		ln.Close()
		return err
	}
	p, err := newPortal(ctx, cfg, logger, portalOptions{PlanSecret: func() string { return "" }})
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	if err := seedDemoHistory(ctx, p.store, world.idp.Issuer(), time.Now()); err != nil {
		ln.Close()
		return err
	}
	if err := seedDemoRollouts(ctx, p.engine, world.idp.Issuer()); err != nil {
		ln.Close()
		return err
	}
	printDemoBanner(stdout, publicURL, world, dir)
	return p.serve(ctx, ln)
}

// checkLoopback refuses anything but a loopback address: the demo's
// passwords are printed on the screen.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return errors.New("the demo listens on loopback addresses only (e.g. 127.0.0.1:8080)")
	}
	return nil
}

// demoWorld is what the demo simulates: the hubs and the identity provider.
type demoWorld struct {
	idp  *devidp.Server
	hubs []demoHub
}

type demoHub struct {
	name string
	sim  *hubsim.Sim
	srv  *http.Server
	url  string
}

func startDemoWorld(publicURL string, logger *slog.Logger) (*demoWorld, error) {
	w := &demoWorld{}
	for i, name := range []string{demoProdHub, demoEUHub} {
		sim, err := newDemoSim(name, uint64(i+1), time.Now())
		if err != nil {
			w.Close()
			return nil, err
		}
		h, err := serveLoopback(sim, logger)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("demo: simulated hub %s: %w", name, err)
		}
		w.hubs = append(w.hubs, demoHub{name: name, sim: sim, srv: h.srv, url: h.url})
	}
	idp, err := devidp.Listen("127.0.0.1:0", devidp.Options{
		RedirectURIs: []string{publicURL + "/auth/callback"},
		Logger:       logger,
	})
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("demo: identity provider: %w", err)
	}
	w.idp = idp
	return w, nil
}

func (w *demoWorld) Close() {
	if w.idp != nil {
		w.idp.Close()
	}
	for _, h := range w.hubs {
		h.sim.Close()
		h.srv.Close()
	}
}

type loopbackServer struct {
	srv *http.Server
	url string
}

// serveLoopback serves h on a free loopback port.
func serveLoopback(h http.Handler, logger *slog.Logger) (loopbackServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return loopbackServer{}, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() { _ = srv.Serve(ln) }()
	return loopbackServer{srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// demoConfigFile is the configuration a platform team would have written
// for the demo world, with its run-time values as ${VARS}: it goes through
// exactly the path of a file (expansion, validation), while a value is never
// parsed as YAML. The hub limits are the simulated hubs' own (demo_world.go);
// rollouts are read every 5 s so that a halt shows within seconds.
var demoConfigFile = `
listen: ${DEMO_LISTEN}
public_url: ${DEMO_PUBLIC_URL}
session:
  keys: ["${DEMO_SESSION_KEY}"]
oidc:
  issuer: ${DEMO_ISSUER}
  client_id: ${DEMO_CLIENT_ID}
  client_secret: ${DEMO_CLIENT_SECRET}
hubs:
  - name: ` + demoProdHub + `
    connection_string: ${DEMO_PROD_CS}
    endpoint: ${DEMO_PROD_URL}` + demoHubLimits + `
  - name: ` + demoEUHub + `
    connection_string: ${DEMO_EU_CS}
    endpoint: ${DEMO_EU_URL}
    operators: [` + demoEUOperator + `]` + demoHubLimits + `
audit:
  database: sqlite://${DEMO_DB}
rollouts:
  poll_interval: 5s
server:
  drain_delay: 0s # no load balancer to drain
`

var demoHubLimits = fmt.Sprintf(`
    max_active_jobs: %d
    jobs_ops_per_minute: %d
    queries_per_minute: %d`, demoMaxActiveJobs, demoJobsOpsPerMinute, demoQueriesPerMinute)

// demoConfig fills demoConfigFile's variables from the demo world. The
// process environment plays no part: the demo runs the same everywhere.
func demoConfig(publicURL string, w *demoWorld, dbPath string) (*config.Config, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("demo: session key: %w", err)
	}
	vars := map[string]string{
		"DEMO_LISTEN":        strings.TrimPrefix(publicURL, "http://"),
		"DEMO_PUBLIC_URL":    publicURL,
		"DEMO_SESSION_KEY":   base64.StdEncoding.EncodeToString(key),
		"DEMO_ISSUER":        w.idp.Issuer(),
		"DEMO_CLIENT_ID":     w.idp.ClientID(),
		"DEMO_CLIENT_SECRET": w.idp.ClientSecret(),
		"DEMO_DB":            dbPath,
	}
	for _, h := range w.hubs {
		name := strings.ToUpper(h.name)
		vars["DEMO_"+name+"_CS"], vars["DEMO_"+name+"_URL"] = h.sim.ConnectionString(), h.url
	}
	return config.Parse([]byte(demoConfigFile), func(name string) string { return vars[name] })
}

// seedDemoHistory gives the demo a past: an operator's cancel of the
// cancelled demo job, and a job the hub has purged that the portal still
// knows from its last snapshot ("archived, last seen …"), with a refused
// cancel in its history.
func seedDemoHistory(ctx context.Context, store *audit.Store, issuer string, now time.Time) error {
	operator := audit.Actor{Issuer: issuer, Subject: "demo-operator", Name: "Otto Operator", Email: "operator@demo.invalid", Roles: []string{"operator", "viewer"}}
	started := now.Add(-45 * 24 * time.Hour)
	wire := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	snapshot := fmt.Sprintf(`{"jobId":%q,"type":"scheduleDeviceMethod","status":"completed",`+
		`"queryCondition":"tags.ring = 'pilot'","createdTime":%q,"startTime":%q,"endTime":%q,"maxExecutionTimeInSeconds":3600,`+
		`"cloudToDeviceMethod":{"methodName":"firmwareUpdate","payload":{"version":"4.2.0","channel":"stable"},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":10},`+
		`"deviceJobStatistics":{"deviceCount":240,"failedCount":7,"succeededCount":233,"runningCount":0,"pendingCount":0}}`,
		demoArchivedJobID, wire(started.Add(-time.Hour)), wire(started), wire(started.Add(40*time.Minute)))
	if err := store.SaveSnapshot(ctx, audit.Snapshot{Hub: demoProdHub, JobID: demoArchivedJobID, Body: []byte(snapshot), LastSeen: started.Add(41 * time.Minute)}); err != nil {
		return fmt.Errorf("demo: seeding the archived job: %w", err)
	}
	history := []audit.Entry{
		{Time: started.Add(10 * time.Minute), Action: audit.JobCancelIntent, Actor: operator, RequestID: "demo-seed-1",
			Hub: demoProdHub, JobID: demoArchivedJobID, Reason: "pilot ring reported boot loops", ClientIP: "127.0.0.1", UserAgent: "demo"},
		{Time: started.Add(10 * time.Minute), Action: audit.JobCancelRefused, Result: "refused", Actor: operator, RequestID: "demo-seed-1",
			Hub: demoProdHub, JobID: demoArchivedJobID, HubStatus: http.StatusMethodNotAllowed,
			HubErrorCode: "OperationNotAllowedInCurrentState", HubTrackingID: "demo-tracking-0001", ClientIP: "127.0.0.1", UserAgent: "demo"},
		{Time: now.Add(-3 * time.Hour), Action: audit.JobCancelIntent, Actor: operator, RequestID: "demo-seed-2",
			Hub: demoProdHub, JobID: hubsim.DemoCancelledJobID, Reason: "wrong maintenance window", ClientIP: "127.0.0.1", UserAgent: "demo"},
		{Time: now.Add(-3 * time.Hour), Action: audit.JobCancelSucceeded, Result: "cancelled", Actor: operator, RequestID: "demo-seed-2",
			Hub: demoProdHub, JobID: hubsim.DemoCancelledJobID, HubStatus: http.StatusOK, ClientIP: "127.0.0.1", UserAgent: "demo"},
	}
	for _, e := range history {
		if _, err := store.Append(ctx, e); err != nil {
			return fmt.Errorf("demo: seeding the audit trail: %w", err)
		}
	}
	return nil
}

func printDemoBanner(w io.Writer, publicURL string, world *demoWorld, dir string) {
	fmt.Fprintf(w, "hubjobs demo %s: simulated hubs and a demo sign-in. Nothing here is real; keep it on loopback.\n\n", version)
	fmt.Fprintf(w, "  Portal:  %s/\n", publicURL)
	for _, h := range world.hubs {
		note := "operators may cancel"
		if h.name == demoEUHub {
			note = "only " + demoEUOperator + " (admin) may cancel here"
		}
		fmt.Fprintf(w, "  Hub:     %-5s simulated at %s (%s)\n", h.name, h.url, note)
	}
	fmt.Fprintf(w, "  IdP:     %s (demo OpenID Connect provider)\n", world.idp.Issuer())
	fmt.Fprintf(w, "  Data:    %s (removed on exit)\n\n", dir)
	fmt.Fprintln(w, "  Users (password = user name):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, u := range devidp.DemoUsers() {
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", u.Username, strings.Join(u.Roles, ", "), demoUserNote[u.Username])
	}
	tw.Flush()
	prod := publicURL + "/hubs/" + demoProdHub
	fmt.Fprintln(w, "\n  Try:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "    a live job\t%s/jobs/%s\n", prod, hubsim.DemoLiveJobID)
	fmt.Fprintf(tw, "    an archived job\t%s/jobs/%s\n", prod, demoArchivedJobID)
	fmt.Fprintf(tw, "    as author, a new job from a copy\t%s/rollouts/new?from_job=%s\n", prod, hubsim.DemoLiveJobID)
	fmt.Fprintf(tw, "    as author, a rerun on failed devices\t%s/rollouts/new?from_job=%s&devices=failed\n", prod, demoRerunJobID)
	tw.Flush()
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

var demoUserNote = map[string]string{
	"viewer":   "reads jobs",
	"operator": "reads and cancels jobs (prod), halts rollouts",
	"author":   "reads and creates jobs and rollouts",
	"approver": "reads, approves rollouts that others created",
	"auditor":  "reads the audit trail",
	"admin":    "everything, on every hub (but never approves their own rollout)",
}

// seedDemoRollouts starts the demo rollouts (demo_world.go says which
// state each shows and why) as the demo user author, so that the demo user
// approver may approve the gated one. The engine then drives them like any
// other: one halts by itself a few minutes in, one waits for an approver.
func seedDemoRollouts(ctx context.Context, engine *rollout.Engine, issuer string) error {
	if engine == nil {
		return nil // rollouts disabled
	}
	rollouts, err := demoRollouts()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	author := audit.Actor{Issuer: issuer, Subject: "demo-author", Name: "Arthur Author",
		Email: "author@demo.invalid", Roles: []string{"viewer", "author"}}
	for _, r := range rollouts {
		origin := jobs.Origin{Actor: author, ClientIP: "127.0.0.1", UserAgent: "demo", RequestID: "demo-seed-rollout-" + r.rid}
		if _, err := engine.Create(ctx, origin, r.rid, r.spec); err != nil {
			return fmt.Errorf("demo: starting rollout %s: %w", r.rid, err)
		}
	}
	return nil
}
