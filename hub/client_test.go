package hub

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestsMatchTheWire(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		switch {
		case r.URL.Path == "/jobs/v2/query":
			reply(w, 200, `[`+jobQueued+`]`, "x-ms-continuation", "next-page")
		case r.URL.Path == "/devices/query":
			reply(w, 200, string(readFixture(t, "wire/device_jobs_page.json")))
		case r.Method == http.MethodPut:
			reply(w, 200, string(readFixture(t, "wire/create_response.json")))
		case strings.HasSuffix(r.URL.Path, "/cancel"):
			reply(w, 200, jobCancelled)
		default:
			reply(w, 200, jobQueued)
		}
	})
	c, _ := hub.client(t)
	ctx := context.Background()
	if _, err := c.GetJob(ctx, "job-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CancelJob(ctx, "job-1"); err != nil {
		t.Fatal(err)
	}
	page, err := c.QueryJobs(ctx, QueryJobsOptions{Type: TypeScheduleDeviceMethod, Status: StatusCancelled, PageSize: 50, Continuation: "tok/en=="})
	if err != nil || len(page.Jobs) != 1 || page.Continuation != "next-page" {
		t.Fatalf("QueryJobs = %+v, %v", page, err)
	}
	devices, err := c.QueryDeviceJobs(ctx, "job_1-A", PageOptions{PageSize: 10})
	if err != nil || len(devices.Devices) != 5 || devices.Continuation != "" {
		t.Fatalf("QueryDeviceJobs = %+v, %v", devices, err)
	}
	created, err := c.CreateJob(ctx, JobRequest{JobID: "job01", Type: TypeScheduleUpdateTwin, QueryCondition: "tags.ring = '2'",
		UpdateTwin: &Twin{Tags: map[string]any{"ring": "3"}}})
	if err != nil || created.Status != StatusQueued {
		t.Fatalf("CreateJob = %+v, %v", created, err)
	}

	want := []struct {
		method, path, query, body string
		header                    map[string]string
	}{
		{"GET", "/jobs/v2/job-1", "api-version=2021-04-12", "", nil},
		{"POST", "/jobs/v2/job-1/cancel", "api-version=2021-04-12", "", nil},
		{"GET", "/jobs/v2/query", "api-version=2021-04-12&jobStatus=cancelled&jobType=scheduleDeviceMethod", "",
			map[string]string{"X-Ms-Max-Item-Count": "50", "X-Ms-Continuation": "tok/en=="}},
		{"POST", "/devices/query", "api-version=2021-04-12",
			`{"query":"SELECT * FROM devices.jobs WHERE devices.jobs.jobId = 'job_1-A'"}`,
			map[string]string{"X-Ms-Max-Item-Count": "10", "Content-Type": "application/json; charset=utf-8", "X-Ms-Continuation": ""}},
		{"PUT", "/jobs/v2/job01", "api-version=2021-04-12",
			`{"jobId":"job01","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":{"ring":"3"}},"queryCondition":"tags.ring = '2'"}`,
			map[string]string{"Content-Type": "application/json; charset=utf-8"}},
	}
	got := hub.requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Method != w.method || g.Path != w.path || g.RawQuery != w.query || g.Body != w.body {
			t.Errorf("request %d = %s %s?%s %s\nwant        %s %s?%s %s", i, g.Method, g.Path, g.RawQuery, g.Body, w.method, w.path, w.query, w.body)
		}
		if a := g.Header.Get("Authorization"); !strings.HasPrefix(a, "SharedAccessSignature sr=myhub.azure-devices.net&sig=") {
			t.Errorf("request %d Authorization = %q", i, a)
		}
		if g.Header.Get("Accept") != "application/json" || g.Header.Get("User-Agent") != "hubjobs/"+Version {
			t.Errorf("request %d Accept %q, User-Agent %q", i, g.Header.Get("Accept"), g.Header.Get("User-Agent"))
		}
		if w.body == "" && g.Header.Get("Content-Type") != "" {
			t.Errorf("request %d without body has Content-Type %q", i, g.Header.Get("Content-Type"))
		}
		for k, v := range w.header {
			if g.Header.Get(k) != v {
				t.Errorf("request %d header %s = %q, want %q", i, k, g.Header.Get(k), v)
			}
		}
	}
}

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

