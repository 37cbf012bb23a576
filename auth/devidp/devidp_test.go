package devidp_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/hubjobs/hubjobs/auth/devidp"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

const rp = "http://127.0.0.1:8080/auth/callback"

func start(t *testing.T, opts devidp.Options) (*devidp.Server, *testkit.Clock) {
	t.Helper()
	c := testkit.NewClock(time.Now())
	if opts.Now == nil {
		opts.Now = c.Now
	}
	if opts.RedirectURIs == nil {
		opts.RedirectURIs = []string{rp}
	}
	s, err := devidp.Listen("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, c
}

type reply struct {
	status int
	header http.Header
	body   string
}

var noRedirects = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func send(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func get(t *testing.T, u string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return send(t, req)
}

func postForm(t *testing.T, u string, form url.Values, basicUser, basicPass string) reply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	return send(t, req)
}

const verifier = "a-pkce-code-verifier-that-is-long-enough-0123456789"

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeURL(s *devidp.Server, change func(q url.Values)) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {"hubjobs"}, "redirect_uri": {rp}, "scope": {"openid profile email"},
		"state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"},
	}
	if change != nil {
		change(q)
	}
	return s.Issuer() + "/authorize?" + q.Encode()
}

var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

// code signs user in through the form and returns the code sent back.
func code(t *testing.T, s *devidp.Server, user string) string {
	t.Helper()
	u := authorizeURL(s, nil)
	form := get(t, u)
	m := requestField.FindStringSubmatch(form.body)
	if form.status != http.StatusOK || m == nil {
		t.Fatalf("form: %d %s", form.status, form.body)
	}
	back := postForm(t, u, url.Values{"request": {m[1]}, "username": {user}, "password": {user}}, "", "")
	loc, err := url.Parse(back.header.Get("Location"))
	if back.status != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), rp+"?") {
		t.Fatalf("login: %d %q", back.status, back.header.Get("Location"))
	}
	if loc.Query().Get("state") != "st-1" || loc.Query().Get("iss") != s.Issuer() {
		t.Errorf("redirect query %v", loc.Query())
	}
	return loc.Query().Get("code")
}

func redeem(t *testing.T, s *devidp.Server, code string, change func(f url.Values)) reply {
	t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rp}, "code_verifier": {verifier}}
	if change != nil {
		change(f)
	}
	return postForm(t, s.Issuer()+"/token", f, "hubjobs", "hubjobs-demo-secret")
}

func TestListen_LoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.10:0", "example.com:0", "10.0.0.1:0"} {
		if s, err := devidp.Listen(addr, devidp.Options{}); !errors.Is(err, devidp.ErrNotLoopback) {
			if s != nil {
				_ = s.Close()
			}
			t.Errorf("Listen(%q) err = %v, want ErrNotLoopback", addr, err)
		}
	}
	s, err := devidp.Listen("localhost:0", devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.Issuer(), "http://127.0.0.1:") {
		t.Errorf("issuer %q", s.Issuer())
	}
}

func TestCodeFlow_IDTokenVerifiesWithGoOIDC(t *testing.T) {
	s, _ := start(t, devidp.Options{PathPrefix: "/dex-like/"})
	if !strings.HasSuffix(s.Issuer(), "/dex-like") {
		t.Fatalf("issuer %q", s.Issuer())
	}
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, s.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	r := redeem(t, s, code(t, s, "operator"), nil)
	if r.status != http.StatusOK || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal([]byte(r.body), &tok); err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("token response %s", r.body)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "hubjobs"}).Verify(ctx, tok.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce, Name, Email string
		Roles, Groups      []string
	}
	_ = idt.Claims(&claims)
	if claims.Nonce != "n-1" || idt.Subject != "demo-operator" || claims.Name != "Otto Operator" ||
		!slices.Equal(claims.Roles, []string{"Jobs.Cancel", "Jobs.Read"}) || !slices.Equal(claims.Groups, claims.Roles) {
		t.Errorf("claims %+v sub %q", claims, idt.Subject)
	}
	req, _ := http.NewRequest(http.MethodGet, s.Issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if info := send(t, req); info.status != http.StatusOK || !strings.Contains(info.body, `"sub":"demo-operator"`) {
		t.Errorf("userinfo: %d %s", info.status, info.body)
	}
}

