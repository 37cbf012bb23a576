package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/config"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/notify"
	"github.com/hubjobs/hubjobs/web"
)

// portal is the assembled application: what serve and demo share.
type portal struct {
	cfg     *config.Config
	logger  *slog.Logger
	store   *audit.Store
	web     *web.Server
	outbox  *notify.Outbox
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
	hubs := make([]web.Hub, len(cfg.Hubs))
	for i, h := range cfg.Hubs {
		hubs[i] = web.Hub{Name: h.Name, Client: clients[h.Name], Operators: h.Operators, Authors: h.Authors, MaxActiveJobs: h.MaxActiveJobs, JobsOpsPerMinute: h.JobsOpsPerMinute, QueriesPerMinute: h.QueriesPerMinute}
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
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	p.handler = p.web.Handler()

	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.stop = stop
	p.wg.Go(func() { p.web.Jobs().Run(bg) }) // settles cancel intents a crash left pending
	p.wg.Go(func() { sender.Run(bg) })       // delivers the outbox; stops after its POSTs in flight
	ok = true
	return p, nil
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
