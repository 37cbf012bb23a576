package jobs

import (
	"context"
	"errors"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// CreateKind is what became of a create.
type CreateKind int

const (
	// Created: IoT Hub accepted the job.
	Created CreateKind = iota + 1
	// AlreadyCreated: the hub already had a job with this id (a create
	// retried after a crash or a timeout; rollout job ids are
	// deterministic for this reason) and reading it back found it.
	AlreadyCreated
	// CreateRefused: IoT Hub refused the job; Err has its status, code
	// and tracking id.
	CreateRefused
	// CreateUnknown: IoT Hub did not answer in time and the read back did
	// not settle it. Job is set when the read back found the job.
	CreateUnknown
)

// CreateOutcome is what a create did.
type CreateOutcome struct {
	Kind        CreateKind
	Job         *hub.Job // the hub's answer, or the job read back
	Err         error    // the hub's error behind CreateRefused and CreateUnknown
	NotRecorded error    // the outcome could not be written to the audit trail
}

// Create creates a job on hubName, audited like a cancel: job.create.intent
// (if it cannot be written, nothing is sent and the error is a
// *NotRecordedError) → the hub's create → job.create.succeeded, refused or
// unknown, detached from ctx's cancellation once the intent is written.
// A JobAlreadyExists answer is read back: the same job id found means an
// earlier attempt of this create got through, and counts as succeeded.
func (s *Service) Create(ctx context.Context, origin Origin, hubName string, req hub.JobRequest, reason string) (CreateOutcome, error) {
	h, err := s.hub(hubName)
	if err != nil {
		return CreateOutcome{}, err
	}
	if err := hub.CheckJobID(req.JobID); err != nil {
		return CreateOutcome{}, err
	}
	ctx, cancel := s.detached(ctx)
	defer cancel()

	s.forgetHistory(hubName, req.JobID)
	if _, err := s.audit.Append(ctx, origin.entry(audit.JobCreateIntent, hubName, req.JobID, reason, "requested")); err != nil {
		return CreateOutcome{}, &NotRecordedError{Action: "Create", Err: err}
	}

	o, action, result := s.create(ctx, h, req)

	o.NotRecorded = s.record(ctx, withHubError(origin.entry(action, hubName, req.JobID, reason, result), o.Err))
	s.forgetHistory(hubName, req.JobID)
	return o, nil
}

func (s *Service) create(ctx context.Context, h HubJobs, req hub.JobRequest) (CreateOutcome, audit.Action, string) {
	job, err := h.CreateJob(ctx, req)
	switch {
	case err == nil:
		return CreateOutcome{Kind: Created, Job: job}, audit.JobCreateSucceeded, "created"
	case jobExists(err):
		if back, ok := readBack(ctx, h, req.JobID); ok {
			return CreateOutcome{Kind: AlreadyCreated, Job: back}, audit.JobCreateSucceeded, "already created"
		}
		return CreateOutcome{Kind: CreateRefused, Err: err}, audit.JobCreateRefused, "refused: " + err.Error()
	case errors.Is(err, hub.ErrOutcomeUnknown) && job != nil: // the client's own read back found it
		return CreateOutcome{Kind: Created, Job: job, Err: err}, audit.JobCreateSucceeded, "no answer; the job exists"
	case errors.Is(err, hub.ErrOutcomeUnknown) || errors.Is(err, hub.ErrTimeout):
		if back, ok := readBack(ctx, h, req.JobID); ok {
			return CreateOutcome{Kind: Created, Job: back, Err: err}, audit.JobCreateSucceeded, "no answer; the job exists"
		}
		return CreateOutcome{Kind: CreateUnknown, Err: err}, audit.JobCreateUnknown, "no answer; not reconciled"
	}
	return CreateOutcome{Kind: CreateRefused, Err: err}, audit.JobCreateRefused, "refused: " + err.Error()
}

// jobExists recognises the hub's 409 JobAlreadyExists.
func jobExists(err error) bool {
	he, ok := errors.AsType[*hub.Error](err)
	return ok && (he.Code == "JobAlreadyExists" || he.NumericCode == 409104)
}

// readBack reads a job after an ambiguous create, fresh from the hub's
// point of view (a stale copy says nothing about the create).
func readBack(ctx context.Context, h HubJobs, id string) (*hub.Job, bool) {
	fresh, err := h.GetJob(ctx, id)
	if err != nil || fresh.Stale || fresh.Value == nil || fresh.Value.JobID != id {
		return nil, false
	}
	return fresh.Value, true
}
