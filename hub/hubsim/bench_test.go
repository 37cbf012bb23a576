package hubsim

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkSimGetJob measures GET /jobs/v2/{id} through a real HTTP server
// on the loopback: SAS verification, state derivation for a 1500-device
// running job, JSON encoding. Requests/s is reported as req/s.
func BenchmarkSimGetJob(b *testing.B) {
	clock := NewManualClock(testStart)
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
	clock := NewManualClock(testStart)
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
