package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// sessionAuth is an Authenticator for cookie tests; it is never asked to
// sign anyone in, so its issuer need not answer.
func sessionAuth(t *testing.T, publicURL string, clock *testkit.Clock, keys ...[]byte) (*Authenticator, *flakyRevocations) {
	t.Helper()
	revs := &flakyRevocations{MemoryRevocations: NewMemoryRevocations(clock.Now)}
	cfg := testConfig("http://127.0.0.1:1/unused", publicURL, clock, &eventLog{}, revs, &testkit.Buffer{})
	if len(keys) > 0 {
		cfg.SessionKeys = keys
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, revs
}

var alice = User{Subject: "alice", Name: "Alice", Email: "alice@example.com", Roles: []Role{RoleOperator}, ClaimValues: []string{"Jobs.Cancel"}}

func mint(t *testing.T, a *Authenticator, u User) *http.Cookie {
	t.Helper()
	c, err := a.NewSessionCookie(u)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// visit runs Session over one request with c and reports the user seen and
// the Set-Cookie answers.
func visit(a *Authenticator, c *http.Cookie) (*User, []*http.Cookie, int) {
	var seen *User
	req := httptest.NewRequest(http.MethodGet, "/hubs/prod/jobs", nil)
	if c != nil {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	a.Session(a.RequireUser(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen, _ = UserFrom(r.Context())
	}))).ServeHTTP(rec, req)
	return seen, rec.Result().Cookies(), rec.Code
}

func TestSession_CookieAttributes(t *testing.T) {
	tests := []struct {
		publicURL, name string
		secure          bool
	}{
		{"https://jobs.example.com", "__Host-hubjobs", true},
		{"http://127.0.0.1:8080", "hubjobs", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := sessionAuth(t, tc.publicURL, newTestClock())
			c := mint(t, a, alice)
			if c.Name != tc.name || a.CookieName() != tc.name {
				t.Errorf("name %q / %q, want %q", c.Name, a.CookieName(), tc.name)
			}
			if c.Secure != tc.secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("attributes %+v", c)
			}
			if c.MaxAge != int(DefaultIdleTimeout/time.Second) {
				t.Errorf("Max-Age %d, want the idle timeout", c.MaxAge)
			}
			header := c.String()
			for _, want := range []string{"HttpOnly", "SameSite=Lax", "Path=/"} {
				if !strings.Contains(header, want) {
					t.Errorf("Set-Cookie %q lacks %s", header, want)
				}
			}
		})
	}
}

func TestSession_LargestClaimSetFitsInACookie(t *testing.T) {
	a, _ := sessionAuth(t, "https://jobs.example.com", newTestClock())
	named := func(i int) string {
		return fmt.Sprintf("Contoso.Fleet.Region-%02d.IoTHub-%c%c.Jobs.Operator", i, 'a'+i%26, 'z'-i%26)
	}
	// Entra group object ids: random, so compression cannot help.
	guid := func(i int) string {
		h := fmt.Sprintf("%x", sha(fmt.Sprint("group", i)))
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
	}
	for name, value := range map[string]func(int) string{"LongRoleNames": named, "GroupGUIDs": guid} {
		t.Run(name, func(t *testing.T) { fitsInACookie(t, a, value) })
	}
}

func fitsInACookie(t *testing.T, a *Authenticator, value func(int) string) {
	t.Helper()
	u := User{
		Issuer:  "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
		Subject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
		Name:    strings.Repeat("Maximiliane Alexandra von Hohenzollern-Sigmaringen ", 4),
		Email:   "maximiliane.alexandra.von.hohenzollern-sigmaringen@fleet-operations.contoso-industries.example.com",
		Roles:   []Role{RoleViewer, RoleOperator, RoleAuditor, RoleAdmin},
	}
	for i := range 50 {
		u.ClaimValues = append(u.ClaimValues, value(i))
	}
	c := mint(t, a, u)
	size := len(c.Name) + 1 + len(c.Value)
	t.Logf("session cookie with 50 role values: %d bytes", size)
	if size >= 4096 {
		t.Fatalf("cookie is %d bytes, want < 4096", size)
	}
	got, _, _ := visit(a, c)
	if got == nil || len(got.ClaimValues) != 50 || got.Name != u.Name {
		t.Fatal("large session did not round-trip")
	}
	if strings.Contains(c.Value, "eyJ") {
		t.Error("cookie seems to carry a JWT")
	}
}

