package handlers

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// maxReasonRunes caps the optional cancel reason kept in the audit trail.
const maxReasonRunes = 500

// maxCancelFormBytes bounds the cancel form: a reason of maxReasonRunes
// runes, percent-encoded, plus the token and the confirmation.
const maxCancelFormBytes = 16 << 10

// CancelAuthorize is the first step of POST .../cancel, before the CSRF
// check: the user must be an operator (or admin) and, when the hub lists its
// operators, hold one of those claim values. A refusal is recorded by the
// jobs service as authz.denied with the hub and job it targeted — values
// that pass the hub-name and job-id rules after one unescape, "" where the
// path's do not — and answered 403; the hub is
// never called. An unknown hub passes through here and gets its 400/404
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
			keepBody(c, maxCancelFormBytes)
			return next(c)
		}
		jobID, _ := jobIDParam(c)
		if err := h.jobs.Denied(c.Request().Context(), auditOrigin(c, u),
			jobs.Denial{Hub: hubNameParam(c), Target: jobID, Why: "cancel needs the operator role on this hub", Cancel: true}); err != nil {
			h.log.ErrorContext(c.Request().Context(), "audit of a denied cancel failed", "err", err)
		}
		return &Problem{Status: http.StatusForbidden, Title: "You may not cancel jobs here",
			Detail: "Cancelling needs the operator role on this hub. The attempt has been recorded."}
	}
}

// Cancel serves POST /hubs/{hub}/jobs/{id}/cancel, after CancelAuthorize and
// the CSRF check: it validates the target and the form, and hands the cancel
// to the jobs service (jobs.Service.Cancel: audit intent → re-read → one
// coalesced hub call → audit outcome), then puts the outcome into words:
// the job the hub returned with a banner, or a problem page.
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
	o, err := h.jobs.Cancel(ctx, auditOrigin(c, u), jobs.CancelRequest{Hub: hb.Name, JobID: id, Reason: reason, Confirm: confirm})
	if err != nil {
		return err
	}
	if o.NotRecorded != nil {
		// The hub has already acted; the intent is on record and is
		// reconciled. Say so rather than hide it.
		h.log.ErrorContext(ctx, "audit of a cancel outcome failed", "hub", hb.Name, "job", id, "err", o.NotRecorded)
	}
	banner, problem := cancelAnswer(o)
	if problem != nil {
		return problem
	}
	if o.NotRecorded != nil {
		banner.Detail += " (The outcome could not be written to the audit trail yet; it will be reconciled.)"
	}
	v := h.jobView(hb.Name, id, o.Job)
	v.Freshness = views.Age{FetchedAt: h.now()}
	m := views.JobPage{Job: v, Cancel: h.cancelControl(c, hb, v), Banner: banner}
	m.History, m.HistoryUnavailable = h.history(ctx, hb.Name, id)
	return page(c, http.StatusOK,
		views.JobFullPage(h.layout(c, "Job "+id, "jobs", hb.Name), m),
		views.JobArticle(m))
}

// cancelAnswer puts a cancel's outcome into words: a banner above the job,
// or a problem (whose status errors.go decides) instead of it.
func cancelAnswer(o jobs.Outcome) (*views.Banner, *Problem) {
	switch o.Kind {
	case jobs.Cancelled:
		return &views.Banner{Kind: "ok", Title: "Job cancelled",
			Detail: "IoT Hub accepted the cancel. The job is now " + jobs.StatusLabel(string(o.Job.Status)) + "."}, nil
	case jobs.AlreadyCancelled:
		return &views.Banner{Kind: "info", Title: "This job was already cancelled", Detail: cancelledBy(o.CancelledBy)}, nil
	case jobs.CancelledByOther:
		leader := jobs.ActorName(o.LedBy)
		return &views.Banner{Kind: "info", Title: "Already cancelled just now by " + leader,
			Detail: "Your cancel and theirs reached IoT Hub as one request. The job is " + jobs.StatusLabel(string(o.Job.Status)) + "."}, nil
	case jobs.NotCancellable:
		return nil, notCancellable(o.Job)
	case jobs.ConfirmationMismatch:
		return nil, badRequest("Type the job id to confirm", "This job targets many devices; type its id exactly in the confirmation field.")
	case jobs.Unknown:
		switch {
		case o.Job == nil:
			return nil, Describe(o.Err)
		case o.Job.Status == hub.StatusCancelled:
			return &views.Banner{Kind: "ok", Title: "Job cancelled",
				Detail: "IoT Hub did not confirm in time, but reading the job again shows it is cancelled."}, nil
		}
		return &views.Banner{Kind: "error", Title: "The cancel may not have worked",
			Detail: "IoT Hub did not answer in time. Reading the job again shows it is " + jobs.StatusLabel(string(o.Job.Status)) + "."}, nil
	case jobs.Refused:
		if errors.Is(o.Err, hub.ErrNotCancellable) && o.Job != nil {
			p := notCancellable(o.Job)
			d := Describe(o.Err)
			p.HubCode, p.TrackingID, p.Err = d.HubCode, d.TrackingID, o.Err
			return nil, p
		}
	}
	return nil, Describe(o.Err) // NotAttempted, and other refusals
}

