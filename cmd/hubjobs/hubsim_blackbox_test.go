package main

// An independent, black-box check of `hubjobs hubsim` (issue 2: "checked from
// outside by an independent client written from the reference").
//
// Everything in this file was written from
// /work/shared/reference/iothub-jobs-api.md alone: its SAS algorithm and test
// vector, its wire names, status codes and error formats. It deliberately
// imports nothing from hub/ or hub/hubsim/: requests are built with net/http,
// bodies decoded with encoding/json into map[string]any, and the simulator is
// reached only through the `hubjobs hubsim` command and its stdout. Where the
// reference marks a behaviour [UNVERIFIED], the check accepts the choice the
// simulator's README documents and says so next to the assertion.
//
// The command runs on the real clock (it has no flag for another), so the
// lifecycle checks poll with a deadline; the simulator's documented queued
// phase is 1 s and a device takes at least 2 s, so each test is a few seconds
// and they run in parallel.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// The client: connection string, SAS signer, raw requests.

// bbSASToken signs a service token as reference §4 describes:
// sig = base64(HMAC-SHA256(base64decode(key), urlenc(resourceUri) + "\n" + se)),
// sent as `SharedAccessSignature sr=…&sig=…&se=…&skn=…`.
func bbSASToken(resourceURI, keyName string, key []byte, expiry int64) string {
	sr := url.QueryEscape(resourceURI)
	se := strconv.FormatInt(expiry, 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sr + "\n" + se))
	sig := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return "SharedAccessSignature sr=" + sr + "&sig=" + url.QueryEscape(sig) + "&se=" + se + "&skn=" + keyName
}

func TestBlackboxSASTestVector(t *testing.T) {
	key, err := base64.StdEncoding.DecodeString("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	if err != nil {
		t.Fatal(err)
	}
	got := bbSASToken("myhub.azure-devices.net", "iothubowner", key, 1700000000)
	want := "SharedAccessSignature sr=myhub.azure-devices.net&sig=sJAIZTF5oG40VHrie96heZ865%2BnR4QavBvHnzxZm8rk%3D&se=1700000000&skn=iothubowner"
	if got != want {
		t.Fatalf("SAS token for the reference's test vector:\n got %s\nwant %s", got, want)
	}
}

// bbHub is one running `hubjobs hubsim` and the credentials from its
// connection string.
type bbHub struct {
	base    string // http://127.0.0.1:PORT
	host    string // HostName from the connection string
	keyName string
	key     []byte
	client  *http.Client

	mu         sync.Mutex
	requestIDs map[string]string // x-ms-request-id → the request that got it
}

// bbStartHubsim runs `hubjobs hubsim --listen 127.0.0.1:0 ARGS…` in process
// through run(), exactly as the binary would, and reads the connection string
// (first stdout line, design.md) and the URL (second line) from its stdout.
func bbStartHubsim(t *testing.T, args ...string) *bbHub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"hubsim", "--listen", "127.0.0.1:0"}, args...),
			func(string) string { return "" }, pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("hubsim exited: %v", err))
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hubsim exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("hubsim did not stop within 10 s of its context ending")
		}
	})
	out := bufio.NewReader(pr)
	connString, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("hubsim first stdout line: %v", err)
	}
	listening, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("hubsim second stdout line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	h := &bbHub{
		base:       strings.TrimPrefix(strings.TrimSpace(listening), "listening on "),
		client:     &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		requestIDs: map[string]string{},
	}
	if !strings.HasPrefix(h.base, "http://127.0.0.1:") {
		t.Fatalf("second stdout line %q does not name a loopback URL", listening)
	}
	// Reference §4: split on ';', then each part on its FIRST '=' only.
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimSpace(connString), ";") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			t.Fatalf("connection string %q: part %q has no '='", connString, part)
		}
		fields[k] = v
	}
	h.host, h.keyName = fields["HostName"], fields["SharedAccessKeyName"]
	if h.key, err = base64.StdEncoding.DecodeString(fields["SharedAccessKey"]); err != nil || len(h.key) == 0 {
		t.Fatalf("connection string %q: SharedAccessKey is not base64: %v", connString, err)
	}
	if h.host == "" || h.keyName != "iothubowner" {
		t.Fatalf("connection string %q: want HostName and SharedAccessKeyName=iothubowner (design.md)", connString)
	}
	return h
}

func (h *bbHub) token(expiry time.Time) string {
	return bbSASToken(h.host, h.keyName, h.key, expiry.Unix())
}

// bbReq describes one request; the zero value of each field means "what a
// correct client sends".
type bbReq struct {
	method, path string
	body         any               // JSON-encoded when non-nil (string: sent as is)
	apiVersion   *string           // nil: 2021-04-12; pointer to "": omitted
	query        url.Values        // beyond api-version
	header       map[string]string // extra request headers
	auth         *string           // nil: a fresh one-hour SAS token; pointer to "": none
}

type bbResp struct {
	status int
	header http.Header
	raw    []byte
}

func bbStr(s string) *string { return &s }

// do sends r and checks what reference §5 says of every response: it
// carries an x-ms-request-id, and (our own rule for a usable trace) no two
// responses share one.
func (h *bbHub) do(t *testing.T, r bbReq) bbResp {
	t.Helper()
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	switch {
	case r.apiVersion == nil:
		q.Set("api-version", "2021-04-12")
	case *r.apiVersion != "":
		q.Set("api-version", *r.apiVersion)
	}
	var body io.Reader
	if r.body != nil {
		raw, ok := r.body.(string)
		if !ok {
			b, err := json.Marshal(r.body)
			if err != nil {
				t.Fatal(err)
			}
			raw = string(b)
		}
		body = strings.NewReader(raw)
	}
	req, err := http.NewRequest(r.method, h.base+r.path+"?"+q.Encode(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	switch {
	case r.auth == nil:
		req.Header.Set("Authorization", h.token(time.Now().Add(time.Hour)))
	case *r.auth != "":
		req.Header.Set("Authorization", *r.auth)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.method, r.path, err)
	}
	out := bbResp{status: resp.StatusCode, header: resp.Header, raw: raw}
	h.checkRequestID(t, r.method+" "+r.path, out)
	return out
}

func (h *bbHub) checkRequestID(t *testing.T, what string, r bbResp) {
	t.Helper()
	id := r.header.Get("x-ms-request-id")
	if id == "" {
		t.Errorf("%s → %d has no x-ms-request-id header (reference §5: every response carries one)", what, r.status)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if prev, dup := h.requestIDs[id]; dup {
		t.Errorf("%s → x-ms-request-id %q was already given to %s", what, id, prev)
	}
	h.requestIDs[id] = what
}

// object decodes a JSON object body; it also checks the success headers of
// reference §3/§5 (JSON with charset, Vary: Origin).
func (r bbResp) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.raw, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.raw)
	}
	r.checkJSONHeaders(t)
	return m
}

// array decodes a bare JSON array body (reference §0.1: never a QueryResult object).
func (r bbResp) array(t *testing.T) []map[string]any {
	t.Helper()
	if !bytes.HasPrefix(bytes.TrimSpace(r.raw), []byte("[")) {
		t.Fatalf("body is not a bare JSON array:\n%s", r.raw)
	}
	var a []map[string]any
	if err := json.Unmarshal(r.raw, &a); err != nil {
		t.Fatalf("body is not an array of objects: %v\n%s", err, r.raw)
	}
	r.checkJSONHeaders(t)
	return a
}

