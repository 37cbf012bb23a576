package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/config"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/notify"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/web"
)

// portal is the assembled application: what serve and demo share.
type portal struct {
	cfg     *config.Config
	logger  *slog.Logger
	store   *audit.Store
	web     *web.Server
	outbox  *notify.Outbox
	engine  *rollout.Engine // nil unless rollouts.enabled
	handler http.Handler
	stop    context.CancelFunc // ends background work (reconciliation, webhook deliveries)
	wg      sync.WaitGroup
}

// portalOptions are the few things the demo and tests change.
type portalOptions struct {
	// OIDCClient is used for discovery, JWKS and the token call (the demo
	// IdP's own client); nil is auth's default.
	OIDCClient *http.Client
	// Registry collects the metrics; nil makes a fresh one.
	Registry *prometheus.Registry
	// PlanSecret is rollout.EngineConfig.PlanSecret: nil in serve (a
	// random secret per rollout); the demo keys its seeded rollouts by
	// their ids alone.
	PlanSecret func() string
}

// newPortal wires every component from cfg. It is the only constructor of
// audit, hub, auth and web objects in the program.
func newPortal(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts portalOptions) (*portal, error) {
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := registerProcessMetrics(reg); err != nil {
		return nil, err
	}
	hub.Version = version

	store, err := audit.Open(ctx, cfg.Audit.Database, audit.WithLogger(logger), audit.WithRegisterer(reg))
	if errors.Is(err, audit.ErrInvalid) {
		return nil, &usageError{fmt.Sprintf("config: %v", err)} // e.g. the SQLite directory does not exist
	}
	if err != nil {
		return nil, fmt.Errorf("audit store: %w", err)
	}
	p := &portal{cfg: cfg, logger: logger, store: store}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()

	// The outbox lives beside the audit trail, so that an audited change
	// and the notification of it commit in one transaction.
	p.outbox, err = notify.Open(ctx, store.DB(), notify.Dialect(store.Dialect()),
		notify.Config{PublicURL: cfg.PublicURL, Webhooks: notifyWebhooks(cfg.Notify.Webhooks)})
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	// One sender per process; its lease owner (host, pid, random) tells
	// replicas apart, so each delivery is sent by one of them at a time.
	sender, err := notify.NewSender(p.outbox, notify.SenderConfig{Logger: logger, Registerer: reg})
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}

	clients, err := newHubClients(cfg.Hubs, hub.NewMetrics(reg))
	if err != nil {
		return nil, err
	}
	authn, err := auth.New(ctx, auth.Config{
		Issuer:          cfg.OIDC.Issuer,
		ClientID:        cfg.OIDC.ClientID,
		ClientSecret:    cfg.OIDC.ClientSecret,
		Scopes:          cfg.OIDC.Scopes,
		PublicURL:       cfg.PublicURL,
		RolesClaim:      cfg.OIDC.RolesClaim,
		RoleMap:         cfg.OIDC.Roles,
		SessionKeys:     cfg.Session.Keys,
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		NextAllowed:     web.NextAllowed,
		RenderError:     web.RenderError,
		RenderRetry:     web.RenderRetry,
		Revocations:     store,
		Events:          web.NewEventSink(store, cfg.TrustedProxies),
		HTTPClient:      opts.OIDCClient,
		Logger:          logger,
		Registerer:      reg,
	})
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	budgets := newBudgets(cfg, clients)
	hubs := make([]web.Hub, len(cfg.Hubs))
	for i, h := range cfg.Hubs {
		hubs[i] = web.Hub{Name: h.Name, Client: clients[h.Name], Operators: h.Operators, Authors: h.Authors, MaxActiveJobs: h.MaxActiveJobs,
			JobsOpsPerMinute: h.JobsOpsPerMinute, QueriesPerMinute: h.QueriesPerMinute, Budget: budgets[h.Name]}
	}
	// The engine goes through the jobs service that web.New builds (with
	// the outbox's job events); the pages need the engine first, so it is
	// handed the service once web has made it.
	late := &lateJobs{}
	rollouts := handlers.RolloutsConfig{PollInterval: cfg.Rollouts.PollInterval, ApprovalOverDevices: cfg.Rollouts.ApprovalOverDevices}
	if cfg.Rollouts.Enabled {
		if p.engine, err = newEngine(ctx, cfg, store, p.outbox, late, budgets, opts.PlanSecret, logger, reg); err != nil {
			return nil, err
		}
		rollouts.Engine = p.engine
	}
	p.web, err = web.New(web.Deps{
		Hubs:           hubs,
		Auth:           authn,
		Audit:          store,
		Logger:         logger,
		Registry:       reg,
		TrustedProxies: cfg.TrustedProxies,
		PublicURL:      cfg.PublicURL,
		Version:        version,
		IdPOrigin:      originOf(cfg.OIDC.Issuer),
		Outbox:         p.outbox,
		Rollouts:       rollouts,
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	late.svc = p.web.Jobs()
	p.handler = p.web.Handler()

	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = stop
	p.wg.Go(func() { p.web.Jobs().Run(bg) }) // settles cancel intents a crash left pending
	p.wg.Go(func() { sender.Run(bg) })       // delivers the outbox; stops after its POSTs in flight
	if p.engine != nil {
		p.wg.Go(func() { p.engine.Run(bg) }) // drives rollouts while this replica holds the lease
	}
	ok = true
	return p, nil
}

// newBudgets builds each hub's traffic budget, shared by the pages, the
// jobs service and the rollout engine. The engine's calls carry its own
// name, whose share (rollouts.max_share_of_budget) caps all it spends.
func newBudgets(cfg *config.Config, clients map[string]*hub.Client) map[string]*hub.Budgeted {
	budgets := make(map[string]*hub.Budgeted, len(cfg.Hubs))
	for _, h := range cfg.Hubs {
		bc := hub.BudgetConfig{JobsOpsPerMinute: h.JobsOpsPerMinute, QueriesPerMinute: h.QueriesPerMinute}
		if cfg.Rollouts.Enabled {
			bc.CallerShares = map[string]float64{rollout.EngineCaller: cfg.Rollouts.MaxShareOfBudget}
		}
		budgets[h.Name] = hub.NewBudgeted(clients[h.Name], bc)
	}
	return budgets
}

// newEngine builds the rollout engine over the audit database. With SQLite
// the portal is one process, so its lease owner is fixed and a restart
// takes over at once; PostgreSQL replicas each get their own owner, and
// one takes over from a dead one when its lease runs out.
func newEngine(ctx context.Context, cfg *config.Config, store *audit.Store, outbox *notify.Outbox, svc rollout.JobsService,
	budgets map[string]*hub.Budgeted, planSecret func() string, logger *slog.Logger, reg prometheus.Registerer) (*rollout.Engine, error) {
	rstore, err := rollout.OpenStore(ctx, store.DB(), store.Dialect())
	if err != nil {
		return nil, err
	}
	readers := make(map[string]rollout.HubReader, len(budgets))
	limits := make(map[string]int, len(cfg.Hubs))
	for _, h := range cfg.Hubs {
		readers[h.Name], limits[h.Name] = budgets[h.Name], h.MaxActiveJobs
	}
	owner := "sqlite"
	if store.Dialect() != "sqlite" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano())
	}
	engine, err := rollout.NewEngine(rollout.EngineConfig{
		Store: rstore, Trail: store, Jobs: svc, Hubs: readers, Outbox: outbox,
		PollInterval: cfg.Rollouts.PollInterval, ApprovalOverDevices: cfg.Rollouts.ApprovalOverDevices,
		MaxActiveJobs: limits, Owner: owner, PlanSecret: planSecret, Logger: logger.With("component", "rollouts"), Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("rollouts: %w", err)
	}
	return engine, nil
}