func TestStatusUnknownIsNotFound(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, jobUnknown) })
	c, _ := hub.client(t)
	job, err := c.GetJob(context.Background(), "import-export-1")
	if job != nil || !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetJob of a 200 unknown = %v, %v; want ErrNotFound", job, err)
	}
	job, err = c.CancelJob(context.Background(), "import-export-1")
	if job != nil || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("CancelJob answered 200 unknown = %v, %v; want ErrNotFound", job, err)
	}
	if n := hub.count("GET", "/jobs/v2/import-export-1"); n != 1 {
		t.Errorf("%d GETs: a definite not-found needs no reconciliation", n)
	}
}

func TestBadInputFailsBeforeAnyRequest(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, jobQueued) })
	c, _ := hub.client(t)
	ctx := context.Background()
	for _, id := range []string{"", "job'1", `job"1`, "a/b", "../../devices/x", "..%2F..%2Fdevices", "a%252Fb", "job 1",
		"jöb", "job\n1", strings.Repeat("x", 129), strings.Repeat("x", 300), "a?b=c", "a#b", "' OR 1=1 --"} {
		ops := map[string]func() error{
			"GetJob":          func() error { _, err := c.GetJob(ctx, id); return err },
			"CancelJob":       func() error { _, err := c.CancelJob(ctx, id); return err },
			"QueryDeviceJobs": func() error { _, err := c.QueryDeviceJobs(ctx, id, PageOptions{}); return err },
			"CreateJob": func() error {
				_, err := c.CreateJob(ctx, JobRequest{JobID: id, Type: TypeScheduleDeviceMethod, QueryCondition: "*",
					CloudToDeviceMethod: &CloudToDeviceMethod{MethodName: "m"}})
				return err
			},
		}
		for op, call := range ops {
			err := call()
			if !errors.Is(err, ErrInvalidJobID) || !strings.Contains(err.Error(), "1 to 128 characters") {
				t.Errorf("%s(%.20q) err = %v, want ErrInvalidJobID with the rule", op, id, err)
			}
			if len(err.Error()) > 200 {
				t.Errorf("%s error is %d bytes long; the id must be clipped", op, len(err.Error()))
			}
		}
	}
	for _, o := range []QueryJobsOptions{{Type: "x' or 1"}, {Status: "running&x=1"}, {PageSize: -1},
		{Continuation: "a\r\nInjected: 1"}, {Continuation: strings.Repeat("c", 9000)}} {
		if _, err := c.QueryJobs(ctx, o); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("QueryJobs(%.40q) err = %v, want ErrInvalidRequest", fmt.Sprint(o), err)
		}
	}
	for _, req := range []JobRequest{
		{JobID: "j", Type: "scheduleDirectMethod", QueryCondition: "*"},
		{JobID: "j", Type: TypeScheduleDeviceMethod, QueryCondition: "*"},
		{JobID: "j", Type: TypeScheduleUpdateTwin, QueryCondition: "*"},
		{JobID: "j", Type: TypeScheduleUpdateTwin, QueryCondition: "*", UpdateTwin: &Twin{ETag: "AAAA"}},
		{JobID: "j", Type: TypeScheduleDeviceMethod, CloudToDeviceMethod: &CloudToDeviceMethod{MethodName: "m"}},
	} {
		if _, err := c.CreateJob(ctx, req); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("CreateJob(%+v) err = %v, want ErrInvalidRequest", req, err)
		}
	}
	for _, cs := range []string{"", "HostName=h.example", "HostName=a/b;SharedAccessKeyName=p;SharedAccessKey=" + vectorKey, "junk"} {
		if _, err := NewFromConnectionString(cs, Config{}); !errors.Is(err, ErrInvalidConnString) {
			t.Errorf("NewFromConnectionString(%q) err = %v", cs, err)
		}
	}
	cred, _ := NewSASCredential(ConnectionString{"h.example", "p", vectorKey})
	for _, cfg := range []Config{{Host: "h.example"}, {Credential: cred}, {Credential: cred, Host: "evil.example/path"},
		{Credential: cred, Endpoint: "ftp://x"}, {Credential: cred, Endpoint: "http://u:p@x"}, {Credential: cred, Endpoint: "http://x/?a=b"}} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("New(%+v) err = %v, want ErrInvalidRequest", cfg, err)
		}
	}
	if n := len(hub.requests()); n != 0 {
		t.Errorf("bad input sent %d requests to the hub", n)
	}
}

