package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCancelSendsContentLengthZero reads the cancel request off a raw
// socket: without Content-Length HTTP.sys answers 411 with an HTML page.
func TestCancelSendsContentLengthZero(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	head := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		var b strings.Builder
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		head <- b.String()
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(jobCancelled), jobCancelled)
	}()
	cred, _ := NewSASCredential(ConnectionString{"h.example", "p", vectorKey})
	c, err := New(Config{Endpoint: "http://" + ln.Addr().String(), Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelJob(context.Background(), "job-1"); err != nil {
		t.Fatal(err)
	}
	h := <-head
	if !strings.HasPrefix(h, "POST /jobs/v2/job-1/cancel?api-version=2021-04-12 HTTP/1.1\r\n") || !strings.Contains(h, "\r\nContent-Length: 0\r\n") {
		t.Errorf("cancel request head lacks Content-Length: 0:\n%s", h)
	}
}

func TestCancelSemantics(t *testing.T) {
	tests := []struct {
		name            string
		cancel, get     func(w http.ResponseWriter, r *http.Request, n int)
		cfg             func(*Config)
		posts, gets     int
		wantStatus      JobStatus // "" for a nil job
		wantErr, notErr []error
	}{
		{
			name:   "queued job cancelled",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobCancelled) },
			posts:  1, wantStatus: StatusCancelled,
		},
		{
			name: "running job refused, not retried",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 400, errRunning, "iothub-errorcode", "OperationNotAllowedInCurrentState")
			},
			posts: 1, wantErr: []error{ErrNotCancellable}, notErr: []error{ErrOutcomeUnknown},
		},
		{
			name: "throttled before acting: retried",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					reply(w, 429, errThrottle)
					return
				}
				reply(w, 200, jobCancelled)
			},
			posts: 2, wantStatus: StatusCancelled,
		},
		{
			name:   "5xx: not re-sent, reconciled by GET",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 503, errServer) },
			get:    func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobCancelled) },
			posts:  1, gets: 1, wantStatus: StatusCancelled,
			wantErr: []error{ErrOutcomeUnknown, ErrUnavailable},
		},
		{
			name:   "hang: not re-sent, reconciled by GET",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { hang(w, r) },
			get:    func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobQueued) },
			cfg:    func(c *Config) { c.AttemptTimeout = 30 * time.Millisecond },
			posts:  1, gets: 1, wantStatus: StatusQueued,
			wantErr: []error{ErrOutcomeUnknown, ErrTimeout},
		},
		{
			name:   "unreadable 200: reconciled by GET",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, `{"jobId":`) },
			get:    func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobCancelled) },
			posts:  1, gets: 1, wantStatus: StatusCancelled,
			wantErr: []error{ErrOutcomeUnknown, ErrBadResponse},
		},
		{
			name: "oversized 200: reconciled by GET, not reported as a failure",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, `{"jobId":"job-1","status":"cancelled","statusMessage":"`+strings.Repeat("x", 4096)+`"}`)
			},
			get:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobCancelled) },
			cfg:   func(c *Config) { c.MaxResponseBytes = 1024 },
			posts: 1, gets: 1, wantStatus: StatusCancelled,
			wantErr: []error{ErrOutcomeUnknown, ErrResponseTooLarge},
		},
		{
			name: "200 whose status is not cancelled: reconciled, never a success",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, strings.Replace(jobQueued, "queued", "Cancelling", 1))
			},
			get:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobQueued) },
			posts: 1, gets: 1, wantStatus: StatusQueued,
			wantErr: []error{ErrOutcomeUnknown, ErrBadResponse},
		},
		{
			name: "200 about another job: reconciled, never a success",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, strings.Replace(jobCancelled, "job-1", "job-2", 1))
			},
			get:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobRunning) },
			posts: 1, gets: 1, wantStatus: StatusRunning,
			wantErr: []error{ErrOutcomeUnknown, ErrBadResponse},
		},
		{
			name:   "408: not re-sent (a gateway may have forwarded it), reconciled by GET",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 408, "") },
			get:    func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobCancelled) },
			posts:  1, gets: 1, wantStatus: StatusCancelled,
			wantErr: []error{ErrOutcomeUnknown, ErrTimeout},
		},
		{
			name:   "reconciling GET fails too: no job",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 500, errServer) },
			get:    func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobUnknown) },
			posts:  1, gets: 1,
			wantErr: []error{ErrOutcomeUnknown, ErrNotFound},
		},
		{
			name:   "404 is a definite answer",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 404, errNotFound) },
			posts:  1, wantErr: []error{ErrNotFound}, notErr: []error{ErrOutcomeUnknown},
		},
		{
			name: "write keeps time for reconciliation within the call budget",
			cancel: func(w http.ResponseWriter, r *http.Request, n int) {
				hang(w, r)
			},
			get: func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, jobRunning) },
			cfg: func(c *Config) {
				c.AttemptTimeout = time.Hour // only the budget can end the POST
				c.CallBudget = 400 * time.Millisecond
				c.ReconcileTimeout = 300 * time.Millisecond
			},
			posts: 1, gets: 1, wantStatus: StatusRunning,
			wantErr: []error{ErrOutcomeUnknown, ErrTimeout},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if r.Method == http.MethodPost {
					tt.cancel(w, r, n)
				} else if tt.get != nil {
					tt.get(w, r, n)
				}
			})
			var mods []func(*Config)
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c, _ := hub.client(t, mods...)
			start := time.Now()
			job, err := c.CancelJob(context.Background(), "job-1")
			if elapsed := time.Since(start); elapsed > c.cfg.CallBudget {
				t.Errorf("CancelJob took %v, over its budget %v", elapsed, c.cfg.CallBudget)
			}
			if p, g := hub.count("POST", "/jobs/v2/job-1/cancel"), hub.count("GET", "/jobs/v2/job-1"); p != tt.posts || g != tt.gets {
				t.Errorf("%d POSTs and %d GETs, want %d and %d", p, g, tt.posts, tt.gets)
			}
			switch {
			case tt.wantStatus == "" && job != nil:
				t.Errorf("job = %+v, want nil", job)
			case tt.wantStatus != "" && (job == nil || job.Status != tt.wantStatus):
				t.Errorf("job = %+v, want status %s", job, tt.wantStatus)
			}
			if tt.wantErr == nil && err != nil {
				t.Errorf("err = %v", err)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v; want it to match %v", err, want)
				}
			}
			for _, not := range tt.notErr {
				if errors.Is(err, not) {
					t.Errorf("err = %v; must not match %v", err, not)
				}
			}
		})
	}
}

