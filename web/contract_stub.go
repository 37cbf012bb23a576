package web

// CONTRACT STUB — owned by the portal helper (web/, handlers/, views/,
// static/), who replaces this file. cmd/hubjobs wires through these names.

import (
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
)

// Hub is one configured hub.
type Hub struct {
	Name             string // URL segment, [a-z0-9-]{1,32}
	Client           *hub.Client
	Operators        []string // optional: roles-claim values allowed to cancel here
	JobsOpsPerMinute int      // client-side budget under the hub's throttle
}

// Deps is everything the portal needs, built by cmd/hubjobs.
type Deps struct {
	Hubs           []Hub
	Auth           *auth.Authenticator
	Audit          *audit.Store
	Logger         *slog.Logger
	Registry       *prometheus.Registry
	TrustedProxies []netip.Prefix
	PublicURL      string
	Version        string
	Now            func() time.Time
}

// Server is the assembled portal.
type Server struct{}

func New(d Deps) (*Server, error)       { panic("stub") }
func (s *Server) Handler() http.Handler { panic("stub") }
func (s *Server) SetDraining()          { panic("stub") } // /readyz turns 503 on SIGTERM

// RenderError writes the portal's plain-words error page; auth uses it.
func RenderError(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	panic("stub")
}

// NextAllowed reports whether a ?next= path is one of the portal's bookmarkable GET routes.
func NextAllowed(path string) bool { panic("stub") }
