package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/views"
)

// StatusStopPolling is htmx's "stop polling" status: the job status
// fragment answers with it once the job can no longer change.
const StatusStopPolling = 286

// historyLimit is how many audit entries the job page shows.
const historyLimit = 50

// Job serves GET /hubs/{hub}/jobs/{id}: the full page, or the #job fragment
// for htmx (same URL, Vary: HX-Request).
func (h *Handlers) Job(c echo.Context) error {
	hb, id, err := h.jobTarget(c)
	if err != nil {
		return err
	}
	m, err := h.jobPage(c, hb, id, true)
	if err != nil {
		return err
	}
	return page(c, http.StatusOK,
		views.JobFullPage(h.layout(c, "Job "+id, "jobs", hb.Name), m),
		views.JobArticle(m))
}

// JobStatus serves the polled status fragment; 286 once the job is final so
// htmx stops polling.
func (h *Handlers) JobStatus(c echo.Context) error {
	hb, id, err := h.jobTarget(c)
	if err != nil {
		return err
	}
	m, err := h.jobPage(c, hb, id, false) // the fragment shows no history
	if err != nil {
		return err
	}
	status := http.StatusOK
	if m.Job.Terminal || m.Job.Archived {
		status = StatusStopPolling
	}
	return render(c, status, views.JobStatus(m))
}

// jobTarget validates the {hub} and {id} path segments (unescaped once; the
// path is authoritative) before anything else happens.
func (h *Handlers) jobTarget(c echo.Context) (*Hub, string, error) {
	hb, err := h.hubParam(c)
	if err != nil {
		return nil, "", err
	}
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		return nil, "", checkJobID("")
	}
	if err := checkJobID(id); err != nil {
		return nil, "", err
	}
	return hb, id, nil
}

func (h *Handlers) hubParam(c echo.Context) (*Hub, error) {
	name, err := url.PathUnescape(c.Param("hub"))
	if err != nil {
		name = "\x00" // fails validation below
	}
	return h.lookupHub(name)
}

// jobPage reads the job through the budget and builds the page model. A
// job the hub no longer has is shown from the portal's snapshot, marked
// archived, instead of a 404.
func (h *Handlers) jobPage(c echo.Context, hb *Hub, id string, withHistory bool) (views.JobPage, error) {
	ctx := c.Request().Context()
	var v views.Job
	fresh, err := hb.Jobs.GetJob(ctx, id)
	switch {
	case err == nil:
		h.snapshots.maybeSave(ctx, h, hb.Name, fresh.Value, fresh.FetchedAt)
		v = h.jobView(hb.Name, id, fresh.Value)
		v.Freshness = freshness(h, fresh)
	case errors.Is(err, hub.ErrNotFound):
		archived, ok := h.archivedJob(ctx, hb.Name, id)
		if !ok {
			return views.JobPage{}, err
		}
		v = archived
	default:
		h.learnLimit(hb.Name, err)
		return views.JobPage{}, err
	}
	m := views.JobPage{Job: v, Cancel: h.cancelControl(c, hb, v)}
	if withHistory {
		m.History, m.HistoryUnavailable = h.history(ctx, hb.Name, id)
	}
	return m, nil
}

// archivedJob rebuilds a job from its last snapshot.
func (h *Handlers) archivedJob(ctx context.Context, hubName, id string) (views.Job, bool) {
	snap, err := h.audit.Snapshot(ctx, hubName, id)
	if err != nil {
		if !errors.Is(err, audit.ErrNotFound) {
			h.log.WarnContext(ctx, "job snapshot unavailable", "hub", hubName, "job", id, "err", err)
		}
		return views.Job{}, false
	}
	var j hub.Job
	if err := json.Unmarshal(snap.Body, &j); err != nil {
		h.log.WarnContext(ctx, "job snapshot unreadable", "hub", hubName, "job", id, "err", err)
		return views.Job{}, false
	}
	v := h.jobView(hubName, id, &j)
	v.Archived, v.LastSeen, v.Terminal, v.Cancellable = true, snap.LastSeen, true, false
	return v, true
}

