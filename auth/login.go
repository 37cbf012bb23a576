package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"golang.org/x/oauth2"
)

// Limits on concurrent sign-ins from one browser. Each tab that starts a
// sign-in gets its own transaction cookie; beyond these the oldest are
// dropped (that tab then sees "sign-in expired, try again"), so the Cookie
// header stays far from the 8 KB many proxies allow and never earns a 431.
const (
	maxTxCookies = 8
	maxTxBytes   = 6 << 10 // all transaction cookies together, names included
	txIDLen      = 22      // characters of the state parameter used in the cookie name
)

// loginTx is one sign-in in progress, kept in an encrypted and signed
// cookie between /auth/login and /auth/callback.
type loginTx struct {
	Verifier string `json:"v"` // PKCE code_verifier
	State    string `json:"s"` // raw; the IdP sees hashParam(State)
	Nonce    string `json:"n"` // raw; the IdP sees hashParam(Nonce)
	Next     string `json:"r"` // validated return path
	Issuer   string `json:"i"` // mix-up defence: the callback must come from the same issuer
	Created  int64  `json:"t"` // unix milliseconds (Config.Now); expiry and "oldest first"
}

func (tx loginTx) created() time.Time { return time.UnixMilli(tx.Created) }

// Login handles GET /auth/login?next=…: it starts an authorization-code
// sign-in with PKCE S256, state and nonce, remembers it in a transaction
// cookie, and sends the browser to the IdP.
func (a *Authenticator) Login() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		p := a.provider.Load()
		if p == nil {
			w.Header().Set("Retry-After", "5")
			a.loginFailed(w, r, ErrNotReady)
			return
		}
		tx := loginTx{
			Verifier: oauth2.GenerateVerifier(),
			State:    randomToken(32),
			Nonce:    randomToken(32),
			Next:     a.safeNext(r.URL.Query().Get("next")),
			Issuer:   p.issuer,
			Created:  a.now().UnixMilli(),
		}
		state := hashParam(tx.State)
		c, err := a.txCookie(state, tx)
		if err != nil {
			a.loginFailed(w, r, err)
			return
		}
		a.dropOldTransactions(w, r, len(c.Name)+len(c.Value))
		http.SetCookie(w, c)
		authURL := p.oauth.AuthCodeURL(state,
			oauth2.S256ChallengeOption(tx.Verifier),
			oauth2.SetAuthURLParam("nonce", hashParam(tx.Nonce)))
		http.Redirect(w, r, authURL, http.StatusSeeOther)
	})
}

func (a *Authenticator) safeNext(raw string) string { return safeNext(raw, a.cfg.NextAllowed) }

// txCookieName derives the transaction cookie's name from the state the
// IdP echoes back, so the callback finds exactly its own transaction even
// when several tabs sign in at once.
func (a *Authenticator) txCookieName(state string) string { return a.txPrefix + state[:txIDLen] }

// validStateParam accepts only what hashParam produces: 43 base64url characters.
func validStateParam(s string) bool {
	if len(s) != 43 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (a *Authenticator) txCookie(state string, tx loginTx) (*http.Cookie, error) {
	raw, err := json.Marshal(tx)
	if err != nil {
		return nil, fmt.Errorf("auth: encode sign-in transaction: %w", err)
	}
	name := a.txCookieName(state)
	value, err := a.keys.tx[0].Encode(name, raw)
	if err != nil {
		return nil, fmt.Errorf("auth: encode sign-in transaction: %w", err)
	}
	return sessions.NewCookie(name, value, a.cookieOptions(int(a.cfg.TransactionTTL/time.Second))), nil
}

func (a *Authenticator) expireCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, sessions.NewCookie(name, "", a.cookieOptions(-1)))
}

// decodeTx reads one transaction cookie under any configured key and checks
// its age against Config.Now.
func (a *Authenticator) decodeTx(c *http.Cookie) (loginTx, bool) {
	var raw []byte
	for _, codec := range a.keys.tx {
		if codec.Decode(c.Name, c.Value, &raw) != nil {
			continue
		}
		var tx loginTx
		if json.Unmarshal(raw, &tx) != nil {
			return loginTx{}, false
		}
		age := a.now().Sub(tx.created())
		return tx, age >= 0 && age < a.cfg.TransactionTTL
	}
	return loginTx{}, false
}

// dropOldTransactions expires unreadable and stale transaction cookies and,
// newest first, keeps only as many as fit the limits next to a new cookie
// of newSize bytes.
func (a *Authenticator) dropOldTransactions(w http.ResponseWriter, r *http.Request, newSize int) {
	type live struct {
		name    string
		size    int
		created time.Time
	}
	var keep []live
	for _, c := range r.Cookies() {
		if !strings.HasPrefix(c.Name, a.txPrefix) {
			continue
		}
		tx, ok := a.decodeTx(c)
		if !ok {
			a.expireCookie(w, c.Name)
			continue
		}
		keep = append(keep, live{c.Name, len(c.Name) + len(c.Value), tx.created()})
	}
	slices.SortFunc(keep, func(x, y live) int { return y.created.Compare(x.created) })
	total, count := newSize, 1
	for _, l := range keep {
		if count+1 > maxTxCookies || total+l.size > maxTxBytes {
			a.expireCookie(w, l.name)
			continue
		}
		total += l.size
		count++
	}
}

// takeTx finds, clears and checks the transaction the callback belongs to.
// The cookie is expired before anything else happens, so a transaction is
// single-use in the browser even when the rest of the callback fails.
//
// A missing, empty or malformed state cannot belong to any sign-in we
// started (we always send one, and the IdP must return it): that is
// ErrStateMismatch, and every transaction this browser holds is expired,
// failing closed (docs/security.md case 1). No transaction cookie for a
// well-formed state means the sign-in expired, was dropped to make room for
// newer tabs, or was started in another browser: the user cannot tell these
// apart and the remedy is the same, so all are ErrTransactionMissing ("try
// again"); the browser's other sign-ins are left alone, so parallel tabs
// keep working. A cookie found under the state's name whose full state
// differs means tampering (ErrStateMismatch).
func (a *Authenticator) takeTx(w http.ResponseWriter, r *http.Request, state string) (loginTx, error) {
	if !validStateParam(state) {
		for _, c := range r.Cookies() {
			if strings.HasPrefix(c.Name, a.txPrefix) {
				a.expireCookie(w, c.Name)
			}
		}
		return loginTx{}, fmt.Errorf("%w: no valid state parameter", ErrStateMismatch)
	}
	c, err := r.Cookie(a.txCookieName(state))
	if err != nil {
		return loginTx{}, ErrTransactionMissing
	}
	a.expireCookie(w, c.Name)
	tx, ok := a.decodeTx(c)
	if !ok {
		return loginTx{}, ErrTransactionMissing
	}
	if !constantTimeEqual(hashParam(tx.State), state) {
		return loginTx{}, ErrStateMismatch
	}
	return tx, nil
}
