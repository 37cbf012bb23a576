package auth

import (
	"strings"
	"sync"
)

// decodedCookies remembers what the exact bytes of a session cookie decoded
// to, so that a browser polling a job page does not pay for the MAC check,
// AES decryption, inflate and JSON of the same cookie on every request
// (together ~70 % of the session middleware, and the CSRF token's HMAC on
// top; see BenchmarkSession).
//
// Why this is safe: the key is the whole cookie value, and an entry is
// only made after that value passed the MAC under one of this
// Authenticator's keys, whose keyring never changes. Equal bytes decode to
// equal data, so a hit returns exactly what decoding would have. Nothing
// that changes over time is cached: readSession still checks the idle and
// absolute timeouts against the clock and asks the revocation store on
// every request. (securecookie's own timestamp check is skipped on a hit;
// it counts from when the cookie was written, which is never before
// IssuedAt, so the absolute timeout checked here is always the stricter.)
// Refused cookies are never cached, so junk cannot fill the cache.
//
// Memory is bounded: at most decodedCookiesMax entries (a session cookie
// is under 4 KB, typically ~0.5 KB), and a full cache starts over, which
// only costs the decodes it saved.
type decodedCookies struct {
	mu      sync.Mutex
	entries map[string]decodedCookie
}

// decodedCookie is a verified cookie's content. Its slices are shared by
// every request that presents the cookie: treat them as read-only.
type decodedCookie struct {
	data   sessionData
	keyIdx int    // which session key verified it (>0: re-issue under the current one)
	csrf   string // the session's CSRF token under the current key
}

const decodedCookiesMax = 2048

func (c *decodedCookies) get(value string) (decodedCookie, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[value]
	return d, ok
}

func (c *decodedCookies) put(value string, d decodedCookie) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= decodedCookiesMax {
		c.entries = make(map[string]decodedCookie)
	}
	// The value is a slice of the request's Cookie header: copy it so the
	// cache does not keep whole headers alive.
	c.entries[strings.Clone(value)] = d
}
