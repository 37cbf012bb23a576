package auth

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/auth/devidp"
)

// idpTimer is a transport that adds up the time spent waiting for the IdP,
// so the benchmark can report the portal's own share of a sign-in.
type idpTimer struct {
	next http.RoundTripper
	ns   atomic.Int64
}

func (t *idpTimer) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.ns.Add(int64(time.Since(start)))
	return resp, err
}

// BenchmarkLoginRoundTrip measures the portal side of one sign-in: the
// /auth/login handler and the /auth/callback handler, the latter including
// the code exchange with a real devidp over loopback and the ID-token
// verification. The user's trip through the IdP's form is not timed.
// idp-ns/op is the time spent waiting for the IdP's token endpoint;
// portal-ns/op is the rest, the part this package is responsible for.
func BenchmarkLoginRoundTrip(b *testing.B) {
	const publicURL = "http://127.0.0.1:1"
	idp, err := devidp.Listen("127.0.0.1:0", devidp.Options{RedirectURIs: []string{publicURL + CallbackPath}})
	if err != nil {
		b.Fatal(err)
	}
	defer idp.Close()
	timer := &idpTimer{next: http.DefaultTransport}
	events := &discardEvents{}
	cfg := Config{
		Issuer: idp.Issuer(), ClientID: idp.ClientID(), ClientSecret: idp.ClientSecret(), PublicURL: publicURL,
		RoleMap: testRoles, SessionKeys: [][]byte{testKey}, NextAllowed: portalRoutes,
		Revocations: NewMemoryRevocations(nil), Events: events, Logger: slog.New(slog.DiscardHandler),
		HTTPClient: &http.Client{Transport: timer, Timeout: 10 * time.Second},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := a.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	login, callback := a.Login(), a.Callback()
	user := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	signInAtIdP := func(authorizeURL string) string {
		form := mustDo(b, user, http.MethodGet, authorizeURL, nil)
		id := formRequestID.FindStringSubmatch(form)[1]
		resp, err := user.PostForm(authorizeURL, url.Values{"request": {id}, "username": {"operator"}, "password": {"operator"}})
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Location")
	}

	b.ReportAllocs()
	b.ResetTimer()
	timer.ns.Store(0)
	for b.Loop() {
		rec := httptest.NewRecorder()
		login.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, LoginURL("/hubs/prod/jobs/j1?tab=devices"), nil))
		tx := rec.Result().Cookies()[0]

		b.StopTimer()
		back := signInAtIdP(rec.Header().Get("Location"))
		b.StartTimer()

		req := httptest.NewRequest(http.MethodGet, back[len(publicURL):], nil)
		req.AddCookie(tx)
		rec = httptest.NewRecorder()
		callback.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("callback %d: %s", rec.Code, rec.Body)
		}
	}
	n := float64(b.N)
	total := float64(b.Elapsed().Nanoseconds())
	b.ReportMetric(float64(timer.ns.Load())/n, "idp-ns/op")
	b.ReportMetric((total-float64(timer.ns.Load()))/n, "portal-ns/op")
}

// BenchmarkSession measures what every signed-in request pays: decoding
// and checking the session cookie, the revocation lookup and the CSRF token.
func BenchmarkSession(b *testing.B) {
	clock := newTestClock()
	cfg := testConfig("http://127.0.0.1:1/unused", "https://portal.example.com", clock, &eventLog{}, NewMemoryRevocations(clock.Now), io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	c, err := a.NewSessionCookie(User{Subject: "alice", Roles: []Role{RoleOperator}, ClaimValues: []string{"Jobs.Cancel", "Jobs.Read"}})
	if err != nil {
		b.Fatal(err)
	}
	h := a.Session(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/hubs/prod/jobs", nil)
	req.AddCookie(c)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

type discardEvents struct{}

func (discardEvents) Record(context.Context, Event) error { return nil }

func mustDo(b *testing.B, c *http.Client, method, u string, body io.Reader) string {
	b.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return string(out)
}
