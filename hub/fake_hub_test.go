package hub

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeHub is an httptest server whose handler the test writes; it records
// every request and tells the handler how many times this method and path
// were asked so far (1 for the first), so a handler can script "fail twice,
// then answer".
type fakeHub struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

func newFakeHub(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fakeHub {
	t.Helper()
	f := &fakeHub{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.seen = append(f.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		n := 0
		for _, s := range f.seen {
			if s.Method == r.Method && s.Path == r.URL.Path {
				n++
			}
		}
		f.mu.Unlock()
		handle(w, r, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHub) requests() []seenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seenRequest(nil), f.seen...)
}

func (f *fakeHub) count(method, path string) int {
	n := 0
	for _, s := range f.requests() {
		if s.Method == method && s.Path == path {
			n++
		}
	}
	return n
}

// waits records the backoff waits a client asked for, instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(ctx context.Context, d time.Duration) error {
	w.mu.Lock()
	w.d = append(w.d, d)
	w.mu.Unlock()
	return ctx.Err()
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// client builds a Client for the fake with instant, recorded sleeps and no
// jitter, so that tests can assert the exact waits.
func (f *fakeHub) client(t *testing.T, mods ...func(*Config)) (*Client, *waits) {
	t.Helper()
	w := &waits{}
	cred, err := NewSASCredential(ConnectionString{"myhub.azure-devices.net", "iothubowner", vectorKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Host: "myhub.azure-devices.net", Endpoint: f.srv.URL, Credential: cred,
		Sleep: w.sleep, Jitter: func(d time.Duration) time.Duration { return d },
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// reply writes a JSON answer the way the hub does: request id always,
// iothub-errorcode on errors.
func reply(w http.ResponseWriter, status int, body string, header ...string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-request-id", "req-test")
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// hang blocks until the client gives up on the request.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

const (
	jobQueued    = `{"jobId":"job-1","type":"scheduleDeviceMethod","status":"queued","queryCondition":"*"}`
	jobCancelled = `{"jobId":"job-1","type":"scheduleDeviceMethod","status":"cancelled","queryCondition":"*"}`
	jobRunning   = `{"jobId":"job-1","type":"scheduleDeviceMethod","status":"running","queryCondition":"*"}`
	jobUnknown   = `{"type":"unknown","status":"unknown"}`
	errThrottle  = `{"Message":"ErrorCode:ThrottlingException;Wait 10 seconds","ExceptionMessage":"Tracking ID:abc-G:1-TimeStamp:01/01/2030 00:00:00"}`
	errServer    = `{"Message":"ErrorCode:ServerError;Internal","ExceptionMessage":"Tracking ID:srv-G:1-TimeStamp:01/01/2030 00:00:00"}`
	errRunning   = `{"Message":"ErrorCode:OperationNotAllowedInCurrentState;Job cannot be cancelled in 'Running' status.","ExceptionMessage":"Tracking ID:run-G:2-TimeStamp:01/01/2030 00:00:00"}`
	errNotFound  = `{"Message":"ErrorCode:JobNotFound;Job not found","ExceptionMessage":"Tracking ID:nf-G:2-TimeStamp:01/01/2030 00:00:00"}`
)