func TestValidJobID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "Job_01-x": true, "6f1c2d3e-0000-4000-8000-000000000000": true, strings.Repeat("z", 128): true,
		"": false, strings.Repeat("z", 129): false, "a.b": false, "a'b": false, "a/b": false, "ä": false, "a b": false,
	} {
		if ValidJobID(id) != want {
			t.Errorf("ValidJobID(%q) = %v", id, !want)
		}
	}
	if got := quoteQueryString("it's"); got != "'it''s'" {
		t.Errorf("quoteQueryString = %s", got)
	}
}

func TestQueryJobsPaging(t *testing.T) {
	pages := map[string]struct{ body, next string }{
		"":   {`[{"jobId":"a","type":"scheduleUpdateTwin","status":"completed"}]`, "p2"},
		"p2": {`{"items":[{"jobId":"b","type":"scheduleUpdateTwin","status":"running"}]}`, " "}, // swagger shape, blank header
		" ":  {`null`, ""},
	}
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		p := pages[r.Header.Get("x-ms-continuation")]
		if p.next != "" {
			w.Header().Set("x-ms-continuation", p.next)
		}
		reply(w, 200, p.body)
	})
	c, _ := hub.client(t)
	var ids []string
	cont := ""
	for range 5 {
		page, err := c.QueryJobs(context.Background(), QueryJobsOptions{Continuation: cont})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Jobs {
			ids = append(ids, j.JobID)
		}
		if cont = page.Continuation; cont == "" {
			break
		}
	}
	if strings.Join(ids, ",") != "a,b" || cont != "" {
		t.Errorf("paged ids %v, final continuation %q", ids, cont)
	}
}

