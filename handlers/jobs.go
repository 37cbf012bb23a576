package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// jobsPageSize is how many jobs one list page asks the hub for.
const jobsPageSize = 50

// maxPageToken bounds the opaque continuation token carried in ?page=; it
// goes back to the hub in a header, so it must be one line of printable
// ASCII.
const maxPageToken = 4096

// jobTypes and jobStatuses are the list's filters, in the jobs vocabulary's
// order and words; "" is no filter.
var (
	jobTypes    = filterOptions("Any type", jobs.Types, jobs.TypeLabel)
	jobStatuses = filterOptions("Any status", jobs.Statuses, jobs.StatusLabel)
)

func filterOptions[T ~string](anyLabel string, values []T, label func(string) string) []views.Option {
	opts := []views.Option{{Value: "", Label: anyLabel}}
	for _, v := range values {
		opts = append(opts, views.Option{Value: string(v), Label: label(string(v))})
	}
	return opts
}

// Index serves GET /: the first hub's jobs, or the audit trail for someone
// who may only read that.
func (h *Handlers) Index(c echo.Context) error {
	u, _ := auth.UserFrom(c.Request().Context())
	if u != nil && !u.Can(auth.RoleViewer) && u.Can(auth.RoleAuditor) {
		return c.Redirect(http.StatusSeeOther, "/audit")
	}
	if len(h.hubs) == 0 {
		return c.Redirect(http.StatusSeeOther, views.HubsURL())
	}
	return c.Redirect(http.StatusSeeOther, views.JobsURL(h.FirstHub()))
}

// Jobs serves GET /hubs/{hub}/jobs?type=&status=&q=&page=: the full page, or
// the #jobs-table fragment for htmx (its own polling included).
func (h *Handlers) Jobs(c echo.Context) error {
	hb, err := h.hubParam(c)
	if err != nil {
		return err
	}
	f, token, err := jobsQuery(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()

	// An exact job id goes straight to its page; anything else (or an id
	// the hub does not know) filters the list by substring.
	m := views.JobList{Hub: hb.Name, Filter: f, Page: token, Types: jobTypes, Statuses: jobStatuses}
	if f.Q != "" && token == "" && !IsHTMX(c.Request()) {
		switch _, err := hb.Jobs.GetJob(ctx, f.Q); {
		case err == nil:
			return c.Redirect(http.StatusSeeOther, views.JobURL(hb.Name, f.Q))
		case errors.Is(err, hub.ErrNotFound):
			m.Notice = "No job has the id \"" + f.Q + "\" on this hub; showing jobs on this page whose id contains it."
		}
	}

	fresh, err := hb.Jobs.QueryJobs(ctx, hub.QueryJobsOptions{Type: hub.JobType(f.Type), Status: hub.JobStatus(f.Status),
		PageSize: jobsPageSize, Continuation: token})
	if err != nil {
		h.learnLimit(hb.Name, err)
		if he, ok := errors.AsType[*hub.Error](err); ok && token != "" && he.StatusCode == http.StatusBadRequest {
			// The token is opaque and rides in the URL, so anyone can
			// forge one; the hub's refusal of it is the user's bad link.
			return badPageLink()
		}
		return err
	}
	m.Freshness = freshness(h, fresh)
	m.NextPage = fresh.Value.Continuation
	needle := strings.ToLower(f.Q)
	for _, j := range fresh.Value.Jobs {
		if needle != "" && !strings.Contains(strings.ToLower(j.JobID), needle) {
			continue
		}
		m.Rows = append(m.Rows, jobRow(hb.Name, &j))
		if jobs.Active(j.Status) {
			m.Poll = true
		}
	}
	return page(c, http.StatusOK, views.JobsPage(h.layout(c, "Jobs on "+hb.Name, "jobs", hb.Name), m), views.JobsTable(m))
}

// jobRow is one job as a line of a list, in the jobs vocabulary's words.
func jobRow(hubName string, j *hub.Job) views.JobRow {
	return views.JobRow{Hub: hubName, ID: j.JobID, Type: string(j.Type), Status: string(j.Status),
		TypeLabel: jobs.TypeLabel(string(j.Type)), StatusLabel: jobs.StatusLabel(string(j.Status)),
		Created: j.CreatedTime.Time, Started: j.StartTime.Time, Ended: j.EndTime.Time, Stats: statsView(j.DeviceJobStatistics)}
}

// jobsQuery validates the list's filters: unknown values are a 400 that
// says what is allowed, never silently ignored.
func jobsQuery(c echo.Context) (views.JobFilter, string, error) {
	q := c.QueryParams()
	f := views.JobFilter{Type: q.Get("type"), Status: q.Get("status"), Q: strings.TrimSpace(q.Get("q"))}
	if !hasOption(jobTypes, f.Type) {
		return f, "", badRequest("Unknown job type", "The type filter accepts scheduleDeviceMethod or scheduleUpdateTwin.")
	}
	if !hasOption(jobStatuses, f.Status) {
		return f, "", badRequest("Unknown job status", "The status filter accepts queued, enqueued, scheduled, running, completed, failed, cancelled or unknown.")
	}
	if f.Q != "" && !hub.ValidJobID(f.Q) {
		return f, "", badRequest("That is not a job id", "Search by job id: letters, digits, dashes and underscores, up to 128 characters.")
	}
	token := q.Get("page")
	if len(token) > maxPageToken || !printableASCII(token) {
		return f, "", badPageLink()
	}
	return f, token, nil
}

func hasOption(opts []views.Option, v string) bool {
	for _, o := range opts {
		if o.Value == v {
			return true
		}
	}
	return false
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func badPageLink() *Problem {
	return badRequest("Bad page link", "The page marker in this address is not valid. Start again from the first page.")
}
