package web

import (
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/static"
)

// routes is the portal's whole URL surface (docs/contract.md "Routes"). Each line
// names the handler; handlers/ has one file per area.
func (s *Server) routes() {
	e, h, a := s.echo, s.handlers, s.deps.Auth

	// No session, no user: probes, metrics, assets.
	e.GET("/healthz", s.healthz)
	e.HEAD("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.HEAD("/readyz", s.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	e.GET(static.Prefix+"*", serveStatic)
	e.HEAD(static.Prefix+"*", serveStatic)
	e.Match([]string{http.MethodGet, http.MethodHead}, faviconPath, redirectFavicon)

	// session also names the signed-in user as the caller of the request's
	// hub calls (hubCaller), so that every route with a user spends that
	// user's own allowance of the hub budget.
	withSession := echo.WrapMiddleware(a.Session)
	session := func(next echo.HandlerFunc) echo.HandlerFunc { return withSession(hubCaller(next)) }
	user := echo.WrapMiddleware(a.RequireUser)
	csrf := echo.WrapMiddleware(a.CheckCSRF)
	role := func(r auth.Role) echo.MiddlewareFunc {
		return echo.WrapMiddleware(func(next http.Handler) http.Handler { return a.RequireRole(r, next) })
	}

	// Sign-in (auth serves these; the callback must not be CSRF-checked).
	e.GET(auth.LoginPath, echo.WrapHandler(a.Login()), session)
	e.GET(auth.CallbackPath, echo.WrapHandler(a.Callback()), session, referrerPolicy("no-referrer"))
	e.POST(auth.LogoutPath, echo.WrapHandler(a.Logout()), session) // CSRF-checked inside for signed-in users

	// Pages. Reading jobs needs the viewer role (operator and admin imply it).
	// Bookmarkable pages answer HEAD too (RFC 9110 §9.1: link checkers and
	// chat previews send it); fragments and exports are GET only.
	viewer := []echo.MiddlewareFunc{session, role(auth.RoleViewer)}
	page := func(path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		e.Match([]string{http.MethodGet, http.MethodHead}, path, h, m...)
	}
	page("/", h.Index, session, user)
	page("/hubs", h.Hubs, viewer...)
	page("/hubs/:hub/jobs", h.Jobs, viewer...)
	page("/hubs/:hub/jobs/:id", h.Job, viewer...)
	e.GET("/hubs/:hub/jobs/:id/status", h.JobStatus, viewer...)
	page("/hubs/:hub/jobs/:id/devices", h.Devices, viewer...)
	e.GET("/hubs/:hub/jobs/:id/devices.csv", h.DevicesCSV, viewer...)
	// Cancel: role (and hub operators) → CSRF → h.Cancel, which validates
	// and hands the audited cancel to jobs.Service.Cancel.
	e.POST("/hubs/:hub/jobs/:id/cancel", h.Cancel, session, user, h.CancelAuthorize, csrf)
	// Rollouts: reading needs the viewer role. Creating: author on the hub
	// (AuthorAuthorize, which records refusals) → CSRF → handler, which
	// validates before anything reaches the engine. The form's POSTs take
	// bodies up to largeFormLimit (a 128 KB method payload, encoded).
	page("/hubs/:hub/rollouts", h.Rollouts, viewer...)
	page("/hubs/:hub/rollouts/new", h.NewRollout, session, user, h.AuthorAuthorize)
	large := middleware.BodyLimit(largeFormLimit)
	e.POST("/hubs/:hub/rollouts/plan", h.PlanRollout, large, session, user, h.AuthorAuthorize, csrf)
	e.POST("/hubs/:hub/rollouts", h.CreateRollout, large, session, user, h.AuthorAuthorize, csrf)
	page("/hubs/:hub/rollouts/:rid", h.Rollout, viewer...)
	e.GET("/hubs/:hub/rollouts/:rid/status", h.RolloutStatus, viewer...)
	e.POST("/hubs/:hub/rollouts/:rid/halt", h.HaltRollout, session, user, h.HaltAuthorize, csrf)
	e.POST("/hubs/:hub/rollouts/:rid/approve", h.ApproveRollout, session, user, h.ApproveAuthorize, csrf)
	page("/audit", h.Audit, session, role(auth.RoleAuditor))
	e.GET("/audit.csv", h.AuditCSV, session, role(auth.RoleAuditor))
	if s.deps.Outbox != nil {
		n := h.Notifications(s.deps.Outbox)
		page("/notifications", n.List, session, role(auth.RoleAdmin))
		e.POST("/notifications/test", n.SendTest, session, role(auth.RoleAdmin), csrf)
	}
}

// nextRoutes are the bookmarkable GET routes a ?next= may return to, as
// decoded paths. Query strings ride along (auth keeps them byte for byte).
var nextRoutes = regexp.MustCompile(`^/(hubs(/[a-z0-9-]{1,32}/(jobs(/[A-Za-z0-9_-]{1,128}(/devices)?)?|rollouts(/new|/[a-z0-9]{1,16})?))?|audit|notifications)?$`)

// largeFormLimit bounds the "New job" form's POSTs (plan and create): a
// 128 KB method payload and 40 KB of twin patch, percent-encoded. Every
// other request keeps maxBodyBytes.
const largeFormLimit = "640K"

// largeFormRoutes are the route templates that take largeFormLimit; the
// global body limit skips them and their own route limit applies.
var largeFormRoutes = map[string]bool{"/hubs/:hub/rollouts/plan": true, "/hubs/:hub/rollouts": true}

// NextAllowed reports whether a ?next= path is one of the portal's
// bookmarkable GET routes.
func NextAllowed(path string) bool { return nextRoutes.MatchString(path) }

// faviconPath is where browsers look for an icon whatever the page links.
const faviconPath = "/favicon.ico"

// redirectFavicon sends /favicon.ico to the SVG icon the layout links, by
// its plain name: that URL never changes, so the permanent redirect may be
// cached for a day without pointing at a retired content hash.
func redirectFavicon(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=86400")
	return c.Redirect(http.StatusMovedPermanently, static.Prefix+"favicon.svg")
}

// serveStatic serves embedded assets; any other path under /static/ (a
// traversal attempt, an old hash) is the portal's 404 page.
func serveStatic(c echo.Context) error {
	if !static.Has(c.Request()) {
		return echo.ErrNotFound
	}
	static.Handler().ServeHTTP(c.Response(), c.Request())
	return nil
}
