package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/views"
)

// maxReasonRunes caps the optional cancel reason kept in the audit trail.
const maxReasonRunes = 500

// CancelAuthorize is the first step of POST .../cancel, before the CSRF
// check: the user must be an operator (or admin) and, when the hub lists its
// operators, hold one of those claim values. A refusal is audited as
// authz.denied with the hub and job it targeted, and answered 403; the hub
// is never called. An unknown hub passes through here and gets its 400/404
// from validation, which comes after CSRF.
func (h *Handlers) CancelAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, _ := auth.UserFrom(c.Request().Context())
		hb, err := h.hubParam(c)
		allowed := u != nil && u.Can(auth.RoleOperator)
		if allowed && err == nil {
			allowed = mayCancel(u, hb)
		}
		if allowed {
			return next(c)
		}
		e := h.entry(c, u, truncate(c.Param("hub"), 64), truncate(c.Param("id"), 128), "")
		e.Action, e.Result = audit.AuthzDenied, "denied: cancel needs the operator role on this hub"
		h.histories.forget(e.Hub + "/" + e.JobID)
		if _, err := h.audit.Append(c.Request().Context(), e); err != nil {
			h.log.ErrorContext(c.Request().Context(), "audit of a denied cancel failed", "err", err)
		}
		// The label is a configured hub or "unknown", never the path's text:
		// any signed-in user could otherwise mint metric series at will.
		hubLabel := "unknown"
		if err == nil {
			hubLabel = hb.Name
		}
		h.cancelOutcomes.WithLabelValues(hubLabel, "denied").Inc()
		return &Problem{Status: http.StatusForbidden, Title: "You may not cancel jobs here",
			Detail: "Cancelling needs the operator role on this hub. The attempt has been recorded."}
	}
}

// Cancel serves POST /hubs/{hub}/jobs/{id}/cancel, after CancelAuthorize and
// the CSRF check: validate → audit intent (no record, no cancel: 503) →
// re-read the job → hub cancel (coalesced with one in flight) → audit
// outcome → render the job the hub returned, with a result banner.
func (h *Handlers) Cancel(c echo.Context) error {
	hb, id, err := h.jobTarget(c)
	if err != nil {
		return err
	}
	reason, confirm, err := cancelForm(c, id)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, _ := auth.UserFrom(ctx)
	intent := h.entry(c, u, hb.Name, id, reason)
	intent.Action, intent.Result = audit.JobCancelIntent, "requested"
	h.histories.forget(hb.Name + "/" + id)
	if _, err := h.audit.Append(ctx, intent); err != nil {
		h.cancelOutcomes.WithLabelValues(hb.Name, "audit_unavailable").Inc()
		return &Problem{Status: http.StatusServiceUnavailable, Title: "Cancel not attempted: the audit trail is unavailable",
			Detail:     "Every cancel must be recorded before it is sent to IoT Hub, and the audit trail cannot be written right now. Nothing was sent to the hub.",
			RetryAfter: defaultRetry, Err: err}
	}

	o := h.cancel(ctx, hb, id, confirm, displayName(u))

	out := h.entry(c, u, hb.Name, id, reason)
	out.Action, out.Result = o.action, o.result
	h.cancelOutcomes.WithLabelValues(hb.Name, strings.TrimPrefix(string(o.action), "job.cancel.")).Inc()
	if he, ok := errors.AsType[*hub.Error](o.hubErr); ok {
		out.HubStatus, out.HubErrorCode, out.HubTrackingID = he.StatusCode, he.Code, he.TrackingID
	}
	if _, err := h.audit.Append(ctx, out); err != nil {
		// The hub has already acted; the intent is on record and the audit
		// store reconciles pending intents. Say so rather than hide it.
		h.log.ErrorContext(ctx, "audit of a cancel outcome failed", "hub", hb.Name, "job", id, "err", err)
		if o.banner != nil {
			o.banner.Detail += " (The outcome could not be written to the audit trail yet; it will be reconciled.)"
		}
	}
	h.histories.forget(hb.Name + "/" + id)
	if o.problem != nil {
		return o.problem
	}

	h.snapshots.maybeSave(ctx, h, hb.Name, o.job, h.now())
	v := h.jobView(hb.Name, id, o.job)
	v.Freshness = views.Age{FetchedAt: h.now()}
	m := views.JobPage{Job: v, Cancel: h.cancelControl(c, hb, v), Banner: o.banner}
	m.History, m.HistoryUnavailable = h.history(ctx, hb.Name, id)
	return page(c, http.StatusOK,
		views.JobFullPage(h.layout(c, "Job "+id, "jobs", hb.Name), m),
		views.JobArticle(m))
}