func TestRetryPolicy(t *testing.T) {
	retryAt := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	tests := []struct {
		name      string
		handle    func(w http.ResponseWriter, r *http.Request, n int)
		cfg       func(*Config)
		attempts  int
		waits     []time.Duration // exact waits asked for; nil to check with waitsOK
		waitsOK   func([]time.Duration) bool
		wantErr   []error // nil: success
		notErr    []error
		wantRetry time.Duration
	}{
		{
			name: "5xx burst then success, exponential backoff",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					reply(w, 503, errServer)
					return
				}
				reply(w, 200, jobQueued)
			},
			attempts: 3, waits: []time.Duration{500 * time.Millisecond, time.Second},
		},
		{
			name:     "5xx beyond MaxAttempts",
			handle:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 500, errServer) },
			attempts: 4, waits: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second},
			wantErr: []error{ErrUnavailable},
		},
		{
			name: "backoff is capped",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 502, "<html><title>Bad Gateway</title></html>")
			},
			cfg:      func(c *Config) { c.MaxAttempts = 6; c.MaxBackoff = 3 * time.Second },
			attempts: 6, waits: []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second},
			wantErr: []error{ErrUnavailable},
		},
		{
			name: "429 with Retry-After seconds",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					reply(w, 429, errThrottle, "Retry-After", "3")
					return
				}
				reply(w, 200, jobQueued)
			},
			attempts: 2, waits: []time.Duration{3 * time.Second},
		},
		{
			name: "429 with Retry-After as an HTTP date",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					reply(w, 429, errThrottle, "Retry-After", retryAt(5*time.Second))
					return
				}
				reply(w, 200, jobQueued)
			},
			attempts: 2,
			waitsOK: func(w []time.Duration) bool {
				return len(w) == 1 && w[0] > 3*time.Second && w[0] <= 5*time.Second
			},
		},
		{
			name: "429 without Retry-After waits the throttle backoff",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					reply(w, 429, errThrottle)
					return
				}
				reply(w, 200, jobQueued)
			},
			attempts: 3, waits: []time.Duration{2 * time.Second, 4 * time.Second},
		},
		{
			name:     "Retry-After beyond the budget gives up at once",
			handle:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 429, errThrottle, "Retry-After", "3600") },
			attempts: 1, waits: nil,
			wantErr:   []error{ErrThrottled},
			wantRetry: time.Hour,
		},
		{
			name:     "408 is retried",
			handle:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 408, "") },
			cfg:      func(c *Config) { c.MaxAttempts = 2 },
			attempts: 2, waits: []time.Duration{500 * time.Millisecond},
			wantErr: []error{ErrTimeout},
		},
		{
			name: "404 is not retried",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 404, errNotFound, "iothub-errorcode", "JobNotFound")
			},
			attempts: 1, wantErr: []error{ErrNotFound},
		},
		{
			name: "401 is not retried",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 401, "", "iothub-errorcode", "IotHubUnauthorizedAccess")
			},
			attempts: 1, wantErr: []error{ErrUnauthorized},
		},
		{
			name:     "a hanging hub times out per attempt and is retried",
			handle:   func(w http.ResponseWriter, r *http.Request, n int) { hang(w, r) },
			cfg:      func(c *Config) { c.AttemptTimeout = 30 * time.Millisecond; c.MaxAttempts = 3 },
			attempts: 3, waits: []time.Duration{500 * time.Millisecond, time.Second},
			wantErr: []error{ErrTimeout, ErrUnavailable},
		},
		{
			name:   "the call budget ends the retries",
			handle: func(w http.ResponseWriter, r *http.Request, n int) { hang(w, r) },
			cfg: func(c *Config) {
				c.AttemptTimeout = 40 * time.Millisecond
				c.CallBudget = 60 * time.Millisecond
				c.Backoff = time.Millisecond
			},
			attempts: 2, waits: []time.Duration{time.Millisecond},
			wantErr: []error{ErrTimeout},
		},
		{
			name: "a backoff that would not fit in the budget is not waited",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 503, errServer)
			},
			cfg:      func(c *Config) { c.CallBudget = 2 * time.Second; c.Backoff = 3 * time.Second },
			attempts: 1, waits: nil,
			wantErr: []error{ErrUnavailable},
		},
		{
			name: "oversized body is an error, not truncated JSON",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				reply(w, 200, `{"jobId":"job-1","status":"queued","failureReason":"`+strings.Repeat("x", 4096)+`"}`)
			},
			cfg:      func(c *Config) { c.MaxResponseBytes = 1024 },
			attempts: 1, wantErr: []error{ErrResponseTooLarge},
		},
		{
			name:     "malformed JSON",
			handle:   func(w http.ResponseWriter, r *http.Request, n int) { reply(w, 200, `{"jobId":"job-1","status":`) },
			attempts: 1, wantErr: []error{ErrBadResponse},
		},
		{
			name: "HTML answering 200",
			handle: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte("<html><body>Sign in to the guest Wi-Fi</body></html>"))
			},
			attempts: 1, wantErr: []error{ErrBadResponse},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := newFakeHub(t, tt.handle)
			mods := []func(*Config){}
			if tt.cfg != nil {
				mods = append(mods, tt.cfg)
			}
			c, w := hub.client(t, mods...)
			job, err := c.GetJob(context.Background(), "job-1")
			if n := hub.count("GET", "/jobs/v2/job-1"); n != tt.attempts {
				t.Errorf("%d attempts, want %d", n, tt.attempts)
			}
			got := w.all()
			if tt.waitsOK != nil {
				if !tt.waitsOK(got) {
					t.Errorf("waits %v", got)
				}
			} else if fmt.Sprint(got) != fmt.Sprint(tt.waits) {
				t.Errorf("waits %v, want %v", got, tt.waits)
			}
			if tt.wantErr == nil {
				if err != nil || job == nil || job.JobID != "job-1" {
					t.Fatalf("GetJob = %v, %v; want the job", job, err)
				}
				return
			}
			if job != nil {
				t.Errorf("job %+v returned with an error", job)
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("err = %v; want it to match %v", err, want)
				}
			}
			if tt.wantRetry != 0 && RetryAfterHint(err) != tt.wantRetry {
				t.Errorf("RetryAfterHint = %v, want %v", RetryAfterHint(err), tt.wantRetry)
			}
		})
	}
}

// TestGetJobRefusesAnAnswerAboutAnotherJob: a misrouted or wrongly cached
// answer must not put another job's status on this job's page.
func TestGetJobRefusesAnAnswerAboutAnotherJob(t *testing.T) {
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, jobCancelled) })
	c, _ := hub.client(t)
	if job, err := c.GetJob(context.Background(), "job-1"); err != nil || job.JobID != "job-1" {
		t.Fatalf("GetJob(job-1) = %+v, %v", job, err)
	}
	if job, err := c.GetJob(context.Background(), "job-2"); job != nil || !errors.Is(err, ErrBadResponse) {
		t.Fatalf("GetJob(job-2) answered about job-1 = %+v, %v; want ErrBadResponse", job, err)
	}
}