func TestSession_TooLargeIsAnErrorNotATruncation(t *testing.T) {
	a, _ := sessionAuth(t, "https://jobs.example.com", newTestClock())
	u := alice
	for i := range 400 {
		u.ClaimValues = append(u.ClaimValues, fmt.Sprintf("%x", sha(fmt.Sprint(i))))
	}
	if _, err := a.NewSessionCookie(u); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Fatalf("err = %v, want ErrSessionTooLarge", err)
	}
}

func sha(s string) []byte { b, _ := base64.RawURLEncoding.DecodeString(hashParam(s)); return b }

func TestSession_BrokenCookiesMeanSignedOut(t *testing.T) {
	a, _ := sessionAuth(t, "http://127.0.0.1:8080", newTestClock())
	good := mint(t, a, alice)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct{ name, value string }{
		{"FlippedNearStart", flip(good.Value, 10)},
		{"FlippedInMiddle", flip(good.Value, len(good.Value)/2)},
		{"FlippedInMAC", flip(good.Value, len(good.Value)-5)},
		{"Truncated", good.Value[:len(good.Value)/2]},
		{"OneCharShort", good.Value[:len(good.Value)-1]},
		{"Base64Garbage", "!!!not base64 at all!!!"},
		{"ValidBase64Garbage", base64.URLEncoding.EncodeToString([]byte("1700000000|garbage|mac"))},
		{"Empty", ""},
		{"Huge", strings.Repeat("A", 10000)},
		{"OtherCookiesValue", mustTx(t, a)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, set, status := visit(a, &http.Cookie{Name: a.CookieName(), Value: tc.value})
			if u != nil {
				t.Fatal("a broken cookie signed someone in")
			}
			if status != http.StatusSeeOther {
				t.Errorf("status %d, want 303 to sign in (never 500)", status)
			}
			if tc.value != "" && (len(set) == 0 || set[0].Name != a.CookieName() || set[0].MaxAge >= 0) {
				t.Errorf("broken cookie not cleared: %v", set)
			}
		})
	}
	if u, _, _ := visit(a, good); u == nil || u.Subject != "alice" {
		t.Fatal("the intact cookie does not work")
	}
}