// TestReconcileOutlivesTheCaller: a browser that goes away mid-cancel must
// not leave the audit trail without an outcome.
func TestReconcileOutlivesTheCaller(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPost {
			cancel() // the caller gives up while the hub holds the request
			hang(w, r)
			return
		}
		reply(w, 200, jobCancelled)
	})
	c, _ := hub.client(t)
	job, err := c.CancelJob(ctx, "job-1")
	if job == nil || job.Status != StatusCancelled || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("CancelJob = %+v, %v; want the reconciled job and ErrOutcomeUnknown", job, err)
	}
}

func TestCreateJobNotResentOnUnknownOutcome(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodPut {
			reply(w, 503, errServer)
			return
		}
		reply(w, 200, jobQueued)
	})
	c, _ := hub.client(t)
	req := JobRequest{JobID: "job-1", Type: TypeScheduleDeviceMethod, QueryCondition: "*", CloudToDeviceMethod: &CloudToDeviceMethod{MethodName: "reboot"}}
	job, err := c.CreateJob(context.Background(), req)
	if job == nil || job.Status != StatusQueued || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("CreateJob = %+v, %v", job, err)
	}
	if n := hub.count("PUT", "/jobs/v2/job-1"); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
	var body JobRequest
	if err := json.Unmarshal([]byte(hub.requests()[0].Body), &body); err != nil || body.JobID != "job-1" {
		t.Errorf("PUT body %q: %v", hub.requests()[0].Body, err)
	}
}

// TestCreateJobAlreadyExists: a create is idempotent by its deterministic
// id, so a second PUT of the same id is not a failure to hide: the caller
// gets the job the hub holds, and ErrJobExists to decide whether it is its own.
func TestCreateJobAlreadyExists(t *testing.T) {
	const exists = `{"Message":"ErrorCode:JobAlreadyExists;The specified job already exists","ExceptionMessage":"Tracking ID:dup-G:1-TimeStamp:01/01/2030 00:00:00"}`
	for _, tc := range []struct {
		name      string
		getStatus int
		getBody   string
		wantJob   bool
		wantAlso  error
	}{
		{"read back", 200, jobRunning, true, ErrConflict},
		{"read back finds nothing", 404, errNotFound, false, ErrNotFound},
		{"read back says unknown", 200, jobUnknown, false, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				if r.Method == http.MethodPut {
					reply(w, 409, exists, "iothub-errorcode", "JobAlreadyExists")
					return
				}
				reply(w, tc.getStatus, tc.getBody)
			})
			c, _ := hub.client(t)
			job, err := c.CreateJob(context.Background(), methodRequest("job-1", "*"))
			if !errors.Is(err, ErrJobExists) || !errors.Is(err, tc.wantAlso) || errors.Is(err, ErrOutcomeUnknown) {
				t.Fatalf("CreateJob err = %v, want ErrJobExists and %v", err, tc.wantAlso)
			}
			if (job != nil) != tc.wantJob || job != nil && (job.JobID != "job-1" || job.Status != StatusRunning) {
				t.Fatalf("CreateJob job = %+v, want the existing job: %v", job, tc.wantJob)
			}
			if p, g := hub.count("PUT", "/jobs/v2/job-1"), hub.count("GET", "/jobs/v2/job-1"); p != 1 || g != 1 {
				t.Errorf("%d PUTs and %d GETs, want one of each", p, g)
			}
		})
	}
}

