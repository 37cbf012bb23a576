package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// healthz says the process serves HTTP; it checks no dependency.
func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

// readyz says whether to send traffic here: the IdP has been discovered,
// the audit store takes writes, and the server is not draining. The hubs are
// deliberately not checked: a hub outage must not take the portal (and its
// audit trail and archived pages) out of rotation.
func (s *Server) readyz(c echo.Context) error {
	var problems []string
	if s.draining.Load() {
		problems = append(problems, "draining: shutting down")
	}
	if !s.deps.Auth.Ready() {
		problems = append(problems, "oidc: identity provider not discovered yet")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Audit.Ping(ctx); err != nil {
		problems = append(problems, "audit: store not writable")
	}
	if len(problems) > 0 {
		return c.String(http.StatusServiceUnavailable, "not ready\n"+strings.Join(problems, "\n")+"\n")
	}
	return c.String(http.StatusOK, "ready\n")
}
