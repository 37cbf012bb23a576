package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// sessionCookie is the portal's cookie name on plain http (docs/contract.md:
// `hubjobs`; `__Host-hubjobs` on https).
const sessionCookie = "hubjobs"

// signInForm fills an IdP's login page in the browser.
type signInForm func(b *browser)

// dexSignIn fills Dex's password form (connector "local").
func dexSignIn(u dexUser) signInForm {
	return func(b *browser) {
		b.t.Helper()
		b.do("sign in at Dex as "+u.Username,
			chromedp.WaitVisible(chromedp.CSS("#login")),
			chromedp.SendKeys(chromedp.CSS("#login"), u.Email), // Dex signs in by e-mail
			chromedp.SendKeys(chromedp.CSS("#password"), u.Password),
			chromedp.Click(chromedp.CSS("#submit-login")),
		)
	}
}

// demoSignIn fills the demo IdP's form (password = user name).
func demoSignIn(user string) signInForm {
	return func(b *browser) {
		b.t.Helper()
		b.do("sign in at the demo IdP as "+user,
			chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), user),
			chromedp.Click(chromedp.CSS("#submit")),
		)
	}
}

// openSignedOut opens url in a browser that has no session, checks that it
// was sent away to the IdP (a page outside the portal's own paths), signs in
// there and waits to be back on exactly url, query string included.
func openSignedOut(b *browser, appURL, url string, signIn signInForm) {
	b.t.Helper()
	b.navigate(url)
	if loc := b.location(); strings.HasPrefix(loc, appURL+"/hubs") {
		b.t.Fatalf("signed out, %s was served at %s instead of sending the browser to sign in", url, loc)
	}
	signIn(b)
	b.waitLocation(url)
}

// checkBookmarkSignInAndRevocation is the sign-in contract from the user's
// side, for any IdP: a bookmarked job page opened signed out leads through
// the IdP's login page back to exactly that URL, showing the job and the
// role the IdP granted; after sign-out a copy of the old session cookie is
// worthless.
func checkBookmarkSignInAndRevocation(t *testing.T, b *browser, appURL, jobPath, jobID string, signIn signInForm, wantRole string) {
	t.Helper()
	bookmark := appURL + jobPath + "?x=1"
	openSignedOut(b, appURL, bookmark, signIn)

	if got := b.text("#job-id"); got != jobID {
		t.Errorf("job page shows job %q, want %q", got, jobID)
	}
	if roles := b.text("#user-roles"); !strings.Contains(roles, wantRole) {
		t.Errorf("header shows roles %q, want %q among them", roles, wantRole)
	}
	b.screenshot("job-page")

	c := b.cookie(appURL, sessionCookie)
	if c == nil {
		t.Fatalf("no %q cookie for %s after sign-in", sessionCookie, appURL)
	}
	if !c.HTTPOnly {
		t.Errorf("session cookie is not HttpOnly")
	}
	// The copied cookie works while the session lives (so that the refusal
	// below means revocation, not a cookie the replay cannot use).
	if resp := replay(t, bookmark, c.Name, c.Value); resp.StatusCode != http.StatusOK {
		t.Fatalf("replaying the live session cookie: %s, want 200", resp.Status)
	}

	b.do("sign out", chromedp.Click(chromedp.CSS("#sign-out")))
	b.waitURL("the browser to leave the job page after sign-out", func(loc string) bool { return loc != bookmark })

	resp := replay(t, bookmark, c.Name, c.Value)
	if !isSignInRedirect(resp) {
		t.Errorf("old session cookie after sign-out: %s (Location %q), want a redirect to /auth/login or 401",
			resp.Status, resp.Header.Get("Location"))
	}
}

// TestDexSignInReturnsToBookmarkAndSignOutRevokes runs the sign-in contract
// against Dex, the real IdP, with the operator's role coming from Dex groups.
func TestDexSignInReturnsToBookmarkAndSignOutRevokes(t *testing.T) {
	b := newBrowser(t)
	s := startServeStack(t, simOptions{Seed: true})
	const id = "e2e-bookmarked"
	s.Hub.createJob(t, jobSpec{ID: id, Query: "*", StartIn: time.Hour})

	checkBookmarkSignInAndRevocation(t, b, s.URL, "/hubs/"+hubName+"/jobs/"+id, id, dexSignIn(dexOperator), "operator")
}

// TestDemoSignInReturnsToBookmarkAndSignOutRevokes runs the same contract
// against `hubjobs demo` and its demo IdP.
func TestDemoSignInReturnsToBookmarkAndSignOutRevokes(t *testing.T) {
	b := newBrowser(t)
	demo := startDemo(t)

	// Find a real job to bookmark, as a person would: sign in (without the
	// browser) and take the first job of the first hub.
	list, err := newHTTPUser(t).signIn(demo.URL+"/", demoFields("viewer"))
	if err != nil {
		t.Fatal(err)
	}
	links := jobLinks(list)
	if len(links) == 0 {
		t.Fatalf("the demo's first job list (%s, status %d) links no job", list.URL, list.Status)
	}
	jobPath := links[0]
	jobID := jobPath[strings.LastIndex(jobPath, "/")+1:]

	checkBookmarkSignInAndRevocation(t, b, demo.URL, jobPath, jobID, demoSignIn("operator"), "operator")
}

// TestDexGroupsMapToRoles signs each Dex user in (no browser needed) and
// checks the role the portal derived from the `groups` claim; a user whose
// groups map to no role gets the "no access" page.
func TestDexGroupsMapToRoles(t *testing.T) {
	s := startServeStack(t, simOptions{})
	tests := []struct {
		user       dexUser
		start      string // where the user goes first
		wantStatus int
		wantRoles  string // #user-roles
	}{
		{dexOperator, "/hubs/" + hubName + "/jobs", http.StatusOK, "operator"},
		{dexViewer, "/hubs/" + hubName + "/jobs", http.StatusOK, "viewer"},
		{dexAuditor, "/audit", http.StatusOK, "auditor"},
		{dexNobody, "/hubs/" + hubName + "/jobs", http.StatusForbidden, ""},
	}
	for _, tt := range tests {
		t.Run(tt.user.Username, func(t *testing.T) {
			p, err := newHTTPUser(t).signIn(s.URL+tt.start, dexFields(tt.user))
			if err != nil {
				t.Fatal(err)
			}
			if p.Status != tt.wantStatus {
				t.Fatalf("after signing in as %s: %s status %d, want %d", tt.user.Username, p.URL, p.Status, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				// The no-access page says which claim would grant access.
				if text := p.Doc.Find("main").Text(); !strings.Contains(text, "groups") {
					t.Errorf("no-access page does not name the roles claim %q:\n%s", "groups", text)
				}
				return
			}
			if got := p.URL.String(); got != s.URL+tt.start {
				t.Errorf("landed on %s, want %s", got, s.URL+tt.start)
			}
			if roles := strings.TrimSpace(p.Doc.Find("#user-roles").Text()); roles != tt.wantRoles {
				t.Errorf("roles %q, want %q", roles, tt.wantRoles)
			}
		})
	}
}