func TestCreateJobUnknownOutcomeNotFound(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Method == http.MethodPut {
			hang(w, r)
			return
		}
		reply(w, 404, errNotFound)
	})
	c, _ := hub.client(t, func(cfg *Config) { cfg.AttemptTimeout = 50 * time.Millisecond })
	job, err := c.CreateJob(context.Background(), methodRequest("job-1", "*"))
	if job != nil || !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("CreateJob = %+v, %v; want no job, ErrOutcomeUnknown and ErrNotFound", job, err)
	}
	if n := hub.count("PUT", "/jobs/v2/job-1"); n != 1 {
		t.Errorf("%d PUTs, want 1", n)
	}
}

// TestCreateJobConditionLength: the limit is refused before sending, and
// the hub's two ways of refusing it (412 with a misleading etag text, or a
// 400) read as the same class.
func TestCreateJobConditionLength(t *testing.T) {
	const preconditionFailed = `{"Message":"ErrorCode:PreconditionFailed;The etag in the request does not match the etag of the existing resource, as per RFC7232","ExceptionMessage":"Tracking ID:pf-G:1-TimeStamp:01/01/2030 00:00:00"}`
	const badLength = `{"Message":"ErrorCode:ArgumentInvalid;Query length exceeds the maximum of 8192","ExceptionMessage":"Tracking ID:bl-G:1-TimeStamp:01/01/2030 00:00:00"}`
	const badOther = `{"Message":"ErrorCode:ArgumentInvalid;cloudToDeviceMethod.payload is not valid","ExceptionMessage":"Tracking ID:bo-G:1-TimeStamp:01/01/2030 00:00:00"}`
	long := "deviceId IN [" + strings.Repeat("'d',", 2100) + "'d']" // 8,418 characters
	for _, tc := range []struct {
		name         string
		condition    string
		status       int
		body         string
		wantPUTs     int
		wantTooLong  bool
		wantNotSent  bool
		wantJobFound bool
	}{
		{"over the limit is refused locally", long, 0, "", 0, true, true, false},
		{"8192 multi-byte characters are within it", strings.Repeat("é", MaxQueryLength), 200, jobQueued, 1, false, false, true},
		{"8193 characters are not", strings.Repeat("x", MaxQueryLength+1), 0, "", 0, true, true, false},
		{"hub answers 412 PreconditionFailed", "deviceId = 'a'", 412, preconditionFailed, 1, true, false, false},
		{"hub answers 400 about the length", "deviceId = 'a'", 400, badLength, 1, true, false, false},
		{"a 400 about something else is not about the length", "deviceId = 'a'", 400, badOther, 1, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, tc.status, tc.body) })
			c, _ := hub.client(t)
			job, err := c.CreateJob(context.Background(), methodRequest("job-1", tc.condition))
			if got := errors.Is(err, ErrQueryTooLong); got != tc.wantTooLong {
				t.Errorf("CreateJob err = %v; ErrQueryTooLong %v, want %v", err, got, tc.wantTooLong)
			}
			if got := errors.Is(err, ErrInvalidRequest); got != tc.wantNotSent {
				t.Errorf("CreateJob err = %v; ErrInvalidRequest %v, want %v", err, got, tc.wantNotSent)
			}
			if (job != nil) != tc.wantJobFound || errors.Is(err, ErrOutcomeUnknown) {
				t.Errorf("CreateJob = %+v, %v", job, err)
			}
			if n := hub.count("PUT", "/jobs/v2/job-1"); n != tc.wantPUTs {
				t.Errorf("%d PUTs, want %d", n, tc.wantPUTs)
			}
		})
	}
}

func methodRequest(id, condition string) JobRequest {
	return JobRequest{JobID: id, Type: TypeScheduleDeviceMethod, QueryCondition: condition,
		CloudToDeviceMethod: &CloudToDeviceMethod{MethodName: "reboot"}}
}
