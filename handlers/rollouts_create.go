package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/views"
)

// CreateRollout serves POST /hubs/{hub}/rollouts, after AuthorAuthorize and
// the CSRF check: it reads and validates the form (bad input never reaches
// the engine or the hub: 422 with the form as typed and each message next
// to its field), and hands the spec to the engine under the form's rollout
// id, so a double submit is one rollout. It lands on the rollout page, or
// on the job's page for a one-wave rollout whose job was created.
func (h *Handlers) CreateRollout(c echo.Context) error {
	hb, err := h.hubParam(c)
	if err != nil {
		return err
	}
	d, rid, err := rolloutForm(c)
	if err != nil {
		return err
	}
	if !rollout.ValidID(rid) {
		return badRequest("The form has no valid rollout id", "Open the New job form again and send it from there.")
	}
	ctx := c.Request().Context()
	f := views.RolloutForm{Hub: hb.Name, RID: rid, Values: draftValues(d), CSRFToken: auth.CSRFToken(ctx)}
	s, fe := h.spec(hb, d)
	if len(fe) > 0 {
		f.Errors = fe
		f.Problem = "Some fields need attention; see the messages next to them."
		return h.renderForm(c, hb, http.StatusUnprocessableEntity, f)
	}
	eng, err := h.engine()
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(ctx)
	r, err := eng.Create(ctx, auditOrigin(c, u), rid, s)
	if busy, ok := errors.AsType[*rollout.SlotBusyError](err); ok {
		f.SlotBusy = slotBusyView(hb.Name, busy)
		return h.renderForm(c, hb, http.StatusConflict, f)
	}
	if errors.Is(err, rollout.ErrInvalidSpec) {
		f.Errors, _ = errors.AsType[rollout.FieldErrors](err)
		f.Problem = "The rollout could not be planned: " + Describe(err).Detail
		return h.renderForm(c, hb, http.StatusUnprocessableEntity, f)
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, landing(r))
}

// landing is where a created rollout's author goes: the job's page for a
// one-wave rollout whose job exists, else the rollout page.
func landing(r *rollout.Rollout) string {
	if len(r.Waves) == 1 && len(r.Waves[0].Jobs) == 1 {
		if j := r.Waves[0].Jobs[0]; j.State != "pending" && j.State != "refused" {
			return views.JobURL(r.Hub, j.ID)
		}
	}
	return views.RolloutURL(r.Hub, r.ID)
}

func slotBusyView(hubName string, e *rollout.SlotBusyError) *views.SlotBusy {
	v := &views.SlotBusy{Limit: e.Limit}
	for _, h := range e.Holders {
		v.Holders = append(v.Holders, views.SlotHolder{Hub: hubName, JobID: h.JobID, Status: string(h.Status),
			StatusLabel: strings.ToLower(jobs.StatusLabel(string(h.Status))), StopsBy: h.StopsBy})
	}
	return v
}
