package hubsim

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind is a way the hub, or something in front of it, misbehaves.
type FaultKind int

const (
	// FaultLatency delays the request by Delay, then serves it normally.
	FaultLatency FaultKind = iota + 1
	// FaultHang never answers: the handler blocks until the request's
	// context ends (the client gave up) or Sim.Close is called, then drops
	// the connection without a response.
	FaultHang
	// Fault5xx answers Status (500..599, default 503) in the hub's error
	// format A: ServiceUnavailable for 503, ServerError otherwise, with
	// Retry-After when RetryAfter is set.
	Fault5xx
	// FaultThrottle answers 429 ThrottlingException in format A (the token
	// bucket's own 429s use format B), with Retry-After when RetryAfter is
	// set, e.g. "2" or an HTTP date.
	FaultThrottle
	// FaultMalformedJSON serves the request (side effects included) and
	// sends the first half of its real body, so the JSON is cut mid-way
	// under correct status and headers.
	FaultMalformedJSON
	// FaultHTMLError answers Status (default 502) with an IIS/front-end
	// style HTML page, text/html, no x-ms-request-id and no error code: what
	// a proxy in front of the hub returns.
	FaultHTMLError
	// FaultOversized answers 200 with a well-formed JSON array of Size bytes
	// (default 16 MiB) streamed without Content-Length, for body caps.
	FaultOversized
	// FaultReset drops the connection before any response is written: a
	// failure "before a response", safe to retry for every operation.
	FaultReset
)

func (k FaultKind) String() string {
	names := map[FaultKind]string{
		FaultLatency: "latency", FaultHang: "hang", Fault5xx: "5xx", FaultThrottle: "throttle",
		FaultMalformedJSON: "malformed-json", FaultHTMLError: "html-error", FaultOversized: "oversized", FaultReset: "reset",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is an injected misbehaviour. A request matches when it is of Op (if
// set) and "METHOD /path" starts with Match (if set): Match "GET /jobs/v2/"
// hits get-job and the jobs query alike; Op OpGetJob only get-job. The
// first matching fault with requests left applies; faults are checked
// before authentication, like network trouble would be.
type Fault struct {
	Op         Op
	Match      string
	Kind       FaultKind
	Times      int           // requests affected; 0 = every match until ClearFaults
	Delay      time.Duration // FaultLatency
	Status     int           // Fault5xx, FaultHTMLError
	RetryAfter string        // Fault5xx, FaultThrottle
	Size       int           // FaultOversized
}

// injectedFault is a Fault with its remaining budget.
type injectedFault struct {
	Fault
	left      int
	unlimited bool
}

// Inject adds a fault. It panics on a Kind the simulator does not know
// (a mistake in the calling test, not a runtime condition).
func (s *Sim) Inject(f Fault) {
	if f.Kind < FaultLatency || f.Kind > FaultReset {
		panic(fmt.Sprintf("hubsim: Inject: unknown fault kind %d", f.Kind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &injectedFault{Fault: f, left: f.Times, unlimited: f.Times <= 0})
}

// ClearFaults removes every injected fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault consumes one use of the first fault matching the request.
func (s *Sim) takeFault(r *http.Request, op Op) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := r.Method + " " + r.URL.Path
	for i, f := range s.faults {
		if (f.Op != "" && f.Op != op) || !strings.HasPrefix(line, f.Match) {
			continue
		}
		if !f.unlimited {
			f.left--
			if f.left == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// applyFault misbehaves as f says. It reports false when the request should
// still be served normally (latency that ran its course).
func (s *Sim) applyFault(w http.ResponseWriter, r *http.Request, rt route, f Fault) bool {
	switch f.Kind {
	case FaultLatency:
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
			return false
		case <-r.Context().Done():
		case <-s.closed:
		}
		panic(http.ErrAbortHandler)
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		panic(http.ErrAbortHandler)
	case FaultReset:
		panic(http.ErrAbortHandler)
	case Fault5xx:
		status := f.Status
		if status < 500 || status > 599 {
			status = http.StatusServiceUnavailable
		}
		code := codeServerError
		if status == http.StatusServiceUnavailable {
			code = codeServiceUnavailable
		}
		e := newHubError(code, "%s", http.StatusText(status))
		e.status, e.retryAfter = status, f.RetryAfter
		s.write(w, reply{err: e}, nil)
	case FaultThrottle:
		e := newHubError(codeThrottling, "Throttling limit exceeded for jobs operations.")
		e.retryAfter = f.RetryAfter
		s.write(w, reply{err: e}, nil)
	case FaultMalformedJSON:
		s.write(w, s.serve(r, rt), func(b []byte) []byte { return b[:len(b)/2] })
	case FaultHTMLError:
		status := f.Status
		if status == 0 {
			status = http.StatusBadGateway
		}
		writeHTML(w, status, false, fmt.Sprintf(iisErrorPage, status, http.StatusText(status)))
	case FaultOversized:
		s.writeOversized(w, f.Size)
	}
	return true
}

// iisErrorPage is the shape of an error page from a Windows front end.
const iisErrorPage = `<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>
<title>%[1]d - %[2]s</title></head>
<body><div id="header"><h1>Server Error</h1></div>
<div id="content"><fieldset><h2>%[1]d - %[2]s</h2>
<h3>The server encountered an error while acting as a gateway or proxy.</h3></fieldset></div>
</body></html>
`

// writeHTML sends an HTML page from something in front of the hub.
// withRequestID adds x-ms-request-id (the 411 page carries one, so that
// "every response has a request id" holds for the hub's own front end; the
// proxy page of FaultHTMLError does not).
func writeHTML(w http.ResponseWriter, status int, withRequestID bool, page string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=us-ascii")
	h.Set("Server", serverHeader)
	if withRequestID {
		h.Set("x-ms-request-id", newUUID())
	}
	h.Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

// defaultOversize is larger than any sane client cap on a jobs response.
const defaultOversize = 16 << 20

// writeOversized streams a JSON array of job-shaped objects of about size
// bytes, stopping as soon as the client hangs up.
func (s *Sim) writeOversized(w http.ResponseWriter, size int) {
	if size <= 0 {
		size = defaultOversize
	}
	h := w.Header()
	h.Set("Content-Type", contentTypeJSON)
	h.Set("Server", serverHeader)
	h.Set("x-ms-request-id", newUUID())
	h.Set(headerItemType, "JobResponse")
	w.WriteHeader(http.StatusOK)
	var chunk bytes.Buffer
	written := 0
	chunk.WriteByte('[')
	for i := 0; written < size; i++ {
		if i > 0 {
			chunk.WriteByte(',')
		}
		fmt.Fprintf(&chunk, `{"jobId":"oversized-%08d","type":"unknown","status":"unknown"}`, i)
		if chunk.Len() >= 32<<10 {
			written += chunk.Len()
			if _, err := w.Write(chunk.Bytes()); err != nil {
				return
			}
			chunk.Reset()
		}
	}
	chunk.WriteByte(']')
	_, _ = w.Write(chunk.Bytes())
}
