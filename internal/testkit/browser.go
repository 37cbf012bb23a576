package testkit

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"
)

// browserTimeout bounds one request of a test's browser; generous, because
// a portal under test may be a child process on a loaded machine.
const browserTimeout = 30 * time.Second

// NewBrowser returns an HTTP client with a cookie jar: one browser profile.
// It follows redirects, as a person's browser does through a sign-in. Cookies
// are not port-scoped, so one browser shares a session between servers on
// different 127.0.0.1 ports — like replicas behind one host name.
func NewBrowser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: browserTimeout}
}

// NewNoRedirectBrowser is NewBrowser that stops at every redirect and
// returns it, so a test can check each hop (Location, Set-Cookie) or replay
// a cookie the way an attacker holding a copy would.
func NewNoRedirectBrowser(t testing.TB) *http.Client {
	t.Helper()
	c := NewBrowser(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// Cookie returns the cookie called name that client would send to rawURL,
// or nil.
func Cookie(client *http.Client, rawURL, name string) *http.Cookie {
	u, err := url.Parse(rawURL)
	if err != nil || client.Jar == nil {
		return nil
	}
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}
