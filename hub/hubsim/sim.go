package hubsim

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultHostname      = "sim-hub.azure-devices.net"
	DefaultDevices       = 1500 // enough for SeedDemo's jobs over ≥ 1000 devices
	DefaultDeviceRate    = 5.0  // devices started per second per running job
	DefaultMaxActiveJobs = 10   // like an S3 hub; S1 is 1
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultQueuedPhase   = time.Second
	// DefaultCancelRefusedStatus is the HTTP status of
	// OperationNotAllowedInCurrentState. The real status is unverified.
	// 405 is chosen because every IoT Hub error number starts with its HTTP
	// status (400001 → 400, 404002 → 404, 429004 → 429) and this code is
	// 405102; other sources assume 400 (docs/iothub.md §3). Options.CancelRefusedStatus lets a
	// test run a client against either.
	DefaultCancelRefusedStatus = http.StatusMethodNotAllowed
)

// Options configure a Sim (the `hubjobs hubsim` flags map onto them).
type Options struct {
	Hostname        string  // e.g. sim-hub.azure-devices.net; the SAS sr must name it
	Key             []byte  // iothubowner key (random when nil)
	Devices         int     // generated registry size, with tags (default 1500); ignored with Registry
	DeviceRate      float64 // devices processed per second per running job (default 5)
	FailureRate     float64 // share of devices that fail (0..1; default 0)
	MaxActiveJobs   int     // unfinished jobs before 429 ThrottlingMaxActiveJobCountExceeded (default 10)
	JobOpsPerMinute int     // jobs-operations token bucket before 429 ThrottlingException (0 = unlimited)
	// QueriesPerMinute is the POST /devices/query token bucket before 429
	// ThrottlingException (0 = unlimited; real hubs: 20/min/unit on S1/S2).
	QueriesPerMinute int
	Retention        time.Duration // default 30 days
	Clock            Clock         // default wall clock

	// Registry, when set, replaces the generated registry: these devices,
	// in this order, with their tags, reported properties and behaviour.
	// New panics unless ValidateRegistry accepts it (LoadRegistry does).
	Registry []Device

	// Seed decides registry tags and which devices fail; the same seed and
	// clock give the same hub.
	Seed uint64
	// QueuedPhase is how long a new job reports "queued" before it becomes
	// scheduled or running (default 1 s; negative: no queued phase).
	QueuedPhase time.Duration
	// CancelRefusedStatus is the HTTP status of a refused cancel (running
	// or finished job); default 405, see DefaultCancelRefusedStatus.
	CancelRefusedStatus int
	// MissingJobsUnknown makes GET /jobs/v2/{id} of an id the hub does not
	// have answer 200 {"type":"unknown","status":"unknown"}, as some real
	// hubs are reported to do, instead of 404 JobNotFound. Import/export
	// ids registered with AddImportExportJob answer that way regardless.
	MissingJobsUnknown bool
	// BearerToken, when set, is accepted as "Authorization: Bearer <token>":
	// a stand-in for an Entra ID token, which the simulator cannot verify.
	BearerToken string
}

// Op names a hub operation, for Calls and Fault.Op.
type Op string

const (
	OpCreateJob    Op = "createJob"    // PUT /jobs/v2/{id}
	OpGetJob       Op = "getJob"       // GET /jobs/v2/{id}
	OpCancelJob    Op = "cancelJob"    // POST /jobs/v2/{id}/cancel
	OpQueryJobs    Op = "queryJobs"    // GET /jobs/v2/query
	OpQueryDevices Op = "queryDevices" // POST /devices/query
	OpOther        Op = "other"        // unknown paths and methods
)

// Sim is a wire-faithful IoT Hub jobs endpoint: an http.Handler serving
// the scheduled-jobs API and devices.jobs queries as docs/iothub.md
// describes the real service. All state is in memory; job progress is a
// function of Options.Clock, so no goroutine runs between requests.
type Sim struct {
	opts     Options
	clock    Clock
	registry []device

	mu           sync.Mutex
	jobs         map[string]*job
	importExport map[string]bool
	bucket       tokenBucket // jobs operations
	queryBucket  tokenBucket // POST /devices/query
	calls        map[Op]int
	faults       []*injectedFault

	closeOnce sync.Once
	closed    chan struct{}
}

