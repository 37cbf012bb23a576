package handlers

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/views"
)

const (
	// planSampleShown is how many device ids the plan shows.
	planSampleShown = 5
	// planIDsPage is how many ids the plan reads in its one SELECT deviceId
	// query: a sample to show, and, when the whole target fits in it, the
	// exact device list a plan of several waves is cut from. One query
	// either way (IoT Hub allows about 20 a minute).
	planIDsPage = 100
	// guidLength is the id length assumed when no sample could be read.
	guidLength = 36
)

// PlanRollout serves POST /hubs/{hub}/rollouts/plan: the plan fragment of
// the form as it stands. It only reads (a COUNT and one page of ids,
// through the hub's query budget, as the signed-in user): field messages
// swapped next to their fields, the matching devices and a sample, the
// waves and hub jobs, the limits, an ETA and the worst case. A form that
// cannot be read is a 400 like any other POST.
func (h *Handlers) PlanRollout(c echo.Context) error {
	hb, err := h.hubParam(c)
	if err != nil {
		return err
	}
	d, rid, err := rolloutForm(c)
	if err != nil {
		return err
	}
	if !rollout.ValidID(rid) {
		rid = rollout.NewID() // a plan only needs some id to order devices by
	}
	s, fe := h.spec(hb, d)
	return render(c, http.StatusOK, views.PlanFragment(h.plan(c.Request().Context(), hb, rid, s, fe)))
}

// plan builds the plan view. Field problems do not stop it: whatever can be
// counted and planned is shown beside the messages.
func (h *Handlers) plan(ctx context.Context, hb *Hub, rid string, s rollout.Spec, fe rollout.FieldErrors) views.Plan {
	p := views.Plan{Hub: hb.Name, Errors: fe, Fields: views.FormFields,
		MaxActiveJobs: max(hb.MaxActiveJobs, 1), JobsOpsPerMinute: hb.JobsOpsPerMinute,
		DeviceRate: strconv.FormatFloat(h.ro.DeviceRate, 'f', -1, 64)}
	if p.JobsOpsPerMinute <= 0 {
		p.JobsOpsPerMinute = hub.DefaultJobsOpsPerMinute
	}
	if _, bad := fe[rollout.FieldCondition]; bad {
		return p
	}
	if u, ok := auth.UserFrom(ctx); ok {
		ctx = hub.WithCaller(ctx, u.Subject)
	}
	count, err := hb.Jobs.CountDevices(ctx, s.Condition)
	if err != nil {
		var field string
		p.Unavailable, field = countProblem(err)
		if field != "" {
			fe[rollout.FieldCondition] = field
		}
		return p
	}
	p.Counted, p.Devices, p.CountAge = true, int(count.Value), freshness(h, count)
	if p.Devices == 0 {
		p.Unavailable = "No device matches this condition now, so nothing would be sent."
		return p
	}
	var ids []string
	complete := false
	if page, err := hb.Jobs.DeviceIDs(ctx, s.Condition, hub.PageOptions{PageSize: planIDsPage}); err == nil {
		ids, complete = page.Value.DeviceIDs, page.Value.Continuation == ""
		p.Sample = ids[:min(planSampleShown, len(ids))]
	}
	if _, bad := fe[rollout.FieldWaves]; bad {
		return p
	}
	pl, exact := wavePlan(rid, s.Waves, p.Devices, ids, complete)
	if pl == nil {
		return p
	}
	p.HubJobs, p.JobsExact = pl.Jobs(), exact
	for _, w := range pl.Waves {
		p.Waves = append(p.Waves, views.PlanWave{Number: w.Number, Step: w.Step, Size: w.Size, Jobs: len(w.Jobs),
			Approval: s.Rules.NeedsApproval(w.Number, w.Size)})
	}
	if eta, err := rollout.Estimate(pl, s.Bake, rollout.Capacity{DeviceRate: h.ro.DeviceRate, MaxActiveJobs: p.MaxActiveJobs, PollInterval: h.ro.PollInterval}); err == nil {
		p.ETA = views.Duration(eta.Total)
	}
	p.WorstCase = rollout.WorstCase(pl, s.Rules, p.MaxActiveJobs).Text
	return p
}

// wavePlan is the plan of count devices in waves. One wave sends the
// condition as is (one job, exact). Several waves are cut exactly from the
// device list when one page of ids held all of them; otherwise the IN-list
// jobs are estimated from the sample's mean id length, which is what
// decides how many ids fit in a condition.
func wavePlan(rid string, waves rollout.WaveSpec, count int, ids []string, complete bool) (*rollout.Plan, bool) {
	if waves.Waves() == 1 {
		pl, err := rollout.NewConditionPlan(rid, "*", count)
		return pl, err == nil
	}
	if complete && len(ids) == count {
		// A preview: the secret that orders the real plan is drawn when
		// the rollout is created, so only the sizes and cuts are exact.
		if pl, err := rollout.NewPlan(rid, "", ids, waves); err == nil {
			return pl, true
		}
	}
	sizes, err := waves.Sizes(count)
	if err != nil || len(sizes) == 0 {
		return nil, false
	}
	perJob := rollout.IDsPerJob(meanLength(ids))
	pl := &rollout.Plan{RolloutID: rid, Spec: waves, Devices: count}
	for i, size := range sizes {
		w := rollout.Wave{Number: i + 1, Size: size}
		for part, left := 1, size; left > 0; part++ {
			n := min(left, perJob)
			// Only how many devices each job gets is known before the
			// device list is frozen; their ids are not.
			w.Jobs = append(w.Jobs, rollout.Job{ID: rollout.JobID(rid, w.Number, part), Wave: w.Number, Part: part, Devices: make([]string, n)})
			left -= n
		}
		pl.Waves = append(pl.Waves, w)
	}
	return pl, false
}

// meanLength is the mean length of ids, rounded up; guidLength without any.
func meanLength(ids []string) int {
	if len(ids) == 0 {
		return guidLength
	}
	total := 0
	for _, id := range ids {
		total += len(id)
	}
	return int(math.Ceil(float64(total) / float64(len(ids))))
}

// countProblem says why the devices could not be counted: in general words,
// and, when it is the condition the hub refuses, a message for the field.
func countProblem(err error) (general, field string) {
	switch {
	case errors.Is(err, hub.ErrQueryRefused):
		msg := "IoT Hub refuses this condition"
		if he, ok := errors.AsType[*hub.Error](err); ok && he.Message != "" {
			msg += ": " + he.Message
		}
		return "The devices could not be counted: IoT Hub refuses the condition (see the message next to it). A job with it would be refused too.", msg
	case errors.Is(err, hub.ErrThrottled):
		wait := hub.RetryAfterHint(err)
		if wait <= 0 {
			wait = defaultRetry
		}
		return "The hub's query budget is spent, so the devices were not counted; try again in " + views.Duration(wait) + ".", ""
	}
	p := Describe(err)
	return "The devices could not be counted: " + p.Title + ". " + p.Detail, ""
}
