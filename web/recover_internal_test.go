package web

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

// docs/security.md case 56: a panicking handler is a generic 500 page with the
// request id — no panic value, no stack — and the stack goes to the log.
// The route is added here because no real handler can be made to panic.
func TestPanicIsAGeneric500WithTheRequestID(t *testing.T) {
	logs := &testkit.Buffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	store, err := audit.Open(t.Context(), "sqlite://"+t.TempDir()+"/audit.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a, err := auth.New(t.Context(), auth.Config{
		Issuer: "http://127.0.0.1:1/never-discovered", ClientID: "c", ClientSecret: "s",
		PublicURL: "https://jobs.example.com", SessionKeys: [][]byte{bytes.Repeat([]byte("k"), 32)},
		Revocations: auth.NewMemoryRevocations(time.Now), Events: NewEventSink(store, nil), RenderError: RenderError,
		RoleMap: map[auth.Role][]string{auth.RoleViewer: {"Jobs.Read"}}, Logger: logger, DiscoveryRetry: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Deps{Auth: a, Audit: store, Logger: logger, PublicURL: "https://jobs.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	s.echo.GET("/test-panic", func(echo.Context) error { panic("secret-panic-value") })

	for _, hx := range []bool{false, true} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/test-panic", nil)
		if hx {
			req.Header.Set("HX-Request", "true")
		}
		s.Handler().ServeHTTP(rec, req)
		body, id := rec.Body.String(), rec.Header().Get(HeaderRequestID)
		if rec.Code != http.StatusInternalServerError || id == "" || !strings.Contains(body, id) {
			t.Fatalf("htmx %v: status %d, request id %q in body: %v", hx, rec.Code, id, strings.Contains(body, id))
		}
		for _, leak := range []string{"secret-panic-value", "goroutine", ".go:"} {
			if strings.Contains(body, leak) {
				t.Errorf("htmx %v: the page shows %q", hx, leak)
			}
		}
		if rec.Header().Get("Content-Security-Policy") == "" || rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("htmx %v: the 500 lacks the security headers", hx)
		}
		if !strings.Contains(logs.String(), "request_id="+id) {
			t.Errorf("htmx %v: the panic is not logged with its request id", hx)
		}
	}
	if l := logs.String(); !strings.Contains(l, "panic serving request") || !strings.Contains(l, "secret-panic-value") || !strings.Contains(l, "goroutine") {
		t.Errorf("the log lacks the panic and its stack:\n%s", l)
	}
}
