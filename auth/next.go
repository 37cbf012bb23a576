package auth

import (
	"net/url"
	"strings"
)

// Routes this package serves; web mounts the handlers on exactly these.
const (
	LoginPath    = "/auth/login"
	CallbackPath = "/auth/callback"
	LogoutPath   = "/auth/logout"
)

// maxNextLen bounds ?next= so the login-transaction cookie that carries it
// stays far below 4 KB (docs/security.md case 35). Longer values become "/".
const maxNextLen = 1024

// LoginURL is the login URL that returns to next (already validated or not:
// the login handler validates it again, so any string is safe here).
func LoginURL(next string) string {
	if next == "" {
		return LoginPath
	}
	return LoginPath + "?next=" + url.QueryEscape(next)
}

// allowedNextPath is the default allow-list when Config.NextAllowed is nil:
// only the home page.
func allowedNextPath(path string) bool { return path == "/" }

// safeNext returns raw when it is a local path of an allowed route
// (query string kept byte for byte, fragment dropped) and "/" otherwise.
//
// It is deliberately an allow-list on top of a strict shape check, so that
// it does not depend on how a browser would resolve an odd reference:
//   - raw must be printable ASCII without spaces; no backslash before the query;
//   - it must start with exactly one "/" and parse as a path-only reference
//     (no scheme, host, user info or opaque part);
//   - once percent-decoded, the path must still start with exactly one "/",
//     hold printable ASCII only, no backslash and no "." or ".." segment;
//   - /auth/* is never a destination (login loops, logout, replayed callbacks);
//   - and finally allowed(decoded path) must say yes.
//
// The returned value starts with "/" followed by neither "/" nor "\", so a
// browser can only read it as a path on our own origin.
func safeNext(raw string, allowed func(string) bool) string {
	const home = "/"
	if raw == "" || len(raw) > maxNextLen || raw[0] != '/' || strings.HasPrefix(raw, "//") {
		return home
	}
	pathPart, _, _ := strings.Cut(raw, "?")
	if !printableASCII(raw) || strings.ContainsRune(pathPart, '\\') {
		return home
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || !printableASCII(p) || strings.ContainsRune(p, '\\') {
		return home
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return home
		}
	}
	if p == "/auth" || strings.HasPrefix(p, "/auth/") || !allowed(p) {
		return home
	}
	out := u.EscapedPath()
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// printableASCII reports whether s holds only visible ASCII (0x21–0x7e):
// no controls, spaces, DEL, NUL or any non-ASCII byte (which covers the
// Unicode separators and look-alikes).
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
