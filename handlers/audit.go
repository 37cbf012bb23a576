package handlers

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// auditPageSize is how many entries /audit shows per page.
const auditPageSize = 50

// auditActions are the actions the /audit filter offers: every one audit defines.
var auditActions = audit.Actions()

// Audit serves GET /audit (auditor or admin; the route checks the role).
func (h *Handlers) Audit(c echo.Context) error {
	vf, f, err := auditFilter(c)
	if err != nil {
		return err
	}
	f.Limit = auditPageSize
	entries, err := h.audit.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	m := views.AuditPage{Filter: vf, Actions: actionOptions()}
	for _, e := range entries {
		m.Entries = append(m.Entries, auditView(e))
	}
	if len(entries) == auditPageSize {
		m.NextBefore = entries[len(entries)-1].Seq
	}
	return render(c, http.StatusOK, views.AuditFullPage(h.layout(c, "Audit trail", "audit", ""), m))
}

// AuditCSV serves GET /audit.csv: every entry matching the same filters as
// /audit, oldest first (seq order, like `hubjobs audit export`), streamed
// page by page through audit's CSV writer, so the web and the CLI send the
// same columns, rendering and formula neutralisation.
func (h *Handlers) AuditCSV(c echo.Context) error {
	_, f, err := auditFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f.BeforeSeq, f.OldestFirst, f.Limit = 0, true, audit.MaxListLimit
	entries, err := h.audit.List(ctx, f)
	if err != nil {
		return err // nothing written yet: a proper error page
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="hubjobs-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := audit.NewCSVWriter(w)
	for len(entries) > 0 {
		for _, e := range entries {
			cw.Write(e)
		}
		if err := cw.Flush(); err != nil || len(entries) < f.Limit {
			return err
		}
		f.AfterSeq = entries[len(entries)-1].Seq
		if entries, err = h.audit.List(ctx, f); err != nil {
			h.log.ErrorContext(ctx, "audit export cut short", "err", err)
			cw.WriteNote("export incomplete: the audit trail became unavailable")
			break
		}
	}
	return cw.Flush()
}

// auditFilter parses /audit's query; bad values are a 400 that names them.
func auditFilter(c echo.Context) (views.AuditFilter, audit.Filter, error) {
	q := c.QueryParams()
	vf := views.AuditFilter{User: q.Get("user"), Hub: q.Get("hub"), Job: q.Get("job"),
		Action: q.Get("action"), Since: q.Get("since"), Until: q.Get("until")}
	f := audit.Filter{User: vf.User, Hub: vf.Hub, JobID: vf.Job, Action: audit.Action(vf.Action)}
	for _, v := range []string{vf.User, vf.Hub, vf.Job} {
		if len(v) > 256 {
			return vf, f, badRequest("A filter is too long", "Filters are at most 256 characters.")
		}
	}
	if vf.Action != "" && !slices.Contains(auditActions, f.Action) {
		return vf, f, badRequest("Unknown action", "Pick an action from the list.")
	}
	var err error
	if f.Since, err = parseFilterTime(vf.Since); err != nil {
		return vf, f, badRequest("\"Since\" is not a time", "Use a date and time like 2025-01-31T14:00 (UTC).")
	}
	if f.Until, err = parseFilterTime(vf.Until); err != nil {
		return vf, f, badRequest("\"Until\" is not a time", "Use a date and time like 2025-01-31T14:00 (UTC).")
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n < 1 {
			return vf, f, badRequest("Bad page", "The page marker is not valid; start from the first page.")
		}
		f.BeforeSeq = n
	}
	return vf, f, nil
}

// parseFilterTime accepts what <input type=datetime-local> sends (read as
// UTC) and RFC 3339.
func parseFilterTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, strconv.ErrSyntax
}

func actionOptions() []views.Option {
	opts := []views.Option{{Value: "", Label: "Any action"}}
	for _, a := range auditActions {
		opts = append(opts, views.Option{Value: string(a), Label: views.ActionLabel(string(a))})
	}
	return opts
}

// auditView converts an audit entry for display.
func auditView(e audit.Entry) views.AuditEntry {
	return views.AuditEntry{Seq: e.Seq, Time: e.Time, Action: string(e.Action), Result: e.Result,
		Actor: jobs.ActorName(e.Actor), ActorID: e.Actor.Subject, ActorRoles: e.Actor.Roles, Hub: e.Hub, JobID: e.JobID, Reason: e.Reason,
		HubStatus: e.HubStatus, HubErrorCode: e.HubErrorCode, HubTrackingID: e.HubTrackingID,
		RequestID: e.RequestID, ClientIP: e.ClientIP}
}
