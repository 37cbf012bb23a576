// Package devidp is a small but real OpenID Connect provider for the
// hubjobs demo and for tests: discovery, a JWKS with an RS256 key made at
// start, an authorization endpoint with a login form, a token endpoint that
// enforces PKCE S256 and single-use codes, userinfo, and RP-initiated
// logout. It keeps everything in memory, binds to loopback only, and says
// on every page that it is a demo.
//
// It is strict on purpose, so that the portal is tested against the rules a
// real provider enforces: unknown clients, redirect URIs that are not an
// exact match, missing PKCE, reused or expired codes and wrong verifiers are
// all refused.
//
// It imports nothing from hubjobs.
package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// User is a demo account.
type User struct {
	Username, Password string
	Subject            string   // default "demo-" + Username
	Name, Email        string   // defaults derived from Username
	Roles              []string // the "roles" claim
	Groups             []string // the "groups" claim; default: a copy of Roles
}

// DemoUsers are the six accounts of `hubjobs demo`, one per portal role;
// each password is the user name, and the roles claim carries the values of
// the portal's default role map. Author and approver are two people so that
// the demo can show the four-eyes rule: an approver may approve a rollout
// the author created, never their own.
func DemoUsers() []User {
	return []User{
		{Username: "viewer", Password: "viewer", Name: "Vera Viewer", Roles: []string{"Jobs.Read"}},
		{Username: "operator", Password: "operator", Name: "Otto Operator", Roles: []string{"Jobs.Cancel", "Jobs.Read"}},
		{Username: "author", Password: "author", Name: "Arthur Author", Roles: []string{"Jobs.Write", "Jobs.Read"}},
		{Username: "approver", Password: "approver", Name: "April Approver", Roles: []string{"Jobs.Approve", "Jobs.Read"}},
		{Username: "auditor", Password: "auditor", Name: "Alma Auditor", Roles: []string{"Audit.Read"}},
		{Username: "admin", Password: "admin", Name: "Ada Admin", Roles: []string{"Jobs.Admin"}},
	}
}

// Options configures the provider. The zero value is usable once at least
// one redirect URI is registered (here or with AllowRedirectURI).
type Options struct {
	Users                  []User        // default DemoUsers()
	ClientID, ClientSecret string        // default "hubjobs" and "hubjobs-demo-secret"
	RedirectURIs           []string      // exact match
	PostLogoutRedirectURIs []string      // exact match; default: each redirect URI's origin + "/"
	TokenLifetime          time.Duration // ID and access tokens; default 10 min
	CodeLifetime           time.Duration // authorization codes; default 1 min
	PathPrefix             string        // issuer path, e.g. "/idp"; default none
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Server is a running provider.
type Server struct {
	opts     Options
	issuer   string
	users    map[string]User
	listener net.Listener
	http     *http.Server

	mu           sync.Mutex
	keys         []signingKey // [0] signs; all are published
	redirects    []string
	postLogouts  []string
	pending      map[string]authRequest // login forms shown, by form id
	codes        map[string]issuedCode
	accessTokens map[string]accessGrant
}

type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

// ErrNotLoopback is returned by Listen for an address that is not loopback.
var ErrNotLoopback = errors.New("devidp: refusing to listen on a non-loopback address")

// Listen starts the provider on addr, which must be a loopback address
// ("127.0.0.1:0" picks a free port). The issuer is http://ADDR + PathPrefix.
func Listen(addr string, opts Options) (*Server, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("devidp: listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), port))
	if err != nil {
		return nil, fmt.Errorf("devidp: %w", err)
	}
	s.listener = ln
	s.issuer = "http://" + ln.Addr().String() + s.opts.PathPrefix
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("devidp: serve", "err", err)
		}
	}()
	s.opts.Logger.Info("devidp: demo identity provider listening", "issuer", s.issuer)
	return s, nil
}

func newServer(opts Options) (*Server, error) {
	if opts.Users == nil {
		opts.Users = DemoUsers()
	}
	if opts.ClientID == "" {
		opts.ClientID = "hubjobs"
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = "hubjobs-demo-secret"
	}
	if opts.TokenLifetime <= 0 {
		opts.TokenLifetime = 10 * time.Minute
	}
	if opts.CodeLifetime <= 0 {
		opts.CodeLifetime = time.Minute
	}
	if opts.PathPrefix != "" {
		opts.PathPrefix = "/" + strings.Trim(opts.PathPrefix, "/")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:         opts,
		users:        map[string]User{},
		pending:      map[string]authRequest{},
		codes:        map[string]issuedCode{},
		accessTokens: map[string]accessGrant{},
	}
	for _, u := range opts.Users {
		if u.Username == "" || u.Password == "" {
			return nil, errors.New("devidp: every user needs a username and a password")
		}
		if u.Subject == "" {
			u.Subject = "demo-" + u.Username
		}
		if u.Name == "" {
			u.Name = u.Username
		}
		if u.Email == "" {
			u.Email = u.Username + "@demo.invalid"
		}
		if u.Groups == nil {
			u.Groups = slices.Clone(u.Roles)
		}
		s.users[u.Username] = u
	}
	for _, uri := range opts.RedirectURIs {
		if err := s.AllowRedirectURI(uri); err != nil {
			return nil, err
		}
	}
	s.postLogouts = append(s.postLogouts, opts.PostLogoutRedirectURIs...)
	if err := s.RotateKey(); err != nil {
		return nil, err
	}
	return s, nil
}

// Issuer is the issuer URL to configure in the relying party.
func (s *Server) Issuer() string { return s.issuer }

// ClientID and ClientSecret are the one client's credentials.
func (s *Server) ClientID() string     { return s.opts.ClientID }
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Close stops the provider at once.
func (s *Server) Close() error { return s.http.Close() }

// AllowRedirectURI registers one more exact redirect URI (for a relying
// party whose port is known only after the provider started). Unless
// PostLogoutRedirectURIs were given, the URI's origin + "/" becomes an
// allowed post-logout redirect.
func (s *Server) AllowRedirectURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("devidp: redirect URI %q must be an absolute http(s) URL without fragment", uri)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redirects = append(s.redirects, uri)
	if len(s.opts.PostLogoutRedirectURIs) == 0 {
		s.postLogouts = append(s.postLogouts, u.Scheme+"://"+u.Host+"/")
	}
	return nil
}

// RotateKey makes a fresh RS256 key the signing key. Earlier keys stay in
// the JWKS, as in a real rollover; relying parties that cached the old set
// see an unknown kid and must refetch.
func (s *Server) RotateKey() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("devidp: generate signing key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append([]signingKey{{id: randomString(12), key: key}}, s.keys...)
	return nil
}

func (s *Server) jwks() jose.JSONWebKeySet {
	s.mu.Lock()
	defer s.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range s.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.key.PublicKey, KeyID: k.id, Algorithm: string(jose.RS256), Use: "sig"})
	}
	return set
}

func (s *Server) signingKey() signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[0]
}

func (s *Server) redirectAllowed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.redirects, uri)
}

func (s *Server) postLogoutAllowed(uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.postLogouts, uri)
}