// TestBodiesAreReadCapped: an endless answer (a proxy gone wrong, a hostile
// endpoint) is cut at the cap and the connection dropped; the client never
// reads it all. The server counts what it managed to write before the client
// hung up: far less than the 64 MiB it offers, whatever the socket buffers.
func TestBodiesAreReadCapped(t *testing.T) {
	const offered = 64 << 20
	for _, tt := range []struct {
		name    string
		status  int
		prefix  string
		wantErr error
	}{
		{"success body", 200, `{"jobId":"job-1","statusMessage":"`, ErrResponseTooLarge},
		{"error body", 500, `{"Message":"ErrorCode:ServerError;`, ErrUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			written := make(chan int, 1)
			hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(tt.status)
				n, _ := io.WriteString(w, tt.prefix)
				chunk := []byte(strings.Repeat("x", 32<<10))
				for n < offered {
					m, err := w.Write(chunk)
					n += m
					if err != nil {
						break
					}
				}
				written <- n
			})
			c, _ := hub.client(t, func(c *Config) { c.MaxAttempts = 1; c.MaxResponseBytes = 1 << 20 })
			_, err := c.GetJob(context.Background(), "job-1")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := <-written; n >= offered/2 {
				t.Errorf("the client read %d of %d bytes; the body was not capped", n, offered)
			}
		})
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	elsewhere := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) { reply(w, 200, jobQueued) })
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		http.Redirect(w, r, elsewhere.srv.URL+r.URL.Path, http.StatusFound)
	})
	// Even a caller-supplied client that would follow redirects does not.
	c, _ := hub.client(t, func(c *Config) { c.HTTPClient = &http.Client{} })
	_, err := c.GetJob(context.Background(), "job-1")
	var he *Error
	if !errors.As(err, &he) || he.StatusCode != http.StatusFound || !strings.Contains(he.Message, "redirect not followed") || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want a 302 *Error saying the redirect was not followed", err)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
}

func TestUnreachableHub(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cred, _ := NewSASCredential(ConnectionString{"h.example", "p", vectorKey})
	w := &waits{}
	c, err := New(Config{Endpoint: url, Credential: cred, Sleep: w.sleep, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetJob(context.Background(), "job-1"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) {
		t.Errorf("GetJob err = %v, want ErrUnavailable", err)
	}
	// Nothing reached the hub, so a cancel is retried too and no reconciliation is needed.
	job, err := c.CancelJob(context.Background(), "job-1")
	if job != nil || !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("CancelJob = %v, %v; want ErrUnavailable, outcome known (not sent)", job, err)
	}
	if len(w.all()) != 2 {
		t.Errorf("waits %v: want one retry per call", w.all())
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

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	if again := NewMetrics(reg); again.calls != m.calls {
		t.Error("a second NewMetrics on the same registry did not reuse the collectors")
	}
	hub := newFakeHub(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			reply(w, 429, errThrottle)
			return
		}
		if r.URL.Path == "/jobs/v2/gone" {
			reply(w, 200, jobUnknown)
			return
		}
		reply(w, 200, jobQueued)
	})
	c, _ := hub.client(t, func(c *Config) { c.Metrics = m; c.HubName = "prod" })
	c.GetJob(context.Background(), "job-1")
	c.GetJob(context.Background(), "gone")
	c.GetJob(context.Background(), "bad/id")
	checks := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.calls.WithLabelValues("prod", "GetJob", "ok"), 1},
		{m.calls.WithLabelValues("prod", "GetJob", "not_found"), 1},
		{m.calls.WithLabelValues("prod", "GetJob", "invalid"), 1},
		{m.throttled.WithLabelValues("prod", "GetJob"), 2},
		{m.retries.WithLabelValues("prod", "GetJob"), 2},
	}
	for i, ch := range checks {
		if got := testutil.ToFloat64(ch.c); got != ch.want {
			t.Errorf("check %d = %v, want %v", i, got, ch.want)
		}
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("latency series = %d", n)
	}
	var nilMetrics *Metrics
	nilMetrics.observeCall("h", "op", nil, time.Second) // must not panic
}
