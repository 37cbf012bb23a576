package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// fakeOP is a minimal OpenID provider for ID-token edge cases: the test
// decides exactly what the token endpoint returns.
type fakeOP struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu          sync.Mutex
	published   []jose.JSONWebKey // served at jwks_uri
	signer      *rsa.PrivateKey
	kid         string
	endSession  bool
	jwksFetches int
	tokenCalls  int
	lastToken   url.Values
	lastAuth    string
	respond     func(w http.ResponseWriter, r *http.Request) // overrides the token response when set
	idToken     string                                       // returned by the token endpoint
}

func newFakeOP(t *testing.T) *fakeOP {
	t.Helper()
	op := &fakeOP{t: t, secret: "a-client-secret-long-enough-to-be-an-hs256-key"}
	op.useKey(sharedTestKey(t), true)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		doc := map[string]any{
			"issuer": op.srv.URL, "authorization_endpoint": op.srv.URL + "/authorize",
			"token_endpoint": op.srv.URL + "/token", "jwks_uri": op.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		}
		op.mu.Lock()
		if op.endSession {
			doc["end_session_endpoint"] = op.srv.URL + "/logout?tenant=t1"
		}
		op.mu.Unlock()
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		defer op.mu.Unlock()
		op.jwksFetches++
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: op.published})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		op.mu.Lock()
		op.tokenCalls++
		op.lastToken, op.lastAuth = r.PostForm, r.Header.Get("Authorization")
		respond, tok := op.respond, op.idToken
		op.mu.Unlock()
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": tok})
	})
	op.srv = httptest.NewServer(mux)
	t.Cleanup(op.srv.Close)
	return op
}

// sharedTestKey is generated once: RSA key generation dominates test time.
var sharedTestKey = func() func(t *testing.T) *rsa.PrivateKey {
	once := sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
	return func(t *testing.T) *rsa.PrivateKey {
		key, err := once()
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
}()

// rotate makes a new signing key; publish decides whether the JWKS shows it.
func (op *fakeOP) rotate(publish bool) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		op.t.Fatal(err)
	}
	op.useKey(key, publish)
}

func (op *fakeOP) useKey(key *rsa.PrivateKey, publish bool) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.signer, op.kid = key, base64.RawURLEncoding.EncodeToString([]byte(time.Now().String()))[:16]
	if publish {
		op.published = append(op.published, jose.JSONWebKey{Key: &key.PublicKey, KeyID: op.kid, Algorithm: "RS256", Use: "sig"})
	}
}

func (op *fakeOP) sign(claims map[string]any) string {
	op.mu.Lock()
	key, kid := op.signer, op.kid
	op.mu.Unlock()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		op.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		op.t.Fatal(err)
	}
	return tok
}

// counts returns how often the JWKS and the token endpoint were called.
func (op *fakeOP) counts() (jwks, token int) {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.jwksFetches, op.tokenCalls
}

func (op *fakeOP) setIDToken(tok string) { op.mu.Lock(); op.idToken = tok; op.mu.Unlock() }

// opFixture drives Login and Callback directly with recorders.
type opFixture struct {
	op     *fakeOP
	auth   *Authenticator
	clock  *testkit.Clock
	events *eventLog
	revs   *flakyRevocations
}

func newOPFixture(t *testing.T, mutate ...func(*Config)) *opFixture {
	t.Helper()
	op := newFakeOP(t)
	clock := newTestClock()
	f := &opFixture{op: op, clock: clock, events: &eventLog{}}
	f.revs = &flakyRevocations{MemoryRevocations: NewMemoryRevocations(clock.Now)}
	cfg := testConfig(op.srv.URL, "https://portal.example.com", clock, f.events, f.revs, &testkit.Buffer{})
	cfg.ClientSecret = op.secret
	for _, m := range mutate {
		m(&cfg)
	}
	f.auth = mustNew(t, cfg)
	return f
}

// begin runs /auth/login and returns the state, the nonce the IdP was sent
// and the transaction cookie.
func (f *opFixture) begin(t *testing.T, next string) (state, nonce string, tx *http.Cookie) {
	t.Helper()
	rec := httptest.NewRecorder()
	f.auth.Login().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, LoginURL(next), nil))
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %v", rec.Code, err)
	}
	cookies := rec.Result().Cookies()
	return loc.Query().Get("state"), loc.Query().Get("nonce"), cookies[len(cookies)-1]
}

func (f *opFixture) callback(query string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, CallbackPath+"?"+query, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	f.auth.Callback().ServeHTTP(rec, req)
	return rec
}

