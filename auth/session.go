package auth

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/sessions"
)

// maxCookieBytes is the browser limit for one cookie's name plus value.
const maxCookieBytes = 4096

// sessionPayloadVersion prefixes the serialised session so that a later
// format change can tell old cookies apart instead of misreading them.
const sessionPayloadVersion = 1

// sessionData is everything the session cookie carries: claims and
// timestamps, never a token. Field names are short because every byte is
// paid for twice in base64.
type sessionData struct {
	ID       string   `json:"i"`
	Issuer   string   `json:"is"`
	Subject  string   `json:"s"`
	Name     string   `json:"n,omitempty"`
	Email    string   `json:"e,omitempty"`
	Roles    []Role   `json:"r,omitempty"`
	Values   []string `json:"v,omitempty"`
	IssuedAt int64    `json:"t"` // unix seconds; absolute timeout counts from here
	LastSeen int64    `json:"l"` // unix seconds; idle timeout counts from here
}

// user copies the slices: d may come from the decoded-cookie cache, which
// other requests share, and a User is the handlers' to keep.
func (d sessionData) user() *User {
	return &User{Issuer: d.Issuer, Subject: d.Subject, Name: d.Name, Email: d.Email,
		Roles: slices.Clone(d.Roles), ClaimValues: slices.Clone(d.Values), SessionID: d.ID, IssuedAt: time.Unix(d.IssuedAt, 0)}
}

