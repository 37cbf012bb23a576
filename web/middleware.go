package web

import (
	"compress/gzip"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/klauspost/compress/gzhttp"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/internal/promreg"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/static"
)

// maxBodyBytes bounds request bodies (a cancel form is a few hundred bytes);
// larger ones get 413.
const maxBodyBytes = "64K"

// HeaderRequestID carries the request id on every response.
const HeaderRequestID = "X-Request-Id"

func (s *Server) middleware(m *httpMetrics) error {
	compress, err := compressResponses()
	if err != nil {
		return err
	}
	s.echo.Pre(s.requestContext)
	s.echo.Use(
		compress, // outermost: error pages and panics' 500s are compressed too
		s.observe(m),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.deps.Logger.ErrorContext(c.Request().Context(), "panic serving request",
					"err", err, "stack", string(stack), "request_id", handlers.RequestID(c.Request().Context()))
				return fmt.Errorf("panic: %w", err)
			},
		}),
		middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: maxBodyBytes,
			Skipper: func(c echo.Context) bool { return c.Request().Method == http.MethodPost && largeFormRoutes[c.Path()] }}),
		refuseOptions,
	)
	return nil
}

// compressMinBytes is the smallest body worth compressing: below about a
// kilobyte gzip's framing eats most of the gain (an htmx 286 "stop
// polling" answer, a redirect, a short error fragment go out as they are).
const compressMinBytes = 1024

// compressResponses gzips pages, htmx fragments, error pages and CSV
// exports for browsers that accept it (klauspost/compress's gzhttp: it
// honours q-values such as "gzip;q=0", adds Vary: Accept-Encoding, leaves a
// body that already has a Content-Encoding alone, and passes flushes
// through, so the CSV export still streams page by page).
//
// Not compressed: the static assets (served pre-gzipped) and /metrics
// (Prometheus' handler negotiates its own gzip), so nothing is compressed
// twice; the probes and the favicon redirect (too small to matter); and any
// request another site started (Sec-Fetch-Site cross-site or same-site). The
// last one is the BREACH defence: a page holds a secret (the CSRF token, the
// user's job data) next to text the request chose (a search, a page token),
// and BREACH needs the victim's browser to send many such requests from the
// attacker's page while the attacker measures the compressed sizes. Those
// requests are exactly the cross-site ones, and they are served plain
// (SameSite=Lax already keeps the session cookie off cross-site
// subresource requests, for browsers too old to send Sec-Fetch-Site).
// Only gzip is offered (no zstd), one encoding to reason about and test.
func compressResponses() (echo.MiddlewareFunc, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.MinSize(compressMinBytes), gzhttp.CompressionLevel(gzip.BestSpeed), gzhttp.EnableZstd(false))
	if err != nil {
		return nil, fmt.Errorf("web: gzip: %w", err)
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !worthCompressing(c.Request()) {
				return next(c)
			}
			res := c.Response()
			var err error
			wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				plain := res.Writer
				res.Writer = w // echo's Response keeps its status, size and committed state
				defer func() { res.Writer = plain }()
				c.SetRequest(r)
				err = next(c) // observe, inside, has already rendered any error
			})).ServeHTTP(res.Writer, c.Request())
			return err
		}
	}, nil
}

// worthCompressing says whether r's answer may be compressed (see
// compressResponses for why each exception exists).
func worthCompressing(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	p := r.URL.Path
	return !strings.HasPrefix(p, static.Prefix) && p != "/metrics" && p != "/healthz" && p != "/readyz" && p != faviconPath
}

