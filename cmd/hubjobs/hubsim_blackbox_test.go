package main

// An independent, black-box check of `hubjobs hubsim` (issue 2: "checked from
// outside by an independent client written from the reference").
//
// Everything in this file was written from
// the IoT Hub jobs API research notes alone: their SAS algorithm and test
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
	"net/http"
	"net/url"
	"regexp"
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
// (first stdout line, docs/contract.md) and the URL (second line) from its stdout.
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
		t.Fatalf("connection string %q: want HostName and SharedAccessKeyName=iothubowner (docs/contract.md)", connString)
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
