package jobs

import (
	"context"
	"errors"
	"strings"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// CancelRequest is one person's (or the engine's) cancel of one job.
type CancelRequest struct {
	Hub, JobID string
	Reason     string // optional; goes into both audit entries
	// Confirm is the job id typed by hand; checked only for jobs of
	// ConfirmThreshold devices or more.
	Confirm string
}

// CancelKind is what became of a cancel.
type CancelKind int

const (
	// Cancelled: IoT Hub accepted this caller's cancel.
	Cancelled CancelKind = iota + 1
	// AlreadyCancelled: the re-read showed the job cancelled; nothing sent.
	AlreadyCancelled
	// CancelledByOther: another cancel of the same job was on its way;
	// this one shared its hub call (Outcome.LedBy says whose it was).
	CancelledByOther
	// NotCancellable: the re-read showed a state IoT Hub will not cancel
	// (running, finished); nothing sent.
	NotCancellable
	// ConfirmationMismatch: a large job without its id typed; nothing sent.
	ConfirmationMismatch
	// NotAttempted: the re-read failed (hub busy, budget spent, not
	// found); nothing sent. Outcome.Err says why.
	NotAttempted
	// Refused: IoT Hub refused the cancel; Outcome.Err is its error, with
	// status, code and tracking id.
	Refused
	// Unknown: IoT Hub did not answer in time. Outcome.Job is the job as a
	// read afterwards showed it, when that read worked.
	Unknown
)

// Outcome is what a cancel did, for the caller to put into words.
type Outcome struct {
	Kind CancelKind
	// Job is the job as the hub last showed it: after the cancel, or as
	// re-read when nothing was sent. Nil when no answer is known.
	Job *hub.Job
	// LedBy is who made the hub call this cancel shared (CancelledByOther).
	LedBy audit.Actor
	// CancelledBy is the portal's record of who cancelled an
	// AlreadyCancelled job, when the trail knows.
	CancelledBy *audit.Entry
	// Err is the hub's (or the re-read's) error behind NotAttempted,
	// Refused and Unknown.
	Err error
	// NotRecorded is set when the outcome could not be written to the
	// audit trail: the intent is on record and reconciliation settles it.
	NotRecorded error
}

// Reconciled reports whether an Unknown outcome was settled by a read.
func (o Outcome) Reconciled() bool { return o.Kind == Unknown && o.Job != nil }

// Cancel cancels a job, audited end to end: intent (if it cannot be
// written, nothing is sent and the error is a *NotRecordedError) → re-read
// → the hub call, coalesced with any cancel of the same job in flight →
// outcome → snapshot. Once the intent is written, the work runs detached
// from ctx's cancellation (bounded by Config.WorkTimeout), so a client that
// hangs up cannot leave an intent without its outcome. Every other result,
// the hub's refusals included, is in the Outcome.
func (s *Service) Cancel(ctx context.Context, origin Origin, r CancelRequest) (Outcome, error) {
	h, err := s.hub(r.Hub)
	if err != nil {
		return Outcome{}, err
	}
	if err := hub.CheckJobID(r.JobID); err != nil {
		return Outcome{}, err
	}
	ctx, cancel := s.detached(ctx)
	defer cancel()

	s.forgetHistory(r.Hub, r.JobID)
	if _, err := s.audit.Append(ctx, origin.entry(audit.JobCancelIntent, r.Hub, r.JobID, r.Reason, "requested")); err != nil {
		s.count(r.Hub, "audit_unavailable")
		return Outcome{}, &NotRecordedError{Action: "Cancel", Err: err}
	}

	o, result := s.cancel(ctx, h, origin, r)

	out := withHubError(origin.entry(outcomeAction(o.Kind), r.Hub, r.JobID, r.Reason, result), o.Err)
	s.count(r.Hub, strings.TrimPrefix(string(out.Action), "job.cancel."))
	if o.Kind == Cancelled && s.announce != nil {
		o.NotRecorded = s.recordCancelled(ctx, out, cancelledEvent(origin, r, o.Job))
	} else {
		o.NotRecorded = s.record(ctx, out)
	}
	s.forgetHistory(r.Hub, r.JobID)
	if o.Job != nil && o.Kind != NotCancellable && o.Kind != ConfirmationMismatch {
		s.Remember(ctx, r.Hub, o.Job, s.now())
	}
	return o, nil
}

// outcomeAction is the audit action of each kind of outcome.
func outcomeAction(k CancelKind) audit.Action {
	switch k {
	case Cancelled, AlreadyCancelled, CancelledByOther:
		return audit.JobCancelSucceeded
	case Unknown:
		return audit.JobCancelUnknown
	}
	return audit.JobCancelRefused
}

// cancel decides and performs the cancel and says, for the audit result,
// what happened. The re-read (through the budget: usually served from its
// TTL cache) catches jobs that are already cancelled or running without
// spending a cancel on the hub, and gives the device count the typed
// confirmation depends on.
func (s *Service) cancel(ctx context.Context, h HubJobs, origin Origin, r CancelRequest) (Outcome, string) {
	// ForWrite: the re-read may spend the tokens the budget keeps for
	// writes, and a person's own read allowance does not apply to it.
	fresh, err := h.GetJob(hub.ForWrite(ctx), r.JobID)
	if err != nil {
		return Outcome{Kind: NotAttempted, Err: err}, "not attempted: " + err.Error()
	}
	cur := fresh.Value
	switch {
	case cur.Status == hub.StatusCancelled:
		return Outcome{Kind: AlreadyCancelled, Job: cur, CancelledBy: s.cancelledBy(ctx, r.Hub, r.JobID)}, "already cancelled"
	case !Cancellable(cur.Status):
		return Outcome{Kind: NotCancellable, Job: cur}, "not attempted: job is " + string(cur.Status)
	case NeedsTypedConfirmation(cur) && r.Confirm != r.JobID:
		return Outcome{Kind: ConfirmationMismatch, Job: cur}, "not attempted: confirmation did not match the job id"
	}

	job, leader, led, err := s.coalescedCancel(ctx, h, origin, r)
	switch {
	case err == nil && !led:
		return Outcome{Kind: CancelledByOther, Job: job, LedBy: leader}, "already cancelled by " + ActorName(leader)
	case err == nil:
		return Outcome{Kind: Cancelled, Job: job}, "cancelled"
	case errors.Is(err, hub.ErrOutcomeUnknown) && job != nil:
		return Outcome{Kind: Unknown, Job: job, Err: err}, "no answer; reconciled status " + string(job.Status)
	case errors.Is(err, hub.ErrOutcomeUnknown):
		return Outcome{Kind: Unknown, Err: err}, "no answer; not reconciled"
	case errors.Is(err, hub.ErrNotCancellable):
		return Outcome{Kind: Refused, Job: cur, Err: err}, "refused by IoT Hub"
	}
	return Outcome{Kind: Refused, Err: err}, "refused: " + err.Error()
}

// cancelFlight is the shared answer of one coalesced hub cancel.
type cancelFlight struct {
	job    *hub.Job
	err    error
	leader audit.Actor
}

// coalescedCancel makes ONE hub call for concurrent cancels of the same
// job — a double click, two operators at once — and tells every caller but
// the one that made it who did (led == false).
func (s *Service) coalescedCancel(ctx context.Context, h HubJobs, origin Origin, r CancelRequest) (job *hub.Job, leader audit.Actor, led bool, err error) {
	ran := false // set by the flight's function, only for the caller that started it
	ch := s.cancels.DoChan(historyKey(r.Hub, r.JobID), func() (any, error) {
		ran = true
		job, err := h.CancelJob(ctx, r.JobID)
		return cancelFlight{job, err, origin.Actor}, nil
	})
	select {
	case res := <-ch:
		f := res.Val.(cancelFlight)
		return f.job, f.leader, ran, f.err
	case <-ctx.Done():
		return nil, origin.Actor, true, errors.Join(hub.ErrOutcomeUnknown, ctx.Err())
	}
}

// cancelledBy is the portal's latest record of a successful cancel of the
// job, or nil when the trail has none (or cannot say).
func (s *Service) cancelledBy(ctx context.Context, hubName, id string) *audit.Entry {
	entries, err := s.audit.List(ctx, audit.Filter{Hub: hubName, JobID: id, Action: audit.JobCancelSucceeded, Limit: 1})
	if err != nil || len(entries) == 0 {
		return nil
	}
	return &entries[0]
}

// Denial is an action refused before it began because the user may not do
// it (cancel a job, create, halt or approve a rollout on this hub). Hub and
// Target must be validated values ("" when the request's were not): the
// per-hub and per-job filters of the trail must find every attempt.
type Denial struct {
	Hub, Target string
	// Why is the result recorded, in words ("cancel needs the operator role on this hub").
	Why string
	// Cancel counts the denial among the cancel outcomes (hubjobs_cancels_total).
	Cancel bool
}

// Denied records d as authz.denied. The hub is never called.
func (s *Service) Denied(ctx context.Context, origin Origin, d Denial) error {
	ctx, cancel := s.detached(ctx)
	defer cancel()
	if d.Cancel {
		label := "unknown" // a metric label is a configured hub, never request text
		if _, ok := s.hubs[d.Hub]; ok {
			label = d.Hub
		}
		s.count(label, "denied")
	}
	s.forgetHistory(d.Hub, d.Target)
	e := origin.entry(audit.AuthzDenied, d.Hub, d.Target, "", "denied: "+d.Why)
	if _, err := s.audit.Append(ctx, e); err != nil {
		return &NotRecordedError{Action: "Denial", Err: err}
	}
	return nil
}

func (s *Service) count(hubName, outcome string) {
	s.cancelOutcomes.WithLabelValues(hubName, outcome).Inc()
}

// ActorName is how an actor is named to people: name, else e-mail, else
// subject.
func ActorName(a audit.Actor) string {
	switch {
	case a.Name != "":
		return a.Name
	case a.Email != "":
		return a.Email
	case a.Subject != "":
		return a.Subject
	}
	return "someone not signed in"
}
