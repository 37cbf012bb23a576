package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// hookCall is one POST a webhook receiver got, and what it answered.
type hookCall struct {
	event, delivery, signature, contentType string
	body                                    []byte
	answered                                int
}

// hookReceiver is a local webhook endpoint whose answers a test scripts.
// Its path carries a token, as Slack's URLs do: the URL is a credential
// that must never appear in logs or pages.
type hookReceiver struct {
	srv   *httptest.Server
	path  string
	mu    sync.Mutex
	calls []hookCall
	// answer decides each reply; default 204.
	answer func(c hookCall) (int, string)
	delay  time.Duration
}

func newHookReceiver(t *testing.T, token string) *hookReceiver {
	t.Helper()
	rc := &hookReceiver{path: "/hooks/" + token}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := hookCall{event: r.Header.Get("X-Hubjobs-Event"), delivery: r.Header.Get("X-Hubjobs-Delivery"),
			signature: r.Header.Get("X-Hubjobs-Signature"), contentType: r.Header.Get("Content-Type"), body: body}
		rc.mu.Lock()
		answer, delay := rc.answer, rc.delay
		rc.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		status, reply := http.StatusNoContent, ""
		if r.URL.Path != rc.path {
			status = http.StatusNotFound
		} else if answer != nil {
			status, reply = answer(c)
		}
		c.answered = status
		rc.mu.Lock()
		rc.calls = append(rc.calls, c)
		rc.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, reply)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) url() string { return rc.srv.URL + rc.path }

func (rc *hookReceiver) setAnswer(f func(c hookCall) (int, string)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *hookReceiver) setDelay(d time.Duration) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.delay = d
}

func (rc *hookReceiver) all() []hookCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookCall(nil), rc.calls...)
}

// accepted are the calls answered 2xx, by delivery id (first one kept).
func (rc *hookReceiver) accepted() map[string]hookCall {
	out := map[string]hookCall{}
	for _, c := range rc.all() {
		if _, seen := out[c.delivery]; !seen && c.answered >= 200 && c.answered < 300 {
			out[c.delivery] = c
		}
	}
	return out
}

// waitAccepted waits until n distinct deliveries were accepted.
func (rc *hookReceiver) waitAccepted(t *testing.T, n int, limit time.Duration) map[string]hookCall {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if got := rc.accepted(); len(got) >= n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d deliveries accepted within %s, want %d; calls: %d", len(rc.accepted()), limit, n, len(rc.all()))
	return nil
}

// testHook is one notify.webhooks entry; its secret reaches the config
// through the environment, as in production.
type testHook struct {
	name, url, secret, format string
	events                    []string
}

// withWebhooks adds the notify section to a portal setup's config file.
func webhooksYAML(hooks ...testHook) (string, env) {
	var b strings.Builder
	vars := env{}
	b.WriteString("notify:\n  webhooks:\n")
	for i, h := range hooks {
		v := fmt.Sprintf("TEST_HOOK_SECRET_%d", i)
		vars[v] = h.secret
		format := h.format
		if format == "" {
			format = "json"
		}
		fmt.Fprintf(&b, "    - name: %s\n      url: %s\n      secret: ${%s}\n      events: [%s]\n      format: %s\n",
			h.name, h.url, v, strings.Join(h.events, ", "), format)
	}
	return b.String(), vars
}

// notifyPortal writes a portal config with these webhooks on database.
func notifyPortal(t *testing.T, w *world, database string, hooks ...testHook) portalSetup {
	t.Helper()
	extra, vars := webhooksYAML(hooks...)
	p := newPortalSetup(t, w, database, extra)
	for k, v := range vars {
		p.env[k] = v
	}
	return p
}

// fastWorld is a small simulated hub whose jobs finish within a second
// and fail on about half of their devices.
func fastWorld(t *testing.T) *world {
	t.Helper()
	return newWorldWith(t, hubsim.Options{Hostname: "test-fleet.azure-devices.net", Seed: 7,
		Devices: 20, DeviceRate: 100, FailureRate: 0.5, QueuedPhase: -1})
}

// hubJob creates a method job straight on the simulated hub (as another
// tool would): scheduled an hour ahead (cancellable) or starting now.
func (w *world) hubJob(t *testing.T, id string, start time.Time) {
	t.Helper()
	c, err := hub.NewFromConnectionString(w.sim.ConnectionString(), hub.Config{Endpoint: w.hubURL, HubName: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateJob(t.Context(), hub.JobRequest{JobID: id, Type: hub.TypeScheduleDeviceMethod,
		CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot", Payload: []byte(`{}`), ResponseTimeoutInSeconds: 30},
		QueryCondition:      "*", StartTime: hub.Time{Time: start}, MaxExecutionTimeInSeconds: 3600})
	if err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

// cancelOK cancels a job through the portal as b and fails unless the
// page says it worked.
func (b *browser) cancelOK(portalURL, jobID string) {
	b.t.Helper()
	resp, body, err := b.cancel(b.t.Context(), portalURL, "prod", jobID, "test")
	if err != nil {
		b.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("cancel %s: %s\n%s", jobID, resp.Status, body)
	}
}