// lateJobs is the portal's jobs service for the engine, set once web.New
// has built it (before anything runs).
type lateJobs struct{ svc *jobs.Service }

func (l *lateJobs) Create(ctx context.Context, o jobs.Origin, hubName string, req hub.JobRequest, reason string) (jobs.CreateOutcome, error) {
	return l.svc.Create(ctx, o, hubName, req, reason)
}

func (l *lateJobs) Cancel(ctx context.Context, o jobs.Origin, r jobs.CancelRequest) (jobs.Outcome, error) {
	return l.svc.Cancel(ctx, o, r)
}

func (l *lateJobs) Remember(ctx context.Context, hubName string, j *hub.Job, seen time.Time) {
	l.svc.Remember(ctx, hubName, j, seen)
}

// Close stops background work and closes the audit store last, after the
// HTTP server has finished every request that could still append.
func (p *portal) Close() {
	if p.stop != nil {
		p.stop()
	}
	p.wg.Wait()
	if err := p.store.Close(); err != nil {
		p.logger.Warn("closing the audit store", "err", err)
	}
}

// notifyWebhooks hands the validated webhooks to notify, which keeps the
// URL and secret to itself (it prints a webhook as its name).
func notifyWebhooks(hooks []config.Webhook) []notify.Webhook {
	out := make([]notify.Webhook, len(hooks))
	for i, w := range hooks {
		out[i] = notify.Webhook{Name: w.Name, URL: w.URL.String(), Secret: string(w.Secret), Events: w.Events, Format: w.Format}
	}
	return out
}

// registerProcessMetrics adds the Go runtime and process collectors.
func registerProcessMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

// newHubClients builds one client per configured hub: SAS from a
// connection string, or Entra ID through azidentity's default chain
// (workload identity, managed identity, environment, Azure CLI), shared by
// every Entra hub.
func newHubClients(hubs []config.Hub, metrics *hub.Metrics) (map[string]*hub.Client, error) {
	clients := make(map[string]*hub.Client, len(hubs))
	var entra hub.Credential
	for _, h := range hubs {
		hc := hub.Config{Host: h.Host, Endpoint: h.Endpoint, HubName: h.Name, Metrics: metrics}
		switch {
		case h.ConnectionString != nil:
			cred, err := hub.NewSASCredential(*h.ConnectionString)
			if err != nil {
				return nil, fmt.Errorf("hub %s: %w", h.Name, err)
			}
			hc.Credential = cred
		default:
			if entra == nil {
				tc, err := azidentity.NewDefaultAzureCredential(nil)
				if err != nil {
					return nil, fmt.Errorf("hub %s: Entra ID credential: %w", h.Name, err)
				}
				entra = hub.NewEntraCredential(tc)
			}
			hc.Credential = entra
		}
		client, err := hub.New(hc)
		if err != nil {
			return nil, fmt.Errorf("hub %s: %w", h.Name, err)
		}
		clients[h.Name] = client
	}
	return clients, nil
}

// originOf is scheme://host of a validated URL: the IdP's origin, which the
// CSP must allow as a form target for sign-out's redirect to it.
func originOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
