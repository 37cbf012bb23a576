package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
)

// The server's own limits (docs/security.md 5.3, case I56): what reaches the
// portal at all is bounded before any handler runs.
func TestServerLimits(t *testing.T) {
	w := newWorld(t)
	setup := newPortalSetup(t, w, "sqlite://"+filepath.Join(t.TempDir(), "audit.db"),
		"server:\n  read_header_timeout: 300ms\n  max_header_bytes: 8192\n")
	inProcess(t, setup)
	waitStatus(t, setup.publicURL+"/healthz", http.StatusOK, 5*time.Second)

	t.Run("oversized header gets 431", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, setup.publicURL+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("a", 64<<10))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("64 KB header: %s, want 431", resp.Status)
		}
	})

	t.Run("trickled headers are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", setup.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(conn) // the server closes the connection
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("connection still open after %s; read_header_timeout is 300ms", time.Since(start))
		}
		t.Logf("closed after %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("large body is refused", func(t *testing.T) {
		body := strings.NewReader(strings.Repeat("x", 10<<20))
		resp, err := http.Post(setup.publicURL+"/auth/logout", "application/x-www-form-urlencoded", body)
		if err != nil {
			t.Fatal(err) // the server may also close early; a 413 is what it should say
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("10 MB POST: %s, want 413", resp.Status)
		}
	})
}

// trusted_proxies reaches the audit trail: X-Forwarded-For is believed from
// a configured proxy and ignored from anyone else.
func TestTrustedProxiesDecideTheAuditedClientIP(t *testing.T) {
	for _, tt := range []struct {
		name, proxies, want string
	}{
		{"peer is a trusted proxy", "trusted_proxies: [127.0.0.0/8]\n", "203.0.113.9"},
		{"no trusted proxies", "", "127.0.0.1"},
		{"peer is not the trusted proxy", "trusted_proxies: [10.0.0.0/8]\n", "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			dbPath := filepath.Join(t.TempDir(), "audit.db")
			setup := newPortalSetup(t, w, "sqlite://"+dbPath, tt.proxies)
			p := inProcess(t, setup)
			waitStatus(t, setup.publicURL+"/readyz", http.StatusOK, 10*time.Second)
			b := newBrowser(t)
			b.client.Transport = forwardedFor{"203.0.113.9"}
			b.signIn(setup.publicURL, "viewer")
			entries, err := p.store.List(context.Background(), audit.Filter{Action: audit.AuthLogin})
			if err != nil || len(entries) != 1 {
				t.Fatalf("login entries: %v %v", entries, err)
			}
			if entries[0].ClientIP != tt.want {
				t.Errorf("audited client IP %q, want %q", entries[0].ClientIP, tt.want)
			}
		})
	}
}

// forwardedFor adds X-Forwarded-For to every request, as a proxy (or a
// spoofing client) would.
type forwardedFor struct{ ip string }

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	return http.DefaultTransport.RoundTrip(r)
}