// history is the job's audit entries, newest first; a failing audit store
// degrades the page instead of failing it. Reads are reused for
// historyTTL (many people open a job page that was just linked in a
// ticket); this portal's own cancels drop the cached copy at once.
func (h *Handlers) history(ctx context.Context, hubName, id string) ([]views.AuditEntry, bool) {
	key := hubName + "/" + id
	if entries, ok := h.histories.get(key, h.now()); ok {
		return entries, false
	}
	entries, err := h.audit.List(ctx, audit.Filter{Hub: hubName, JobID: id, Limit: historyLimit})
	if err != nil {
		h.log.WarnContext(ctx, "job history unavailable", "hub", hubName, "job", id, "err", err)
		return nil, true
	}
	out := make([]views.AuditEntry, len(entries))
	for i, e := range entries {
		out[i] = auditView(e)
	}
	h.histories.put(key, out, h.now())
	return out, false
}

// historyTTL is how long a job's audit history is reused between page loads.
const historyTTL = 2 * time.Second

// historyCache is a small TTL cache of job histories.
type historyCache struct {
	mu      sync.Mutex
	entries map[string]cachedHistory
}

type cachedHistory struct {
	entries []views.AuditEntry
	at      time.Time
}

func (c *historyCache) get(key string, now time.Time) ([]views.AuditEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || now.Sub(e.at) >= historyTTL || now.Before(e.at) {
		return nil, false
	}
	return e.entries, true
}

func (c *historyCache) put(key string, entries []views.AuditEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= snapshotTrackLimit {
		c.entries = map[string]cachedHistory{}
	}
	c.entries[key] = cachedHistory{entries, now}
}

func (c *historyCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// active reports whether a job can still change: only these states are
// polled. "unknown" and values this portal does not know are not.
func active(s hub.JobStatus) bool {
	return s == hub.StatusQueued || s == hub.StatusEnqueued || s == hub.StatusScheduled || s == hub.StatusRunning
}

// jobView converts the hub's job into the page's view model.
func (h *Handlers) jobView(hubName, id string, j *hub.Job) views.Job {
	status := j.Status
	if status == "" {
		status = hub.StatusUnknown
	}
	v := views.Job{
		Hub: hubName, ID: id,
		Type: string(j.Type), Status: string(status),
		Terminal:      !active(status),
		Cancellable:   status.Cancellable(),
		Created:       j.CreatedTime.Time,
		Started:       j.StartTime.Time,
		Ended:         j.EndTime.Time,
		PlannedStop:   j.PlannedEnd(),
		MaxExecution:  time.Duration(j.MaxExecutionTimeInSeconds) * time.Second,
		Query:         j.QueryCondition,
		FailureReason: j.FailureReason,
		StatusMessage: j.StatusMessage,
		ParentJobID:   j.ParentJobID,
		Stats:         statsView(j.DeviceJobStatistics),
		Now:           h.now(),
	}
	d := h.details.of(hubName, id, j)
	v.Method, v.Twin = d.method, d.twin
	return v
}

// jobDetails is what a job asks of its devices, pretty-printed for the page.
// Views only read it, so one copy serves every page view of the same answer.
type jobDetails struct {
	method *views.Method
	twin   *views.Twin
}

func newJobDetails(j *hub.Job) jobDetails {
	var d jobDetails
	if m := j.CloudToDeviceMethod; m != nil {
		d.method = &views.Method{Name: m.MethodName, ResponseTimeout: int(m.ResponseTimeoutInSeconds),
			ConnectTimeout: int(m.ConnectTimeoutInSeconds), Payload: prettyJSON(m.Payload)}
	}
	if t := j.UpdateTwin; t != nil {
		d.twin = &views.Twin{Tags: prettyValue(t.Tags)}
		if t.Properties != nil {
			d.twin.Desired = prettyValue(t.Properties.Desired)
		}
	}
	return d
}

// detailsMemo keeps each job's details for the hub answer they were made
// from. The budget hands every page view within its TTL the same *hub.Job,
// so the pretty-printing (json.MarshalIndent of a twin patch was 3 % of a
// job page's CPU) happens once per hub answer instead of once per view. A
// different answer (a new pointer) replaces the job's entry, so the memo
// holds at most one answer per job, and at most detailsMemoMax jobs.
type detailsMemo struct {
	mu    sync.Mutex
	byJob map[string]memoDetails // hub + "/" + job id
}

type memoDetails struct {
	from    *hub.Job
	details jobDetails
}

const detailsMemoMax = 1000

func (m *detailsMemo) of(hubName, id string, j *hub.Job) jobDetails {
	key := hubName + "/" + id
	m.mu.Lock()
	e, ok := m.byJob[key]
	m.mu.Unlock()
	if ok && e.from == j {
		return e.details
	}
	d := newJobDetails(j)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byJob == nil || len(m.byJob) >= detailsMemoMax {
		m.byJob = map[string]memoDetails{}
	}
	m.byJob[key] = memoDetails{from: j, details: d}
	return d
}

func statsView(s *hub.DeviceJobStatistics) *views.Stats {
	if s == nil {
		return nil
	}
	return &views.Stats{Devices: int(s.DeviceCount), Succeeded: int(s.SucceededCount), Failed: int(s.FailedCount),
		Running: int(s.RunningCount), Pending: int(s.PendingCount)}
}

// prettyJSON indents raw JSON; anything that is not JSON is shown as sent.
func prettyJSON(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return string(raw)
	}
	return buf.String()
}