func (r bbResp) checkJSONHeaders(t *testing.T) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.EqualFold(ct, "application/json; charset=utf-8") {
		t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
	}
	if got := r.header.Get("Server"); got != "Microsoft-HTTPAPI/2.0" {
		t.Errorf("Server %q, want Microsoft-HTTPAPI/2.0 as recorded (reference §3)", got)
	}
	if r.status == http.StatusOK && r.header.Get("Vary") != "Origin" {
		t.Errorf("200 without Vary: Origin (reference §5)")
	}
}

// ---------------------------------------------------------------------------
// Error bodies (reference §5).

// bbErrorCodes numbers the code names the reference lists for jobs; the
// first three digits are the HTTP status.
var bbErrorCodes = map[int]string{
	400000: "GenericBadRequest", 400001: "InvalidProtocolVersion", 400004: "ArgumentInvalid",
	401002: "IotHubUnauthorizedAccess", 401003: "IotHubUnauthorized", 403003: "JobQuotaExceeded",
	404002: "JobNotFound", 405102: "OperationNotAllowedInCurrentState", 409104: "JobAlreadyExists",
	412003: "JobRunPreconditionFailed", 429001: "ThrottlingException", 429004: "ThrottlingMaxActiveJobCountExceeded",
	500001: "ServerError", 503001: "ServiceUnavailable",
}

var (
	bbMessageA      = regexp.MustCompile(`^ErrorCode:([A-Za-z]+);(.*)$`)
	bbTrackingID    = regexp.MustCompile(`^Tracking ID:[0-9A-Za-z]+-G:\d+-TimeStamp:\d\d/\d\d/\d{4} \d\d:\d\d:\d\d$`)
	bbJobTime       = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`)
	bbLenientLayout = []string{"2006-01-02T15:04:05.9999999Z07:00", "2006-01-02T15:04:05.9999999"}
)

// bbHubError is what a client can learn from an error response.
type bbHubError struct {
	format string // "A", "nested" or "B"
	code   string // the code name
	text   string // the human text
}

// parseError reads the three body shapes of reference §5 and checks each
// one's internal consistency.
func (r bbResp) parseError(t *testing.T) bbHubError {
	t.Helper()
	var body struct {
		Message          *string
		ExceptionMessage *string
	}
	if err := json.Unmarshal(r.raw, &body); err != nil || body.Message == nil {
		t.Fatalf("error body is not {\"Message\":…}: %v\n%s", err, r.raw)
	}
	if ct := r.header.Get("Content-Type"); !strings.EqualFold(ct, "application/json; charset=utf-8") {
		t.Errorf("error Content-Type %q, want application/json; charset=utf-8", ct)
	}
	if got := r.header.Get("Server"); got != "Microsoft-HTTPAPI/2.0" {
		t.Errorf("error Server header %q, want Microsoft-HTTPAPI/2.0 (reference §5)", got)
	}
	if m := bbMessageA.FindStringSubmatch(*body.Message); m != nil {
		e := bbHubError{format: "A", code: m[1], text: m[2]}
		if strings.HasPrefix(m[2], "Error: ") && strings.Contains(m[2], `{"Message":"ErrorCode:`) {
			e.format = "nested"
			inner := m[2][strings.Index(m[2], "{"):]
			var nested struct{ Message, ExceptionMessage string }
			if err := json.Unmarshal([]byte(inner), &nested); err != nil {
				t.Errorf("nested error body is not JSON: %v\n%s", err, inner)
			} else if n := bbMessageA.FindStringSubmatch(nested.Message); n == nil || n[1] != e.code {
				t.Errorf("nested Message %q does not repeat code %s", nested.Message, e.code)
			}
		}
		if body.ExceptionMessage == nil || !bbTrackingID.MatchString(*body.ExceptionMessage) {
			t.Errorf("format %s: ExceptionMessage %v does not look like %q", e.format, body.ExceptionMessage, "Tracking ID:…-G:n-TimeStamp:MM/dd/yyyy HH:mm:ss")
		}
		return e
	}
	var b struct {
		ErrorCode    int    `json:"errorCode"`
		TrackingID   string `json:"trackingId"`
		Message      string `json:"message"`
		TimestampUTC string `json:"timestampUtc"`
	}
	if err := json.Unmarshal([]byte(*body.Message), &b); err != nil {
		t.Fatalf("Message is neither `ErrorCode:<Name>;…` nor an escaped JSON object: %q", *body.Message)
	}
	name, known := bbErrorCodes[b.ErrorCode]
	if !known {
		t.Fatalf("format B errorCode %d is not one the reference lists", b.ErrorCode)
	}
	if b.ErrorCode/1000 != r.status {
		t.Errorf("format B errorCode %d does not start with the HTTP status %d", b.ErrorCode, r.status)
	}
	if b.TrackingID == "" || b.Message == "" {
		t.Errorf("format B body lacks trackingId or message: %s", *body.Message)
	}
	if _, err := bbParseTime(b.TimestampUTC); err != nil {
		t.Errorf("format B timestampUtc: %v", err)
	}
	return bbHubError{format: "B", code: name, text: b.Message}
}

// wantError checks status, the iothub-errorcode header and the body's code
// name all agree.
func (r bbResp) wantError(t *testing.T, status int, code string) bbHubError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d %s; body %s", r.status, status, code, r.raw)
	}
	if got := r.header.Get("iothub-errorcode"); got != code {
		t.Errorf("iothub-errorcode header %q, want %q", got, code)
	}
	e := r.parseError(t)
	if e.code != code {
		t.Errorf("body error code %q (format %s), want %q", e.code, e.format, code)
	}
	return e
}

func bbParseTime(s string) (time.Time, error) {
	for _, layout := range bbLenientLayout {
		if ts, err := time.Parse(layout, s); err == nil {
			return ts, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: not ISO 8601 with or without a zone", s)
}

// ---------------------------------------------------------------------------
// Jobs helpers.

func bbMethodJob(id, condition string, start *time.Time, maxSeconds int) map[string]any {
	j := map[string]any{
		"jobId": id, "type": "scheduleDeviceMethod", "queryCondition": condition,
		"cloudToDeviceMethod": map[string]any{
			"methodName": "reboot", "payload": map[string]any{"delay": 5},
			"responseTimeoutInSeconds": 30, "connectTimeoutInSeconds": 0,
		},
		"maxExecutionTimeInSeconds": maxSeconds,
	}
	if start != nil {
		j["startTime"] = start.UTC().Format(time.RFC3339)
	}
	return j
}

func bbTwinJob(id, condition string, start *time.Time) map[string]any {
	j := map[string]any{
		"jobId": id, "type": "scheduleUpdateTwin", "queryCondition": condition,
		"updateTwin":                map[string]any{"etag": "*", "tags": map[string]any{"ring": "2"}, "properties": map[string]any{"desired": map[string]any{"fw": "1.2"}}},
		"maxExecutionTimeInSeconds": 300,
	}
	if start != nil {
		j["startTime"] = start.UTC().Format(time.RFC3339)
	}
	return j
}

func bbJobPath(id string) string { return "/jobs/v2/" + url.PathEscape(id) }

// create PUTs a job and checks reference §0.5/§3: 200 with exactly
// {"jobId","type","status":"queued"}.
func (h *bbHub) create(t *testing.T, job map[string]any) {
	t.Helper()
	r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath(job["jobId"].(string)), body: job})
	if r.status != http.StatusOK {
		t.Fatalf("PUT %s: status %d, want 200 (not 201); body %s", job["jobId"], r.status, r.raw)
	}
	got := r.object(t)
	want := map[string]any{"jobId": job["jobId"], "type": job["type"], "status": "queued"}
	if !mapsEqualJSON(got, want) {
		t.Fatalf("PUT %s: body %s, want the minimal %v", job["jobId"], r.raw, want)
	}
}

