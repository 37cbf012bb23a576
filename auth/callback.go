package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Bounds, in runes, on IdP-supplied text kept for the page, the audit trail
// and the log: enough for any real code, description or display name, and
// too little to fill a page with someone else's words.
const (
	maxIdPCode        = 64
	maxIdPDescription = 300
	maxIdPDisplayText = 200
	maxIdPLogText     = 500
)

// Callback handles GET /auth/callback: it checks the response against the
// browser's transaction, redeems the code, verifies the ID token, maps
// roles, issues a fresh session and lands on the validated next path with a
// 303. Every failure is a page in plain words, counted and audited.
func (a *Authenticator) Callback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		noStore(w)
		// The callback URL carries the code: do not leak it to the next page.
		w.Header().Set("Referrer-Policy", "no-referrer")
		u, next, err := a.finishLogin(w, r)
		if err != nil {
			a.loginFailed(w, r, err)
			return
		}
		now := a.now()
		cookie, err := a.sessionCookie(newSessionData(*u, now))
		if err != nil {
			a.loginFailed(w, r, err)
			return
		}
		// A sign-in must be audited: if it cannot be, there is no session.
		if err := a.record(r, ActionLogin, u, ""); err != nil {
			a.loginFailed(w, r, fmt.Errorf("%w: %w", ErrAuditUnavailable, err))
			return
		}
		a.endPreviousSession(r)
		a.setSessionCookie(w, cookie)
		a.metrics.sessionsStarted.Inc()
		a.log.Info("auth: signed in", "iss", u.Issuer, "sub", u.Subject, "roles", u.Roles, "session", hashID(u.SessionID))
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// finishLogin runs every check of the callback, in order, and returns the
// new user (with a fresh session id) and the re-validated next path.
func (a *Authenticator) finishLogin(w http.ResponseWriter, r *http.Request) (*User, string, error) {
	q := r.URL.Query()
	tx, txErr := a.takeTx(w, r, q.Get("state"))
	if code := q.Get("error"); code != "" {
		return nil, "", &IdPError{Code: sanitizeIdPText(code, maxIdPCode), Description: sanitizeIdPText(q.Get("error_description"), maxIdPDescription),
			Verified: txErr == nil}
	}
	if txErr != nil {
		return nil, "", txErr
	}
	p := a.provider.Load()
	if p == nil {
		return nil, "", ErrNotReady
	}
	// Mix-up defence: the transaction names the issuer it was started with,
	// and an RFC 9207 iss parameter, when sent, must be that issuer.
	if tx.Issuer != p.issuer {
		return nil, "", fmt.Errorf("%w: transaction started at %q", ErrIssuerMismatch, tx.Issuer)
	}
	if iss := q.Get("iss"); iss != "" && iss != p.issuer {
		return nil, "", fmt.Errorf("%w: iss parameter %q", ErrIssuerMismatch, sanitizeIdPText(iss, 200))
	}
	if err := a.consumeTx(r.Context(), tx); err != nil {
		return nil, "", err
	}
	code := q.Get("code")
	if code == "" {
		return nil, "", ErrMissingCode
	}

	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.ExchangeTimeout)
	defer cancel()
	ctx = oidc.ClientContext(ctx, a.cfg.HTTPClient)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(tx.Verifier))
	if err != nil {
		re, answered := errors.AsType[*oauth2.RetrieveError](err)
		if answered {
			// The IdP's error body is its own text: keep it out of the
			// log as it came (bidi overrides, forged lines).
			err = errors.New(sanitizeIdPText(re.Error(), maxIdPLogText))
		}
		if answered && re.Response != nil && re.Response.StatusCode < 500 {
			return nil, "", fmt.Errorf("%w: %w", ErrExchange, err) // the IdP refused this code
		}
		// Down, failing or past ExchangeTimeout: an outage (503), not a
		// refusal. The code is not retried either way.
		return nil, "", fmt.Errorf("%w: %w", ErrIdPUnavailable, err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, "", fmt.Errorf("%w: token response has no id_token", ErrIDToken)
	}
	idt, err := p.verifier.Verify(ctx, rawID)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrIDToken, err)
	}
	// go-oidc leaves the nonce to us. Nothing from this exchange is used
	// before it matches.
	if !constantTimeEqual(idt.Nonce, hashParam(tx.Nonce)) {
		return nil, "", ErrNonceMismatch
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, "", fmt.Errorf("%w: claims: %w", ErrIDToken, err)
	}
	// OIDC Core 3.1.3.7: with several audiences azp must be us, and when
	// azp is present it must be us.
	azp, _ := claims["azp"].(string)
	if (len(idt.Audience) > 1 || azp != "") && azp != a.cfg.ClientID {
		return nil, "", fmt.Errorf("%w: azp %q, audiences %q", ErrAuthorizedParty, sanitizeIdPText(azp, 100), idt.Audience)
	}

	u := a.userFromClaims(idt, claims)
	if len(u.Roles) == 0 {
		return nil, "", &NoAccessError{User: u, Claim: a.cfg.RolesClaim, Grants: a.cfg.RoleMap}
	}
	return u, a.safeNext(tx.Next), nil
}

