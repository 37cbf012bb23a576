package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