func mapsEqualJSON(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func (h *bbHub) get(t *testing.T, id string) map[string]any {
	t.Helper()
	r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath(id)})
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d; body %s", id, r.status, r.raw)
	}
	return r.object(t)
}

func (h *bbHub) cancel(t *testing.T, id string) bbResp {
	t.Helper()
	return h.do(t, bbReq{method: http.MethodPost, path: bbJobPath(id) + "/cancel"})
}

// waitStatus polls GET until the job's status is one of want, checking the
// job's shape and that its status only moves forward on the way.
func (h *bbHub) waitStatus(t *testing.T, id string, limit time.Duration, want ...string) map[string]any {
	t.Helper()
	order := map[string]int{"queued": 0, "scheduled": 1, "running": 2, "completed": 3, "failed": 3, "cancelled": 3}
	deadline := time.Now().Add(limit)
	last := ""
	for {
		job := h.get(t, id)
		bbCheckJobShape(t, job)
		status, _ := job["status"].(string)
		if last != "" && order[status] < order[last] {
			t.Fatalf("job %s went back from %s to %s", id, last, status)
		}
		last = status
		if slices.Contains(want, status) {
			return job
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s after %v, want %v", id, status, limit, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bbCheckJobShape checks a JobResponse against reference §2: wire names,
// 7-digit UTC times, enum values, statistics that add up, endTime only once
// finished, and nothing outside the schema.
func bbCheckJobShape(t *testing.T, job map[string]any) {
	t.Helper()
	allowed := []string{"jobId", "queryCondition", "createdTime", "startTime", "endTime", "maxExecutionTimeInSeconds",
		"type", "cloudToDeviceMethod", "updateTwin", "status", "failureReason", "statusMessage", "deviceJobStatistics",
		"deviceId", "parentJobId"}
	for k := range job {
		if !slices.Contains(allowed, k) {
			t.Errorf("job %v: field %q is not a JobResponse wire name", job["jobId"], k)
		}
	}
	for _, k := range []string{"jobId", "createdTime", "startTime", "type", "status", "maxExecutionTimeInSeconds", "queryCondition"} {
		if _, ok := job[k]; !ok {
			t.Errorf("job %v: no %q", job["jobId"], k)
		}
	}
	for _, k := range []string{"createdTime", "startTime", "endTime"} {
		if v, ok := job[k]; ok {
			if s, _ := v.(string); !bbJobTime.MatchString(s) {
				t.Errorf("job %v: %s %q is not yyyy-MM-ddTHH:mm:ss.fffffffZ (reference §0.10)", job["jobId"], k, v)
			}
		}
	}
	status, _ := job["status"].(string)
	if !slices.Contains([]string{"unknown", "enqueued", "running", "completed", "failed", "cancelled", "scheduled", "queued"}, status) {
		t.Errorf("job %v: status %q is not in the JobResponse enum", job["jobId"], status)
	}
	finished := status == "completed" || status == "failed" || status == "cancelled"
	if _, has := job["endTime"]; has != finished {
		t.Errorf("job %v: status %s but endTime present=%v (reference §2: present only once finished)", job["jobId"], status, has)
	}
	switch job["type"] {
	case "scheduleDeviceMethod":
		m, ok := job["cloudToDeviceMethod"].(map[string]any)
		if !ok {
			t.Errorf("method job %v has no cloudToDeviceMethod object", job["jobId"])
		}
		for k := range m {
			if !slices.Contains([]string{"methodName", "payload", "responseTimeoutInSeconds", "connectTimeoutInSeconds"}, k) {
				t.Errorf("cloudToDeviceMethod field %q is not a wire name", k)
			}
		}
		if _, ok := job["updateTwin"]; ok {
			t.Errorf("method job %v carries updateTwin", job["jobId"])
		}
	case "scheduleUpdateTwin":
		if _, ok := job["cloudToDeviceMethod"]; ok {
			t.Errorf("twin job %v carries cloudToDeviceMethod (reference §2: omitted for twin jobs)", job["jobId"])
		}
		tw, ok := job["updateTwin"].(map[string]any)
		if !ok || tw["etag"] != "*" {
			t.Errorf("twin job %v: updateTwin %v, want the echoed twin with etag *", job["jobId"], job["updateTwin"])
		}
	default:
		t.Errorf("job %v: type %v", job["jobId"], job["type"])
	}
	stats, ok := job["deviceJobStatistics"].(map[string]any)
	if !ok {
		// The reference lets old hubs omit it before completion; the simulator documents "always present".
		t.Errorf("job %v: no deviceJobStatistics (the simulator documents it as always present)", job["jobId"])
		return
	}
	count := func(k string) int {
		v, ok := stats[k].(float64)
		if !ok {
			t.Errorf("job %v: deviceJobStatistics.%s = %v, want a number", job["jobId"], k, stats[k])
		}
		return int(v)
	}
	total, parts := count("deviceCount"), count("failedCount")+count("succeededCount")+count("runningCount")+count("pendingCount")
	if status == "cancelled" {
		// Documented simulator choice: cancelled devices count only in deviceCount.
		if parts > total {
			t.Errorf("job %v: statistics parts %d exceed deviceCount %d: %v", job["jobId"], parts, total, stats)
		}
	} else if parts != total {
		t.Errorf("job %v (%s): statistics do not add up to deviceCount: %v", job["jobId"], status, stats)
	}
	if finished && (count("runningCount") != 0 || count("pendingCount") != 0) {
		t.Errorf("job %v is %s with devices still running or pending: %v", job["jobId"], status, stats)
	}
}

// deviceRecords reads every devices.jobs record of a job, page by page.
func (h *bbHub) deviceRecords(t *testing.T, jobID string, pageSize int) []map[string]any {
	t.Helper()
	// The documented form (reference §2): backslash escapes, not SQL doubling.
	quoted := "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(jobID) + "'"
	query := map[string]any{"query": "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = " + quoted}
	return h.pages(t, bbReq{method: http.MethodPost, path: "/devices/query", body: query}, pageSize)
}

// pages follows x-ms-continuation until the response header is absent
// (reference §1: absent on the last page; both the token and the page size
// travel in request headers).
func (h *bbHub) pages(t *testing.T, r bbReq, pageSize int) []map[string]any {
	t.Helper()
	all, _ := h.pagesCounted(t, r, pageSize)
	return all
}

// pagesCounted is pages that also says how many requests it took.
func (h *bbHub) pagesCounted(t *testing.T, r bbReq, pageSize int) (all []map[string]any, pagesSeen int) {
	t.Helper()
	token := ""
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatal("more than 1000 pages")
		}
		r.header = map[string]string{"x-ms-max-item-count": strconv.Itoa(pageSize)}
		if token != "" {
			r.header["x-ms-continuation"] = token
		}
		resp := h.do(t, r)
		if resp.status != http.StatusOK {
			t.Fatalf("%s %s page %d: status %d; body %s", r.method, r.path, page, resp.status, resp.raw)
		}
		items := resp.array(t)
		// Reference §0.3: PascalCase on the wire when present; may be absent.
		if it, ok := resp.header[http.CanonicalHeaderKey("x-ms-item-type")]; ok && !slices.Contains([]string{"Twin", "DeviceJob", "JobResponse", "Raw"}, it[0]) {
			t.Errorf("x-ms-item-type %q is not one of the PascalCase item types", it)
		}
		pagesSeen++
		if len(items) > pageSize {
			t.Fatalf("page %d has %d items, more than x-ms-max-item-count %d", page, len(items), pageSize)
		}
		all = append(all, items...)
		values, present := resp.header[http.CanonicalHeaderKey("x-ms-continuation")]
		if !present {
			return all, pagesSeen
		}
		if len(values) != 1 || values[0] == "" {
			t.Fatalf("page %d: x-ms-continuation %q: present but empty; the simulator should omit it on the last page", page, values)
		}
		if len(items) == 0 {
			t.Fatalf("page %d is empty but carries a continuation", page)
		}
		token = values[0]
	}
}

// bbStatsMatchRecords checks a finished job's statistics against its
// devices.jobs records (issue 2: "statistics always consistent with the
// per-device records").
func (h *bbHub) bbStatsMatchRecords(t *testing.T, job map[string]any) {
	t.Helper()
	records := h.deviceRecords(t, job["jobId"].(string), 100)
	byStatus := map[string]int{}
	for _, r := range records {
		byStatus[r["status"].(string)]++
	}
	stats := job["deviceJobStatistics"].(map[string]any)
	want := map[string]int{"deviceCount": len(records), "succeededCount": byStatus["completed"], "failedCount": byStatus["failed"],
		"runningCount": byStatus["running"], "pendingCount": byStatus["pending"] + byStatus["scheduled"]}
	for k, n := range want {
		if stats[k] != float64(n) {
			t.Errorf("job %v: %s = %v but the devices.jobs records say %d (%v)", job["jobId"], k, stats[k], n, byStatus)
		}
	}
}

func bbIDs(items []map[string]any, key string) []string {
	var ids []string
	for _, it := range items {
		s, _ := it[key].(string)
		ids = append(ids, s)
	}
	return ids
}

// ---------------------------------------------------------------------------
// The checks.

func TestBlackboxCreateAndGetShapes(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "4", "--device-rate", "50", "--failure-rate", "0")
	start := time.Now().Add(time.Hour).Truncate(time.Second)

	// Reference §3: the recorded create answer, byte for byte (Content-Length 65).
	r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("job01"), body: bbMethodJob("job01", "*", &start, 3600)})
	if want := `{"jobId":"job01","type":"scheduleDeviceMethod","status":"queued"}`; r.status != http.StatusOK || string(r.raw) != want || r.header.Get("Content-Length") != "65" {
		t.Errorf("PUT job01: %d %q (Content-Length %s), want 200 %s (65)", r.status, r.raw, r.header.Get("Content-Length"), want)
	}
	h.create(t, bbMethodJob("bb-method", "*", &start, 3600))
	job := h.get(t, "bb-method")
	bbCheckJobShape(t, job)
	if job["jobId"] != "bb-method" || job["queryCondition"] != "*" || job["maxExecutionTimeInSeconds"] != float64(3600) {
		t.Errorf("GET echoes %v", job)
	}
	if ts, _ := bbParseTime(job["startTime"].(string)); !ts.Equal(start) {
		t.Errorf("startTime %v, want the requested %v", job["startTime"], start)
	}
	method := job["cloudToDeviceMethod"].(map[string]any)
	if method["methodName"] != "reboot" || method["responseTimeoutInSeconds"] != float64(30) || method["connectTimeoutInSeconds"] != float64(0) ||
		!mapsEqualJSON(method["payload"].(map[string]any), map[string]any{"delay": 5}) {
		t.Errorf("cloudToDeviceMethod echoed as %v", method)
	}

	h.create(t, bbTwinJob("bb-twin", "*", nil))
	twin := h.get(t, "bb-twin")
	bbCheckJobShape(t, twin)
	// Reference §2: with no startTime the returned startTime equals createdTime.
	if twin["startTime"] != twin["createdTime"] {
		t.Errorf("no startTime requested: startTime %v, createdTime %v, want equal", twin["startTime"], twin["createdTime"])
	}
	tw := twin["updateTwin"].(map[string]any)
	// Reference §8 (CLI fixture): the echoed twin carries "deviceId":null.
	if v, ok := tw["deviceId"]; !ok || v != nil {
		t.Errorf("updateTwin.deviceId = %v (present %v), want null", v, ok)
	}
	if !mapsEqualJSON(tw["tags"].(map[string]any), map[string]any{"ring": "2"}) {
		t.Errorf("updateTwin.tags echoed as %v", tw["tags"])
	}
	if props, _ := tw["properties"].(map[string]any); props == nil || !mapsEqualJSON(props["desired"].(map[string]any), map[string]any{"fw": "1.2"}) {
		t.Errorf("updateTwin.properties echoed as %v", tw["properties"])
	}

	t.Run("the same id again is 409 JobAlreadyExists", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-twin"), body: bbTwinJob("bb-twin", "*", nil)})
		r.wantError(t, http.StatusConflict, "JobAlreadyExists")
	})
	t.Run("an unknown id is not found", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-no-such-job")})
		switch r.status {
		case http.StatusNotFound:
			r.wantError(t, http.StatusNotFound, "JobNotFound")
		case http.StatusOK: // the other shape the reference reports from real hubs
			if job := r.object(t); job["status"] != "unknown" {
				t.Errorf("GET of an unknown id: 200 with status %v", job["status"])
			}
		default:
			t.Errorf("GET of an unknown id: status %d", r.status)
		}
	})
}

