package handlers

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
	"github.com/hubjobs/hubjobs/views"
)

// rolloutStates are the states ?status= may name.
var rolloutStates = []rollout.State{rollout.Planned, rollout.Running, rollout.Baking, rollout.AwaitingApproval, rollout.Completed, rollout.Halted}

// Rollouts serves GET /hubs/{hub}/rollouts?status=: the hub's rollouts,
// newest first.
func (h *Handlers) Rollouts(c echo.Context) error {
	hb, err := h.hubParam(c)
	if err != nil {
		return err
	}
	status := c.QueryParam("status")
	if status != "" && !slices.Contains(rolloutStates, rollout.State(status)) {
		return badRequest("Bad rollout state", "Filter rollouts by one of: planned, running, baking, awaiting_approval, completed, halted.")
	}
	eng, err := h.engine()
	if err != nil {
		return err
	}
	list, err := eng.List(c.Request().Context(), hb.Name, rollout.State(status))
	if err != nil {
		return err
	}
	slices.SortStableFunc(list, func(a, b rollout.Rollout) int { return b.Created.Compare(a.Created) })
	u, _ := auth.UserFrom(c.Request().Context())
	m := views.RolloutList{Hub: hb.Name, Status: status, Statuses: views.RolloutStates(), CanCreate: mayAuthor(u, hb), Now: h.now()}
	for _, r := range list {
		m.Rows = append(m.Rows, views.RolloutRow{Hub: hb.Name, ID: r.ID, State: string(r.Status.State),
			StateLabel: views.RolloutStateLabel(string(r.Status.State)), Author: jobs.ActorName(r.Author), Created: r.Created,
			Devices: r.Devices, Waves: len(r.Waves), Wave: r.Status.Wave, What: changeText(r.Spec)})
	}
	return render(c, http.StatusOK, views.RolloutsPage(h.layout(c, "Rollouts on "+hb.Name, "rollouts", hb.Name), m))
}

// Rollout serves GET /hubs/{hub}/rollouts/{rid}.
func (h *Handlers) Rollout(c echo.Context) error {
	hb, m, err := h.rolloutPage(c)
	if err != nil {
		return err
	}
	return page(c, http.StatusOK, views.RolloutFullPage(h.layout(c, "Rollout "+m.ID, "rollouts", hb.Name), m), views.RolloutStatus(m))
}

// RolloutStatus serves the polled live fragment; 286 once the rollout is
// final so htmx stops polling.
func (h *Handlers) RolloutStatus(c echo.Context) error {
	_, m, err := h.rolloutPage(c)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if m.Final {
		status = StatusStopPolling
	}
	return render(c, status, views.RolloutStatus(m))
}

func (h *Handlers) rolloutPage(c echo.Context) (*Hub, views.Rollout, error) {
	hb, rid, err := h.rolloutTarget(c)
	if err != nil {
		return nil, views.Rollout{}, err
	}
	eng, err := h.engine()
	if err != nil {
		return nil, views.Rollout{}, err
	}
	r, err := eng.Get(c.Request().Context(), hb.Name, rid)
	if err != nil {
		return nil, views.Rollout{}, err
	}
	return hb, h.rolloutView(c, hb, r), nil
}

// HaltRollout serves POST /hubs/{hub}/rollouts/{rid}/halt, after
// HaltAuthorize and the CSRF check: the engine cancels every queued or
// scheduled job of the rollout and creates nothing more.
func (h *Handlers) HaltRollout(c echo.Context) error {
	return h.rolloutAction(c, func(eng Rollouts, o jobs.Origin, hb *Hub, rid, reason string) (*rollout.Rollout, *views.Banner, error) {
		r, err := eng.Halt(c.Request().Context(), o, hb.Name, rid, reason)
		if err != nil {
			return nil, nil, err
		}
		return r, haltBanner(r), nil
	})
}

// haltBanner says what became of a halted rollout's jobs as the engine
// returned them. The engine only logs a cancel that failed and retries it
// on its next poll, so a job still waiting to start is reported as such,
// never as cancelled.
func haltBanner(r *rollout.Rollout) *views.Banner {
	var jobs, waiting, running int
	for _, w := range r.Waves {
		for _, j := range w.Jobs {
			jobs++
			switch j.State {
			case "pending", "created", "cancelling", string(hub.StatusEnqueued), string(hub.StatusQueued), string(hub.StatusScheduled), string(hub.StatusUnknown):
				waiting++
			case string(hub.StatusRunning):
				running++
			}
		}
	}
	detail := "Nothing more will be created."
	switch {
	case waiting > 0:
		detail += " " + views.Count(waiting) + " " + plural(waiting, "job", "jobs") + " of it not yet cancelled: the engine cancels " +
			plural(waiting, "it", "them") + " on its next poll, before " + plural(waiting, "it starts", "they start") + " if the hub allows."
	case jobs > running:
		detail += " Its jobs that had not started are cancelled."
	}
	if running > 0 {
		detail += " The running " + plural(running, "job runs", "jobs run") + " to " + plural(running, "its", "their") + " end."
	}
	kind := "ok"
	if waiting > 0 {
		kind = "info"
	}
	return &views.Banner{Kind: kind, Title: "Rollout halted", Detail: detail}
}

