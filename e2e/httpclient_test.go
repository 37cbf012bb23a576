package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// httpUser is a browserless client with a cookie jar: it signs in by
// filling the IdP's login form like a person would, without JavaScript.
// Tests use it to arrange things (find a demo job id) and to replay a
// cookie; the benchmark uses it to time a login round trip.
type httpUser struct {
	client *http.Client
}

func newHTTPUser(t testing.TB) *httpUser {
	t.Helper()
	return &httpUser{client: testkit.NewBrowser(t)}
}

// page is a fetched HTML page.
type page struct {
	URL    *url.URL // after redirects
	Status int
	Doc    *goquery.Document
}

// get fetches rawURL, following redirects.
func (u *httpUser) get(rawURL string) (*page, error) {
	resp, err := u.client.Get(rawURL)
	if err != nil {
		return nil, err
	}
	return readPage(resp)
}

func readPage(resp *http.Response) (*page, error) {
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", resp.Request.URL, err)
	}
	return &page{URL: resp.Request.URL, Status: resp.StatusCode, Doc: doc}, nil
}

// signIn opens startURL signed out, expects the IdP's login form (the form
// with a password field), fills the named fields and submits it, following
// every redirect back to the portal. It returns the page it lands on.
func (u *httpUser) signIn(startURL string, fields map[string]string) (*page, error) {
	login, err := u.get(startURL)
	if err != nil {
		return nil, err
	}
	form := login.Doc.Find("form").FilterFunction(func(_ int, f *goquery.Selection) bool {
		return f.Find(`input[type="password"]`).Length() > 0
	}).First()
	if form.Length() == 0 {
		return nil, fmt.Errorf("no login form at %s (status %d)", login.URL, login.Status)
	}
	values := url.Values{}
	form.Find("input[name]").Each(func(_ int, in *goquery.Selection) {
		name, _ := in.Attr("name")
		value, _ := in.Attr("value")
		values.Set(name, value)
	})
	for name, value := range fields {
		if form.Find(fmt.Sprintf(`[name=%q]`, name)).Length() == 0 {
			return nil, fmt.Errorf("login form at %s has no field %q", login.URL, name)
		}
		values.Set(name, value)
	}
	action, _ := form.Attr("action")
	target, err := login.URL.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("form action %q: %w", action, err)
	}
	resp, err := u.client.PostForm(target.String(), values)
	if err != nil {
		return nil, err
	}
	return readPage(resp)
}

// demoFields and dexFields are the login forms' field names.
func demoFields(user string) map[string]string {
	return map[string]string{"username": user, "password": user} // demo password = user name
}

func dexFields(u dexUser) map[string]string {
	return map[string]string{"login": u.Email, "password": u.Password}
}

// jobLinks lists the job page paths linked from a job list page.
func jobLinks(p *page) []string {
	var links []string
	p.Doc.Find(`tr[data-job-id] a[href]`).Each(func(_ int, a *goquery.Selection) {
		href, _ := a.Attr("href")
		links = append(links, href)
	})
	return links
}

// replay sends one GET with exactly the given cookie and no redirects
// followed, as an attacker holding a copied cookie would.
func replay(t testing.TB, rawURL, cookieName, cookieValue string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: cookieName, Value: cookieValue})
	resp, err := testkit.NewNoRedirectBrowser(t).Do(req) // a fresh profile: only the copied cookie
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// isSignInRedirect reports whether resp sends the client to sign in.
func isSignInRedirect(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		return true
	case http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect:
		return strings.Contains(resp.Header.Get("Location"), "/auth/login")
	}
	return false
}
