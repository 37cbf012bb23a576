package handlers

import (
	"context"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/views"
)

// hubsScanPages bounds how many job pages /hubs reads per hub to count
// active jobs; beyond it the count is shown as "at least".
const hubsScanPages = 3

// Hubs serves GET /hubs: every hub, whether it answers, its active jobs and
// its active-job limit when a 429 has revealed it. Hubs are asked in
// parallel through their budgets.
func (h *Handlers) Hubs(c echo.Context) error {
	ctx := c.Request().Context()
	out := make([]views.HubSummary, len(h.hubs))
	var wg sync.WaitGroup
	for i := range h.hubs {
		wg.Go(func() { out[i] = h.hubSummary(ctx, &h.hubs[i]) })
	}
	wg.Wait()
	return render(c, http.StatusOK, views.HubsPage(h.layout(c, "Hubs", "hubs", ""), out))
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
			break
		}
		if fresh.Stale && !s.Freshness.Stale {
			s.Freshness = freshness(h, fresh)
		}
		for _, j := range fresh.Value.Jobs {
			if active(j.Status) {
				s.ActiveJobs++
			}
		}
		token = fresh.Value.Continuation
		if token == "" {
			break
		}
	}
	s.ActiveAtLeast = s.Reachable && token != ""
	switch limit := h.knownLimit(hb.Name); {
	case limit > 0:
		s.ActiveJobLimit = limit
	case limit < 0 && s.ActiveJobs > 0 && !s.ActiveAtLeast:
		s.ActiveJobLimit = s.ActiveJobs // refused at this many: that is the limit
	}
	return s
}
