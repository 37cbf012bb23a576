package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/handlers"
)

// handleError is echo's HTTPErrorHandler: every error becomes a page (or an
// htmx fragment) in plain words with the request id; handlers.Describe is
// the one status mapping. Stacks and causes go to the log only.
func (s *Server) handleError(err error, c echo.Context) {
	ctx := c.Request().Context()
	if c.Response().Committed {
		s.deps.Logger.WarnContext(ctx, "error after the response started", "err", err,
			"request_id", handlers.RequestID(ctx))
		return
	}
	p := handlers.Describe(err)
	if p.Status == http.StatusMethodNotAllowed {
		c.Response().Header().Set(echo.HeaderAllow, allowHeader(c))
	}
	msg := "request refused"
	if p.Status >= 500 {
		msg = "request failed"
	}
	s.deps.Logger.Log(ctx, p.LogLevel(), msg, "status", p.Status, "err", err,
		"path", c.Request().URL.Path, "request_id", handlers.RequestID(ctx))
	s.handlers.RenderProblem(c.Response(), c.Request(), p)
}

// allowHeader is the router's Allow list for this path, without OPTIONS
// (which the portal refuses).
func allowHeader(c echo.Context) string {
	allow, _ := c.Get(echo.ContextKeyHeaderAllow).(string)
	var out []string
	for _, m := range strings.Split(allow, ",") {
		if m = strings.TrimSpace(m); m != "" && m != http.MethodOptions {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

// RenderError writes the portal's plain-words error page; auth uses it for
// its own refusals (sign-in problems, CSRF, missing roles).
func RenderError(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	handlers.RenderProblem(w, r, handlers.Frame{Assets: pageAssets}, &handlers.Problem{Status: status, Title: title, Detail: detail})
}

// RenderRetry writes the error page of a sign-in that expired or failed,
// whose "Sign in" button starts again and returns to the page the user
// wanted (retryURL is auth's login URL with that page as next).
func RenderRetry(w http.ResponseWriter, r *http.Request, status int, title, detail, retryURL string) {
	handlers.RenderProblem(w, r, handlers.Frame{Assets: pageAssets}, &handlers.Problem{Status: status, Title: title, Detail: detail, SignIn: retryURL})
}
