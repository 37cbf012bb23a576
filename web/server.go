// Package web assembles the portal: an echo v4 server with every URL in
// routes.go, the middleware in middleware.go, and the single mapping of
// errors to status codes and pages in errors.go (through handlers.Describe).
// Echo types stay in web/ and handlers/.
package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/notify"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/static"
	"github.com/hubjobs/hubjobs/views"
)

// pageAssets are the cache-busted URLs of the stylesheet, scripts and icon
// every full page links; routes.go serves them from static.
var pageAssets = views.Assets{CSS: static.URL("app.css"), HTMX: static.URL("htmx.min.js"), JS: static.URL("app.js"), Icon: static.URL("favicon.svg")}

// Hub is one configured hub.
type Hub struct {
	Name             string // URL segment satisfying hub.ValidHubName (package config checked it)
	Client           *hub.Client
	Operators        []string // optional: roles-claim values allowed to cancel here
	Authors          []string // optional: roles-claim values allowed to create jobs here
	MaxActiveJobs    int      // the hub's concurrent-job limit (config max_active_jobs)
	JobsOpsPerMinute int      // client-side budget under the hub's throttle
	QueriesPerMinute int      // client-side budget for /devices/query (the plan page counts devices)
	// Budget is the hub's traffic budget; nil makes one from Client,
	// JobsOpsPerMinute, QueriesPerMinute, Deps.BudgetTTL and Deps.Now. Set it to share one
	// budget with other users of the hub (the demo) or to test.
	Budget *hub.Budgeted
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
	// BudgetTTL is how long a hub answer is reused (0: hub.DefaultBudgetTTL).
	BudgetTTL time.Duration
	// Rollouts is the rollout engine and its settings; a zero value serves
	// the rollout routes as unavailable.
	Rollouts handlers.RolloutsConfig
	// IdPOrigin is added to the CSP form-action so that sign-out can
	// redirect to the IdP's end-session endpoint ("" = none needed).
	IdPOrigin string
	// Outbox queues webhook deliveries in the audit database: job events
	// go through it and /notifications shows it. Nil: no notifications
	// (and no /notifications page).
	Outbox *notify.Outbox
}

// Server is the assembled portal.
type Server struct {
	echo     *echo.Echo
	handlers *handlers.Handlers
	jobs     *jobs.Service
	deps     Deps
	draining atomic.Bool
	https    bool
}

// New assembles the portal. It fails on a configuration the portal cannot
// serve safely: no auth, no audit store, a hub without a client, or two hubs
// of one name (the second would silently take over the first's URLs and
// operator narrowing). Hub names themselves are package config's to check.
func New(d Deps) (*Server, error) {
	var errs []error
	if d.Auth == nil {
		errs = append(errs, errors.New("web: Deps.Auth is required"))
	}
	if d.Audit == nil {
		errs = append(errs, errors.New("web: Deps.Audit is required"))
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	seen := map[string]bool{}
	hubs := make([]handlers.Hub, 0, len(d.Hubs))
	budgets := make(map[string]jobs.HubJobs, len(d.Hubs))
	for _, h := range d.Hubs {
		switch {
		case seen[h.Name]:
			errs = append(errs, fmt.Errorf("web: hub %q is configured twice", h.Name))
			continue
		case h.Client == nil && h.Budget == nil:
			errs = append(errs, fmt.Errorf("web: hub %q has no client", h.Name))
			continue
		}
		seen[h.Name] = true
		b := h.Budget
		if b == nil {
			b = hub.NewBudgeted(h.Client, hub.BudgetConfig{TTL: d.BudgetTTL, JobsOpsPerMinute: h.JobsOpsPerMinute, QueriesPerMinute: h.QueriesPerMinute, Now: d.Now})
		}
		hubs = append(hubs, handlers.Hub{Name: h.Name, Host: b.Client().Host(), Jobs: b, Operators: h.Operators,
			Authors: h.Authors, MaxActiveJobs: h.MaxActiveJobs, JobsOpsPerMinute: h.JobsOpsPerMinute})
		budgets[h.Name] = b
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Server{deps: d, https: isHTTPS(d.PublicURL)}
	jc := jobs.Config{Hubs: budgets, Audit: d.Audit, Logger: d.Logger, Now: d.Now, Registerer: d.Registry}
	if d.Outbox != nil {
		jc.Announce = jobAnnouncer{d.Outbox}
	}
	s.jobs = jobs.New(jc)
	s.handlers = handlers.New(handlers.Config{Hubs: hubs, Jobs: s.jobs, Audit: d.Audit, Rollouts: d.Rollouts, Logger: d.Logger, Now: d.Now, Version: d.Version, Assets: pageAssets})
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = IPExtractor(d.TrustedProxies)
	e.HTTPErrorHandler = s.handleError
	metrics, err := newHTTPMetrics(d.Registry)
	if err != nil {
		return nil, err
	}
	s.echo = e
	if err := s.middleware(metrics); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// jobAnnouncer queues jobs' events in the outbox: jobs states the facts,
// notify knows how they travel, and neither imports the other.
type jobAnnouncer struct{ outbox *notify.Outbox }

func (a jobAnnouncer) AnnounceWith(ctx context.Context, tx *sql.Tx, ev jobs.Event) error {
	return a.outbox.Enqueue(ctx, tx, notifyEvent(ev))
}

func (a jobAnnouncer) Announce(ctx context.Context, ev jobs.Event) error {
	return a.outbox.Publish(ctx, notifyEvent(ev))
}

// notifyEvent is ev as the outbox carries it. An event about a rollout's
// hub job names its rollout, read from the job's id, so that its
// notification is ordered with the rest of that rollout's, not on its own.
func notifyEvent(ev jobs.Event) notify.Event {
	rid, _ := rollout.RolloutOf(ev.Job)
	return notify.Event{ID: ev.ID, Event: notify.EventType(ev.Kind), Hub: ev.Hub, Rollout: rid, Job: ev.Job,
		Summary: ev.Summary, Details: ev.Details}
}

// Jobs is the portal's jobs service: cmd runs its reconciliation of
// pending intents (Jobs().Run) beside the server.
func (s *Server) Jobs() *jobs.Service { return s.jobs }

// Handler is the portal as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// SetDraining makes /readyz answer 503 so a load balancer stops sending new
// requests while in-flight ones (an audited cancel) finish.
func (s *Server) SetDraining() { s.draining.Store(true) }
