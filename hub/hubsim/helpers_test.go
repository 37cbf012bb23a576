package hubsim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

var (
	testStart = time.Date(2030, 1, 1, 8, 0, 0, 0, time.UTC)
	testKey   = []byte("0123456789abcdef0123456789abcdef")
)

// harness is a simulator behind a real HTTP server, on a manual clock.
type harness struct {
	t     *testing.T
	sim   *Sim
	clock *testkit.Clock
	url   string
}

// newHarness starts a simulator with o (clock, key and a small registry
// filled in unless set) and stops it when the test ends.
func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	clock := testkit.NewClock(testStart)
	if o.Clock == nil {
		o.Clock = clock
	}
	if o.Key == nil {
		o.Key = testKey
	}
	if o.Devices == 0 {
		o.Devices = 40
	}
	sim := New(o)
	srv := httptest.NewServer(sim)
	t.Cleanup(func() {
		sim.Close()
		srv.Close()
	})
	return &harness{t: t, sim: sim, clock: clock, url: srv.URL}
}

// signSAS builds a token as docs/iothub.md §4 describes, written here
// from the reference and independent of the verifier under test.
func signSAS(key []byte, resource string, expiry int64) string {
	sr := url.QueryEscape(resource)
	se := strconv.FormatInt(expiry, 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sr + "\n" + se))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(sig) + "&se=" + se + "&skn=iothubowner"
}

func (h *harness) token() string {
	return signSAS(testKey, h.sim.Hostname(), h.clock.Now().Add(time.Hour).Unix())
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request signed with a valid token and api-version 2021-04-12
// unless headers or the path say otherwise. headers are name, value pairs;
// an "Authorization" pair replaces the token ("" sends none).
func (h *harness) do(method, path, body string, headers ...string) response {
	h.t.Helper()
	if !strings.Contains(path, "api-version=") {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		path += sep + "api-version=2021-04-12"
	}
	var rd io.Reader
	if body != "" || method == http.MethodPost || method == http.MethodPut {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", h.token())
	if body != "" {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// decode unmarshals the body into a generic value (map or slice).
func (r response) decode(t *testing.T) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	return v
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	m, ok := r.decode(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not an object: %s", r.body)
	}
	return m
}

func (r response) array(t *testing.T) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("body is not an array of objects: %v\n%s", err, r.body)
	}
	return a
}

var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	exceptionPattern = regexp.MustCompile(`^Tracking ID:[0-9a-f]{32}-G:\d+-TimeStamp:\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$`)
)

// wantOK checks a success: status 200 and the headers every successful hub
// response carries.
func wantOK(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	checkCommonHeaders(t, r)
	if got := r.header.Get("Vary"); got != "Origin" {
		t.Errorf("Vary = %q, want Origin", got)
	}
	if r.header.Get("iothub-errorcode") != "" {
		t.Errorf("success carries iothub-errorcode %q", r.header.Get("iothub-errorcode"))
	}
}

func checkCommonHeaders(t *testing.T, r response) {
	t.Helper()
	if got := r.header.Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.header.Get("Server"); got != "Microsoft-HTTPAPI/2.0" {
		t.Errorf("Server = %q", got)
	}
	if got := r.header.Get("x-ms-request-id"); !uuidPattern.MatchString(got) {
		t.Errorf("x-ms-request-id = %q, want a GUID", got)
	}
}

// wantError checks a refusal in format A: status, iothub-errorcode, and a
// Message "ErrorCode:<code>;<text>" whose text contains wantText. It
// returns the text.
func wantError(t *testing.T, r response, status int, code, wantText string) string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	checkCommonHeaders(t, r)
	if got := r.header.Get("iothub-errorcode"); got != code {
		t.Errorf("iothub-errorcode = %q, want %q", got, code)
	}
	if r.header.Get("Vary") != "" {
		t.Errorf("error carries Vary")
	}
	body := r.object(t)
	if len(body) != 2 {
		t.Errorf("error body has keys %v, want Message and ExceptionMessage only", keys(body))
	}
	msg, _ := body["Message"].(string)
	text, ok := strings.CutPrefix(msg, "ErrorCode:"+code+";")
	if !ok {
		t.Fatalf("Message = %q, want prefix ErrorCode:%s;", msg, code)
	}
	if !strings.Contains(text, wantText) {
		t.Errorf("error text %q does not contain %q", text, wantText)
	}
	if em, _ := body["ExceptionMessage"].(string); !exceptionPattern.MatchString(em) {
		t.Errorf("ExceptionMessage = %q", em)
	}
	return text
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// methodJob and twinJob are valid PUT bodies.
func methodJob(id, condition string, extra ...string) string {
	return `{"jobId":` + strconv.Quote(id) + `,"type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"reboot","payload":{"delay":5},"responseTimeoutInSeconds":30,"connectTimeoutInSeconds":0},"queryCondition":` + strconv.Quote(condition) + strings.Join(extra, "") + `}`
}

func twinJob(id, condition string, extra ...string) string {
	return `{"jobId":` + strconv.Quote(id) + `,"type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":{"ring":"2"},"properties":{"desired":{"logLevel":"debug"}}},"queryCondition":` + strconv.Quote(condition) + strings.Join(extra, "") + `}`
}

// create PUTs a job and fails the test unless the hub accepted it.
func (h *harness) create(id, body string) {
	h.t.Helper()
	r := h.do(http.MethodPut, "/jobs/v2/"+url.PathEscape(id), body)
	if r.status != http.StatusOK {
		h.t.Fatalf("create %s: status %d: %s", id, r.status, r.body)
	}
}

// get returns the job's JobResponse as a map.
func (h *harness) get(id string) map[string]any {
	h.t.Helper()
	r := h.do(http.MethodGet, "/jobs/v2/"+url.PathEscape(id), "")
	wantOK(h.t, r)
	return r.object(h.t)
}

// stats returns a JobResponse's deviceJobStatistics as ints.
func stats(t *testing.T, job map[string]any) map[string]int {
	t.Helper()
	raw, ok := job["deviceJobStatistics"].(map[string]any)
	if !ok {
		t.Fatalf("no deviceJobStatistics in %v", job)
	}
	out := map[string]int{}
	for k, v := range raw {
		out[k] = int(v.(float64))
	}
	return out
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// deviceRecords reads every devices.jobs record of a job (following
// continuations), optionally only those with a per-device status.
func (h *harness) deviceRecords(jobID, status string) []map[string]any {
	h.t.Helper()
	sql := "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = " + sqlQuote(jobID)
	if status != "" {
		sql += " AND devices.jobs.status = '" + status + "'"
	}
	var all []map[string]any
	token := ""
	for {
		r := h.do(http.MethodPost, "/devices/query", `{"query":`+quoteJSON(sql)+`}`, "x-ms-continuation", token)
		wantOK(h.t, r)
		all = append(all, r.array(h.t)...)
		if token = r.header.Get("x-ms-continuation"); token == "" {
			return all
		}
	}
}

// sqlQuote quotes a value as the IoT Hub query docs say, independently of
// the simulator's own printer: single quotes, \' and \\ escaped.
func sqlQuote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
