package handlers

import (
	"context"
	"net/http"
	"strings"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/views"
)

type requestIDKey struct{}

// WithRequestID stores the request id web's middleware assigned.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID is the id of the current request ("" outside one).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// IsHTMX reports whether r was sent by htmx (and is not a history restore,
// which needs a full page).
func IsHTMX(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-History-Restore-Request") != "true"
}

// Frame is what every full page shares beyond the request: the build
// version, the hub switcher and the asset URLs. web passes static's
// cache-busted URLs in, so handlers need not import static.
type Frame struct {
	Version string
	Hubs    []string
	Assets  views.Assets
}

// layout is the frame of a full page for the signed-in user (if any).
func layout(r *http.Request, f Frame, title, section, currentHub string) views.Layout {
	l := views.Layout{Title: title, Section: section, CurrentHub: currentHub, Assets: f.Assets, Version: f.Version}
	if u, ok := auth.UserFrom(r.Context()); ok && u != nil {
		roles := make([]string, len(u.Roles))
		for i, role := range u.Roles {
			roles[i] = string(role)
		}
		l.User = &views.User{Name: displayName(u), Roles: roles, CanAudit: u.Can(auth.RoleAuditor), IsAdmin: u.Can(auth.RoleAdmin)}
		l.CSRFToken = auth.CSRFToken(r.Context())
		if u.Can(auth.RoleViewer) {
			l.Hubs = f.Hubs
		}
	}
	return l
}

func (h *Handlers) layout(c echo.Context, title, section, currentHub string) views.Layout {
	return layout(c.Request(), h.frame(), title, section, currentHub)
}

func (h *Handlers) frame() Frame {
	return Frame{Version: h.version, Hubs: h.hubNames(), Assets: h.assets}
}

func displayName(u *auth.User) string {
	switch {
	case u.Name != "":
		return u.Name
	case u.Email != "":
		return u.Email
	}
	return u.Subject
}

// render writes a component, buffered so that a render error can still
// become a clean error page.
func render(c echo.Context, status int, comp templ.Component) error {
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := comp.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page renders full for a normal request and fragment for htmx.
func page(c echo.Context, status int, full, fragment templ.Component) error {
	if IsHTMX(c.Request()) {
		return render(c, status, fragment)
	}
	return render(c, status, full)
}

// RenderProblem writes p as a full error page, or as the alert fragment for
// htmx, with the request id. It is net/http so that web's error handler and
// auth's error renderer share it.
func RenderProblem(w http.ResponseWriter, r *http.Request, f Frame, p *Problem) {
	e := views.ErrorPage{Status: p.Status, Title: p.Title, Detail: p.Detail, HubCode: p.HubCode,
		TrackID: p.TrackingID, RequestID: RequestID(r.Context()), SignIn: p.SignIn}
	if again := r.URL.RequestURI(); r.Method == http.MethodGet && retryable(p.Status) && localPath(again) {
		e.Again = again
	}
	if p.RetryAfter > 0 {
		secs := int(p.RetryAfter.Seconds() + 0.999)
		w.Header().Set("Retry-After", itoa(secs))
		e.Retry = "in about " + views.Duration(p.RetryAfter)
	}
	var comp templ.Component
	if IsHTMX(r) {
		comp = views.ErrorFragment(e)
	} else {
		comp = views.ErrorFullPage(layout(r, f, p.Title, "", ""), e)
	}
	buf := templ.GetBuffer()
	defer templ.ReleaseBuffer(buf)
	if err := comp.Render(r.Context(), buf); err != nil {
		http.Error(w, p.Title, p.Status)
		return
	}
	status := p.Status
	if status == 499 {
		status = http.StatusBadRequest // not a real status; nobody is listening anyway
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// retryable statuses are the ones where the same request may work a moment
// later (the hub busy, unreachable or slow), so the page offers "Try again".
func retryable(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// localPath: a same-origin path ("/x"), never "//host" or "/\\host", which
// browsers read as another site.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\")
}

// RenderProblem is the handler-bound form (the hub switcher included).
func (h *Handlers) RenderProblem(w http.ResponseWriter, r *http.Request, p *Problem) {
	RenderProblem(w, r, h.frame(), p)
}
