package e2e

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// hostTimer is a RoundTripper that adds up the time spent in requests per
// host:port, so one login round trip splits into portal time and IdP time.
type hostTimer struct {
	next http.RoundTripper
	mu   sync.Mutex
	per  map[string]time.Duration
}

func (h *hostTimer) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := h.next.RoundTrip(r)
	h.mu.Lock()
	h.per[r.URL.Host] += time.Since(start)
	h.mu.Unlock()
	return resp, err
}

// BenchmarkSignInRoundTripDex is one complete sign-in through Dex without a
// browser: the bookmarked URL → /auth/login → Dex's login form → form post →
// /auth/callback (code exchange with Dex, ID token verification) → the
// bookmarked URL rendered. Besides ns/op it reports the share spent waiting on
// the portal (portal-ms/op, which includes the callback's own call to Dex's
// token endpoint) and on Dex's pages (dex-ms/op: mostly bcrypt cost 10).
func BenchmarkSignInRoundTripDex(b *testing.B) {
	s := startServeStack(b, simOptions{})
	const id = "bench-bookmark"
	s.Hub.createJob(b, jobSpec{ID: id, Query: "*", StartIn: time.Hour})
	bookmark := s.URL + jobPath(id) + "?x=1"
	timer := &hostTimer{next: http.DefaultTransport, per: map[string]time.Duration{}}
	appHost := s.URL[len("http://"):]

	b.ResetTimer()
	for b.Loop() {
		u := newHTTPUser(b)
		u.client.Transport = timer
		p, err := u.signIn(bookmark, dexFields(dexOperator))
		if err != nil {
			b.Fatal(err)
		}
		if p.Status != http.StatusOK || p.URL.String() != bookmark {
			b.Fatalf("sign-in ended on %s with status %d, want %s 200", p.URL, p.Status, bookmark)
		}
	}
	b.StopTimer()
	var portal, idp time.Duration
	for host, d := range timer.per {
		if host == appHost {
			portal += d
		} else {
			idp += d
		}
	}
	n := float64(b.N)
	b.ReportMetric(portal.Seconds()*1000/n, "portal-ms/op")
	b.ReportMetric(idp.Seconds()*1000/n, "dex-ms/op")
}