// claims is a valid claim set for nonce; cases change it.
func (f *opFixture) claims(nonce string) map[string]any {
	now := f.clock.Now()
	return map[string]any{
		"iss": f.op.srv.URL, "sub": "user-1", "aud": "hubjobs", "nonce": nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"name": "Test User", "roles": []string{"Jobs.Read"},
	}
}

func sessionCookieIn(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name && c.MaxAge >= 0 && c.Value != "" {
			return c
		}
	}
	return nil
}

func TestCallback_IDTokenValidation(t *testing.T) {
	unsigned := func(claims map[string]any) string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		p, _ := json.Marshal(claims)
		return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	tests := []struct {
		name   string
		token  func(f *opFixture, c map[string]any) string
		change func(c map[string]any)
		ok     bool
	}{
		{name: "Valid", ok: true},
		{name: "IatSkewTwoMinutesAccepted", change: func(c map[string]any) { c["iat"] = c["iat"].(int64) + 120 }, ok: true},
		{name: "SeveralAudiencesWithOurAzp", change: func(c map[string]any) { c["aud"] = []string{"hubjobs", "api"}; c["azp"] = "hubjobs" }, ok: true},
		{name: "NonceDiffers", change: func(c map[string]any) { c["nonce"] = hashParam("another transaction") }},
		{name: "NonceMissing", change: func(c map[string]any) { delete(c, "nonce") }},
		{name: "IssuerTrailingSlash", change: func(c map[string]any) { c["iss"] = c["iss"].(string) + "/" }},
		{name: "IssuerOtherTenant", change: func(c map[string]any) {
			c["iss"] = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0"
		}},
		{name: "AudienceWithoutClientID", change: func(c map[string]any) { c["aud"] = "someone-else" }},
		{name: "SeveralAudiencesNoAzp", change: func(c map[string]any) { c["aud"] = []string{"hubjobs", "api"} }},
		{name: "SeveralAudiencesForeignAzp", change: func(c map[string]any) { c["aud"] = []string{"hubjobs", "api"}; c["azp"] = "api" }},
		{name: "ForeignAzp", change: func(c map[string]any) { c["azp"] = "api" }},
		{name: "Expired", change: func(c map[string]any) { c["exp"] = c["iat"].(int64) - 1 }},
		{name: "NotYetValid", change: func(c map[string]any) { c["nbf"] = c["iat"].(int64) + 600 }},
		{name: "AlgNone", token: func(_ *opFixture, c map[string]any) string { return unsigned(c) }},
		{name: "HS256WithClientSecret", token: func(f *opFixture, c map[string]any) string {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(f.op.secret)}, nil)
			if err != nil {
				panic(err)
			}
			tok, _ := jwt.Signed(s).Claims(c).Serialize()
			return tok
		}},
		{name: "UnknownKid", token: func(f *opFixture, c map[string]any) string {
			f.op.rotate(false) // signed by a key the JWKS never shows
			return f.op.sign(c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newOPFixture(t)
			state, nonce, tx := f.begin(t, "/hubs/prod/jobs/j1?tab=devices")
			claims := f.claims(nonce)
			if tc.change != nil {
				tc.change(claims)
			}
			tok := f.op.sign
			if tc.token != nil {
				tok = func(c map[string]any) string { return tc.token(f, c) }
			}
			f.op.setIDToken(tok(claims))
			rec := f.callback("code=the-code&state="+state, tx)
			session := sessionCookieIn(rec, f.auth.CookieName())
			if tc.ok {
				if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/hubs/prod/jobs/j1?tab=devices" || session == nil {
					t.Fatalf("want a session and 303 to the bookmark, got %d %q\n%s", rec.Code, rec.Header().Get("Location"), rec.Body)
				}
				return
			}
			if rec.Code != http.StatusForbidden || session != nil {
				t.Fatalf("want 403 and no session, got %d (session %v)\n%s", rec.Code, session != nil, rec.Body)
			}
			if got := f.events.last(t, ActionLoginFailed).Reason; got != "ID token rejected" {
				t.Errorf("event reason %q", got)
			}
			if jwks, _ := f.op.counts(); jwks > 2 {
				t.Errorf("%d JWKS fetches for one callback, want at most one refetch", jwks)
			}
		})
	}
}