// requestContext runs before routing: it gives the request its id and CSP
// nonce and sets the security headers every response carries (errors,
// 404s and assets included).
func (s *Server) requestContext(next echo.HandlerFunc) echo.HandlerFunc {
	// The policy is fixed but for the nonce: build the rest once.
	formAction := "'self'"
	if s.deps.IdPOrigin != "" {
		formAction += " " + s.deps.IdPOrigin
	}
	cspBeforeNonce := "default-src 'self'; script-src 'self' 'nonce-"
	cspAfterNonce := "'; style-src 'self'; img-src 'self' data:; " +
		"object-src 'none'; base-uri 'none'; form-action " + formAction + "; frame-ancestors 'none'"
	return func(c echo.Context) error {
		id, nonce := randomHex(8), randomNonce()
		r := c.Request()
		ctx := templ.WithNonce(handlers.WithRequestID(r.Context(), id), nonce)
		c.SetRequest(r.WithContext(ctx))
		h := c.Response().Header()
		h.Set(HeaderRequestID, id)
		h.Set("Content-Security-Policy", cspBeforeNonce+nonce+cspAfterNonce)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-XSS-Protection", "0")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		h.Add("Vary", "HX-Request")
		if s.https {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		if !strings.HasPrefix(r.URL.Path, static.Prefix) {
			// Pages carry one user's job data and a CSRF token: never cached,
			// and the back button after sign-out shows nothing.
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// referrerPolicy overrides the Referrer-Policy of one route.
func referrerPolicy(p string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Response().Header().Set("Referrer-Policy", p)
			return next(c)
		}
	}
}

// refuseOptions answers OPTIONS with 405 (echo would answer 204 with Allow):
// the portal serves no cross-origin clients, so there is nothing to
// preflight. TRACE and friends are 405 from the router already.
func refuseOptions(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodOptions {
			return echo.ErrMethodNotAllowed
		}
		return next(c)
	}
}

// httpMetrics are request counts and latencies by route template.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hubjobs_http_requests_total",
			Help: "HTTP requests served, by route template, method and status code."}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hubjobs_http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"route", "method"}),
	}
	var errs [2]error
	m.requests, errs[0] = promreg.RegisterOrReuse(reg, m.requests)
	m.duration, errs[1] = promreg.RegisterOrReuse(reg, m.duration)
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("web: register metrics: %w", err)
	}
	return m, nil
}

// observe records metrics and the access log. It runs the error handler
// itself so that the logged status is the one the client got.
func (s *Server) observe(m *httpMetrics) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err)
			}
			elapsed := time.Since(start)
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			r, status := c.Request(), c.Response().Status
			method := methodLabel(r.Method)
			m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
			m.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
			level := slog.LevelInfo
			if route == "/healthz" || route == "/readyz" || route == "/metrics" || route == faviconPath || strings.HasPrefix(route, static.Prefix) {
				level = slog.LevelDebug
			}
			if !s.deps.Logger.Enabled(r.Context(), level) {
				return nil // spare building the line's eleven attributes
			}
			s.deps.Logger.Log(r.Context(), level, "http request",
				"method", r.Method, "path", r.URL.Path, "route", route, "status", status,
				"bytes", c.Response().Size, "duration_ms", float64(elapsed.Microseconds())/1000,
				"client_ip", c.RealIP(), "request_id", handlers.RequestID(r.Context()),
				"htmx", r.Header.Get("HX-Request") == "true")
			return nil
		}
	}
}

// methodLabel keeps the method label to a closed set: the method is chosen
// by the client, and every new label value is a new set of series that
// anyone could mint until the process runs out of memory.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect:
		return m
	}
	return "other"
}

// IPExtractor is where a client's IP comes from: the connection itself, or
// — only when the connection comes from one of the trusted proxies — the
// nearest untrusted X-Forwarded-For hop. Nobody else can set it.
func IPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

func isHTTPS(publicURL string) bool {
	u, err := url.Parse(publicURL)
	return err == nil && u.Scheme == "https"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomNonce() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawStdEncoding.EncodeToString(b)
}

// hubCaller names the signed-in user as the caller of the request's hub
// calls (hub.WithCaller), so each person spends their own allowance of a
// hub's budget: someone reading fast, or probing unknown job ids, slows
// only themselves, never a colleague's page or cancel. It runs after the
// session middleware, which puts the user in the context; requests
// without a user stay in the shared anonymous allowance. Issuer and
// subject together name a person (a subject is unique per issuer only).
func hubCaller(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if u, ok := auth.UserFrom(r.Context()); ok {
			c.SetRequest(r.WithContext(hub.WithCaller(r.Context(), u.Issuer+"\x00"+u.Subject)))
		}
		return next(c)
	}
}