func TestBlackboxLifecycleAndDeviceRecords(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "5", "--device-rate", "50", "--failure-rate", "0")

	// A future start: queued first (reference §0.5), then scheduled (§9 CLI live test).
	future := time.Now().Add(time.Hour)
	h.create(t, bbMethodJob("bb-later", "*", &future, 600))
	if job := h.get(t, "bb-later"); job["status"] != "queued" && job["status"] != "scheduled" {
		t.Errorf("just created with a future start: status %v", job["status"])
	}
	h.waitStatus(t, "bb-later", 10*time.Second, "scheduled")

	// Start now: it runs and completes; all devices of `*` are targeted.
	h.create(t, bbMethodJob("bb-now", "*", nil, 600))
	done := h.waitStatus(t, "bb-now", 30*time.Second, "completed")
	stats := done["deviceJobStatistics"].(map[string]any)
	if stats["deviceCount"] != float64(5) || stats["succeededCount"] != float64(5) {
		t.Errorf("`*` over 5 devices with no failures: statistics %v", stats)
	}
	end, _ := bbParseTime(done["endTime"].(string))
	begin, _ := bbParseTime(done["startTime"].(string))
	if !end.After(begin) {
		t.Errorf("endTime %v is not after startTime %v", done["endTime"], done["startTime"])
	}

	h.bbStatsMatchRecords(t, done)
	records := h.deviceRecords(t, "bb-now", 2) // 3 pages of 2, 2, 1
	if len(records) != 5 {
		t.Fatalf("devices.jobs for bb-now: %d records, want 5", len(records))
	}
	devices := bbIDs(records, "deviceId")
	if slices.Sort(devices); len(slices.Compact(slices.Clone(devices))) != 5 {
		t.Errorf("paging repeated a device: %v", devices)
	}
	for _, rec := range records {
		bbCheckDeviceRecord(t, rec, "bb-now", "scheduleDeviceMethod", 600)
		if rec["status"] != "completed" {
			t.Errorf("device %v: status %v, want completed", rec["deviceId"], rec["status"])
		}
		resp, _ := rec["outcome"].(map[string]any)["deviceMethodResponse"].(map[string]any)
		if resp == nil || resp["status"] == nil {
			t.Errorf("completed method device %v: outcome %v, want deviceMethodResponse{status,payload}", rec["deviceId"], rec["outcome"])
		}
	}

	t.Run("queryCondition selects devices", func(t *testing.T) {
		cases := []struct {
			id, condition string
			want          int
		}{
			{"bb-one", "deviceId = '" + devices[1] + "'", 1},
			{"bb-two", "deviceId IN ['" + devices[0] + "', '" + devices[3] + "']", 2},
			{"bb-and", "deviceId IN ['" + devices[0] + "', '" + devices[3] + "'] AND deviceId = '" + devices[3] + "'", 1},
			{"bb-tag", "tags.bbNoSuchTag = 'x'", 0},
			// The spellings of reference §2 and the CLI fixture of §8: no spaces, a lower-case `in`.
			{"bb-tight", "tags.bbNoSuchTag='y'", 0},
			{"bb-lower-in", "deviceId in ['" + devices[0] + "','" + devices[2] + "']", 2},
		}
		for _, c := range cases {
			h.create(t, bbTwinJob(c.id, c.condition, &future))
			job := h.get(t, c.id)
			if n := job["deviceJobStatistics"].(map[string]any)["deviceCount"]; n != float64(c.want) {
				t.Errorf("%s: deviceCount %v, want %d", c.condition, n, c.want)
			}
			if got := len(h.deviceRecords(t, c.id, 100)); got != c.want {
				t.Errorf("%s: %d devices.jobs records, want %d", c.condition, got, c.want)
			}
		}
	})

	t.Run("a job id with a quote is found through SQL quoting", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-o'brien", "*", &future))
		if got := len(h.deviceRecords(t, "bb-o'brien", 100)); got != 5 {
			t.Errorf("devices.jobs for a quoted id: %d records, want 5", got)
		}
	})
}

