package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hubsimProcess is runHubsim running in the background with its stdout
// readable line by line.
type hubsimProcess struct {
	connString, baseURL string
	done                chan error
	stop                context.CancelFunc
}

func startHubsim(t *testing.T, args ...string) *hubsimProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &hubsimProcess{done: make(chan error, 1), stop: cancel}
	go func() {
		err := runHubsim(ctx, args, pw, io.Discard)
		pw.CloseWithError(errors.New("runHubsim returned"))
		p.done <- err
	}()
	lines := bufio.NewReader(pr)
	first, err := lines.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("reading the first stdout line: %v (runHubsim: %v)", err, <-p.done)
	}
	second, err := lines.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the second stdout line: %v", err)
	}
	go func() { _, _ = io.Copy(io.Discard, lines) }()
	p.connString = strings.TrimSuffix(first, "\n")
	p.baseURL = strings.TrimPrefix(strings.TrimSuffix(second, "\n"), "listening on ")
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("runHubsim did not stop after its context was cancelled")
		}
	})
	return p
}

// sasFromConnectionString parses HostName=…;SharedAccessKeyName=…;SharedAccessKey=…
// (each part split on its first "=" only) and signs a token as the IoT Hub
// docs describe: HMAC-SHA256(base64-decoded key, urlenc(host) + "\n" + se).
func sasFromConnectionString(t *testing.T, cs string, expiry time.Time) (host, token string) {
	t.Helper()
	parts := map[string]string{}
	for _, p := range strings.Split(cs, ";") {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			t.Fatalf("connection string part %q has no '='", p)
		}
		parts[k] = v
	}
	key, err := base64.StdEncoding.DecodeString(parts["SharedAccessKey"])
	if err != nil || parts["HostName"] == "" || parts["SharedAccessKeyName"] != "iothubowner" {
		t.Fatalf("connection string %q: %v", cs, err)
	}
	sr := url.QueryEscape(parts["HostName"])
	se := strconv.FormatInt(expiry.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(sr + "\n" + se))
	sig := url.QueryEscape(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	return parts["HostName"], "SharedAccessSignature sr=" + sr + "&sig=" + sig + "&se=" + se + "&skn=" + parts["SharedAccessKeyName"]
}

func hubRequest(t *testing.T, method, rawURL, token, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func TestHubsimCommandServesSignedRequests(t *testing.T) {
	key := base64.StdEncoding.EncodeToString([]byte("a key the test chose, 32 bytes!!"))
	p := startHubsim(t, "--listen", "127.0.0.1:0", "--hostname", "test-hub.azure-devices.net", "--key", key,
		"--devices", "50", "--device-rate", "1000", "--max-active-jobs", "3", "--seed")
	if want := "HostName=test-hub.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey=" + key; p.connString != want {
		t.Fatalf("first line %q, want %q", p.connString, want)
	}
	if !strings.HasPrefix(p.baseURL, "http://127.0.0.1:") {
		t.Fatalf("second line names %q", p.baseURL)
	}
	host, token := sasFromConnectionString(t, p.connString, time.Now().Add(time.Hour))
	if host != "test-hub.azure-devices.net" {
		t.Fatalf("host %q", host)
	}

	res, body := hubRequest(t, http.MethodGet, p.baseURL+"/jobs/v2/query?api-version=2021-04-12", token, "")
	if res.StatusCode != http.StatusOK || res.Header.Get("x-ms-request-id") == "" {
		t.Fatalf("signed query: %d %s", res.StatusCode, body)
	}
	var jobs []map[string]any
	if err := json.Unmarshal(body, &jobs); err != nil || len(jobs) < 5 {
		t.Fatalf("--seed hub lists %d jobs (%v): %s", len(jobs), err, body)
	}

	res, body = hubRequest(t, http.MethodPut, p.baseURL+"/jobs/v2/cli-job?api-version=2021-04-12", token,
		`{"jobId":"cli-job","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"ping"},"queryCondition":"*"}`)
	// The seeded hub already has more unfinished jobs than --max-active-jobs 3.
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("iothub-errorcode") != "ThrottlingMaxActiveJobCountExceeded" {
		t.Errorf("create over --max-active-jobs: %d %s", res.StatusCode, body)
	}

	res, body = hubRequest(t, http.MethodGet, p.baseURL+"/jobs/v2/query?api-version=2021-04-12", "", "")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "ErrorCode:IotHubUnauthorizedAccess;") {
		t.Errorf("unsigned request: %d %s", res.StatusCode, body)
	}
	_, badToken := sasFromConnectionString(t, strings.Replace(p.connString, key, base64.StdEncoding.EncodeToString([]byte("wrong")), 1), time.Now().Add(time.Hour))
	if res, _ := hubRequest(t, http.MethodGet, p.baseURL+"/jobs/v2/query?api-version=2021-04-12", badToken, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("token signed with another key: %d", res.StatusCode)
	}

	p.stop()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("runHubsim returned %v after cancel, want nil", err)
		}
		p.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("runHubsim kept running after cancel")
	}
}