// encodeSessionPayload serialises d as JSON and DEFLATEs it. Compression is
// what keeps 50 role values and long names under 4 KB after securecookie's
// double base64. There is no compression oracle here: the payload holds one
// user's own claims and server-made values, and nobody else can make the
// server compress chosen text next to them.
func encodeSessionPayload(d sessionData) ([]byte, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("auth: encode session: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteByte(sessionPayloadVersion)
	zw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(zw)
	zw.Reset(&buf)
	if _, err := zw.Write(raw); err != nil {
		return nil, fmt.Errorf("auth: encode session: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("auth: encode session: %w", err)
	}
	return buf.Bytes(), nil
}

var errBadPayload = errors.New("auth: malformed session payload")

// DEFLATE state is large (a 32 KB window to read, far more to write) and
// every signed-in request inflates a cookie, so both sides are pooled.
var (
	flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}
	flateWriters = sync.Pool{New: func() any {
		w, err := flate.NewWriter(io.Discard, flate.BestCompression)
		if err != nil {
			panic(err) // only for an invalid level
		}
		return w
	}}
)

func decodeSessionPayload(b []byte) (sessionData, error) {
	if len(b) == 0 || b[0] != sessionPayloadVersion {
		return sessionData{}, errBadPayload
	}
	// The MAC has already been verified, so this is our own output; the
	// limit is belt and braces against a decompression bomb.
	zr := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(zr)
	if err := zr.(flate.Resetter).Reset(bytes.NewReader(b[1:]), nil); err != nil {
		return sessionData{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 64<<10))
	if err != nil {
		return sessionData{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	var d sessionData
	if err := json.Unmarshal(raw, &d); err != nil {
		return sessionData{}, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	if d.ID == "" || d.Subject == "" || d.IssuedAt == 0 || d.LastSeen == 0 {
		return sessionData{}, errBadPayload
	}
	return d, nil
}

// newSessionID is 128 bits from crypto/rand.
func newSessionID() string { return rand.Text() }

// sessionCookie encodes d under the current key with the contract's
// attributes. Max-Age follows the idle window (capped by what is left of the
// absolute one); the server checks both timeouts itself anyway.
func (a *Authenticator) sessionCookie(d sessionData) (*http.Cookie, error) {
	payload, err := encodeSessionPayload(d)
	if err != nil {
		return nil, err
	}
	value, err := a.keys.session[0].Encode(a.cookieName, payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSessionTooLarge, err)
	}
	if len(a.cookieName)+1+len(value) > maxCookieBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrSessionTooLarge, len(a.cookieName)+1+len(value))
	}
	left := time.Unix(d.IssuedAt, 0).Add(a.cfg.AbsoluteTimeout).Sub(a.now())
	maxAge := min(a.cfg.IdleTimeout, left)
	return sessions.NewCookie(a.cookieName, value, a.cookieOptions(int(maxAge/time.Second))), nil
}

func (a *Authenticator) cookieOptions(maxAge int) *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: maxAge, Secure: a.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (a *Authenticator) setSessionCookie(w http.ResponseWriter, c *http.Cookie) {
	noStore(w)
	http.SetCookie(w, c)
}

func (a *Authenticator) clearSessionCookie(w http.ResponseWriter) {
	noStore(w)
	http.SetCookie(w, sessions.NewCookie(a.cookieName, "", a.cookieOptions(-1)))
}

// Reasons a presented session cookie is refused (metric labels).
const (
	rejectInvalid    = "invalid"
	rejectIdle       = "idle_timeout"
	rejectAbsolute   = "absolute_timeout"
	rejectRevoked    = "revoked"
	rejectStoreError = "revocation_check_failed"
)

// sessionState is the outcome of reading the session cookie.
type sessionState struct {
	data      sessionData
	csrf      string // the session's CSRF token (set when valid)
	reissue   bool   // valid, but write it again (older key, or LastSeen is stale)
	rejected  string // non-empty: a cookie was presented and refused for this reason
	keepStale bool   // refused only because a dependency failed: do not delete it
}

// readSession decodes and checks the session cookie: MAC and decryption
// under any configured key, idle and absolute timeouts against Config.Now,
// and the server-side revocation record. Anything wrong means "anonymous";
// it never produces an error page.
func (a *Authenticator) readSession(r *http.Request) (sessionState, error) {
	c, err := r.Cookie(a.cookieName)
	if err != nil || c.Value == "" {
		return sessionState{}, errNoSession
	}
	dc, err := a.decodeCookie(c.Value)
	if err != nil {
		return sessionState{rejected: rejectInvalid}, errNoSession
	}
	d, now := dc.data, a.now()
	switch {
	case !now.Before(time.Unix(d.IssuedAt, 0).Add(a.cfg.AbsoluteTimeout)):
		return sessionState{rejected: rejectAbsolute}, errNoSession
	case !now.Before(time.Unix(d.LastSeen, 0).Add(a.cfg.IdleTimeout)):
		return sessionState{rejected: rejectIdle}, errNoSession
	}
	revoked, err := a.cfg.Revocations.IsRevoked(r.Context(), hashID(d.ID))
	switch {
	case err != nil:
		// Fail closed: without the revocation answer we cannot tell a
		// logged-out cookie from a live one. Keep the cookie so the user is
		// signed in again as soon as the store answers.
		// A client that went away cancels the check; that is not a store
		// fault worth an error line (under load it would flood the log).
		if r.Context().Err() == nil {
			a.log.Error("auth: revocation check failed; treating request as signed out",
				"session", hashID(d.ID), "err", err)
		}
		return sessionState{rejected: rejectStoreError, keepStale: true}, errNoSession
	case revoked:
		return sessionState{data: d, rejected: rejectRevoked}, errNoSession
	}
	st := sessionState{data: d, csrf: dc.csrf, reissue: dc.keyIdx > 0}
	if now.Sub(time.Unix(d.LastSeen, 0)) >= a.refreshEvery() {
		st.data.LastSeen = now.Unix()
		st.reissue = true
	}
	return st, nil
}

// decodeCookie verifies and decodes a session cookie's value under any
// configured key, or returns what the same value decoded to before (see
// decodedCookies for why that is safe).
func (a *Authenticator) decodeCookie(value string) (decodedCookie, error) {
	if dc, ok := a.decoded.get(value); ok {
		return dc, nil
	}
	var payload []byte
	for i, codec := range a.keys.session {
		if codec.Decode(a.cookieName, value, &payload) != nil {
			continue
		}
		d, err := decodeSessionPayload(payload)
		if err != nil {
			return decodedCookie{}, err
		}
		dc := decodedCookie{data: d, keyIdx: i, csrf: a.CSRFTokenFor(d.ID)}
		a.decoded.put(value, dc)
		return dc, nil
	}
	return decodedCookie{}, errBadPayload
}

// refreshEvery bounds how often sliding expiry rewrites the cookie: at most
// once a minute (less for very short idle timeouts), so polling pages do
// not get a Set-Cookie on every response. The idle window a user really
// gets is therefore IdleTimeout minus up to this much.
func (a *Authenticator) refreshEvery() time.Duration {
	return min(time.Minute, a.cfg.IdleTimeout/4)
}

type ctxKey struct{}

// sessionContext is what Session puts in the request context.
type sessionContext struct {
	user *User
	csrf string
}

// Session loads the signed-in user and their CSRF token into the request
// context (see UserFrom, CSRFToken). A missing, tampered, expired or revoked
// cookie leaves the request anonymous; a refused cookie is deleted.
//
// A cookie that is not ours (tampered, truncated, made under a retired key)
// or that was signed out is also recorded as auth.login_failed: someone is
// forging or replaying sessions. Expiry is routine and only counted. The
// cookie is deleted on the first refusal, so a browser records it once.
func (a *Authenticator) Session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := a.readSession(r)
		if err != nil {
			if st.rejected != "" {
				a.metrics.sessionsRejected.WithLabelValues(st.rejected).Inc()
				switch st.rejected {
				case rejectInvalid:
					_ = a.record(r, ActionLoginFailed, nil, "session cookie refused: unreadable (tampered, truncated or made under a retired key)")
				case rejectRevoked:
					_ = a.record(r, ActionLoginFailed, st.data.user(), "session cookie refused: signed out (a copy used after sign-out or a newer sign-in)")
				}
				if !st.keepStale {
					a.clearSessionCookie(w)
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		if st.reissue {
			c, err := a.sessionCookie(st.data)
			if err != nil {
				// Cannot happen for a cookie we could read; keep serving with the old one.
				a.log.Error("auth: re-issuing session cookie failed", "session", hashID(st.data.ID), "err", err)
			} else {
				a.setSessionCookie(w, c)
			}
		}
		sc := &sessionContext{user: st.data.user(), csrf: st.csrf}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sc)))
	})
}

