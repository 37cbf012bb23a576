package handlers

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// auditPageSize is how many entries /audit shows per page.
const auditPageSize = 50

// auditActions are the actions the /audit filter offers (design.md).
var auditActions = []audit.Action{
	audit.JobCancelIntent, audit.JobCancelSucceeded, audit.JobCancelRefused, audit.JobCancelUnknown,
	audit.JobCancelDenied, audit.JobCancelReconciled, audit.AuthLogin, audit.AuthLoginFailed,
	audit.AuthLogout, audit.CSRFBlocked, audit.AuthzDenied,
}

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

// auditCSVColumns are design.md's export keys, in order.
var auditCSVColumns = []string{"seq", "time", "action", "result", "actor_iss", "actor_sub", "actor_name",
	"actor_email", "actor_roles", "client_ip", "user_agent", "request_id", "hub", "job_id", "reason",
	"hub_status", "hub_error_code", "hub_tracking_id", "prev_hash", "hash"}

// AuditCSV serves GET /audit.csv: every entry matching the same filters as
// /audit, newest first, streamed page by page.
func (h *Handlers) AuditCSV(c echo.Context) error {
	_, f, err := auditFilter(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	f.Limit = 500
	entries, err := h.audit.List(ctx, f)
	if err != nil {
		return err // nothing written yet: a proper error page
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="hubjobs-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write(auditCSVColumns)
	for len(entries) > 0 {
		for _, e := range entries {
			cw.Write(safeCSV(auditRow(e)))
		}
		cw.Flush()
		if len(entries) < f.Limit {
			break
		}
		f.BeforeSeq = entries[len(entries)-1].Seq
		if entries, err = h.audit.List(ctx, f); err != nil {
			h.log.ErrorContext(ctx, "audit export cut short", "err", err)
			cw.Write([]string{"", "", "", "export incomplete: the audit trail became unavailable"})
			break
		}
	}
	cw.Flush()
	return cw.Error()
}

func auditRow(e audit.Entry) []string {
	status := ""
	if e.HubStatus != 0 {
		status = strconv.Itoa(e.HubStatus)
	}
	return []string{strconv.FormatInt(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), string(e.Action), e.Result,
		e.Actor.Issuer, e.Actor.Subject, e.Actor.Name, e.Actor.Email, strings.Join(e.Actor.Roles, " "),
		e.ClientIP, e.UserAgent, e.RequestID, e.Hub, e.JobID, e.Reason,
		status, e.HubErrorCode, e.HubTrackingID, e.PrevHash, e.Hash}
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

// safeCSV defuses spreadsheet formulas: a cell starting with = + - @ or a
// tab/CR is prefixed with a quote so Excel and friends show it as text.
func safeCSV(row []string) []string {
	for i, v := range row {
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			row[i] = "'" + v
		}
	}
	return row
}
