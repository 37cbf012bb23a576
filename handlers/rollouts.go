package handlers

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
)

// Rollouts is what the pages ask of the rollout engine, which stores and
// drives rollouts. Create is idempotent on rid: the form carries the id it
// was rendered with, so a double submit or a retry lands on the same
// rollout. The engine refuses an approval by the author
// (rollout.ErrSelfApproval) whatever the pages show.
type Rollouts interface {
	Create(ctx context.Context, origin jobs.Origin, rid string, s rollout.Spec) (*rollout.Rollout, error)
	Get(ctx context.Context, hub, rid string) (*rollout.Rollout, error)
	List(ctx context.Context, hub string, state rollout.State) ([]rollout.Rollout, error)
	Halt(ctx context.Context, origin jobs.Origin, hub, rid, reason string) (*rollout.Rollout, error)
	Approve(ctx context.Context, origin jobs.Origin, hub, rid string) (*rollout.Rollout, error)
	Remaining(ctx context.Context, hub, rid string) ([]string, error)
}

// RolloutsConfig is the engine and the rollouts settings the pages need
// to plan with (config `rollouts`).
type RolloutsConfig struct {
	Engine Rollouts
	// PollInterval is how late the engine notices a wave finished (ETA).
	PollInterval time.Duration
	// ApprovalOverDevices gates every wave above this size (0: never).
	ApprovalOverDevices int
	// DeviceRate is the hub's job device operations per second used for
	// the ETA; default DefaultDeviceRate (an S1 unit).
	DeviceRate float64
}

// DefaultDeviceRate is IoT Hub's job device-operation rate on one S1 unit:
// about 10 devices per second, shared by every running job of the hub.
const DefaultDeviceRate = 10

// DefaultRolloutPoll matches the engine's default rollouts.poll_interval.
const DefaultRolloutPoll = 15 * time.Second

func (c RolloutsConfig) withDefaults() RolloutsConfig {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultRolloutPoll
	}
	if c.DeviceRate <= 0 {
		c.DeviceRate = DefaultDeviceRate
	}
	return c
}

// mayAuthor: author (or admin) and, when the hub names its authors, one of
// the user's claim values is in that list. Deny by default.
func mayAuthor(u *auth.User, hb *Hub) bool {
	return u != nil && u.Can(auth.RoleAuthor) && narrowedTo(u, hb.Authors)
}

// narrowedTo reports whether a hub's list of claim values (operators or
// authors) lets u in: an empty list narrows nothing.
func narrowedTo(u *auth.User, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	for _, v := range u.ClaimValues {
		if slices.Contains(allowed, v) {
			return true
		}
	}
	return false
}

// AuthorAuthorize guards the "New job" form, its plan and its create, before
// the CSRF check: the user must be an author on this hub. A refusal is
// recorded as authz.denied (through the jobs service, as for cancel) and
// answered 403; nothing is read from the hub and nothing is created.
func (h *Handlers) AuthorAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, _ := auth.UserFrom(c.Request().Context())
		hb, err := h.hubParam(c)
		if u != nil && u.Can(auth.RoleAuthor) && (err != nil || mayAuthor(u, hb)) {
			if c.Request().Method == http.MethodPost {
				keepBody(c, maxRolloutFormBytes) // rolloutForm parses these bytes strictly
			}
			return next(c) // an unknown hub gets its 400/404 from the handler
		}
		return h.deny(c, u, "", "creating needs the author role on this hub", "You may not create jobs here",
			"Creating jobs needs the author role on this hub. The attempt has been recorded.")
	}
}

// HaltAuthorize guards POST .../rollouts/{rid}/halt before the CSRF check:
// an operator on this hub, or the rollout's author while it has not started
// (withdrawing a rollout that waits for its start time or a slot).
func (h *Handlers) HaltAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, _ := auth.UserFrom(c.Request().Context())
		hb, err := h.hubParam(c)
		switch {
		case u == nil:
		case err != nil && u.Can(auth.RoleOperator), err == nil && mayHalt(u, hb, h.authoredUnstarted(c, u, hb)):
			keepBody(c, maxCancelFormBytes) // the reason is read from the body the CSRF check parses
			return next(c)
		}
		rid, _ := rolloutIDParam(c)
		return h.deny(c, u, rid, "halting needs the operator role on this hub (or being the author of a rollout not yet started)", "You may not halt this rollout",
			"Halting needs the operator role on this hub (the author may withdraw their own rollout until it starts). The attempt has been recorded.")
	}
}