// bbCheckDeviceRecord checks a devices.jobs record against reference §2.
func bbCheckDeviceRecord(t *testing.T, rec map[string]any, jobID, jobType string, maxSeconds int) {
	t.Helper()
	if _, has := rec["type"]; has {
		t.Errorf("devices.jobs record has `type`; the field is `jobType`: %v", rec)
	}
	if rec["jobId"] != jobID || rec["jobType"] != jobType || rec["deviceId"] == "" {
		t.Errorf("record %v: want jobId %s, jobType %s and a deviceId", rec, jobID, jobType)
	}
	if !slices.Contains([]string{"pending", "scheduled", "running", "completed", "failed", "canceled", "cancelled"}, rec["status"].(string)) {
		t.Errorf("device %v: status %v", rec["deviceId"], rec["status"])
	}
	for _, k := range []string{"startTimeUtc", "endTimeUtc", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"} {
		s, _ := rec[k].(string)
		if _, err := bbParseTime(s); err != nil {
			t.Errorf("device %v: %s: %v", rec["deviceId"], k, err)
		}
	}
	st, _ := bbParseTime(rec["startTimeUtc"].(string))
	en, _ := bbParseTime(rec["endTimeUtc"].(string))
	// Reference §2 (inferred from Java fixtures; the simulator documents it): endTimeUtc is the planned deadline.
	if en.Sub(st) != time.Duration(maxSeconds)*time.Second {
		t.Errorf("device %v: endTimeUtc − startTimeUtc = %v, want maxExecutionTimeInSeconds %d s", rec["deviceId"], en.Sub(st), maxSeconds)
	}
	outcome, ok := rec["outcome"].(map[string]any)
	if !ok {
		t.Errorf("device %v: outcome %v, want an object", rec["deviceId"], rec["outcome"])
	}
	if jobType == "scheduleUpdateTwin" && outcome["deviceMethodResponse"] != nil {
		t.Errorf("twin job device %v: outcome %v, want {} or a null deviceMethodResponse", rec["deviceId"], outcome)
	}
	if rec["status"] == "failed" {
		e, _ := rec["error"].(map[string]any)
		if e == nil || e["code"] == "" || e["code"] == nil || e["description"] == nil {
			t.Errorf("failed device %v: error %v, want {code, description}", rec["deviceId"], rec["error"])
		}
	} else if _, has := rec["error"]; has && rec["error"] != nil {
		t.Errorf("%v device %v carries error %v", rec["status"], rec["deviceId"], rec["error"])
	}
}

func TestBlackboxFailuresAndMaxExecutionTime(t *testing.T) {
	t.Parallel()
	// Every device fails: the job fails and each record carries an error.
	h := bbStartHubsim(t, "--devices", "3", "--device-rate", "50", "--failure-rate", "1")
	h.create(t, bbTwinJob("bb-fails", "*", nil))
	job := h.waitStatus(t, "bb-fails", 30*time.Second, "failed", "completed")
	if job["status"] != "failed" || job["failureReason"] == nil {
		t.Errorf("all devices failing: status %v, failureReason %v", job["status"], job["failureReason"])
	}
	h.bbStatsMatchRecords(t, job)
	for _, rec := range h.deviceRecords(t, "bb-fails", 100) {
		bbCheckDeviceRecord(t, rec, "bb-fails", "scheduleUpdateTwin", 300)
		if rec["status"] != "failed" {
			t.Errorf("device %v: %v, want failed", rec["deviceId"], rec["status"])
		}
	}

	// maxExecutionTimeInSeconds is enforced: a slow job ends at its deadline
	// and the devices it never reached fail with JobRunPreconditionFailed (§2).
	slow := bbStartHubsim(t, "--devices", "50", "--device-rate", "1", "--failure-rate", "0")
	slow.create(t, bbMethodJob("bb-deadline", "*", nil, 2))
	created := time.Now()
	job = slow.waitStatus(t, "bb-deadline", 20*time.Second, "completed", "failed")
	if took := time.Since(created); took > 10*time.Second {
		t.Errorf("a 2 s job took %v to end", took)
	}
	slow.bbStatsMatchRecords(t, job)
	stats := job["deviceJobStatistics"].(map[string]any)
	if stats["failedCount"].(float64) < 40 {
		t.Errorf("50 devices at 1/s with a 2 s limit: statistics %v, want most failed", stats)
	}
	var precondition int
	for _, rec := range slow.deviceRecords(t, "bb-deadline", 100) {
		bbCheckDeviceRecord(t, rec, "bb-deadline", "scheduleDeviceMethod", 2)
		if e, _ := rec["error"].(map[string]any); e != nil && e["code"] == "JobRunPreconditionFailed" {
			precondition++
		}
	}
	if precondition < 40 {
		t.Errorf("%d devices failed with JobRunPreconditionFailed, want the ~48 never reached", precondition)
	}
}

