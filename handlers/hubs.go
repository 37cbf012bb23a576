package handlers

import (
	"context"
	"net/http"
	"slices"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/views"
)

// hubsScanPages bounds how many job pages /hubs reads per hub to find its
// active jobs; beyond it the count is shown as "at least".
const hubsScanPages = 3

// Hubs serves GET /hubs: every hub, whether it answers, its active jobs and
// its active-job limit when a 429 has revealed it, then every active job of
// every hub in one list. Hubs are asked in parallel through their budgets;
// the list is made from the same pages the counts are, so it costs no hub
// call of its own. For htmx the answer is the #active-jobs fragment (same
// URL, Vary: HX-Request), 286 once nothing listed is active so that its
// polling stops.
func (h *Handlers) Hubs(c echo.Context) error {
	ctx := c.Request().Context()
	out := make([]views.HubSummary, len(h.hubs))
	var wg sync.WaitGroup
	for i := range h.hubs {
		wg.Go(func() { out[i] = h.hubSummary(ctx, &h.hubs[i]) })
	}
	wg.Wait()
	status := http.StatusOK
	if IsHTMX(c.Request()) && !slices.ContainsFunc(out, func(s views.HubSummary) bool { return len(s.Active) > 0 }) {
		status = StatusStopPolling
	}
	return page(c, status, views.HubsPage(h.layout(c, "Hubs", "hubs", ""), out), views.ActiveJobsSection(out))
}

func (h *Handlers) hubSummary(ctx context.Context, hb *Hub) views.HubSummary {
	s := views.HubSummary{Name: hb.Name, Host: hb.Host, Reachable: true}
	token := ""
	for range hubsScanPages {
		fresh, err := hb.Jobs.QueryJobs(ctx, hub.QueryJobsOptions{PageSize: 1000, Continuation: token})
		if err != nil {
			h.learnLimit(hb.Name, err)
			p := Describe(err)
			s.Reachable, s.Problem = false, p.Title+". "+p.Detail
			if p.HubCode != "" {
				s.Problem += " (IoT Hub error " + p.HubCode + ")"
			}
			// A hub read halfway is not listed at all: the page says
			// plainly that its jobs are missing rather than showing some.
			s.Active = nil
			break
		}
		if fresh.Stale && !s.Freshness.Stale {
			s.Freshness = freshness(h, fresh)
		}
		for i := range fresh.Value.Jobs {
			if j := &fresh.Value.Jobs[i]; jobs.Active(j.Status) {
				s.Active = append(s.Active, activeJobView(hb.Name, j))
			}
		}
		token = fresh.Value.Continuation
		if token == "" {
			break
		}
	}
	s.ActiveJobs = len(s.Active)
	s.ActiveAtLeast = s.Reachable && token != ""
	switch limit := h.knownLimit(hb.Name); {
	case limit > 0:
		s.ActiveJobLimit = limit
	case limit < 0 && s.ActiveJobs > 0 && !s.ActiveAtLeast:
		s.ActiveJobLimit = s.ActiveJobs // refused at this many: that is the limit
	}
	return s
}

// activeJobView is one line of the cross-hub list. The job is the budget's
// shared answer: it is only read.
func activeJobView(hubName string, j *hub.Job) views.ActiveJob {
	v := views.ActiveJob{JobRow: jobRow(hubName, j)}
	if m := j.CloudToDeviceMethod; m != nil {
		v.Method = m.MethodName
	}
	if j.Status == hub.StatusRunning {
		v.StopsBy = j.PlannedEnd()
	}
	return v
}
