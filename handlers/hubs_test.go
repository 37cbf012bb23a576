package handlers

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/hub"
)

// pagedHub is a hub whose job list comes in pages of given jobs; failAt
// (1-based) makes that query fail. It counts queries.
type pagedHub struct {
	HubJobs // only QueryJobs is called by /hubs; anything else panics
	pages   [][]hub.Job
	failAt  int
	queries int
}

func (p *pagedHub) QueryJobs(_ context.Context, o hub.QueryJobsOptions) (hub.Fresh[*hub.JobsPage], error) {
	p.queries++
	if p.queries == p.failAt {
		return hub.Fresh[*hub.JobsPage]{}, &hub.Error{Op: "QueryJobs", StatusCode: 503, Code: "ServiceUnavailable"}
	}
	i := 0
	if o.Continuation != "" {
		i, _ = strconv.Atoi(o.Continuation)
	}
	page := &hub.JobsPage{Jobs: p.pages[i]}
	if i+1 < len(p.pages) {
		page.Continuation = strconv.Itoa(i + 1)
	}
	return hub.Fresh[*hub.JobsPage]{Value: page, FetchedAt: time.Now()}, nil
}

var jobStart = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func methodJob(id string, status hub.JobStatus) hub.Job {
	return hub.Job{JobID: id, Type: hub.TypeScheduleDeviceMethod, Status: status, StartTime: hub.Time{Time: jobStart},
		MaxExecutionTimeInSeconds: 600, CloudToDeviceMethod: &hub.CloudToDeviceMethod{MethodName: "reboot"}}
}

func TestHubSummaryCollectsActiveJobsFromThePagesItReads(t *testing.T) {
	page := func(jobs ...hub.Job) []hub.Job { return jobs }
	for _, tc := range []struct {
		name       string
		hub        *pagedHub
		ids        []string
		atLeast    bool
		reachable  bool
		hubQueries int
	}{
		{name: "one page, finished jobs left out",
			hub: &pagedHub{pages: [][]hub.Job{page(methodJob("run", hub.StatusRunning), methodJob("done", hub.StatusCompleted),
				methodJob("sched", hub.StatusScheduled), methodJob("gone", hub.StatusCancelled), methodJob("q", hub.StatusQueued),
				methodJob("e", hub.StatusEnqueued), methodJob("odd", hub.StatusUnknown))}},
			ids: []string{"run", "sched", "q", "e"}, reachable: true, hubQueries: 1},
		{name: "more pages than are read",
			hub: &pagedHub{pages: [][]hub.Job{page(methodJob("a", hub.StatusRunning)), page(methodJob("b", hub.StatusFailed)),
				page(methodJob("c", hub.StatusScheduled)), page(methodJob("never-read", hub.StatusScheduled))}},
			ids: []string{"a", "c"}, atLeast: true, reachable: true, hubQueries: hubsScanPages},
		{name: "a hub failing half-way is missing, not partly listed",
			hub: &pagedHub{pages: [][]hub.Job{page(methodJob("a", hub.StatusRunning)), page(methodJob("b", hub.StatusRunning))}, failAt: 2},
			ids: nil, reachable: false, hubQueries: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{Hubs: []Hub{{Name: "prod", Jobs: tc.hub}}})
			s := h.hubSummary(t.Context(), &h.hubs[0])
			var ids []string
			for _, j := range s.Active {
				ids = append(ids, j.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.ids, ",") || s.ActiveJobs != len(tc.ids) {
				t.Errorf("active %v (count %d), want %v", ids, s.ActiveJobs, tc.ids)
			}
			if s.ActiveAtLeast != tc.atLeast || s.Reachable != tc.reachable || tc.hub.queries != tc.hubQueries {
				t.Errorf("at least %v, reachable %v, %d queries; want %v, %v, %d", s.ActiveAtLeast, s.Reachable, tc.hub.queries, tc.atLeast, tc.reachable, tc.hubQueries)
			}
			if !tc.reachable && !strings.Contains(s.Problem, "ServiceUnavailable") {
				t.Errorf("problem %q does not name the hub's error", s.Problem)
			}
		})
	}
}

func TestActiveJobViewStopsByOnlyForRunningJobs(t *testing.T) {
	run := activeJobView("prod", new(methodJob("r", hub.StatusRunning)))
	if !run.StopsBy.Equal(jobStart.Add(10*time.Minute)) || run.Method != "reboot" || run.Hub != "prod" || !run.Started.Equal(jobStart) {
		t.Errorf("running: %+v", run)
	}
	if s := activeJobView("prod", new(methodJob("s", hub.StatusScheduled))); !s.StopsBy.IsZero() {
		t.Errorf("a scheduled job has a stop time %v", s.StopsBy)
	}
	twin := hub.Job{JobID: "t", Type: hub.TypeScheduleUpdateTwin, Status: hub.StatusRunning}
	if v := activeJobView("prod", &twin); v.Method != "" || !v.StopsBy.IsZero() {
		t.Errorf("twin job without start or limit: %+v", v)
	}
}

// For htmx, /hubs answers the #active-jobs fragment; 286 once nothing is
// active so that its polling stops.
func TestHubsFragmentStopsPollingWhenNothingIsActive(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jobs   []hub.Job
		htmx   bool
		status int
	}{
		{"active, htmx", []hub.Job{methodJob("r", hub.StatusRunning)}, true, http.StatusOK},
		{"nothing active, htmx", []hub.Job{methodJob("d", hub.StatusCompleted)}, true, StatusStopPolling},
		{"nothing active, full page", nil, false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Config{Hubs: []Hub{{Name: "prod", Jobs: &pagedHub{pages: [][]hub.Job{tc.jobs}}}}})
			req := httptest.NewRequest(http.MethodGet, "/hubs", nil)
			if tc.htmx {
				req.Header.Set("HX-Request", "true")
			}
			rec := httptest.NewRecorder()
			if err := h.Hubs(echo.New().NewContext(req, rec)); err != nil {
				t.Fatal(err)
			}
			body := rec.Body.String()
			if rec.Code != tc.status || strings.HasPrefix(body, `<section id="active-jobs"`) != tc.htmx {
				t.Errorf("= %d %.60s, want %d (fragment: %v)", rec.Code, body, tc.status, tc.htmx)
			}
		})
	}
}