func TestBlackboxQueryPagingAndFilters(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--max-active-jobs", "50", "--seed")
	future := time.Now().Add(time.Hour)
	var mine []string
	for i := range 7 {
		id := fmt.Sprintf("bb-page-%d", i)
		if i%2 == 0 {
			h.create(t, bbTwinJob(id, "*", &future))
		} else {
			h.create(t, bbMethodJob(id, "*", &future, 600))
		}
		mine = append(mine, id)
	}
	h.waitStatus(t, mine[len(mine)-1], 10*time.Second, "scheduled") // the others left queued before it
	query := bbReq{method: http.MethodGet, path: "/jobs/v2/query"}

	all := h.pages(t, query, 3)
	ids := bbIDs(all, "jobId")
	for _, id := range mine {
		if !slices.Contains(ids, id) {
			t.Errorf("paging with 3 per page lost %s: %v", id, ids)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Errorf("paging repeated a job: %v", ids)
	}
	if len(all) < 8 {
		t.Errorf("--seed and 7 created jobs gave only %d jobs", len(all))
	}
	statuses := map[string]bool{}
	for _, job := range all {
		bbCheckJobShape(t, job)
		statuses[job["status"].(string)] = true
	}
	// --seed documents "jobs in every state".
	for _, s := range []string{"scheduled", "running", "completed", "failed", "cancelled"} {
		if !statuses[s] {
			t.Errorf("query over a seeded hub has no %s job (statuses %v)", s, statuses)
		}
	}
	// A page size that divides the total exactly: the last full page has no
	// continuation (the header means "another item exists", not "the page was full").
	for _, size := range []int{len(all), len(all) / 2} {
		if len(all)%size != 0 {
			continue
		}
		got, n := h.pagesCounted(t, query, size)
		if len(got) != len(all) || n != len(all)/size {
			t.Errorf("page size %d over %d jobs: %d jobs in %d requests, want %d requests", size, len(all), len(got), n, len(all)/size)
		}
	}

	t.Run("jobType filter", func(t *testing.T) {
		q := query
		q.query = url.Values{"jobType": {"scheduleUpdateTwin"}}
		twins := h.pages(t, q, 2)
		for _, j := range twins {
			if j["type"] != "scheduleUpdateTwin" {
				t.Errorf("jobType=scheduleUpdateTwin returned a %v job", j["type"])
			}
		}
		got := bbIDs(twins, "jobId")
		for i, id := range mine {
			if slices.Contains(got, id) != (i%2 == 0) {
				t.Errorf("jobType=scheduleUpdateTwin: %s included=%v", id, slices.Contains(got, id))
			}
		}
	})
	t.Run("jobStatus filter", func(t *testing.T) {
		for _, status := range []string{"scheduled", "completed", "cancelled", "running"} {
			q := query
			q.query = url.Values{"jobStatus": {status}}
			jobs := h.pages(t, q, 4)
			if len(jobs) == 0 {
				t.Errorf("jobStatus=%s: no jobs on a seeded hub", status)
			}
			for _, j := range jobs {
				if j["status"] != status {
					t.Errorf("jobStatus=%s returned a %v job", status, j["status"])
				}
			}
		}
		q := query
		q.query = url.Values{"jobStatus": {"scheduled"}, "jobType": {"scheduleDeviceMethod"}}
		got := bbIDs(h.pages(t, q, 100), "jobId")
		for i, id := range mine {
			if slices.Contains(got, id) != (i%2 == 1) {
				t.Errorf("scheduled method jobs: %s included=%v", id, slices.Contains(got, id))
			}
		}
	})
	t.Run("the last page has no x-ms-continuation header", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", header: map[string]string{"x-ms-max-item-count": "3"}})
		if r.header.Get("x-ms-continuation") == "" {
			t.Fatal("first page of 3 out of many has no continuation")
		}
		// The token is only honoured from the request header, never the query string.
		again := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query",
			query: url.Values{"continuationToken": {r.header.Get("x-ms-continuation")}}, header: map[string]string{"x-ms-max-item-count": "3"}})
		if !bytes.Equal(again.raw, r.raw) {
			t.Error("a continuation token in the query string changed the page; the reference says it travels in a header")
		}
	})
	t.Run("bad paging headers", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			{"x-ms-continuation": "bm90LWEtdG9rZW4="},
			{"x-ms-continuation": "%%%"},
			{"x-ms-max-item-count": "0"},
			{"x-ms-max-item-count": "-5"},
			{"x-ms-max-item-count": "many"},
		} {
			r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", header: hdr})
			if r.status < 400 || r.status > 499 {
				t.Errorf("%v: status %d, want a 4xx", hdr, r.status)
			} else if e := r.parseError(t); e.code != r.header.Get("iothub-errorcode") {
				t.Errorf("%v: body code %q, header %q", hdr, e.code, r.header.Get("iothub-errorcode"))
			}
		}
	})
}

func TestBlackboxCancel(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "40", "--device-rate", "2", "--failure-rate", "0")
	future := time.Now().Add(time.Hour)

	// Reference §0.6: queued or scheduled → 200 with status "cancelled" (two Ls) and the job.
	wantCancelled := func(t *testing.T, id string, r bbResp) {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("cancel %s: status %d, want 200; body %s", id, r.status, r.raw)
		}
		job := r.object(t)
		bbCheckJobShape(t, job)
		if job["jobId"] != id || job["status"] != "cancelled" {
			t.Errorf("cancel %s answered %v", id, job)
		}
		if again := h.get(t, id); again["status"] != "cancelled" {
			t.Errorf("GET after cancel: status %v", again["status"])
		}
		for _, rec := range h.deviceRecords(t, id, 100) {
			// Per-device spelling is [UNVERIFIED]; the simulator documents `canceled`.
			if rec["status"] != "canceled" {
				t.Errorf("device %v of a cancelled job: status %v, want canceled", rec["deviceId"], rec["status"])
			}
		}
	}
	t.Run("queued", func(t *testing.T) {
		h.create(t, bbMethodJob("bb-c-queued", "*", &future, 600))
		before := h.get(t, "bb-c-queued")["status"]
		wantCancelled(t, "bb-c-queued", h.cancel(t, "bb-c-queued"))
		if before != "queued" {
			t.Logf("the job had already left queued (%v) before the cancel; the scheduled path was checked instead", before)
		}
	})
	t.Run("scheduled", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-c-sched", "*", &future))
		h.waitStatus(t, "bb-c-sched", 10*time.Second, "scheduled")
		wantCancelled(t, "bb-c-sched", h.cancel(t, "bb-c-sched"))
		t.Run("a second cancel is an error, not a silent 200", func(t *testing.T) {
			r := h.cancel(t, "bb-c-sched")
			if r.status == http.StatusOK || r.status < 400 {
				t.Fatalf("second cancel: status %d", r.status)
			}
			if e := r.parseError(t); r.header.Get("iothub-errorcode") != e.code {
				t.Errorf("iothub-errorcode %q, body code %q", r.header.Get("iothub-errorcode"), e.code)
			}
		})
	})
	t.Run("running", func(t *testing.T) {
		h.create(t, bbMethodJob("bb-c-running", "*", nil, 600)) // 40 devices at 2/s: running for ~20 s
		h.waitStatus(t, "bb-c-running", 10*time.Second, "running")
		r := h.cancel(t, "bb-c-running")
		// The HTTP status is [UNVERIFIED]; the simulator documents 405 (405102's prefix).
		e := r.wantError(t, http.StatusMethodNotAllowed, "OperationNotAllowedInCurrentState")
		if e.text != "Job cannot be cancelled in 'Running' status." {
			t.Errorf("cancel of a running job: text %q, want the recorded one", e.text)
		}
		if job := h.get(t, "bb-c-running"); job["status"] != "running" {
			t.Errorf("a refused cancel changed the job: %v", job["status"])
		}
	})
	t.Run("finished", func(t *testing.T) {
		quick := bbStartHubsim(t, "--devices", "2", "--device-rate", "50", "--failure-rate", "0")
		quick.create(t, bbTwinJob("bb-c-done", "*", nil))
		quick.waitStatus(t, "bb-c-done", 30*time.Second, "completed")
		r := quick.cancel(t, "bb-c-done")
		if r.status == http.StatusOK || r.status < 400 || r.status > 499 {
			t.Fatalf("cancel of a completed job: status %d, want a 4xx error", r.status)
		}
		if e := r.parseError(t); e.code != r.header.Get("iothub-errorcode") || e.code == "" {
			t.Errorf("cancel of a completed job: code %q, header %q", e.code, r.header.Get("iothub-errorcode"))
		}
		if job := quick.get(t, "bb-c-done"); job["status"] != "completed" {
			t.Errorf("a refused cancel changed the job: %v", job["status"])
		}
	})
	t.Run("unknown", func(t *testing.T) {
		h.cancel(t, "bb-never-created").wantError(t, http.StatusNotFound, "JobNotFound")
	})
}