func TestDemoUsers(t *testing.T) {
	want := map[string][]string{
		"viewer": {"Jobs.Read"}, "operator": {"Jobs.Cancel", "Jobs.Read"}, "author": {"Jobs.Write", "Jobs.Read"},
		"approver": {"Jobs.Approve", "Jobs.Read"}, "auditor": {"Audit.Read"}, "admin": {"Jobs.Admin"},
	}
	users := devidp.DemoUsers()
	if len(users) != len(want) {
		t.Fatalf("%d demo users", len(users))
	}
	for _, u := range users {
		if u.Password != u.Username || !slices.Equal(u.Roles, want[u.Username]) {
			t.Errorf("demo user %+v", u)
		}
	}
}

func TestToken_Strictness(t *testing.T) {
	tests := []struct {
		name       string
		change     func(f url.Values)
		basic      [2]string
		status     int
		errCode    string
		afterClock time.Duration
	}{
		{name: "WrongSecret", basic: [2]string{"hubjobs", "nope"}, status: 401, errCode: "invalid_client"},
		{name: "UnknownClient", basic: [2]string{"other", "hubjobs-demo-secret"}, status: 401, errCode: "invalid_client"},
		{name: "NoClientAuth", basic: [2]string{"-", ""}, status: 401, errCode: "invalid_client"},
		{name: "WrongVerifier", change: func(f url.Values) { f.Set("code_verifier", strings.Repeat("x", 43)) }, status: 400, errCode: "invalid_grant"},
		{name: "MissingVerifier", change: func(f url.Values) { f.Del("code_verifier") }, status: 400, errCode: "invalid_grant"},
		{name: "PlainVerifierAsChallenge", change: func(f url.Values) { f.Set("code_verifier", challenge(verifier)) }, status: 400, errCode: "invalid_grant"},
		{name: "OtherRedirectURI", change: func(f url.Values) { f.Set("redirect_uri", rp+"/x") }, status: 400, errCode: "invalid_grant"},
		{name: "UnknownCode", change: func(f url.Values) { f.Set("code", "made-up") }, status: 400, errCode: "invalid_grant"},
		{name: "ExpiredCode", afterClock: 61 * time.Second, status: 400, errCode: "invalid_grant"},
		{name: "OtherGrantType", change: func(f url.Values) { f.Set("grant_type", "password") }, status: 400, errCode: "unsupported_grant_type"},
		{name: "ClientSecretPost", basic: [2]string{"-", "post"}, status: 200},
	}
	s, c := start(t, devidp.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cd := code(t, s, "viewer")
			c.Advance(tc.afterClock)
			defer c.Advance(-tc.afterClock)
			f := url.Values{"grant_type": {"authorization_code"}, "code": {cd}, "redirect_uri": {rp}, "code_verifier": {verifier}}
			if tc.change != nil {
				tc.change(f)
			}
			user, pass := "hubjobs", "hubjobs-demo-secret"
			switch {
			case tc.basic == [2]string{"-", "post"}:
				user = ""
				f.Set("client_id", "hubjobs")
				f.Set("client_secret", "hubjobs-demo-secret")
			case tc.basic[0] == "-":
				user = ""
			case tc.basic[0] != "":
				user, pass = tc.basic[0], tc.basic[1]
			}
			r := postForm(t, s.Issuer()+"/token", f, user, pass)
			if r.status != tc.status || (tc.errCode != "" && !strings.Contains(r.body, `"error":"`+tc.errCode+`"`)) {
				t.Fatalf("got %d %s, want %d %s", r.status, r.body, tc.status, tc.errCode)
			}
		})
	}
	t.Run("CodeIsSingleUse", func(t *testing.T) {
		cd := code(t, s, "viewer")
		if r := redeem(t, s, cd, nil); r.status != 200 {
			t.Fatalf("first redemption %d", r.status)
		}
		if r := redeem(t, s, cd, nil); r.status != 400 || !strings.Contains(r.body, "invalid_grant") {
			t.Fatalf("second redemption %d %s", r.status, r.body)
		}
	})
	t.Run("FailedRedemptionBurnsTheCode", func(t *testing.T) {
		cd := code(t, s, "viewer")
		redeem(t, s, cd, func(f url.Values) { f.Set("code_verifier", strings.Repeat("y", 43)) })
		if r := redeem(t, s, cd, nil); r.status != 400 {
			t.Fatalf("code usable after a failed attempt: %d", r.status)
		}
	})
}

