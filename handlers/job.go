package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/views"
)

// StatusStopPolling is htmx's "stop polling" status: the job status
// fragment answers with it once the job can no longer change.
const StatusStopPolling = 286

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
	id, err := jobIDParam(c)
	if err != nil {
		return nil, "", err
	}
	return hb, id, nil
}

// jobIDParam is the {id} path segment unescaped once and validated; on
// error it is "" — an escaped or cut id (e%75, a%2Fb) never goes further.
func jobIDParam(c echo.Context) (string, error) {
	id, err := url.PathUnescape(c.Param("id"))
	if err != nil {
		return "", checkJobID("")
	}
	if err := checkJobID(id); err != nil {
		return "", err
	}
	return id, nil
}

func (h *Handlers) hubParam(c echo.Context) (*Hub, error) {
	name, err := url.PathUnescape(c.Param("hub"))
	if err != nil {
		name = "\x00" // fails validation below
	}
	return h.lookupHub(name)
}

// hubNameParam is the {hub} path segment unescaped once when it passes the
// hub-name rule (configured or not: a denial records which hub was
// targeted), else "" — never the path's raw text.
func hubNameParam(c echo.Context) string {
	name, err := url.PathUnescape(c.Param("hub"))
	if err != nil || !hub.ValidHubName(name) {
		return ""
	}
	return name
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
		h.jobs.Remember(ctx, hb.Name, fresh.Value, fresh.FetchedAt)
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
	u, _ := auth.UserFrom(ctx)
	m := views.JobPage{Job: v, Cancel: h.cancelControl(c, hb, v), RolloutID: rolloutOfJob(id), CanCopy: mayAuthor(u, hb)}
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

// history is the job's audit entries, newest first (reused for a moment
// by the jobs service, which drops its copy when it writes about the job);
// a failing audit store degrades the page instead of failing it.
func (h *Handlers) history(ctx context.Context, hubName, id string) ([]views.AuditEntry, bool) {
	entries, err := h.jobs.History(ctx, hubName, id)
	if err != nil {
		h.log.WarnContext(ctx, "job history unavailable", "hub", hubName, "job", id, "err", err)
		return nil, true
	}
	out := make([]views.AuditEntry, len(entries))
	for i, e := range entries {
		out[i] = auditView(e)
	}
	return out, false
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
		TypeLabel:     jobs.TypeLabel(string(j.Type)),
		StatusLabel:   jobs.StatusLabel(string(status)),
		Terminal:      jobs.Terminal(status),
		Cancellable:   jobs.Cancellable(status),
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
	d := h.detailsOf(hubName, id, j)
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

// detailsOf is j's details, made once per hub answer. The budget hands
// every page view within its TTL the same *hub.Job, so the pretty-printing
// (json.MarshalIndent of a twin patch was 3 % of a job page's CPU) happens
// once per hub answer instead of once per view. A different answer (a new
// pointer) replaces the job's entry, so the memo holds at most one answer
// per job, for at most detailsMemoMax jobs.
func (h *Handlers) detailsOf(hubName, id string, j *hub.Job) jobDetails {
	key := hubName + "/" + id
	if e, ok := h.details.Get(key); ok && e.from == j {
		return e.details
	}
	d := newJobDetails(j)
	h.details.Add(key, memoDetails{from: j, details: d})
	return d
}

type memoDetails struct {
	from    *hub.Job
	details jobDetails
}

const (
	detailsMemoMax = 1000
	// detailsMemoTTL outlives any budget's reuse of one answer.
	detailsMemoTTL = 10 * time.Minute
)

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
		ConfirmRequired: v.Stats != nil && v.Stats.Devices >= jobs.ConfirmThreshold,
		MaxReason:       maxReasonRunes,
		CSRFToken:       auth.CSRFToken(c.Request().Context()),
	}
}

// mayCancel: operator (or admin) and, when the hub names its operators, one
// of the user's claim values is in that list. Deny by default.
func mayCancel(u *auth.User, hb *Hub) bool {
	return u != nil && u.Can(auth.RoleOperator) && narrowedTo(u, hb.Operators)
}

// rolloutOfJob is the rollout a hub job belongs to, "" when none.
func rolloutOfJob(id string) string {
	rid, _ := rollout.RolloutOf(id)
	return rid
}

func itoa(n int) string { return strconv.Itoa(n) }
