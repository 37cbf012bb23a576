// Package auth is the portal's identity layer: OpenID Connect sign-in
// (authorization code + PKCE S256 + state + nonce), a small encrypted cookie
// session, role mapping, and the guards the routes sit behind (require-user,
// require-role, CSRF).
//
// It speaks net/http only so that the web package can wrap it in echo
// middleware and so that it can be tested with httptest alone. It imports
// nothing else from the project; auth/devidp is a separate, standalone
// identity provider for the demo and for tests.
//
// The decisions behind the cookie layout, key derivation, what is sent to the
// identity provider and how logout is made to stick are written up in
// README.md next to this file.
package auth
