package hubsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// BenchmarkSimGetJob measures GET /jobs/v2/{id} through a real HTTP server
// on the loopback: SAS verification, state derivation for a 1500-device
// running job, JSON encoding. Requests/s is reported as req/s.
func BenchmarkSimGetJob(b *testing.B) {
	clock := testkit.NewClock(testStart)
	sim := New(Options{Key: testKey, Clock: clock})
	sim.SeedDemo()
	clock.Advance(2 * time.Minute)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	token := signSAS(testKey, sim.Hostname(), testStart.Add(24*time.Hour).Unix())
	url := srv.URL + "/jobs/v2/" + DemoLiveJobID + "?api-version=2021-04-12"
	client := srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("Authorization", token)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkSimGetJobInProcess is the simulator's own cost per GET, without
// sockets: ServeHTTP into a recorder.
func BenchmarkSimGetJobInProcess(b *testing.B) {
	clock := testkit.NewClock(testStart)
	sim := New(Options{Key: testKey, Clock: clock})
	sim.SeedDemo()
	clock.Advance(2 * time.Minute)
	token := signSAS(testKey, sim.Hostname(), testStart.Add(24*time.Hour).Unix())
	req := httptest.NewRequest(http.MethodGet, "/jobs/v2/"+DemoLiveJobID+"?api-version=2021-04-12", nil)
	req.Header.Set("Authorization", token)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// bigFleetSim is a simulator over n generated devices, for the device
// query benchmarks.
func bigFleetSim(b *testing.B, n int) (*Sim, string) {
	b.Helper()
	clock := testkit.NewClock(testStart)
	sim := New(Options{Key: testKey, Clock: clock, Devices: n})
	return sim, signSAS(testKey, sim.Hostname(), testStart.Add(24*time.Hour).Unix())
}

// queryInProcess POSTs sql to /devices/query through ServeHTTP and returns
// the continuation token.
func queryInProcess(b *testing.B, sim *Sim, token, sql, continuation string) string {
	body := `{"query":` + quoteJSON(sql) + `}`
	req := httptest.NewRequest(http.MethodPost, "/devices/query?api-version=2021-04-12", strings.NewReader(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("Authorization", token)
	req.Header.Set("x-ms-max-item-count", "100")
	if continuation != "" {
		req.Header.Set("x-ms-continuation", continuation)
	}
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Header().Get("x-ms-continuation")
}

// BenchmarkCountDevices is one COUNT over 100,000 twins with a tag
// condition (the plan fragment's hub query).
func BenchmarkCountDevices(b *testing.B) {
	sim, token := bigFleetSim(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		queryInProcess(b, sim, token, "SELECT COUNT() AS numberOfDevices FROM devices WHERE tags.ring = 'broad' AND tags.site IN ['paris', 'lyon']", "")
	}
}

// BenchmarkQueryDeviceIDs pages through SELECT deviceId over 100,000 twins
// (1,000 pages of 100); one op is the whole walk.
func BenchmarkQueryDeviceIDs(b *testing.B) {
	sim, token := bigFleetSim(b, 100_000)
	b.ReportAllocs()
	for b.Loop() {
		pages := 0
		for next := queryInProcess(b, sim, token, "SELECT deviceId FROM devices", ""); next != ""; pages++ {
			next = queryInProcess(b, sim, token, "SELECT deviceId FROM devices", next)
		}
		if pages != 999 {
			b.Fatalf("%d continuation pages, want 999", pages)
		}
	}
}