// mustTx is a genuine transaction cookie value: signed by us, but for
// another purpose and name, so it must not pass as a session.
func mustTx(t *testing.T, a *Authenticator) string {
	t.Helper()
	c, err := a.txCookie(hashParam("s"), loginTx{State: "s", Created: a.now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	return c.Value
}

func TestSession_KeyRotation(t *testing.T) {
	clock := newTestClock()
	before, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testOldKey)
	old := mint(t, before, alice)

	t.Run("OldKeyStillConfiguredIsAcceptedAndReissued", func(t *testing.T) {
		after, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey, testOldKey)
		u, set, _ := visit(after, old)
		if u == nil || u.Subject != "alice" {
			t.Fatal("cookie under the previous key refused")
		}
		if len(set) != 1 || set[0].Value == old.Value {
			t.Fatalf("not re-issued under the new key: %v", set)
		}
		newOnly, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey)
		if u, _, _ := visit(newOnly, set[0]); u == nil || u.SessionID != alice.SessionID && u.Subject != "alice" {
			t.Fatal("re-issued cookie does not verify under the new key alone")
		}
	})
	t.Run("RetiredKeyMeansSignInAgain", func(t *testing.T) {
		retired, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey)
		if u, _, status := visit(retired, old); u != nil || status != http.StatusSeeOther {
			t.Fatalf("cookie under a retired key accepted (status %d)", status)
		}
	})
	t.Run("CSRFTokensFromBeforeRotationStillVerify", func(t *testing.T) {
		after, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey, testOldKey)
		if !after.validCSRF("sid-1", before.CSRFTokenFor("sid-1")) {
			t.Error("token minted under the previous key refused")
		}
		if after.CSRFTokenFor("sid-1") == before.CSRFTokenFor("sid-1") {
			t.Error("new tokens still minted under the old key")
		}
	})
	t.Run("ShortKeysAreRefused", func(t *testing.T) {
		cfg := testConfig("http://x", "http://127.0.0.1", clock, &eventLog{}, NewMemoryRevocations(nil), &testkit.Buffer{})
		cfg.SessionKeys = [][]byte{[]byte("too short")}
		if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "SessionKeys[0]") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSession_Timeouts(t *testing.T) {
	t.Run("IdleExpiry", func(t *testing.T) {
		clock := newTestClock()
		a, _ := sessionAuth(t, "http://127.0.0.1:8080", clock)
		c := mint(t, a, alice)
		clock.Advance(DefaultIdleTimeout - time.Second)
		if u, _, _ := visit(a, c); u == nil {
			t.Fatal("signed out before the idle timeout")
		}
		clock.Advance(time.Second)
		if u, set, _ := visit(a, c); u != nil || len(set) == 0 || set[0].MaxAge >= 0 {
			t.Fatal("still signed in after 30 idle minutes (server-side check)")
		}
	})
	t.Run("ActivitySlidesTheIdleWindowUntilTheAbsoluteLimit", func(t *testing.T) {
		clock := newTestClock()
		a, _ := sessionAuth(t, "http://127.0.0.1:8080", clock)
		c := mint(t, a, alice)
		start := clock.Now()
		for clock.Now().Sub(start) < DefaultAbsoluteTimeout-20*time.Minute {
			clock.Advance(20 * time.Minute)
			u, set, _ := visit(a, c)
			if u == nil {
				t.Fatalf("signed out after %s of activity", clock.Now().Sub(start))
			}
			if len(set) != 1 {
				t.Fatalf("activity after 20 minutes did not refresh the cookie")
			}
			c = set[0]
		}
		clock.Advance(20 * time.Minute)
		if u, _, _ := visit(a, c); u != nil {
			t.Fatalf("still signed in %s after sign-in, past the absolute limit", clock.Now().Sub(start))
		}
	})
	t.Run("RefreshAtMostOncePerMinute", func(t *testing.T) {
		clock := newTestClock()
		a, _ := sessionAuth(t, "http://127.0.0.1:8080", clock)
		c := mint(t, a, alice)
		clock.Advance(30 * time.Second)
		if _, set, _ := visit(a, c); len(set) != 0 {
			t.Errorf("Set-Cookie after 30 s: %v", set)
		}
		clock.Advance(31 * time.Second)
		if _, set, _ := visit(a, c); len(set) != 1 {
			t.Errorf("no refresh after 61 s")
		}
	})
	t.Run("MaxAgeNeverOutlivesTheAbsoluteLimit", func(t *testing.T) {
		clock := newTestClock()
		a, _ := sessionAuth(t, "http://127.0.0.1:8080", clock)
		u := alice
		u.IssuedAt = clock.Now().Add(-DefaultAbsoluteTimeout + 10*time.Minute)
		if c := mint(t, a, u); c.MaxAge != 600 {
			t.Errorf("Max-Age %d, want 600 (what is left of the absolute limit)", c.MaxAge)
		}
	})
}

func TestSession_RevocationStoreDownFailsClosed(t *testing.T) {
	a, revs := sessionAuth(t, "http://127.0.0.1:8080", newTestClock())
	c := mint(t, a, alice)
	revs.setFail(true)
	u, set, status := visit(a, c)
	if u != nil || status != http.StatusSeeOther {
		t.Fatal("signed in although revocation could not be checked")
	}
	if len(set) != 0 {
		t.Error("cookie deleted because of a store outage; it should work again once the store answers")
	}
	revs.setFail(false)
	if u, _, _ := visit(a, c); u == nil {
		t.Error("not signed in again after the store recovered")
	}
}

func TestSession_NewSessionCookieSeam(t *testing.T) {
	a, _ := sessionAuth(t, "https://jobs.example.com", newTestClock())
	u := alice
	u.SessionID = "test-session-1"
	c := mint(t, a, u)
	got, _ := UserFrom(contextFor(t, a, c))
	if got == nil || got.SessionID != "test-session-1" || got.Issuer != "http://127.0.0.1:1/unused" || !got.Can(RoleOperator) {
		t.Fatalf("user = %+v", got)
	}
	if CSRFToken(contextFor(t, a, c)) != a.CSRFTokenFor("test-session-1") {
		t.Error("CSRFTokenFor does not match the token the page gets")
	}
	if _, err := a.NewSessionCookie(User{}); err == nil {
		t.Error("a session without a subject was minted")
	}
}

func TestUser_Can(t *testing.T) {
	tests := []struct {
		held []Role
		want map[Role]bool
	}{
		{nil, map[Role]bool{}},
		{[]Role{RoleViewer}, map[Role]bool{RoleViewer: true}},
		{[]Role{RoleOperator}, map[Role]bool{RoleViewer: true, RoleOperator: true}},
		{[]Role{RoleAuthor}, map[Role]bool{RoleViewer: true, RoleAuthor: true}},
		{[]Role{RoleApprover}, map[Role]bool{RoleViewer: true, RoleApprover: true}},
		{[]Role{RoleAuthor, RoleApprover}, map[Role]bool{RoleViewer: true, RoleAuthor: true, RoleApprover: true}},
		{[]Role{RoleAuditor}, map[Role]bool{RoleAuditor: true}},
		{[]Role{RoleAdmin}, map[Role]bool{RoleViewer: true, RoleOperator: true, RoleAuthor: true, RoleApprover: true, RoleAuditor: true, RoleAdmin: true}},
	}
	for _, tc := range tests {
		u := &User{Roles: tc.held}
		for _, r := range knownRoles {
			if got := u.Can(r); got != tc.want[r] {
				t.Errorf("%v.Can(%s) = %v, want %v", tc.held, r, got, tc.want[r])
			}
		}
	}
	var nobody *User
	if nobody.Can(RoleViewer) {
		t.Error("nil user can")
	}
}

// A presented session cookie that is not ours (tampered, truncated, from a
// retired key) or that was signed out is a security event worth an audit
// entry (docs/security.md case 13, ASVS 16.3); routine expiry is not. The
// cookie is cleared on the first refusal, so a browser records it once.
func TestSession_RefusedCookiesAreAudited(t *testing.T) {
	clock := newTestClock()
	a, revs := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey)
	old, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testOldKey)
	events := a.cfg.Events.(*eventLog)
	good := mint(t, a, alice)
	tampered := *good
	tampered.Value = good.Value[:len(good.Value)-4] + "AAAA"
	signedOut := alice
	signedOut.SessionID = "sid-signed-out"
	revokedCookie := mint(t, a, signedOut)
	if err := revs.Revoke(t.Context(), hashID(signedOut.SessionID), clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	idle := mint(t, a, User{Subject: "idle", SessionID: "sid-idle"})

	tests := []struct {
		name    string
		cookie  *http.Cookie
		reason  string // "" = no event
		subject string
	}{
		{"Tampered", &tampered, "session cookie refused: unreadable", ""},
		{"Garbage", &http.Cookie{Name: a.CookieName(), Value: "!!garbage!!"}, "session cookie refused: unreadable", ""},
		{"RetiredKey", mint(t, old, alice), "session cookie refused: unreadable", ""},
		{"UsedAfterSignOut", revokedCookie, "session cookie refused: signed out", "alice"},
		{"Valid", good, "", ""},
		{"None", nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(events.actions())
			visit(a, tc.cookie)
			got := events.actions()[before:]
			if tc.reason == "" {
				if len(got) != 0 {
					t.Fatalf("events %v, want none", got)
				}
				return
			}
			ev := events.last(t, ActionLoginFailed)
			if len(got) != 1 || !strings.HasPrefix(ev.Reason, tc.reason) {
				t.Fatalf("events %v, last reason %q, want one %s %q", got, ev.Reason, ActionLoginFailed, tc.reason)
			}
			if (ev.User == nil) != (tc.subject == "") || (ev.User != nil && ev.User.Subject != tc.subject) {
				t.Errorf("event user %+v, want subject %q", ev.User, tc.subject)
			}
			if strings.Contains(ev.Reason, tc.cookie.Value[:min(len(tc.cookie.Value), 12)]) {
				t.Error("the cookie value is in the event")
			}
		})
	}
	t.Run("ExpiryIsRoutine", func(t *testing.T) {
		clock.Advance(DefaultIdleTimeout)
		before := len(events.actions())
		if u, _, _ := visit(a, idle); u != nil {
			t.Fatal("idle cookie accepted")
		}
		if got := events.actions()[before:]; len(got) != 0 {
			t.Errorf("events %v for an expired session, want none", got)
		}
	})
}