// cancelledBy names who cancelled a job through this portal, if anyone did.
func cancelledBy(e *audit.Entry) string {
	if e == nil {
		return "It was not cancelled through this portal (or the audit trail cannot say by whom)."
	}
	return "Cancelled by " + jobs.ActorName(e.Actor) + " at " + e.Time.UTC().Format("2006-01-02 15:04:05 UTC") + "."
}

// notCancellable is the 409 for a job in a state IoT Hub will not cancel.
func notCancellable(j *hub.Job) *Problem {
	p := &Problem{Status: http.StatusConflict, Title: "This job cannot be cancelled: it is " + strings.ToLower(jobs.StatusLabel(string(j.Status)))}
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

// keptBody is the cancel form's body as it arrived, read before the CSRF
// check consumes it, so that the handler can refuse a malformed body that
// the check's lenient parse would have glossed over.
type keptBody struct {
	body []byte
	err  error // reading failed, or the body is over its form's limit
}

const keptBodyKey = "handlers.cancelBody"

// keepBody reads the request body (at most limit bytes) and puts it back
// for the CSRF check, so that the form is later parsed strictly from the
// raw bytes rather than from what the CSRF check's lenient parse kept.
func keepBody(c echo.Context, limit int) {
	kept := readBody(c.Request().Body, limit)
	c.Request().Body = io.NopCloser(bytes.NewReader(kept.body))
	c.Set(keptBodyKey, kept)
}

func readBody(r io.Reader, limit int) keptBody {
	body, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err == nil && len(body) > limit {
		err = errors.New("form over its size limit")
	}
	return keptBody{body, err}
}

// cancelForm reads and checks the form, from the request BODY only (never
// the URL's query): an urlencoded body that parses, each field at most
// once; the reason (optional, capped, no control characters but line
// breaks) and the typed confirmation. A form field "id" that disagrees with
// the path is refused: the path is authoritative.
func cancelForm(c echo.Context, id string) (reason, confirm string, err error) {
	unreadable := badRequest("The form could not be read", "Send the cancel form as the page does (URL-encoded, under 16 KB).")
	if mt, _, err := mime.ParseMediaType(c.Request().Header.Get(echo.HeaderContentType)); err != nil || mt != echo.MIMEApplicationForm {
		return "", "", unreadable
	}
	kept, ok := c.Get(keptBodyKey).(keptBody)
	if !ok { // mounted without CancelAuthorize
		kept = readBody(c.Request().Body, maxCancelFormBytes)
	}
	if kept.err != nil {
		return "", "", unreadable
	}
	form, err := url.ParseQuery(string(kept.body))
	if err != nil {
		return "", "", unreadable
	}
	for _, field := range []string{"id", "reason", "confirm"} {
		if len(form[field]) > 1 {
			return "", "", badRequest("The form is ambiguous", "The field \""+field+"\" was sent more than once.")
		}
	}
	if formID := form.Get("id"); formID != "" && formID != id {
		return "", "", badRequest("The form names a different job", "The job id in the form does not match the address.")
	}
	reason = strings.TrimSpace(form.Get("reason"))
	if !utf8.ValidString(reason) || utf8.RuneCountInString(reason) > maxReasonRunes {
		return "", "", badRequest("The reason is too long", "Keep the reason under 500 characters.")
	}
	for _, r := range reason {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return "", "", badRequest("The reason contains control characters", "Use plain text for the reason.")
		}
	}
	return reason, strings.TrimSpace(form.Get("confirm")), nil
}

// auditOrigin is the request's origin as audit entries record it.
func auditOrigin(c echo.Context, u *auth.User) jobs.Origin {
	o := jobs.Origin{
		ClientIP:  c.RealIP(),
		UserAgent: truncate(c.Request().UserAgent(), 256),
		RequestID: RequestID(c.Request().Context()),
	}
	if u != nil {
		o.Actor = AuditActor(u)
	}
	return o
}

// AuditActor is a signed-in user as the audit trail records them, with the
// roles they hold now.
func AuditActor(u *auth.User) audit.Actor {
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = string(r)
	}
	return audit.Actor{Issuer: u.Issuer, Subject: u.Subject, Name: u.Name, Email: u.Email, Roles: roles}
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