// New returns a simulator with o's zero fields defaulted. Out-of-range
// values are clamped (FailureRate to 0..1) or defaulted (non-positive
// Devices, DeviceRate, MaxActiveJobs, Retention); validating user input is
// the command's job.
func New(o Options) *Sim {
	if o.Hostname == "" {
		o.Hostname = DefaultHostname
	}
	if len(o.Key) == 0 {
		o.Key = make([]byte, 32)
		_, _ = rand.Read(o.Key)
	}
	if o.Devices <= 0 {
		o.Devices = DefaultDevices
	}
	if o.DeviceRate <= 0 {
		o.DeviceRate = DefaultDeviceRate
	}
	o.FailureRate = min(max(o.FailureRate, 0), 1)
	if o.MaxActiveJobs <= 0 {
		o.MaxActiveJobs = DefaultMaxActiveJobs
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Clock == nil {
		o.Clock = wallClock{}
	}
	switch {
	case o.QueuedPhase == 0:
		o.QueuedPhase = DefaultQueuedPhase
	case o.QueuedPhase < 0:
		o.QueuedPhase = 0
	}
	if o.CancelRefusedStatus == 0 {
		o.CancelRefusedStatus = DefaultCancelRefusedStatus
	}
	entries := o.Registry
	if entries == nil {
		entries = generateRegistry(o.Devices, o.Seed)
	} else if err := ValidateRegistry(entries); err != nil {
		panic("hubsim: Options.Registry: " + err.Error())
	}
	now := o.Clock.Now()
	return &Sim{
		opts:         o,
		clock:        o.Clock,
		registry:     newDevices(entries, now),
		jobs:         map[string]*job{},
		importExport: map[string]bool{},
		bucket:       newTokenBucket(o.JobOpsPerMinute, now),
		queryBucket:  newTokenBucket(o.QueriesPerMinute, now),
		calls:        map[Op]int{},
		closed:       make(chan struct{}),
	}
}

// ConnectionString is HostName=…;SharedAccessKeyName=iothubowner;SharedAccessKey=….
func (s *Sim) ConnectionString() string {
	return "HostName=" + s.opts.Hostname + ";SharedAccessKeyName=" + PolicyName +
		";SharedAccessKey=" + base64.StdEncoding.EncodeToString(s.opts.Key)
}

// Hostname is the hub name SAS tokens must be issued for.
func (s *Sim) Hostname() string { return s.opts.Hostname }

// Calls is how many requests for op reached the simulator, whatever their
// outcome (refused, throttled or faulted requests count too): the portal's
// traffic-budget tests count hub calls with it.
func (s *Sim) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// ResetCalls zeroes every Calls counter.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

// AddImportExportJob registers id as an import/export job. The hub keeps
// those apart from scheduled jobs, and GET /jobs/v2/{id} answers 200 with
// type and status "unknown" for them (the CLI then falls back to GET
// /jobs/{id}); a client must treat that as "not found".
func (s *Sim) AddImportExportJob(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.importExport[id] = true
}

// Close releases requests held by FaultHang or FaultLatency (their
// connections are dropped). Call it before closing the server that serves
// the Sim; the Sim keeps answering other requests afterwards.
func (s *Sim) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// route is what the URL names, before any check.
type route struct {
	op       Op
	id       string // job id, unescaped
	methodOK bool
	allow    string // methods the path supports
	isJobsOp bool   // counts against the jobs-operations throttle
	isQuery  bool   // counts against the queries throttle
}

func routeOf(r *http.Request) route {
	segs := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	id := ""
	if len(segs) >= 3 {
		var err error
		if id, err = url.PathUnescape(segs[2]); err != nil {
			id = ""
		}
	}
	switch {
	case len(segs) == 2 && segs[0] == "devices" && segs[1] == "query":
		return route{op: OpQueryDevices, methodOK: r.Method == http.MethodPost, allow: "POST", isQuery: true}
	case len(segs) < 3 || segs[0] != "jobs" || segs[1] != "v2" || id == "":
		return route{op: OpOther}
	case len(segs) == 3 && segs[2] == "query":
		return route{op: OpQueryJobs, methodOK: r.Method == http.MethodGet, allow: "GET", isJobsOp: true}
	case len(segs) == 3 && r.Method == http.MethodPut:
		return route{op: OpCreateJob, id: id, methodOK: true, isJobsOp: true}
	case len(segs) == 3:
		return route{op: OpGetJob, id: id, methodOK: r.Method == http.MethodGet, allow: "GET, PUT", isJobsOp: true}
	case len(segs) == 4 && segs[3] == "cancel":
		return route{op: OpCancelJob, id: id, methodOK: r.Method == http.MethodPost, allow: "POST", isJobsOp: true}
	}
	return route{op: OpOther}
}

// ServeHTTP counts the call, applies an injected fault if one matches, and
// serves the request.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := routeOf(r)
	counted := rt.op
	if !rt.methodOK {
		counted = OpOther
	}
	s.mu.Lock()
	s.calls[counted]++
	s.mu.Unlock()
	if f, ok := s.takeFault(r, counted); ok && s.applyFault(w, r, rt, f) {
		return
	}
	if needsLength(r) {
		writeHTML(w, http.StatusLengthRequired, true, lengthRequiredPage)
		return
	}
	s.write(w, s.serve(r, rt), nil)
}

