// Package handlers serves the portal's pages: one file per area (hubs, jobs,
// job, devices, cancel, audit, rollouts — the "New job" form, its plan and
// the rollout pages — and notifications). It owns the small interfaces it
// needs from the hub traffic budget, the audit store, the rollout engine
// and the notification outbox, converts their values into views' view
// models next to each handler, and maps every failure to a status and
// plain words in one place (errors.go). Echo types stay inside this
// package and web/.
package handlers

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// HubJobs is one hub's jobs as the pages read them, through the traffic
// budget (*hub.Budgeted): reads may come back stale with their age.
// Changes to jobs go through JobsService, never from here.
type HubJobs interface {
	GetJob(ctx context.Context, id string) (hub.Fresh[*hub.Job], error)
	QueryJobs(ctx context.Context, o hub.QueryJobsOptions) (hub.Fresh[*hub.JobsPage], error)
	QueryDeviceJobs(ctx context.Context, jobID string, o hub.PageOptions) (hub.Fresh[*hub.DevicesPage], error)
	// The plan of the "New job" form counts the devices a condition
	// selects and shows a few of their ids, through the query budget.
	CountDevices(ctx context.Context, where string) (hub.Fresh[int64], error)
	DeviceIDs(ctx context.Context, where string, o hub.PageOptions) (hub.Fresh[*hub.DeviceIDsPage], error)
}

// JobsService is what the pages ask of the jobs service (*jobs.Service):
// the audited cancel, a job's history, and keeping the hub's answers.
type JobsService interface {
	Cancel(ctx context.Context, o jobs.Origin, r jobs.CancelRequest) (jobs.Outcome, error)
	Denied(ctx context.Context, o jobs.Origin, d jobs.Denial) error
	History(ctx context.Context, hubName, id string) ([]audit.Entry, error)
	Remember(ctx context.Context, hubName string, j *hub.Job, seen time.Time)
}

// AuditLog is what the pages read from the audit store (*audit.Store).
type AuditLog interface {
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, error)
	Snapshot(ctx context.Context, hub, jobID string) (audit.Snapshot, error)
}

// Hub is one configured hub as the handlers see it.
type Hub struct {
	Name      string
	Host      string
	Jobs      HubJobs
	Operators []string // claim values allowed to cancel here; empty = any operator
	Authors   []string // claim values allowed to create jobs here; empty = any author
	// MaxActiveJobs is the hub's concurrent-job limit from config (the
	// plan's "hub limits that apply"); 0 = unknown, planned as 1.
	MaxActiveJobs int
	// JobsOpsPerMinute is the portal's jobs budget for the hub, as the
	// plan reports it; 0 = the budget's default.
	JobsOpsPerMinute int
}

// Config is what New needs.
type Config struct {
	Hubs  []Hub
	Jobs  JobsService
	Audit AuditLog
	// Rollouts stores and drives rollouts (the engine); nil serves every
	// rollout route as "not available in this portal".
	Rollouts RolloutsConfig
	Logger   *slog.Logger
	Now      func() time.Time
	Version  string
	// Assets are the static URLs every full page links (web passes static's).
	Assets views.Assets
}

// Handlers serves every page. Methods are grouped by area in their files.
type Handlers struct {
	hubs    []Hub
	byName  map[string]*Hub
	jobs    JobsService
	audit   AuditLog
	ro      RolloutsConfig
	log     *slog.Logger
	now     func() time.Time
	version string
	assets  views.Assets

	limits  sync.Map // hub name → int: active-job limit learned from a 429
	details *expirable.LRU[string, memoDetails]
}

// New builds the handlers.
func New(cfg Config) *Handlers {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handlers{
		hubs:    cfg.Hubs,
		byName:  map[string]*Hub{},
		jobs:    cfg.Jobs,
		audit:   cfg.Audit,
		ro:      cfg.Rollouts.withDefaults(),
		log:     cfg.Logger,
		now:     cfg.Now,
		version: cfg.Version,
		assets:  cfg.Assets,
		details: expirable.NewLRU[string, memoDetails](detailsMemoMax, nil, detailsMemoTTL),
	}
	for i := range h.hubs {
		h.byName[h.hubs[i].Name] = &h.hubs[i]
	}
	return h
}

// hubNames lists the configured hubs in config order (the hub switcher).
func (h *Handlers) hubNames() []string {
	names := make([]string, len(h.hubs))
	for i, hb := range h.hubs {
		names[i] = hb.Name
	}
	return names
}

// FirstHub is where "/" sends people.
func (h *Handlers) FirstHub() string {
	if len(h.hubs) == 0 {
		return ""
	}
	return h.hubs[0].Name
}

// lookupHub validates a hub path segment: 400 when malformed, 404 when not
// configured. The outbound host always comes from config, never the URL.
func (h *Handlers) lookupHub(name string) (*Hub, error) {
	if !hub.ValidHubName(name) {
		return nil, badRequest("That is not a hub name", "Hub names are 1 to 32 lowercase letters, digits or dashes.")
	}
	hb, ok := h.byName[name]
	if !ok {
		return nil, &Problem{Status: 404, Title: "No such hub", Detail: "This portal has no hub named \"" + name + "\". Pick one from the list of hubs."}
	}
	return hb, nil
}

// checkJobID validates a job id path segment before any hub call.
func checkJobID(id string) error {
	if !hub.ValidJobID(id) {
		return badRequest("That is not a job id", "Job ids are 1 to 128 letters, digits, dashes or underscores.")
	}
	return nil
}

// freshness turns a budgeted read's metadata into the view's age marker,
// with the reason in words when the data is stale.
func freshness[T any](h *Handlers, f hub.Fresh[T]) views.Age {
	a := views.Age{Stale: f.Stale, FetchedAt: f.FetchedAt, Age: max(0, h.now().Sub(f.FetchedAt))}
	if f.Stale {
		a.Why, a.HubFailing = staleReason(f.Reason)
	}
	return a
}

// learnLimit remembers a hub's active-job limit when an error names it.
func (h *Handlers) learnLimit(hubName string, err error) {
	if n := activeJobLimit(err); n > 0 {
		h.limits.Store(hubName, n)
	}
}

func (h *Handlers) knownLimit(hubName string) int {
	if v, ok := h.limits.Load(hubName); ok {
		return v.(int)
	}
	return 0
}