// ApproveRollout serves POST /hubs/{hub}/rollouts/{rid}/approve, after
// ApproveAuthorize and the CSRF check. The author is refused here in words
// and by the engine whatever this says.
func (h *Handlers) ApproveRollout(c echo.Context) error {
	return h.rolloutAction(c, func(eng Rollouts, o jobs.Origin, hb *Hub, rid, _ string) (*rollout.Rollout, *views.Banner, error) {
		ctx := c.Request().Context()
		u, _ := auth.UserFrom(ctx)
		if r, err := eng.Get(ctx, hb.Name, rid); err == nil && isAuthor(u, r.Author) {
			return nil, nil, rollout.ErrSelfApproval
		}
		r, err := eng.Approve(ctx, o, hb.Name, rid)
		return r, &views.Banner{Kind: "ok", Title: "Wave approved", Detail: "The waiting wave may start now."}, err
	})
}

type rolloutOp func(eng Rollouts, o jobs.Origin, hb *Hub, rid, reason string) (*rollout.Rollout, *views.Banner, error)

// rolloutAction validates the target and the form (a reason from the body,
// plain text under 500 characters) and renders the rollout the engine
// returned with a banner.
func (h *Handlers) rolloutAction(c echo.Context, op rolloutOp) error {
	hb, rid, err := h.rolloutTarget(c)
	if err != nil {
		return err
	}
	reason, _, err := cancelForm(c, "")
	if err != nil {
		return err
	}
	eng, err := h.engine()
	if err != nil {
		return err
	}
	u, _ := auth.UserFrom(c.Request().Context())
	r, banner, err := op(eng, auditOrigin(c, u), hb, rid, reason)
	if err != nil {
		return err
	}
	m := h.rolloutView(c, hb, r)
	m.Banner = banner
	return page(c, http.StatusOK, views.RolloutFullPage(h.layout(c, "Rollout "+m.ID, "rollouts", hb.Name), m), views.RolloutStatus(m))
}

// rolloutView converts a stored rollout into the page's view, deciding
// which buttons the signed-in user is offered.
func (h *Handlers) rolloutView(c echo.Context, hb *Hub, r *rollout.Rollout) views.Rollout {
	u, _ := auth.UserFrom(c.Request().Context())
	st := r.Status
	m := views.Rollout{Hub: hb.Name, ID: r.ID, State: string(st.State), StateLabel: views.RolloutStateLabel(string(st.State)),
		Final: st.State.Final(), Author: jobs.ActorName(r.Author), Created: r.Created, Devices: r.Devices,
		What: changeText(r.Spec), Condition: r.Spec.Condition, Reason: r.Spec.Reason, Next: r.Next, Waiting: r.Waiting,
		CSRFToken: auth.CSRFToken(c.Request().Context()), Now: h.now()}
	if st.State == rollout.Halted {
		m.Halted = haltedText(r)
		// Only a rollout of several waves froze its devices, so only it
		// knows which it never reached.
		m.CanContinue = len(r.Waves) > 1 && mayAuthor(u, hb)
	}
	author := isAuthor(u, r.Author)
	m.CanHalt = !m.Final && mayHalt(u, hb, author && nothingSent(r))
	if st.State == rollout.AwaitingApproval && u.Can(auth.RoleApprover) {
		m.CanApprove = !author
		if author {
			m.ApproveNote = "You wrote this rollout, so someone else must approve it."
		}
	}
	for _, w := range r.Waves {
		wv := views.RolloutWave{Number: w.Number, Size: w.Size, Started: w.Started, Finished: w.Finished, Current: w.Number == st.Wave && !m.Final}
		if a, ok := r.ApprovedBy[w.Number]; ok {
			wv.ApprovedBy = jobs.ActorName(a)
		}
		for _, j := range w.Jobs {
			wv.Jobs = append(wv.Jobs, views.RolloutJob{ID: j.ID, State: j.State, StateLabel: jobs.StatusLabel(j.State),
				Devices: j.Devices, Stats: statsView(j.Stats), Start: j.Start})
		}
		for _, v := range w.Verdicts {
			wv.Verdicts = append(wv.Verdicts, views.Verdict{Text: v.Text, Fired: v.Fired})
		}
		m.Waves = append(m.Waves, wv)
	}
	return m
}

// haltedText says who or what halted a rollout and why.
func haltedText(r *rollout.Rollout) string {
	by := audit.EngineActor.Name
	if a := r.HaltedBy; a.Subject != "" || a.Name != "" || a.Email != "" {
		by = jobs.ActorName(a)
	}
	text := "Halted by " + by
	switch r.Status.Halt {
	case rollout.HaltFailures:
		text += " because the failure rule fired"
	case rollout.HaltHealth:
		text += " because the health rule fired"
	case rollout.HaltError:
		text += " because it could not go on"
	}
	if note := strings.TrimSpace(r.Status.Note); note != "" {
		text += ": " + note
	}
	return text + "."
}

// changeText names a rollout's change: "Direct method reboot", "Twin update".
func changeText(s rollout.Spec) string {
	label := jobs.TypeLabel(string(s.Type))
	if s.Type == hub.TypeScheduleDeviceMethod && s.Method != nil {
		label += " " + s.Method.MethodName
	}
	return label
}