// consumeTx records the transaction as used on the server until it would
// have expired anyway, so a replayed callback (with a captured cookie) is
// refused before any code exchange. The key space is separate from
// session ids ("tx:" prefix on a hash).
func (a *Authenticator) consumeTx(ctx context.Context, tx loginTx) error {
	key := "tx:" + hashParam(tx.State)
	used, err := a.cfg.Revocations.IsRevoked(ctx, key)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrRevocationUnavailable, err)
	}
	if used {
		return ErrTransactionReplayed
	}
	if err := a.cfg.Revocations.Revoke(ctx, key, tx.created().Add(a.cfg.TransactionTTL)); err != nil {
		return fmt.Errorf("%w: %w", ErrRevocationUnavailable, err)
	}
	return nil
}

// userFromClaims builds the portal user: identity is issuer + subject; name
// and e-mail are for display only (so they are sanitised like any IdP text:
// they appear in the header, the audit trail and the log); roles come from
// the roles claim through the role map, matched exactly as sent. The session
// id is new: sign-in never reuses an earlier one.
func (a *Authenticator) userFromClaims(idt *oidc.IDToken, claims map[string]any) *User {
	str := func(k string) string { s, _ := claims[k].(string); return sanitizeIdPText(s, maxIdPDisplayText) }
	name := str("name")
	if name == "" {
		name = str("preferred_username")
	}
	values := claimValues(claims, a.cfg.RolesClaim)
	return &User{
		Issuer:      idt.Issuer,
		Subject:     idt.Subject,
		Name:        name,
		Email:       str("email"),
		Roles:       mapRoles(values, a.cfg.RoleMap),
		ClaimValues: values,
		SessionID:   newSessionID(),
		IssuedAt:    time.Unix(a.now().Unix(), 0),
	}
}

// endPreviousSession revokes a session the browser still held when it
// signed in again (ASVS 3.2.1: a new session replaces, not joins, the old).
func (a *Authenticator) endPreviousSession(r *http.Request) {
	st, err := a.readSession(r)
	if err != nil {
		return
	}
	until := time.Unix(st.data.IssuedAt, 0).Add(a.cfg.AbsoluteTimeout)
	if err := a.cfg.Revocations.Revoke(r.Context(), hashID(st.data.ID), until); err != nil {
		a.log.Error("auth: revoking the session replaced by a new sign-in failed", "session", hashID(st.data.ID), "err", err)
	}
}

// loginFailed counts, logs, audits and renders one sign-in failure.
func (a *Authenticator) loginFailed(w http.ResponseWriter, r *http.Request, err error) {
	f := describeFailure(err)
	a.metrics.loginFailures.WithLabelValues(f.reason).Inc()
	if f.status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "30")
	}
	a.log.Warn("auth: sign-in failed", "reason", f.reason, "err", err)
	_ = a.record(r, ActionLoginFailed, f.user, f.reason)
	if f.retry {
		a.renderRetry(w, r, f.status, f.title, f.detail, LoginPath)
		return
	}
	a.render(w, r, f.status, f.title, f.detail)
}

func constantTimeEqual(x, y string) bool {
	return subtle.ConstantTimeCompare([]byte(x), []byte(y)) == 1
}