func TestAuthorize_Strictness(t *testing.T) {
	tests := []struct {
		name     string
		change   func(q url.Values)
		status   int
		errParam string // error= in the redirect; "" means no redirect at all
	}{
		{name: "UnknownClient", change: func(q url.Values) { q.Set("client_id", "evil") }, status: 400},
		{name: "UnregisteredRedirectURI", change: func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:8080/auth/callback/") }, status: 400},
		{name: "RedirectURIWithExtraQuery", change: func(q url.Values) { q.Set("redirect_uri", rp+"?x=1") }, status: 400},
		{name: "MissingPKCE", change: func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, status: 303, errParam: "invalid_request"},
		{name: "PlainPKCE", change: func(q url.Values) { q.Set("code_challenge_method", "plain") }, status: 303, errParam: "invalid_request"},
		{name: "NoOpenIDScope", change: func(q url.Values) { q.Set("scope", "profile") }, status: 303, errParam: "invalid_scope"},
		{name: "ImplicitFlow", change: func(q url.Values) { q.Set("response_type", "id_token token") }, status: 303, errParam: "unsupported_response_type"},
	}
	s, _ := start(t, devidp.Options{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, authorizeURL(s, tc.change))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d\n%s", r.status, tc.status, r.body)
			}
			loc := r.header.Get("Location")
			if tc.errParam == "" {
				if loc != "" {
					t.Errorf("redirected to %q although the redirect URI is not trusted", loc)
				}
				if !strings.Contains(r.body, "DEMO identity provider") {
					t.Error("error page lacks the demo banner")
				}
				return
			}
			u, _ := url.Parse(loc)
			if !strings.HasPrefix(loc, rp+"?") || u.Query().Get("error") != tc.errParam || u.Query().Get("state") != "st-1" {
				t.Errorf("Location %q", loc)
			}
		})
	}
}

func TestLoginForm(t *testing.T) {
	s, _ := start(t, devidp.Options{})
	u := authorizeURL(s, nil)
	form := get(t, u)
	for _, want := range []string{"DEMO identity provider", `name="username"`, `name="password"`, `id="submit"`,
		"viewer", "operator", "auditor", "admin", "Jobs.Cancel", "same as user name"} {
		if !strings.Contains(form.body, want) {
			t.Errorf("login form lacks %q", want)
		}
	}
	id := requestField.FindStringSubmatch(form.body)[1]
	wrong := postForm(t, u, url.Values{"request": {id}, "username": {"admin"}, "password": {"viewer"}}, "", "")
	if wrong.status != http.StatusUnauthorized || !strings.Contains(wrong.body, "Wrong user name or password") || wrong.header.Get("Location") != "" {
		t.Fatalf("wrong password: %d", wrong.status)
	}
	right := postForm(t, u, url.Values{"request": {id}, "username": {"admin"}, "password": {"admin"}}, "", "")
	if right.status != http.StatusSeeOther {
		t.Fatalf("right password after a wrong one: %d", right.status)
	}
	again := postForm(t, u, url.Values{"request": {id}, "username": {"admin"}, "password": {"admin"}}, "", "")
	if again.status != http.StatusBadRequest {
		t.Errorf("a login form was usable twice: %d", again.status)
	}
}

func TestEndSession(t *testing.T) {
	s, _ := start(t, devidp.Options{})
	tests := []struct {
		name, query string
		status      int
		location    string
	}{
		{"RegisteredRedirect", "post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:8080/") + "&state=s1&client_id=hubjobs", 303, "http://127.0.0.1:8080/?state=s1"},
		{"UnregisteredRedirect", "post_logout_redirect_uri=" + url.QueryEscape("https://evil.example/"), 400, ""},
		{"NoRedirect", "", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.Issuer()+"/end_session?"+tc.query)
			if r.status != tc.status || r.header.Get("Location") != tc.location {
				t.Fatalf("%d %q, want %d %q", r.status, r.header.Get("Location"), tc.status, tc.location)
			}
		})
	}
}

func TestRotateKey(t *testing.T) {
	s, _ := start(t, devidp.Options{})
	kids := func() []string {
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
				Alg string `json:"alg"`
			} `json:"keys"`
		}
		_ = json.Unmarshal([]byte(get(t, s.Issuer()+"/keys").body), &set)
		var out []string
		for _, k := range set.Keys {
			if k.Alg != "RS256" {
				t.Errorf("key alg %q", k.Alg)
			}
			out = append(out, k.Kid)
		}
		return out
	}
	before := kids()
	if err := s.RotateKey(); err != nil {
		t.Fatal(err)
	}
	after := kids()
	if len(before) != 1 || len(after) != 2 || after[1] != before[0] {
		t.Fatalf("kids before %v after %v", before, after)
	}
	var tok struct {
		IDToken string `json:"id_token"`
	}
	_ = json.Unmarshal([]byte(redeem(t, s, code(t, s, "viewer"), nil).body), &tok)
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[0])
	if !strings.Contains(string(header), `"kid":"`+after[0]+`"`) {
		t.Errorf("new tokens not signed with the new key: %s", header)
	}
}