// ApproveAuthorize guards POST .../rollouts/{rid}/approve before the CSRF
// check: the approver role. That the approver is not the author is the
// engine's rule, checked again by the handler for its wording.
func (h *Handlers) ApproveAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		u, _ := auth.UserFrom(c.Request().Context())
		if u != nil && u.Can(auth.RoleApprover) {
			keepBody(c, maxCancelFormBytes)
			return next(c)
		}
		rid, _ := rolloutIDParam(c)
		return h.deny(c, u, rid, "approving needs the approver role", "You may not approve rollouts",
			"Approving a wave needs the approver role. The attempt has been recorded.")
	}
}

// deny records an authz.denied entry for the validated hub (and rollout id,
// in the job field: a rollout's hub jobs all start with it) and answers 403.
func (h *Handlers) deny(c echo.Context, u *auth.User, rid, why, title, detail string) error {
	ctx := c.Request().Context()
	if err := h.jobs.Denied(ctx, auditOrigin(c, u), jobs.Denial{Hub: hubNameParam(c), Target: rid, Why: why}); err != nil {
		h.log.ErrorContext(ctx, "audit of a denied request failed", "err", err)
	}
	return &Problem{Status: http.StatusForbidden, Title: title, Detail: detail}
}

// mayHalt: an operator on the hub, or the author of a rollout that has not
// started (authoredUnstarted).
func mayHalt(u *auth.User, hb *Hub, authoredUnstarted bool) bool {
	return mayCancel(u, hb) || (authoredUnstarted && u.Can(auth.RoleAuthor))
}

// authoredUnstarted reports whether the {rid} rollout was made by u and has
// not started; reading it fails closed.
func (h *Handlers) authoredUnstarted(c echo.Context, u *auth.User, hb *Hub) bool {
	if h.ro.Engine == nil || u == nil || !u.Can(auth.RoleAuthor) || mayCancel(u, hb) {
		return false
	}
	rid, err := rolloutIDParam(c)
	if err != nil {
		return false
	}
	r, err := h.ro.Engine.Get(c.Request().Context(), hb.Name, rid)
	return err == nil && isAuthor(u, r.Author) && nothingSent(r)
}

// nothingSent reports whether no hub job of r has been created yet: the
// rollout is planned, or waits for its start time or a free active-job
// slot. Its author may then withdraw it; once a job exists, halting it is
// an operator's decision.
func nothingSent(r *rollout.Rollout) bool {
	switch {
	case r.Status.State == rollout.Planned:
		return true
	case r.Status.State.Final():
		return false
	}
	for _, w := range r.Waves {
		for _, j := range w.Jobs {
			if j.State != "pending" && j.State != "" {
				return false
			}
		}
	}
	return true
}

// isAuthor matches a person to a rollout's author by issuer and subject,
// the stable identity (names and e-mails change).
func isAuthor(u *auth.User, a audit.Actor) bool {
	return u != nil && u.Subject != "" && u.Subject == a.Subject && u.Issuer == a.Issuer
}

// rolloutIDParam is the {rid} path segment unescaped once and validated.
func rolloutIDParam(c echo.Context) (string, error) {
	rid, err := url.PathUnescape(c.Param("rid"))
	if err != nil || !rollout.ValidID(rid) {
		return "", badRequest("That is not a rollout id", "Rollout ids are 1 to 16 lowercase letters or digits.")
	}
	return rid, nil
}

// engine is the rollout engine, or a 503 when this portal runs without one.
func (h *Handlers) engine() (Rollouts, error) {
	if h.ro.Engine == nil {
		return nil, &Problem{Status: http.StatusServiceUnavailable, Title: "Rollouts are not available",
			Detail: "This portal runs without the rollout engine, so jobs cannot be created or rollouts shown here.", RetryAfter: defaultRetry}
	}
	return h.ro.Engine, nil
}

// rolloutTarget validates {hub} and {rid}.
func (h *Handlers) rolloutTarget(c echo.Context) (*Hub, string, error) {
	hb, err := h.hubParam(c)
	if err != nil {
		return nil, "", err
	}
	rid, err := rolloutIDParam(c)
	if err != nil {
		return nil, "", err
	}
	return hb, rid, nil
}
