package main

// Helpers of the rollout black-box checks (rollout_blackbox*_test.go):
// `hubjobs hubsim` over a known registry behind a proxy that records what
// the portal sends it, portals configured for rollouts, the form and the
// rollout page driven as a browser does, and the audit trail read with
// `hubjobs audit export`. Nothing here reaches into the portal's packages:
// the portal is a child process, seen only through HTTP and its database.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth/devidp"
)

// hubCall is one request the portal sent to the hub, as the proxy saw it.
type hubCall struct {
	at           time.Time
	method, path string
	status       int
	body         []byte
}

// jobsOp reports a /jobs/v2 call (the hub's jobs-operations throttle);
// everything else the portal sends is a /devices/query (the query throttle).
func (c hubCall) jobsOp() bool { return strings.HasPrefix(c.path, "/jobs/v2") }

// rolloutHub is `hubjobs hubsim` with a registry of the test's own. The
// portal reaches it through a recording proxy (proxyURL); the test's own
// reads go straight to the simulator and are not recorded.
type rolloutHub struct {
	*bbHub
	connString string
	proxyURL   string

	mu    sync.Mutex
	calls []hubCall
}

// startRolloutHub runs the simulator over devices with args (e.g.
// --max-active-jobs 1 --device-rate 500).
func startRolloutHub(t *testing.T, devices []bbDevice, args ...string) *rolloutHub {
	t.Helper()
	sim := bbStartHubsim(t, append([]string{"--registry", bbWriteRegistry(t, devices)}, args...)...)
	h := &rolloutHub{bbHub: sim, connString: fmt.Sprintf("HostName=%s;SharedAccessKeyName=%s;SharedAccessKey=%s",
		sim.host, sim.keyName, base64.StdEncoding.EncodeToString(sim.key))}
	target, err := url.Parse(sim.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		at := time.Now()
		proxy.ServeHTTP(sw, r)
		h.mu.Lock()
		h.calls = append(h.calls, hubCall{at: at, method: r.Method, path: r.URL.Path, status: sw.status, body: body})
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.proxyURL = srv.URL
	return h
}

// recorded is every call the portal made so far.
func (h *rolloutHub) recorded() []hubCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// creates are the portal's PUT /jobs/v2/{id} bodies, in the order sent.
func (h *rolloutHub) creates() []map[string]any {
	var out []map[string]any
	for _, c := range h.recorded() {
		if c.method == http.MethodPut {
			var job map[string]any
			if json.Unmarshal(c.body, &job) == nil {
				job["_sentAt"] = c.at
				job["_status"] = c.status
				out = append(out, job)
			}
		}
	}
	return out
}

// rolloutJobs lists the hub's jobs of rollout rid straight from the
// simulator (every page), by id.
func (h *rolloutHub) rolloutJobs(t *testing.T, rid string) map[string]map[string]any {
	t.Helper()
	jobs, err := h.listJobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, j := range jobs {
		if id, _ := j["jobId"].(string); strings.HasPrefix(id, "hj-"+rid+"-") {
			out[id] = j
		}
	}
	return out
}

// listJobs reads every page of GET /jobs/v2/query without a *testing.T,
// so that a watcher goroutine can use it.
func (h *rolloutHub) listJobs(ctx context.Context) ([]map[string]any, error) {
	var all []map[string]any
	token := ""
	for range 1000 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/jobs/v2/query?api-version=2021-04-12", nil)
		req.Header.Set("Authorization", h.token(time.Now().Add(time.Hour)))
		req.Header.Set("x-ms-max-item-count", "100")
		if token != "" {
			req.Header.Set("x-ms-continuation", token)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			return nil, err
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("jobs query: %s %s", resp.Status, raw)
		}
		var page []map[string]any
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if token = resp.Header.Get("x-ms-continuation"); token == "" {
			return all, nil
		}
	}
	return nil, fmt.Errorf("jobs query: more than 1000 pages")
}

// unfinished are the statuses that hold one of the hub's active-job slots.
var unfinished = []string{"queued", "enqueued", "scheduled", "running"}

// watched is what a watcher of the hub's job list saw.
type watched struct {
	most []string            // the most jobs unfinished at once, by id
	seen map[string][]string // every status each job was seen in, in order
}