func prettyValue(v map[string]any) string {
	if len(v) == 0 {
		return ""
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

// cancelControl decides whether the cancel button is offered.
func (h *Handlers) cancelControl(c echo.Context, hb *Hub, v views.Job) views.CancelControl {
	u, _ := auth.UserFrom(c.Request().Context())
	allowed := mayCancel(u, hb)
	return views.CancelControl{
		Allowed:         allowed,
		NotOnThisHub:    !allowed && u != nil && u.Can(auth.RoleOperator),
		ConfirmRequired: v.Stats != nil && v.Stats.Devices >= views.ConfirmThreshold,
		MaxReason:       maxReasonRunes,
		CSRFToken:       auth.CSRFToken(c.Request().Context()),
	}
}

// mayCancel: operator (or admin) and, when the hub names its operators, one
// of the user's claim values is in that list. Deny by default.
func mayCancel(u *auth.User, hb *Hub) bool {
	if u == nil || !u.Can(auth.RoleOperator) {
		return false
	}
	if len(hb.Operators) == 0 {
		return true
	}
	for _, allowed := range hb.Operators {
		for _, v := range u.ClaimValues {
			if v == allowed {
				return true
			}
		}
	}
	return false
}

// snapshotTracker saves the hub's answer for a job so its page still opens
// after IoT Hub forgets the job (30 days). It writes when the status changes
// or at most once a minute per job, not on every poll.
type snapshotTracker struct {
	mu    sync.Mutex
	saved map[string]savedSnapshot
}

type savedSnapshot struct {
	status hub.JobStatus
	at     time.Time
}

const (
	snapshotEvery      = time.Minute
	snapshotTrackLimit = 10000
)

func (s *snapshotTracker) maybeSave(ctx context.Context, h *Handlers, hubName string, j *hub.Job, fetchedAt time.Time) {
	if j == nil {
		return
	}
	key := hubName + "/" + j.JobID
	s.mu.Lock()
	last, ok := s.saved[key]
	due := !ok || last.status != j.Status || fetchedAt.Sub(last.at) >= snapshotEvery
	if due {
		if len(s.saved) >= snapshotTrackLimit {
			clear(s.saved) // bounded memory; the worst case is one extra write per job
		}
		s.saved[key] = savedSnapshot{status: j.Status, at: fetchedAt}
	}
	s.mu.Unlock()
	if !due {
		return
	}
	body, err := json.Marshal(j)
	if err == nil {
		err = h.audit.SaveSnapshot(ctx, audit.Snapshot{Hub: hubName, JobID: j.JobID, Body: body, LastSeen: fetchedAt})
	}
	if err != nil {
		s.mu.Lock()
		delete(s.saved, key) // try again next time
		s.mu.Unlock()
		h.log.WarnContext(ctx, "job snapshot not saved", "hub", hubName, "job", j.JobID, "err", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