// needsLength reports a POST or PUT with neither Content-Length nor a
// chunked body, which HTTP.sys refuses before the hub sees it.
func needsLength(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return false
	}
	return r.Header.Get("Content-Length") == "" && len(r.TransferEncoding) == 0
}

// lengthRequiredPage is HTTP.sys's 411 page (azure-iot-sdk-java #124).
const lengthRequiredPage = `<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">
<HTML><HEAD><TITLE>Length Required</TITLE>
<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>
<BODY><h2>Length Required</h2>
<hr><p>HTTP Error 411. The request must be chunked or have a content length.</p>
</BODY></HTML>
`

// supportedAPIVersions are the api-version values the simulator accepts
// (docs/iothub.md §7); the jobs surface is the same in all three.
var supportedAPIVersions = map[string]bool{"2021-04-12": true, "2020-09-30": true, "2024-03-31": true}

// serve runs the checks every request passes, in this order: route, method,
// api-version, credentials, jobs-operations or queries throttle; then it
// brings the twins up to date (settle) and runs the operation.
func (s *Sim) serve(r *http.Request, rt route) reply {
	switch {
	case rt.op == OpOther:
		return fail(newHubError(codeGenericNotFound, "The requested resource %s was not found.", r.URL.Path))
	case !rt.methodOK:
		e := newHubError(codeGenericMethodNotAllowed, "The requested resource does not support http method '%s'.", r.Method)
		return reply{err: e, header: http.Header{"Allow": {rt.allow}}}
	}
	if v := r.URL.Query().Get("api-version"); !supportedAPIVersions[v] {
		return fail(newHubError(codeInvalidProtocolVersion, "BadRequest"))
	}
	now := s.clock.Now()
	if err := s.verifyAuthorization(r.Header.Get("Authorization"), now); err != nil {
		return fail(newHubError(codeUnauthorizedAccess, "Unauthorized"))
	}
	if e := s.throttle(rt, now); e != nil {
		return fail(e)
	}
	s.mu.Lock()
	s.settle(now)
	s.mu.Unlock()
	switch rt.op {
	case OpCreateJob:
		return s.createJob(r, rt.id, now)
	case OpGetJob:
		return s.getJob(rt.id, now)
	case OpCancelJob:
		return s.cancelJob(rt.id, now)
	case OpQueryJobs:
		return s.queryJobs(r, now)
	default:
		return s.queryDevices(r, now)
	}
}

// throttle takes a token from the bucket the route counts against and
// answers 429 ThrottlingException (format B, with Retry-After) when none
// is left.
func (s *Sim) throttle(rt route, now time.Time) *hubError {
	bucket, what, limit := &s.bucket, "jobs operations", s.opts.JobOpsPerMinute
	switch {
	case rt.isQuery:
		bucket, what, limit = &s.queryBucket, "queries", s.opts.QueriesPerMinute
	case !rt.isJobsOp:
		return nil
	}
	s.mu.Lock()
	ok, wait := bucket.take(now)
	s.mu.Unlock()
	if ok {
		return nil
	}
	e := newHubError(codeThrottling, "Throttling limit exceeded: %s are limited to %d per minute.", what, limit)
	e.format = formatB
	e.retryAfter = strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
	return e
}

// reply is an operation's answer before it is written.
type reply struct {
	status int
	body   []byte
	header http.Header
	err    *hubError
}

func fail(e *hubError) reply { return reply{err: e} }

func okJSON(v any, header http.Header) reply {
	body, err := marshalJSON(v)
	if err != nil {
		return fail(newHubError(codeServerError, "%v", err))
	}
	return reply{status: http.StatusOK, body: body, header: header}
}

const (
	serverHeader    = "Microsoft-HTTPAPI/2.0"
	contentTypeJSON = "application/json; charset=utf-8"
)

// write sends rep with the headers every hub response carries:
// x-ms-request-id, Content-Type, Server, plus Vary: Origin on success and
// iothub-errorcode (and Retry-After when set) on errors. mangle, when set,
// rewrites the body (FaultMalformedJSON).
func (s *Sim) write(w http.ResponseWriter, rep reply, mangle func([]byte) []byte) {
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Server", serverHeader)
	h.Set("x-ms-request-id", newUUID())
	status, body := rep.status, rep.body
	if e := rep.err; e != nil {
		status, body = e.status, e.body(trackingID(), s.clock.Now())
		h.Set("iothub-errorcode", e.code.name)
		if e.retryAfter != "" {
			h.Set("Retry-After", e.retryAfter)
		}
	} else {
		h.Set("Vary", "Origin")
	}
	if mangle != nil {
		body = mangle(body)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// marshalJSON encodes like the hub's .NET serializer: no HTML escaping of
// <, > and &, no trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// trackingID is 32 hex digits and a gateway suffix, as in
// "Tracking ID:8d08ff1144d6450680295a10d760244f-G:9-TimeStamp:…".
func trackingID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-G:" + strconv.Itoa(int(b[0]%12))
}