// watchJobs polls the hub's job list every 100 ms until stop is closed.
func (h *rolloutHub) watchJobs(stop <-chan struct{}) <-chan watched {
	out := make(chan watched, 1)
	go func() {
		w := watched{seen: map[string][]string{}}
		for {
			if jobs, err := h.listJobs(context.Background()); err == nil {
				var active []string
				for _, j := range jobs {
					id, status := fmt.Sprint(j["jobId"]), fmt.Sprint(j["status"])
					if s := w.seen[id]; len(s) == 0 || s[len(s)-1] != status {
						w.seen[id] = append(s, status)
					}
					if slices.Contains(unfinished, status) {
						active = append(active, id)
					}
				}
				if len(active) > len(w.most) {
					w.most = active
				}
			}
			select {
			case <-stop:
				out <- w
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return out
}

// inListRE reads one quoted id of a `deviceId IN ['a','b']` condition
// (backslash escapes, as the planner writes them).
var inListRE = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)

// inList is the device ids a rollout job's condition names, in order; it
// fails unless the condition is exactly an IN list.
func inList(t *testing.T, condition string) []string {
	t.Helper()
	body, ok := strings.CutPrefix(condition, "deviceId IN [")
	if !ok || !strings.HasSuffix(body, "]") {
		t.Fatalf("condition %.80q… is not a deviceId IN list", condition)
	}
	var ids []string
	for _, m := range inListRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(m[1]))
	}
	return ids
}

