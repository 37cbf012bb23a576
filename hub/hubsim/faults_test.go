package hubsim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaultLatency(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.create("a", methodJob("a", "*"))
	h.sim.Inject(Fault{Op: OpGetJob, Kind: FaultLatency, Delay: 40 * time.Millisecond, Times: 1})
	start := time.Now()
	h.get("a") // served normally, only late
	if elapsed := time.Since(start); elapsed < 40*time.Millisecond {
		t.Errorf("answered after %v, want ≥ 40ms", elapsed)
	}
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/query", "")) // other operations unaffected
}

func TestFaultHang(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.sim.Inject(Fault{Match: "GET /jobs/v2/", Kind: FaultHang})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url+"/jobs/v2/query?api-version=2021-04-12", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hung request ended with %v, want the client's deadline", err)
	}
	// Close releases a request that would otherwise hang forever.
	done := make(chan error, 1)
	go func() {
		res, err := http.Get(h.url + "/jobs/v2/x?api-version=2021-04-12")
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	for h.sim.Calls(OpGetJob) == 0 {
		time.Sleep(time.Millisecond) // wait until the request is inside the Sim
	}
	h.sim.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("released hang answered; want a dropped connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the hung request")
	}
}

func TestFault5xxBurst(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.create("a", methodJob("a", "*"))
	h.sim.Inject(Fault{Op: OpGetJob, Kind: Fault5xx, Times: 2, RetryAfter: "1"})
	for range 2 {
		r := h.do(http.MethodGet, "/jobs/v2/a", "")
		wantError(t, r, http.StatusServiceUnavailable, "ServiceUnavailable", "Service Unavailable")
		if r.header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
	}
	h.get("a") // the burst is over
	h.sim.Inject(Fault{Op: OpCancelJob, Kind: Fault5xx, Status: 500, Times: 1})
	wantError(t, h.do(http.MethodPost, "/jobs/v2/a/cancel", ""), http.StatusInternalServerError, "ServerError", "Internal Server Error")
	if got := h.get("a")["status"]; got != "queued" {
		t.Errorf("a faulted cancel reached the job: %v", got)
	}
}

func TestFaultThrottle(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	date := "Tue, 01 Jan 2030 08:00:02 GMT"
	h.sim.Inject(Fault{Op: OpQueryJobs, Kind: FaultThrottle, Times: 1, RetryAfter: date})
	r := h.do(http.MethodGet, "/jobs/v2/query", "")
	wantError(t, r, http.StatusTooManyRequests, "ThrottlingException", "Throttling")
	if r.header.Get("Retry-After") != date {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/query", ""))
}

func TestFaultMalformedJSON(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.sim.Inject(Fault{Op: OpCreateJob, Kind: FaultMalformedJSON, Times: 1})
	r := h.do(http.MethodPut, "/jobs/v2/a", methodJob("a", "*"))
	wantOK(t, r)
	if json.Valid(r.body) || !strings.HasPrefix(`{"jobId":"a","type":"scheduleDeviceMethod","status":"queued"}`, string(r.body)) {
		t.Errorf("body %q, want the real body cut in half", r.body)
	}
	h.get("a") // the create itself happened: the client cannot know
}

func TestFaultHTMLError(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.sim.Inject(Fault{Match: "POST /devices/", Kind: FaultHTMLError, Times: 1})
	r := h.do(http.MethodPost, "/devices/query", `{"query":"SELECT * FROM devices.jobs"}`)
	if r.status != http.StatusBadGateway || r.header.Get("Content-Type") != "text/html; charset=us-ascii" ||
		!strings.Contains(string(r.body), "<h2>502 - Bad Gateway</h2>") {
		t.Fatalf("%d %s\n%s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if r.header.Get("x-ms-request-id") != "" || r.header.Get("iothub-errorcode") != "" {
		t.Errorf("a proxy page carries hub headers: %v", r.header)
	}
}

func TestFaultOversized(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.sim.Inject(Fault{Op: OpQueryJobs, Kind: FaultOversized, Size: 1 << 20, Times: 2})
	r := h.do(http.MethodGet, "/jobs/v2/query", "")
	if r.status != http.StatusOK || len(r.body) < 1<<20 || !json.Valid(r.body) || r.header.Get("Content-Length") != "" {
		t.Fatalf("status %d, %d bytes, valid %v, Content-Length %q", r.status, len(r.body), json.Valid(r.body), r.header.Get("Content-Length"))
	}
	// A client that stops reading early is fine.
	res, err := http.Get(h.url + "/jobs/v2/query?api-version=2021-04-12")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, res.Body, 64<<10); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/query", ""))
}

func TestFaultReset(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.sim.Inject(Fault{Op: OpGetJob, Kind: FaultReset, Times: 1})
	res, err := http.Get(h.url + "/jobs/v2/a?api-version=2021-04-12")
	if err == nil {
		res.Body.Close()
		t.Fatalf("reset answered %d", res.StatusCode)
	}
	wantError(t, h.do(http.MethodGet, "/jobs/v2/a", ""), http.StatusNotFound, "JobNotFound", "a")
}

func TestFaultMatching(t *testing.T) {
	h := newHarness(t, Options{Devices: 2})
	h.create("a", methodJob("a", "*"))
	h.sim.Inject(Fault{Op: OpGetJob, Kind: Fault5xx})     // every get-job until cleared
	wantOK(t, h.do(http.MethodGet, "/jobs/v2/query", "")) // the prefix is shared, the op is not
	for range 3 {
		wantError(t, h.do(http.MethodGet, "/jobs/v2/a", ""), http.StatusServiceUnavailable, "ServiceUnavailable", "")
	}
	h.sim.ClearFaults()
	h.get("a")
	defer func() {
		if recover() == nil {
			t.Error("Inject of an unknown kind did not panic")
		}
	}()
	h.sim.Inject(Fault{Kind: FaultKind(99)})
}