func TestBlackboxAuthentication(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2")
	path := "/jobs/v2/query"
	now := time.Now()
	good := h.token(now.Add(time.Hour))
	sig := func(tok string) string { return strings.SplitN(strings.SplitN(tok, "&sig=", 2)[1], "&", 2)[0] }

	rejected := []struct {
		name, auth string
	}{
		{"no Authorization", ""},
		{"expired", h.token(now.Add(-time.Minute))},
		{"wrong key", bbSASToken(h.host, h.keyName, []byte("not the hub's key"), now.Add(time.Hour).Unix())},
		{"another hub's resource", bbSASToken("other.azure-devices.net", h.keyName, h.key, now.Add(time.Hour).Unix())},
		{"signature over another expiry", strings.Replace(good, "&se=", "&se=1", 1)},
		{"unknown policy", strings.Replace(good, "&skn=iothubowner", "&skn=nobody", 1)},
		{"no signature", strings.Replace(good, "&sig="+sig(good), "", 1)},
		{"garbage", "SharedAccessSignature garbage"},
		{"a bearer token", "Bearer eyJhbGciOiJub25lIn0.e30."},
		{"the key itself", "SharedAccessSignature " + base64.StdEncoding.EncodeToString(h.key)},
	}
	for _, c := range rejected {
		t.Run(c.name, func(t *testing.T) {
			r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(c.auth)})
			// Reference §5, format A: ErrorCode:IotHubUnauthorizedAccess;Unauthorized.
			if e := r.wantError(t, http.StatusUnauthorized, "IotHubUnauthorizedAccess"); e.text != "Unauthorized" {
				t.Errorf("text %q, want Unauthorized", e.text)
			}
		})
	}
	t.Run("every operation requires it", func(t *testing.T) {
		for _, r := range []bbReq{
			{method: http.MethodPut, path: bbJobPath("bb-x"), body: bbTwinJob("bb-x", "*", nil)},
			{method: http.MethodGet, path: bbJobPath("bb-x")},
			{method: http.MethodPost, path: bbJobPath("bb-x") + "/cancel"},
			{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": "SELECT * FROM devices.jobs"}},
		} {
			r.auth = bbStr("")
			h.do(t, r).wantError(t, http.StatusUnauthorized, "IotHubUnauthorizedAccess")
		}
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-x")}); r.status != http.StatusNotFound && r.status != http.StatusOK {
			t.Errorf("nothing was created by the refused PUT, GET: %d", r.status)
		}
	})

	accepted := []struct {
		name, auth string
	}{
		{"as signed", good},
		// Reference §4: field order is not significant.
		{"fields reordered", "SharedAccessSignature skn=" + h.keyName + "&se=" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) +
			"&sig=" + sig(good) + "&sr=" + url.QueryEscape(h.host)},
		// Reference §4: Python leaves '/' unescaped in sig; a verifier URL-decodes it.
		{"sig with lower-case escapes", "SharedAccessSignature sr=" + url.QueryEscape(h.host) + "&sig=" +
			regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(sig(good), strings.ToLower) +
			"&se=" + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + "&skn=" + h.keyName},
	}
	for _, c := range accepted {
		t.Run(c.name, func(t *testing.T) {
			if r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(c.auth)}); r.status != http.StatusOK {
				t.Errorf("status %d, body %s", r.status, r.raw)
			}
		})
	}
	t.Run("sig with '/' left unescaped", func(t *testing.T) {
		// Find a signature containing '/' by trying expiries; then send it raw.
		for se := now.Add(time.Hour).Unix(); se < now.Add(time.Hour).Unix()+200; se++ {
			tok := bbSASToken(h.host, h.keyName, h.key, se)
			if s := sig(tok); strings.Contains(s, "%2F") {
				raw := strings.Replace(tok, s, strings.ReplaceAll(s, "%2F", "/"), 1)
				if r := h.do(t, bbReq{method: http.MethodGet, path: path, auth: bbStr(raw)}); r.status != http.StatusOK {
					t.Errorf("sig with a raw '/': status %d, body %s", r.status, r.raw)
				}
				return
			}
		}
		t.Fatal("no signature with '/' in 200 expiries")
	})
}