// cancelForm reads and checks the form: the reason (optional, capped, no
// control characters but line breaks) and the typed confirmation. A form
// field "id" that disagrees with the path is refused: the path is
// authoritative and must not be second-guessed.
func cancelForm(c echo.Context, id string) (reason, confirm string, err error) {
	if formID := c.FormValue("id"); formID != "" && formID != id {
		return "", "", badRequest("The form names a different job", "The job id in the form does not match the address.")
	}
	reason = strings.TrimSpace(c.FormValue("reason"))
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonRunes {
		return "", "", badRequest("The reason is too long", "Keep the reason under 500 characters.")
	}
	for _, r := range reason {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "", "", badRequest("The reason contains control characters", "Use plain text for the reason.")
		}
	}
	return reason, strings.TrimSpace(c.FormValue("confirm")), nil
}

// cancelOutcome is what happened, for the audit record and the answer.
type cancelOutcome struct {
	action  audit.Action
	result  string
	hubErr  error // the hub's error, for its status/code/tracking id
	job     *hub.Job
	banner  *views.Banner
	problem *Problem // answer with this error instead of the job
}

func refused(result string, err error, p *Problem) cancelOutcome {
	return cancelOutcome{action: audit.JobCancelRefused, result: result, hubErr: err, problem: p}
}

// cancel decides and performs the cancel. The re-read (through the budget:
// usually served from the TTL cache) catches jobs that are already
// cancelled or running without spending a cancel on the hub, and gives the
// device count the typed confirmation depends on.
func (h *Handlers) cancel(ctx context.Context, hb *Hub, id, confirm, who string) cancelOutcome {
	fresh, err := hb.Jobs.GetJob(ctx, id)
	if err != nil {
		return refused("not attempted: "+err.Error(), err, Describe(err))
	}
	cur := fresh.Value
	switch {
	case cur.Status == hub.StatusCancelled:
		return cancelOutcome{action: audit.JobCancelSucceeded, result: "already cancelled", job: cur,
			banner: &views.Banner{Kind: "info", Title: "This job was already cancelled", Detail: h.cancelledBy(ctx, hb.Name, id)}}
	case !cur.Status.Cancellable():
		return refused("not attempted: job is "+string(cur.Status), nil, notCancellable(cur))
	case cur.DeviceJobStatistics != nil && cur.DeviceJobStatistics.DeviceCount >= views.ConfirmThreshold && confirm != id:
		return refused("not attempted: confirmation did not match the job id", nil,
			badRequest("Type the job id to confirm", "This job targets many devices; type its id exactly in the confirmation field."))
	}

	key := hb.Name + "/" + id
	leader, first := h.cancels.begin(key, who)
	if first {
		defer h.cancels.end(key)
	}
	job, err := hb.Jobs.CancelJob(ctx, id)
	switch {
	case err == nil && !first:
		return cancelOutcome{action: audit.JobCancelSucceeded, result: "already cancelled by " + leader, job: job,
			banner: &views.Banner{Kind: "info", Title: "Already cancelled just now by " + leader,
				Detail: "Your cancel and theirs reached IoT Hub as one request. The job is " + views.StatusLabel(string(job.Status)) + "."}}
	case err == nil:
		return cancelOutcome{action: audit.JobCancelSucceeded, result: "cancelled", job: job,
			banner: &views.Banner{Kind: "ok", Title: "Job cancelled",
				Detail: "IoT Hub accepted the cancel. The job is now " + views.StatusLabel(string(job.Status)) + "."}}
	case errors.Is(err, hub.ErrOutcomeUnknown) && job != nil:
		o := cancelOutcome{action: audit.JobCancelUnknown, result: "no answer; reconciled status " + string(job.Status), hubErr: err, job: job}
		if job.Status == hub.StatusCancelled {
			o.banner = &views.Banner{Kind: "ok", Title: "Job cancelled",
				Detail: "IoT Hub did not confirm in time, but reading the job again shows it is cancelled."}
		} else {
			o.banner = &views.Banner{Kind: "error", Title: "The cancel may not have worked",
				Detail: "IoT Hub did not answer in time. Reading the job again shows it is " + views.StatusLabel(string(job.Status)) + "."}
		}
		return o
	case errors.Is(err, hub.ErrOutcomeUnknown):
		return cancelOutcome{action: audit.JobCancelUnknown, result: "no answer; not reconciled", hubErr: err, problem: Describe(err)}
	case errors.Is(err, hub.ErrNotCancellable):
		p := notCancellable(cur)
		d := Describe(err)
		p.HubCode, p.TrackingID, p.Err = d.HubCode, d.TrackingID, err
		return refused("refused by IoT Hub", err, p)
	}
	return refused("refused: "+err.Error(), err, Describe(err))
}