func TestHubsimCommandCreatesAndRunsJobs(t *testing.T) {
	p := startHubsim(t, "--listen", "127.0.0.1:0", "--devices", "5", "--device-rate", "1000", "--failure-rate", "0")
	_, token := sasFromConnectionString(t, p.connString, time.Now().Add(time.Hour))
	res, body := hubRequest(t, http.MethodPut, p.baseURL+"/jobs/v2/j1?api-version=2021-04-12", token,
		`{"jobId":"j1","type":"scheduleUpdateTwin","updateTwin":{"etag":"*","tags":{"ring":"2"}},"queryCondition":"*"}`)
	if res.StatusCode != http.StatusOK || string(body) != `{"jobId":"j1","type":"scheduleUpdateTwin","status":"queued"}` {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	res, body = hubRequest(t, http.MethodGet, p.baseURL+"/jobs/v2/j1?api-version=2021-04-12", token, "")
	var job map[string]any
	if err := json.Unmarshal(body, &job); err != nil || res.StatusCode != http.StatusOK || job["status"] != "queued" {
		t.Fatalf("get right after create: %d %s", res.StatusCode, body)
	}
}

// writeFile writes content to a file in the test's temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// With --registry the hub has exactly the file's devices, and only those
// marked "fail" fail (the failure rate defaults to 0).
func TestHubsimCommandRegistryFile(t *testing.T) {
	file := writeFile(t, `[{"deviceId":"a","tags":{"ring":"canary"}},{"deviceId":"b","tags":{"ring":"canary"},"behaviour":"fail"},{"deviceId":"c"}]`)
	p := startHubsim(t, "--listen", "127.0.0.1:0", "--registry", file, "--device-rate", "1000", "--queries-per-minute", "100")
	_, token := sasFromConnectionString(t, p.connString, time.Now().Add(time.Hour))
	res, body := hubRequest(t, http.MethodPost, p.baseURL+"/devices/query?api-version=2021-04-12", token,
		`{"query":"SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.ring = 'canary'"}`)
	if res.StatusCode != http.StatusOK || string(body) != `[{"numberOfDevices":2}]` {
		t.Fatalf("count: %d %s", res.StatusCode, body)
	}
	res, body = hubRequest(t, http.MethodPut, p.baseURL+"/jobs/v2/j1?api-version=2021-04-12", token,
		`{"jobId":"j1","type":"scheduleDeviceMethod","cloudToDeviceMethod":{"methodName":"reboot"},"queryCondition":"*"}`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("create: %d %s", res.StatusCode, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = hubRequest(t, http.MethodGet, p.baseURL+"/jobs/v2/j1?api-version=2021-04-12", token, "")
		var job struct {
			Status string         `json:"status"`
			Stats  map[string]int `json:"deviceJobStatistics"`
		}
		if err := json.Unmarshal(body, &job); err != nil {
			t.Fatal(err)
		}
		if job.Status == "completed" {
			if job.Stats["deviceCount"] != 3 || job.Stats["failedCount"] != 1 {
				t.Errorf("statistics %v, want 3 devices and only b failed", job.Stats)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job never completed: %s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestHubsimCommandUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--listen is required"},
		{[]string{"--listen", "127.0.0.1:0", "extra"}, `unexpected argument "extra"`},
		{[]string{"--listen", "127.0.0.1:0", "--nope"}, "flag provided but not defined"},
		{[]string{"--listen", "127.0.0.1:0", "--key", "not base64!"}, "--key"},
		{[]string{"--listen", "127.0.0.1:0", "--hostname", "a;b"}, "--hostname"},
		{[]string{"--listen", "127.0.0.1:0", "--devices", "0"}, "--devices"},
		{[]string{"--listen", "127.0.0.1:0", "--device-rate", "-1"}, "--device-rate"},
		{[]string{"--listen", "127.0.0.1:0", "--device-rate", "NaN"}, "--device-rate"},
		{[]string{"--listen", "127.0.0.1:0", "--max-active-jobs", "0"}, "--max-active-jobs"},
		{[]string{"--listen", "127.0.0.1:0", "--failure-rate", "1.5"}, "--failure-rate"},
		{[]string{"--listen", "127.0.0.1:0", "--jobs-ops-per-minute", "-1"}, "--jobs-ops-per-minute"},
		{[]string{"--listen", "127.0.0.1:0", "--devices", "-1", "--max-active-jobs", "-1"}, "--devices -1: want 1..1000000; --max-active-jobs"},
		{[]string{"--listen", "127.0.0.1:0", "--queries-per-minute", "-1"}, "--queries-per-minute"},
		{[]string{"--listen", "127.0.0.1:0", "--registry", "/nonexistent/registry.json"}, "--registry: open /nonexistent/registry.json"},
		{[]string{"--listen", "127.0.0.1:0", "--registry", writeFile(t, `[{"deviceId":"a","behaviour":"flaky"}]`)}, `unknown behaviour "flaky"`},
		{[]string{"--listen", "127.0.0.1:0", "--registry", writeFile(t, `[{"deviceId":"a"},{"deviceId":"a"}]`)}, "duplicate deviceId"},
	}
	for _, tt := range tests {
		err := runHubsim(context.Background(), tt.args, io.Discard, io.Discard)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("runHubsim(%q) = %v, want a usage error mentioning %q", tt.args, err, tt.want)
		}
		if exitCode(err, io.Discard) != 2 {
			t.Errorf("runHubsim(%q): exit code %d, want 2", tt.args, exitCode(err, io.Discard))
		}
	}
}

func TestHubsimCommandListenFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = runHubsim(context.Background(), []string{"--listen", ln.Addr().String()}, io.Discard, io.Discard)
	var ue *usageError
	if err == nil || errors.As(err, &ue) || exitCode(err, io.Discard) != 1 {
		t.Errorf("busy address: %v, want an operational error (exit 1)", err)
	}
}
