package devidp

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Endpoint paths below the issuer.
const (
	discoveryPath  = "/.well-known/openid-configuration"
	authorizePath  = "/authorize"
	tokenPath      = "/token"
	jwksPath       = "/keys"
	userinfoPath   = "/userinfo"
	endSessionPath = "/end_session"
)

// pendingLifetime bounds how long a login form may stay open.
const pendingLifetime = 10 * time.Minute

// authRequest is a validated authorization request waiting for the user.
type authRequest struct {
	redirectURI, state, nonce, challenge, scope string
	expires                                     time.Time
}

type issuedCode struct {
	req     authRequest
	user    User
	authAt  time.Time
	expires time.Time
}

type accessGrant struct {
	user    User
	expires time.Time
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	p := s.opts.PathPrefix
	mux.HandleFunc("GET "+p+discoveryPath, s.discovery)
	mux.HandleFunc("GET "+p+jwksPath, s.keysHandler)
	mux.HandleFunc("GET "+p+authorizePath, s.authorize)
	mux.HandleFunc("POST "+p+authorizePath, s.login)
	mux.HandleFunc("POST "+p+tokenPath, s.token)
	mux.HandleFunc("GET "+p+userinfoPath, s.userinfo)
	mux.HandleFunc(p+endSessionPath, s.endSession)
	mux.HandleFunc(p+"/", func(w http.ResponseWriter, r *http.Request) {
		s.page(w, http.StatusNotFound, pageData{Title: "Not found", Message: "There is nothing here."})
	})
	return mux
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.issuer,
		"authorization_endpoint":                s.issuer + authorizePath,
		"token_endpoint":                        s.issuer + tokenPath,
		"jwks_uri":                              s.issuer + jwksPath,
		"userinfo_endpoint":                     s.issuer + userinfoPath,
		"end_session_endpoint":                  s.issuer + endSessionPath,
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(jose.RS256)},
		"scopes_supported":                      []string{"openid", "profile", "email", "groups"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
			"name", "email", "email_verified", "preferred_username", "roles", "groups"},
	})
}

func (s *Server) keysHandler(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.jwks())
}

// authorize validates the request and shows the login form. Until the
// client and redirect URI are known good, errors are shown here and never
// redirected (RFC 6749 §4.1.2.1).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != s.opts.ClientID {
		s.page(w, http.StatusBadRequest, pageData{Title: "Unknown client", Message: "The application that sent you here is not registered with this provider."})
		return
	}
	redirectURI := q.Get("redirect_uri")
	if !s.redirectAllowed(redirectURI) {
		s.page(w, http.StatusBadRequest, pageData{Title: "Redirect URI not registered",
			Message: "The redirect_uri " + redirectURI + " is not registered for this client (exact match required)."})
		return
	}
	fail := func(code, desc string) { redirectError(w, r, redirectURI, q.Get("state"), code, desc) }
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "only the authorization code flow is supported")
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail("invalid_scope", "the openid scope is required")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "PKCE with code_challenge_method=S256 is required")
		return
	}
	id := randomString(24)
	now := s.opts.Now()
	s.mu.Lock()
	for k, p := range s.pending {
		if now.After(p.expires) {
			delete(s.pending, k)
		}
	}
	s.pending[id] = authRequest{redirectURI: redirectURI, state: q.Get("state"), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), scope: q.Get("scope"), expires: now.Add(pendingLifetime)}
	s.mu.Unlock()
	s.loginForm(w, http.StatusOK, id, "", "")
}

// login handles the form: a wrong password shows the form again; cancel
// returns access_denied to the client; success issues a one-time code.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	id := r.PostFormValue("request")
	s.mu.Lock()
	req, ok := s.pending[id]
	if ok && r.PostFormValue("cancel") == "" && !s.passwordOK(r.PostFormValue("username"), r.PostFormValue("password")) {
		s.mu.Unlock()
		s.loginForm(w, http.StatusUnauthorized, id, r.PostFormValue("username"), "Wrong user name or password.")
		return
	}
	delete(s.pending, id)
	s.mu.Unlock()
	now := s.opts.Now()
	if !ok || now.After(req.expires) {
		s.page(w, http.StatusBadRequest, pageData{Title: "Sign-in expired", Message: "This login form has expired. Go back to the application and sign in again."})
		return
	}
	if r.PostFormValue("cancel") != "" {
		redirectError(w, r, req.redirectURI, req.state, "access_denied", "the user cancelled the sign-in")
		return
	}
	code := randomString(32)
	s.mu.Lock()
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
	s.codes[code] = issuedCode{req: req, user: s.users[r.PostFormValue("username")], authAt: now, expires: now.Add(s.opts.CodeLifetime)}
	s.mu.Unlock()
	back := mustParse(req.redirectURI)
	q := back.Query()
	q.Set("code", code)
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", s.issuer) // RFC 9207
	back.RawQuery = q.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func (s *Server) passwordOK(username, password string) bool {
	u, ok := s.users[username]
	return ok && subtle.ConstantTimeCompare([]byte(u.Password), []byte(password)) == 1
}

var verifierPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// token redeems an authorization code (client authenticated by Basic or
// by form fields; PKCE S256; the code is gone after the first attempt).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if !s.clientAuthenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	code := r.PostForm.Get("code")
	s.mu.Lock()
	issued, ok := s.codes[code]
	delete(s.codes, code) // single use, even when the rest fails
	s.mu.Unlock()
	now := s.opts.Now()
	verifier := r.PostForm.Get("code_verifier")
	switch {
	case !ok || now.After(issued.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case r.PostForm.Get("redirect_uri") != issued.req.redirectURI:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request")
		return
	case !verifierPattern.MatchString(verifier):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier missing or malformed")
		return
	case subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(issued.req.challenge)) != 1:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
		return
	}
	idToken, err := s.idToken(issued, now)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "could not sign the ID token")
		return
	}
	access := randomString(32)
	s.mu.Lock()
	for k, g := range s.accessTokens {
		if now.After(g.expires) {
			delete(s.accessTokens, k)
		}
	}
	s.accessTokens[access] = accessGrant{user: issued.user, expires: now.Add(s.opts.TokenLifetime)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.TokenLifetime / time.Second),
		"id_token":     idToken,
		"scope":        issued.req.scope,
	})
}

// clientAuthenticated accepts client_secret_basic (form-encoded id and
// secret, RFC 6749 §2.3.1) or client_secret_post.
func (s *Server) clientAuthenticated(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == s.opts.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(s.opts.ClientSecret)) == 1
}

func (s *Server) idToken(c issuedCode, now time.Time) (string, error) {
	k := s.signingKey()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.key, KeyID: k.id}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	claims := s.userClaims(c.user)
	claims["iss"] = s.issuer
	claims["aud"] = s.opts.ClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(s.opts.TokenLifetime).Unix()
	claims["auth_time"] = c.authAt.Unix()
	if c.req.nonce != "" {
		claims["nonce"] = c.req.nonce
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func (s *Server) userClaims(u User) map[string]any {
	return map[string]any{
		"sub":                u.Subject,
		"name":               u.Name,
		"preferred_username": u.Username,
		"email":              u.Email,
		"email_verified":     true,
		"roles":              u.Roles,
		"groups":             u.Groups,
	}
}

func (s *Server) userinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	g, found := s.accessTokens[token]
	s.mu.Unlock()
	if !ok || !found || s.opts.Now().After(g.expires) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		tokenError(w, http.StatusUnauthorized, "invalid_token", "unknown or expired access token")
		return
	}
	writeJSON(w, http.StatusOK, s.userClaims(g.user))
}

// endSession is the RP-initiated logout endpoint. The provider keeps no
// sign-in session of its own (every authorization shows the form), so it
// only has to send the browser back, to a registered URI only.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	back := r.FormValue("post_logout_redirect_uri")
	switch {
	case back == "":
		s.page(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out of the demo identity provider."})
	case !s.postLogoutAllowed(back):
		s.page(w, http.StatusBadRequest, pageData{Title: "Signed out",
			Message: "You are signed out, but " + back + " is not a registered post-logout redirect URI, so you were not sent back."})
	default:
		u := mustParse(back)
		if state := r.FormValue("state"); state != "" {
			q := u.Query()
			q.Set("state", state)
			u.RawQuery = q.Encode()
		}
		http.Redirect(w, r, u.String(), http.StatusSeeOther)
	}
}

func redirectError(w http.ResponseWriter, r *http.Request, redirectURI, state, code, desc string) {
	u := mustParse(redirectURI)
	q := u.Query()
	q.Set("error", code)
	q.Set("error_description", desc)
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// mustParse parses a URI that was validated when it was registered.
func mustParse(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic("devidp: registered URI no longer parses: " + err.Error())
	}
	return u
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