// UserFrom returns the signed-in user stored by Session.
func UserFrom(ctx context.Context) (*User, bool) {
	sc, ok := ctx.Value(ctxKey{}).(*sessionContext)
	if !ok || sc.user == nil {
		return nil, false
	}
	return sc.user, true
}

// CSRFToken returns the session-bound CSRF token for the meta tag ("" when
// signed out: there is no state-changing route for anonymous users).
func CSRFToken(ctx context.Context) string {
	if sc, ok := ctx.Value(ctxKey{}).(*sessionContext); ok {
		return sc.csrf
	}
	return ""
}

// CSRFTokenFor is the CSRF token of a session: HMAC-SHA256 of the session
// id under a key derived for this purpose only. Tests use it with
// NewSessionCookie to post forms as a signed-in user.
func (a *Authenticator) CSRFTokenFor(sessionID string) string {
	return csrfToken(a.keys.csrf[0], sessionID)
}

func csrfToken(key []byte, sessionID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("csrf|" + sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// validCSRF compares in constant time against the token under every
// configured key, so pages rendered before a key rotation keep working.
func (a *Authenticator) validCSRF(sessionID, token string) bool {
	ok := false
	for _, k := range a.keys.csrf {
		ok = hmac.Equal([]byte(csrfToken(k, sessionID)), []byte(token)) || ok
	}
	return ok
}

// NewSessionCookie mints a valid session cookie for u without the IdP — the
// test seam for handlers, end-to-end tests and benchmarks. u.Subject is
// required; an empty SessionID gets a random one, an empty Issuer the
// configured issuer, a zero IssuedAt the current time. To post forms, set
// u.SessionID yourself and use CSRFTokenFor(u.SessionID).
func (a *Authenticator) NewSessionCookie(u User) (*http.Cookie, error) {
	if u.Subject == "" {
		return nil, errors.New("auth: NewSessionCookie needs a Subject")
	}
	if u.SessionID == "" {
		u.SessionID = newSessionID()
	}
	if u.Issuer == "" {
		u.Issuer = a.cfg.Issuer
	}
	now := a.now()
	if u.IssuedAt.IsZero() {
		u.IssuedAt = now
	}
	return a.sessionCookie(newSessionData(u, now))
}

func newSessionData(u User, now time.Time) sessionData {
	return sessionData{ID: u.SessionID, Issuer: u.Issuer, Subject: u.Subject, Name: u.Name, Email: u.Email,
		Roles: u.Roles, Values: u.ClaimValues, IssuedAt: u.IssuedAt.Unix(), LastSeen: now.Unix()}
}