// notCancellable is the 409 for a job in a state IoT Hub will not cancel.
func notCancellable(j *hub.Job) *Problem {
	p := &Problem{Status: http.StatusConflict, Title: "This job cannot be cancelled: it is " + strings.ToLower(views.StatusLabel(string(j.Status)))}
	switch {
	case j.Status == hub.StatusRunning && !j.PlannedEnd().IsZero():
		p.Detail = "IoT Hub does not cancel running jobs. This one stops on its own by " +
			j.PlannedEnd().UTC().Format("2006-01-02 15:04:05 UTC") + " at the latest (start time + maximum execution time), or earlier when every device has answered."
	case j.Status == hub.StatusRunning:
		p.Detail = "IoT Hub does not cancel running jobs. It stops on its own when every device has answered or its maximum execution time is over."
	default:
		p.Detail = "IoT Hub cancels only jobs that are queued, enqueued or scheduled; this one has finished."
	}
	return p
}

// cancelledBy names who cancelled a job through this portal, if anyone did.
func (h *Handlers) cancelledBy(ctx context.Context, hubName, id string) string {
	entries, err := h.audit.List(ctx, audit.Filter{Hub: hubName, JobID: id, Action: audit.JobCancelSucceeded, Limit: 1})
	if err != nil || len(entries) == 0 {
		return "It was not cancelled through this portal (or the audit trail cannot say by whom)."
	}
	e := entries[0]
	return "Cancelled by " + actorName(e.Actor) + " at " + e.Time.UTC().Format("2006-01-02 15:04:05 UTC") + "."
}

// entry is an audit record of this request with its actor and origin.
func (h *Handlers) entry(c echo.Context, u *auth.User, hubName, jobID, reason string) audit.Entry {
	e := audit.Entry{
		ClientIP:  c.RealIP(),
		UserAgent: truncate(c.Request().UserAgent(), 256),
		RequestID: RequestID(c.Request().Context()),
		Hub:       hubName, JobID: jobID, Reason: reason,
	}
	if u != nil {
		roles := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = string(r)
		}
		e.Actor = audit.Actor{Issuer: u.Issuer, Subject: u.Subject, Name: u.Name, Email: u.Email, Roles: roles}
	}
	return e
}

// truncate keeps at most n bytes of s, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// inflightCancels knows which cancels are on their way to the hub, so that
// the second of two simultaneous cancels (double click, two operators) is
// told who got there first. The hub call itself is coalesced by the budget.
type inflightCancels struct {
	mu      sync.Mutex
	running map[string]string // hub/job → who started it
}

func (f *inflightCancels) begin(key, who string) (leader string, first bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.running[key]; ok {
		return l, false
	}
	f.running[key] = who
	return who, true
}

func (f *inflightCancels) end(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.running, key)
}