// rolloutIdP is a dev IdP with the demo users plus "pat", who may both
// write and approve: the four-eyes rule must refuse pat's own rollouts
// whatever the roles say.
func rolloutIdP(t *testing.T) *devidp.Server {
	t.Helper()
	users := append(devidp.DemoUsers(), devidp.User{Username: "pat", Password: "pat", Name: "Pat Both",
		Roles: []string{"Jobs.Write", "Jobs.Approve", "Jobs.Read"}})
	idp, err := devidp.Listen("127.0.0.1:0", devidp.Options{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	return idp
}

// rolloutConfig is what a rollout check sets in the portal's config.
type rolloutConfig struct {
	database      string // audit.database; "" = a fresh SQLite file
	maxActiveJobs int    // hubs[0].max_active_jobs; 0 = 1 (S1)
	// jobsOpsPerMinute is 600 when 0: with a 1 s poll the engine reads
	// more than half of the default 100 a minute (three job queries per
	// slot count, one read per running job), and a share that reads
	// spend leaves its creates refused (TestRolloutBlackboxEngineStaysWithinItsShare).
	jobsOpsPerMinute int
	queriesPerMin    int // 0 = 6000: planning is not what most checks measure
	share            float64
	listen           string // "" = a free port
}

// rolloutPortal writes the config of a portal that drives rollouts every
// second on hub "prod" behind h's proxy.
func rolloutPortal(t *testing.T, idp *devidp.Server, h *rolloutHub, c rolloutConfig) portalSetup {
	t.Helper()
	if c.database == "" {
		c.database = "sqlite://" + filepath.Join(t.TempDir(), "hubjobs.db")
	}
	if c.maxActiveJobs == 0 {
		c.maxActiveJobs = 1
	}
	if c.queriesPerMin == 0 {
		c.queriesPerMin = 6000
	}
	if c.jobsOpsPerMinute == 0 {
		c.jobsOpsPerMinute = 600
	}
	if c.share == 0 {
		c.share = 0.5
	}
	if c.listen == "" {
		c.listen = closedAddr(t)
	}
	publicURL := "http://" + c.listen
	if err := idp.AllowRedirectURI(publicURL + "/auth/callback"); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: %s
public_url: %s
session:
  keys: ["${TEST_SESSION_KEY}"]
oidc:
  issuer: %s
  client_id: %s
  client_secret: ${TEST_CLIENT_SECRET}
hubs:
  - name: prod
    connection_string: ${TEST_HUB_CS}
    endpoint: %s
    max_active_jobs: %d
    queries_per_minute: %d
    jobs_ops_per_minute: %d
audit:
  database: %s
log:
  format: json
  level: info
server:
  drain_delay: 0s
rollouts:
  enabled: true
  poll_interval: 1s
  max_share_of_budget: %g
  approval_over_devices: 0
`, c.listen, publicURL, idp.Issuer(), idp.ClientID(), h.proxyURL, c.maxActiveJobs, c.queriesPerMin, c.jobsOpsPerMinute, c.database, c.share)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return portalSetup{addr: c.listen, publicURL: publicURL, configPath: path, env: env{
		"TEST_SESSION_KEY": testSessionKey, "TEST_CLIENT_SECRET": idp.ClientSecret(), "TEST_HUB_CS": h.connString,
	}}
}

// fleet is a registry of n devices: ids of about 60 characters (so that a
// wave of 150 needs two hub jobs), site paris, and behaviour by index.
func fleet(n int, site string, behaviour func(i int) string) []bbDevice {
	out := make([]bbDevice, n)
	for i := range out {
		out[i] = bbDevice{DeviceID: fmt.Sprintf("%s-sensor-%04d-%x", site, i, sha256.Sum256([]byte{byte(i), byte(i >> 8)}))[:60],
			Tags: map[string]any{"site": site}}
		if behaviour != nil {
			out[i].Behaviour = behaviour(i)
		}
	}
	return out
}

func deviceIDs(devices []bbDevice) []string {
	ids := make([]string, len(devices))
	for i, d := range devices {
		ids[i] = d.DeviceID
	}
	return ids
}

var ridRE = regexp.MustCompile(`<input type="hidden" name="rid" value="([a-z0-9]+)"`)

// rolloutForm is a direct-method rollout as the New job form sends it;
// set overrides or adds fields.
func rolloutForm(condition, waves, bake string, set map[string]string) url.Values {
	f := url.Values{"type": {"method"}, "method": {"reboot"}, "payload": {`{"delay":1}`}, "response_timeout": {"30"},
		"connect_timeout": {"0"}, "condition": {condition}, "max_execution": {"10m"}, "waves": {waves}, "bake": {bake},
		"reason": {"black-box rollout"}}
	for k, v := range set {
		f.Set(k, v)
	}
	return f
}

// createRollout opens the New job form (its CSRF token and rollout id),
// posts it and expects to land on the rollout page; it returns the id and
// the time the POST was sent.
func (b *browser) createRollout(portalURL string, form url.Values) (string, time.Time) {
	b.t.Helper()
	_, page := b.get(portalURL + "/hubs/prod/rollouts/new")
	m, tok := ridRE.FindStringSubmatch(page), csrfMetaRE.FindStringSubmatch(page)
	if m == nil || tok == nil {
		b.t.Fatalf("the New job form has no rid or CSRF token:\n%.500s", page)
	}
	form = cloneValues(form)
	form.Set("rid", m[1])
	form.Set("_csrf", tok[1])
	sent := time.Now()
	resp, body, err := b.post(b.t.Context(), portalURL, "/hubs/prod/rollouts", form)
	if err != nil {
		b.t.Fatal(err)
	}
	if want := "/hubs/prod/rollouts/" + m[1]; resp.StatusCode != http.StatusOK || resp.Request.URL.Path != want {
		b.t.Fatalf("create rollout: %s at %s, want 200 at %s\n%.1500s", resp.Status, resp.Request.URL.Path, want, body)
	}
	return m[1], sent
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

var rolloutStateRE = regexp.MustCompile(`id="rollout-status"[^>]*?data-state="([a-z_]+)"`)

// rolloutState is the state the rollout page shows, and the page.
func (b *browser) rolloutState(portalURL, rid string) (string, string) {
	b.t.Helper()
	resp, page := b.get(portalURL + "/hubs/prod/rollouts/" + rid)
	m := rolloutStateRE.FindStringSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		b.t.Fatalf("rollout page %s: %s\n%.500s", rid, resp.Status, page)
	}
	return m[1], page
}

// waitRollout polls the rollout page until it shows one of states.
func (b *browser) waitRollout(portalURL, rid string, limit time.Duration, states ...string) string {
	b.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		state, page := b.rolloutState(portalURL, rid)
		if slices.Contains(states, state) {
			return page
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("rollout %s still %s after %s, want %v\n%s", rid, state, limit, states, pageText(page))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var tagRE = regexp.MustCompile(`<[^>]*>`)

// pageText is a page's text without tags, squeezed, for messages.
func pageText(page string) string {
	if i := strings.Index(page, "<main"); i >= 0 {
		page = page[i:]
	}
	return strings.Join(strings.Fields(tagRE.ReplaceAllString(page, " ")), " ")
}

// auditRecord is one line of `hubjobs audit export --format jsonl`.
type auditRecord struct {
	Seq       int64  `json:"seq"`
	Action    string `json:"action"`
	Result    string `json:"result"`
	ActorSub  string `json:"actor_sub"`
	ActorName string `json:"actor_name"`
	Hub       string `json:"hub"`
	JobID     string `json:"job_id"`
	Reason    string `json:"reason"`
}

// auditOf runs `hubjobs audit verify` (which must exit 0) and `audit
// export` on database, and returns the entries about rollout rid (its own
// and its hub jobs'), oldest first.
func auditOf(t *testing.T, database, rid string, extraEnv ...string) []auditRecord {
	t.Helper()
	run := func(args ...string) []byte {
		cmd := exec.Command(hubjobsBinary(t), args...)
		cmd.Env = append(os.Environ(), extraEnv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("hubjobs %s: %v\n%s", strings.Join(args[:2], " "), err, stderr.String())
		}
		return out
	}
	if out := run("audit", "verify", "--database", database); !bytes.HasPrefix(out, []byte("audit verify: ok")) {
		t.Fatalf("audit verify: %s", out)
	}
	var out []auditRecord
	sc := bufio.NewScanner(bytes.NewReader(run("audit", "export", "--database", database, "--format", "jsonl")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if r.JobID == rid || strings.HasPrefix(r.JobID, "hj-"+rid+"-") {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b auditRecord) int { return int(a.Seq - b.Seq) })
	return out
}

// actions is "action job_id" of each record, for comparisons and messages.
func actions(rs []auditRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Action + " " + r.JobID
	}
	return out
}

// count is how many of rs have action (and job id, when given).
func countAction(rs []auditRecord, action, jobID string) int {
	n := 0
	for _, r := range rs {
		if r.Action == action && (jobID == "" || r.JobID == jobID) {
			n++
		}
	}
	return n
}