func TestCallback_RotatedSigningKeyIsFetchedOnce(t *testing.T) {
	f := newOPFixture(t)
	login := func() *httptest.ResponseRecorder {
		state, nonce, tx := f.begin(t, "/")
		f.op.setIDToken(f.op.sign(f.claims(nonce)))
		return f.callback("code=c&state="+state, tx)
	}
	if rec := login(); rec.Code != http.StatusSeeOther {
		t.Fatalf("first sign-in: %d", rec.Code)
	}
	before, _ := f.op.counts()
	f.op.rotate(true) // the IdP rolls its key over; our cached set lacks the new kid
	if rec := login(); rec.Code != http.StatusSeeOther {
		t.Fatalf("sign-in after key rotation: %d %s", rec.Code, rec.Body)
	}
	if got, _ := f.op.counts(); got-before != 1 {
		t.Errorf("JWKS fetched %d times after rotation, want exactly 1", got-before)
	}
	if rec := login(); rec.Code != http.StatusSeeOther {
		t.Errorf("third sign-in: %d", rec.Code)
	}
	if got, _ := f.op.counts(); got-before != 1 {
		t.Errorf("the refreshed key set was not cached (%d fetches)", got-before)
	}
}

func TestCallback_TokenRequest(t *testing.T) {
	f := newOPFixture(t)
	state, nonce, tx := f.begin(t, "/")
	if !strings.HasPrefix(tx.Name, "__Host-hubjobs-tx-") || !tx.Secure || !tx.HttpOnly || tx.SameSite != http.SameSiteLaxMode {
		t.Errorf("transaction cookie on https: %+v", tx)
	}
	f.op.setIDToken(f.op.sign(f.claims(nonce)))
	if rec := f.callback("code=the-code&state="+state, tx); rec.Code != http.StatusSeeOther {
		t.Fatalf("status %d", rec.Code)
	}
	got := f.op.lastToken
	if got.Get("grant_type") != "authorization_code" || got.Get("code") != "the-code" ||
		got.Get("redirect_uri") != "https://portal.example.com/auth/callback" || len(got.Get("code_verifier")) != 43 {
		t.Errorf("token request form = %v", got)
	}
	if got.Get("client_secret") != "" || !strings.HasPrefix(f.op.lastAuth, "Basic ") {
		t.Errorf("client authentication: form secret %q, Authorization %q", got.Get("client_secret"), f.op.lastAuth)
	}
}

func TestCallback_ExchangeFailures(t *testing.T) {
	hang := make(chan struct{}) // the hanging token endpoint answers only when the test ends
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request)
		timeout time.Duration
		status  int
		reason  string
	}{
		{name: "InvalidGrantNotRetried", status: http.StatusBadGateway, reason: "code exchange failed",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			}},
		// An IdP that is down or hangs is an outage, not a refusal: 503
		// (docs/security.md case 8), fail closed within ExchangeTimeout.
		{name: "ServerError", status: http.StatusServiceUnavailable, reason: "identity provider unreachable",
			respond: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) }},
		{name: "Hangs", status: http.StatusServiceUnavailable, reason: "identity provider unreachable", timeout: 200 * time.Millisecond,
			respond: func(http.ResponseWriter, *http.Request) { <-hang }},
		{name: "Unreachable", status: http.StatusServiceUnavailable, reason: "identity provider unreachable",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				conn, _, _ := w.(http.Hijacker).Hijack()
				_ = conn.Close()
			}},
		{name: "NoIDToken", status: http.StatusForbidden, reason: "ID token rejected",
			respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"access_token":"at","token_type":"Bearer"}`))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newOPFixture(t, func(c *Config) { c.ExchangeTimeout = tc.timeout })
			t.Cleanup(func() {
				if tc.timeout > 0 {
					close(hang)
				}
			})
			f.op.mu.Lock()
			f.op.respond = tc.respond
			f.op.mu.Unlock()
			state, _, tx := f.begin(t, "/")
			start := time.Now()
			rec := f.callback("code=c&state="+state, tx)
			if rec.Code != tc.status || sessionCookieIn(rec, f.auth.CookieName()) != nil {
				t.Fatalf("status %d, want %d without a session\n%s", rec.Code, tc.status, rec.Body)
			}
			if tc.timeout > 0 && time.Since(start) > time.Second {
				t.Errorf("exchange took %s, want it cut at %s", time.Since(start), tc.timeout)
			}
			if _, calls := f.op.counts(); calls != 1 {
				t.Errorf("token endpoint called %d times, want 1 (a code is never redeemed twice)", calls)
			}
			if got := f.events.last(t, ActionLoginFailed).Reason; got != tc.reason {
				t.Errorf("event reason %q, want %q", got, tc.reason)
			}
			if tc.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}
