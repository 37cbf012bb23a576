package hub

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