func TestBlackboxRequestValidation(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "3", "--max-active-jobs", "1")
	future := time.Now().Add(time.Hour)

	t.Run("api-version", func(t *testing.T) {
		for _, v := range []string{"2021-04-12", "2020-09-30", "2024-03-31"} {
			if r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", apiVersion: bbStr(v)}); r.status != http.StatusOK {
				t.Errorf("api-version %s: status %d", v, r.status)
			}
		}
		for _, v := range []string{"", "1999-01-01", "2021-04-12x", "latest"} {
			r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query", apiVersion: bbStr(v)})
			if e := r.wantError(t, http.StatusBadRequest, "InvalidProtocolVersion"); e.text != "BadRequest" {
				t.Errorf("api-version %q: text %q, want the recorded BadRequest", v, e.text)
			}
		}
	})

	t.Run("bad job type is GenericBadRequest", func(t *testing.T) {
		// azure-docs #29484: the old doc names are refused with ErrorCode:GenericBadRequest;BadRequest.
		for _, typ := range []string{"scheduleDirectRequest", "scheduleTwinUpdate", "scheduleDirectMethod", "export", "bogus"} {
			job := bbTwinJob("bb-type", "*", &future)
			job["type"] = typ
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-type"), body: job})
			if e := r.wantError(t, http.StatusBadRequest, "GenericBadRequest"); e.text != "BadRequest" {
				t.Errorf("type %s: text %q", typ, e.text)
			}
		}
	})

	t.Run("bad queryCondition is ArgumentInvalid", func(t *testing.T) {
		for _, cond := range []string{"deviceId LIKE 'd%'", "SELECT * FROM devices", "deviceId = 'it''s'", "deviceId = ", ""} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-cond"), body: bbTwinJob("bb-cond", cond, &future)})
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
	})

	t.Run("wrong shapes are ArgumentInvalid", func(t *testing.T) {
		noEtag := bbTwinJob("bb-shape", "*", &future)
		noEtag["updateTwin"] = map[string]any{"tags": map[string]any{"a": "b"}}
		bareDesired := bbTwinJob("bb-shape", "*", &future)
		bareDesired["updateTwin"] = map[string]any{"etag": "*", "desired": map[string]any{"a": "b"}}
		timeoutField := bbMethodJob("bb-shape", "*", &future, 600)
		timeoutField["cloudToDeviceMethod"] = map[string]any{"methodName": "reboot", "timeoutInSeconds": 30}
		for name, job := range map[string]map[string]any{"no etag": noEtag, "bare desired": bareDesired, "timeoutInSeconds": timeoutField} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-shape"), body: job})
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400", name, r.status)
				continue
			}
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
		if r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-shape"), body: `{"jobId":`}); r.status != http.StatusBadRequest {
			t.Errorf("truncated JSON: status %d", r.status)
		} else {
			r.parseError(t)
		}
	})

	t.Run("twin and method limits are ArgumentInvalid", func(t *testing.T) {
		method := func(timeout, connect any, payload any) map[string]any {
			j := bbMethodJob("bb-limits", "*", &future, 600)
			j["cloudToDeviceMethod"] = map[string]any{"methodName": "m", "payload": payload, "responseTimeoutInSeconds": timeout, "connectTimeoutInSeconds": connect}
			return j
		}
		twin := func(tw map[string]any) map[string]any {
			j := bbTwinJob("bb-limits", "*", &future)
			j["updateTwin"] = tw
			return j
		}
		deep := map[string]any{"v": 1}
		for range 11 {
			deep = map[string]any{"n": deep}
		}
		big := strings.Repeat("x", 129*1024)
		for name, job := range map[string]map[string]any{
			"response timeout 4 s":   method(4, 0, nil),
			"response timeout 301 s": method(301, 0, nil),
			"connect timeout 301 s":  method(30, 301, nil),
			"payload over 128 KB":    method(30, 0, map[string]any{"blob": big}),
			"tag key with a dot":     twin(map[string]any{"etag": "*", "tags": map[string]any{"a.b": "x"}}),
			"desired key with $":     twin(map[string]any{"etag": "*", "properties": map[string]any{"desired": map[string]any{"$x": 1}}}),
			"desired deeper than 10": twin(map[string]any{"etag": "*", "properties": map[string]any{"desired": deep}}),
			"etag other than *":      twin(map[string]any{"etag": "AAAA", "tags": map[string]any{"a": "b"}}),
		} {
			r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-limits"), body: job})
			if r.status != http.StatusBadRequest {
				t.Errorf("%s: status %d, want 400 ArgumentInvalid", name, r.status)
				continue
			}
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
		// The bounds themselves are accepted (5..300 and 0..300 s, reference §2).
		for i, job := range []map[string]any{method(5, 300, nil), method(300, 0, map[string]any{"k": "v"})} {
			job["jobId"] = fmt.Sprintf("bb-bounds-%d", i)
			h.create(t, job)
			if r := h.cancel(t, job["jobId"].(string)); r.status != http.StatusOK { // --max-active-jobs 1
				t.Fatalf("cancel: %d", r.status)
			}
		}
	})

	t.Run("devices.jobs query other than SELECT * is ArgumentInvalid", func(t *testing.T) {
		for _, q := range []string{"SELECT deviceId FROM devices.jobs", "SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'a' OR 1=1", "SELECT COUNT() FROM devices.jobs"} {
			r := h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": q}})
			r.wantError(t, http.StatusBadRequest, "ArgumentInvalid")
		}
	})

	t.Run("active jobs limit is 429 ThrottlingMaxActiveJobCountExceeded", func(t *testing.T) {
		h.create(t, bbTwinJob("bb-active-1", "*", &future))
		r := h.do(t, bbReq{method: http.MethodPut, path: bbJobPath("bb-active-2"), body: bbTwinJob("bb-active-2", "*", &future)})
		e := r.wantError(t, http.StatusTooManyRequests, "ThrottlingMaxActiveJobCountExceeded")
		t.Logf("the limit's error body is format %s", e.format)
		if r := h.do(t, bbReq{method: http.MethodGet, path: bbJobPath("bb-active-2")}); r.status == http.StatusOK && r.object(t)["status"] != "unknown" {
			t.Error("the refused job was created anyway")
		}
		if r := h.cancel(t, "bb-active-1"); r.status != http.StatusOK {
			t.Fatalf("cancel: %d", r.status)
		}
		h.create(t, bbTwinJob("bb-active-2", "*", &future)) // a cancelled job no longer counts
	})

	t.Run("unknown routes", func(t *testing.T) {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v3/nothing"})
		if r.status != http.StatusNotFound {
			t.Errorf("unknown path: %d", r.status)
		}
		r.parseError(t)
		r = h.do(t, bbReq{method: http.MethodDelete, path: bbJobPath("bb-active-2")})
		if r.status != http.StatusMethodNotAllowed && r.status != http.StatusNotFound {
			t.Errorf("DELETE /jobs/v2/{id}: %d", r.status)
		}
	})
}

func TestBlackboxJobsThrottle(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2", "--jobs-ops-per-minute", "3")
	var throttled *bbResp
	for range 10 {
		r := h.do(t, bbReq{method: http.MethodGet, path: "/jobs/v2/query"})
		if r.status == http.StatusTooManyRequests {
			throttled = &r
			break
		}
		if r.status != http.StatusOK {
			t.Fatalf("status %d", r.status)
		}
	}
	if throttled == nil {
		t.Fatal("10 jobs operations with a budget of 3 per minute were never throttled")
	}
	throttled.wantError(t, http.StatusTooManyRequests, "ThrottlingException")
	// Retry-After is [UNVERIFIED] on the real hub; when sent it must be seconds or an HTTP date.
	if ra := throttled.header.Get("Retry-After"); ra != "" {
		if _, err := strconv.Atoi(ra); err != nil {
			if _, err := http.ParseTime(ra); err != nil {
				t.Errorf("Retry-After %q is neither seconds nor an HTTP date", ra)
			}
		}
	}
	// devices.jobs queries are not jobs operations (reference §6 lists them apart).
	if r := h.do(t, bbReq{method: http.MethodPost, path: "/devices/query", body: map[string]any{"query": "SELECT * FROM devices.jobs"}}); r.status != http.StatusOK {
		t.Errorf("a devices.jobs query while jobs operations are throttled: %d", r.status)
	}
}

// TestBlackboxLengthRequired sends what a client that forgets
// Content-Length sends (reference §0.11): a POST or PUT with neither
// Content-Length nor a chunked body. net/http always adds the header, so
// this goes over a raw connection.
func TestBlackboxLengthRequired(t *testing.T) {
	t.Parallel()
	h := bbStartHubsim(t, "--devices", "2")
	for _, method := range []string{"POST", "PUT"} {
		t.Run(method, func(t *testing.T) {
			path := bbJobPath("bb-len")
			if method == "POST" {
				path += "/cancel"
			}
			conn, err := net.DialTimeout("tcp", strings.TrimPrefix(h.base, "http://"), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "%s %s?api-version=2021-04-12 HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nConnection: close\r\n\r\n",
				method, path, h.host, h.token(time.Now().Add(time.Hour)))
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusLengthRequired {
				t.Fatalf("%s without Content-Length: status %d, want 411; body %s", method, resp.StatusCode, body)
			}
			// The reference's 411 is HTTP.sys's own HTML page, not a hub JSON error.
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("411 Content-Type %q, want HTML", ct)
			}
			if resp.Header.Get("x-ms-request-id") == "" {
				t.Error("411 has no x-ms-request-id (issue 2: on every response)")
			}
			if err := json.Unmarshal(body, new(any)); err == nil {
				t.Errorf("411 body is JSON; HTTP.sys answers HTML: %s", body)
			}
		})
	}
	// And the same request with Content-Length: 0 is served: the 411 is about the header, not the cancel.
	if r := h.cancel(t, "bb-len"); r.status != http.StatusNotFound {
		t.Errorf("cancel with Content-Length: 0 of an unknown job: %d, want 404", r.status)
	}
}
