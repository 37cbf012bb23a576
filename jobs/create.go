package jobs

import (
	"context"
	"errors"
	"fmt"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// CreateKind is what became of a create.
type CreateKind int

const (
	// Created: IoT Hub accepted the job.
	Created CreateKind = iota + 1
	// AlreadyCreated: the hub already had this job under this id (a
	// create retried after a crash or a timeout; rollout job ids are
	// deterministic for this reason): the job read back has the request's
	// type and condition.
	AlreadyCreated
	// CreateRefused: IoT Hub refused the job, or a different job (type
	// or condition) holds its id; Err has the hub's status, code and
	// tracking id.
	CreateRefused
	// CreateUnknown: IoT Hub did not answer in time, or said the id
	// exists, and the read back did not settle it.
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
// A JobAlreadyExists answer comes with the job read back: the same job
// (type and condition) under the id means an earlier attempt of this
// create got through, and counts as succeeded; see alreadyExists.
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
		return alreadyExists(req, job, err)
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
	if errors.Is(err, hub.ErrJobExists) {
		return true
	}
	he, ok := errors.AsType[*hub.Error](err)
	return ok && (he.Code == "JobAlreadyExists" || he.NumericCode == 409104)
}

// alreadyExists settles a create the hub answered with JobAlreadyExists,
// from the job the client read back with that answer (reading it again
// would only spend budget, and a refused second read would turn a job
// that exists into a refusal). Without that job nobody knows whose job
// holds the id: unknown, not refused, so the engine never takes a job
// that may be running for one that is not. A job of another type or
// condition under the id is not this create's: a refusal, saying why.
func alreadyExists(req hub.JobRequest, existing *hub.Job, err error) (CreateOutcome, audit.Action, string) {
	switch {
	case existing == nil:
		return CreateOutcome{Kind: CreateUnknown, Err: err}, audit.JobCreateUnknown,
			"the job id exists but reading the job back failed; not reconciled"
	case existing.Type != req.Type || existing.QueryCondition != req.QueryCondition:
		return CreateOutcome{Kind: CreateRefused, Job: existing, Err: err}, audit.JobCreateRefused,
			fmt.Sprintf("refused: another job has this id (type %s, condition %q; this create: type %s, condition %q)",
				existing.Type, existing.QueryCondition, req.Type, req.QueryCondition)
	}
	return CreateOutcome{Kind: AlreadyCreated, Job: existing}, audit.JobCreateSucceeded, "already created"
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
