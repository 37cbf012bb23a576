package auth

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The decoded-cookie cache may save work, never a check: every request with
// a cookie it has seen before is judged exactly as a first one would be.
func TestDecodedCookies_ACachedCookieIsStillCheckedEveryRequest(t *testing.T) {
	t.Run("RevokedElsewhere", func(t *testing.T) {
		clock := newTestClock()
		a, revs := sessionAuth(t, "http://127.0.0.1:8080", clock)
		c := mint(t, a, alice)
		u, _, _ := visit(a, c)
		if u == nil {
			t.Fatal("fresh cookie refused")
		}
		// Another replica signs the session out: only the shared store knows.
		if err := revs.Revoke(t.Context(), hashID(u.SessionID), clock.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if u, set, _ := visit(a, c); u != nil || len(set) == 0 || set[0].MaxAge >= 0 {
			t.Fatal("a cookie seen before was accepted after its session was revoked")
		}
	})
	t.Run("StoreDown", func(t *testing.T) {
		a, revs := sessionAuth(t, "http://127.0.0.1:8080", newTestClock())
		c := mint(t, a, alice)
		visit(a, c)
		revs.setFail(true)
		if u, _, _ := visit(a, c); u != nil {
			t.Fatal("a cookie seen before was accepted while revocation could not be checked")
		}
	})
	t.Run("AbsoluteTimeout", func(t *testing.T) {
		clock := newTestClock()
		a, _ := sessionAuth(t, "http://127.0.0.1:8080", clock)
		u := alice
		u.IssuedAt = clock.Now().Add(-DefaultAbsoluteTimeout + time.Minute)
		c := mint(t, a, u)
		if u, _, _ := visit(a, c); u == nil {
			t.Fatal("refused a minute before the absolute limit")
		}
		clock.Advance(time.Minute)
		if u, _, _ := visit(a, c); u != nil {
			t.Fatal("a cookie seen before was accepted past the absolute limit")
		}
	})
	t.Run("OldKeyIsReissuedEveryTime", func(t *testing.T) {
		clock := newTestClock()
		before, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testOldKey)
		old := mint(t, before, alice)
		after, _ := sessionAuth(t, "http://127.0.0.1:8080", clock, testKey, testOldKey)
		for i := range 2 {
			if u, set, _ := visit(after, old); u == nil || len(set) != 1 || set[0].Value == old.Value {
				t.Fatalf("visit %d with a cookie under the previous key: user %v, Set-Cookie %v; want re-issued", i+1, u, set)
			}
		}
	})
}

func TestDecodedCookies_ATamperedCopyOfACachedCookieIsRefused(t *testing.T) {
	a, _ := sessionAuth(t, "http://127.0.0.1:8080", newTestClock())
	good := mint(t, a, alice)
	visit(a, good)
	b := []byte(good.Value)
	b[len(b)/2] ^= 1
	if u, _, _ := visit(a, &http.Cookie{Name: good.Name, Value: string(b)}); u != nil {
		t.Fatal("a one-bit change to a cached cookie signed someone in")
	}
}

// Handlers get their own copy of the user: changing it cannot leak into
// the next request that presents the same cookie.
func TestDecodedCookies_UsersDoNotShareMemory(t *testing.T) {
	a, _ := sessionAuth(t, "http://127.0.0.1:8080", newTestClock())
	c := mint(t, a, alice)
	meddle := a.Session(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		u, _ := UserFrom(r.Context())
		u.Roles[0], u.ClaimValues[0] = RoleAdmin, "Jobs.Admin"
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(c)
	meddle.ServeHTTP(httptest.NewRecorder(), req)
	u, _, _ := visit(a, c)
	if u == nil || u.Roles[0] != RoleOperator || u.ClaimValues[0] != "Jobs.Cancel" {
		t.Fatalf("second request saw %+v; the first handler's edits leaked", u)
	}
}

func TestDecodedCookies_Bounded(t *testing.T) {
	var c decodedCookies
	for i := range decodedCookiesMax + 10 {
		c.put(fmt.Sprint("cookie-", i), decodedCookie{})
		if n := len(c.entries); n > decodedCookiesMax {
			t.Fatalf("%d entries after %d puts, want at most %d", n, i+1, decodedCookiesMax)
		}
	}
	if _, ok := c.get(fmt.Sprint("cookie-", decodedCookiesMax+9)); !ok {
		t.Error("the latest entry is missing")
	}
}
