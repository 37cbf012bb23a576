package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// CancelJob cancels a queued, enqueued or scheduled job and returns the
// hub's view of it (status "cancelled"). A running job answers
// ErrNotCancellable.
//
// The POST is not idempotent on the wire, so it is never re-sent once the
// hub may have acted on it: after a timeout, a lost connection, a 408, a
// 5xx, or a 2xx that is unreadable, too large, about another job or not
// saying "cancelled", CancelJob instead asks the hub for the job (a GET) and
// returns what the GET saw together with an error wrapping
// ErrOutcomeUnknown; the job is nil when the GET failed too. Callers decide
// from the reconciled status ("cancelled" means it took). So a nil error
// always comes with a job whose status is "cancelled". Failures where the
// hub certainly did not act (no connection made, 429) are retried like any
// other call.
func (c *Client) CancelJob(ctx context.Context, id string) (*Job, error) {
	return observe(c, "CancelJob", func() (*Job, error) {
		const op = "CancelJob"
		if err := CheckJobID(id); err != nil {
			return nil, err
		}
		return c.write(ctx, id, request{op: op, method: http.MethodPost, path: "/jobs/v2/" + id + "/cancel", write: true}, StatusCancelled)
	})
}

// CreateJob asks the hub to schedule a method or twin-update job
// (PUT /jobs/v2/{id}) and returns the hub's answer, a minimal job
// ({"jobId","type","status":"queued"}; the full record comes from GetJob).
//
// Ids are meant to be deterministic (derived from what the caller intends),
// which makes the create idempotent: a retry, a double submit or a restart
// that sends the same id again meets the hub's 409 JobAlreadyExists.
// CreateJob then reads the job back and returns it together with an error
// matching ErrJobExists (and ErrConflict), so the caller can compare the
// existing job with its request and decide whether it is its own; the job
// is nil when the read-back failed, the error then saying why too.
//
// The PUT is never re-sent once the hub may have acted on it. An unknown
// outcome (timeout, lost connection, 408, 5xx, an unreadable 2xx) is
// reconciled by a GET, as for CancelJob: the job the GET found comes back
// with an error wrapping ErrOutcomeUnknown, and a non-nil job there means
// the job exists on the hub, i.e. the create took effect. A nil job means
// the GET failed too (ErrNotFound among the causes: not created, as far as
// the hub can tell right now).
//
// The queryCondition is refused before sending when it is over
// MaxQueryLength characters (ErrInvalidRequest and ErrQueryTooLong); the
// hub's own refusal of a too-long condition, a 412 PreconditionFailed or a
// 400, matches ErrQueryTooLong as well. 429 ThrottlingMaxActiveJobCountExceeded
// (ErrThrottled) means the hub's concurrent-job slots are taken; the client
// retries it like any 429 within its call budget, then returns it.
func (c *Client) CreateJob(ctx context.Context, req JobRequest) (*Job, error) {
	return observe(c, "CreateJob", func() (*Job, error) {
		const op = "CreateJob"
		if err := validateJobRequest(&req); err != nil {
			return nil, err
		}
		body, err := json.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding job %s: %w", ErrInvalidRequest, req.JobID, err)
		}
		job, err := c.write(ctx, req.JobID, request{op: op, method: http.MethodPut, path: "/jobs/v2/" + req.JobID, body: body, write: true}, "")
		if errors.Is(err, ErrJobExists) && !errors.Is(err, ErrOutcomeUnknown) {
			existing, gerr := c.readBack(ctx, req.JobID)
			if gerr != nil {
				return nil, fmt.Errorf("%w; reading the existing job back failed: %w", err, gerr)
			}
			return existing, err
		}
		return job, err
	})
}

// validateJobRequest checks what the hub would reject with a vague 400, and
// fills the one field the hub insists on (etag "*" for twin updates). req
// is the caller's copy, so the caller's struct is not changed.
func validateJobRequest(req *JobRequest) error {
	if err := CheckJobID(req.JobID); err != nil {
		return err
	}
	var problems []string
	switch req.Type {
	case TypeScheduleDeviceMethod:
		if req.CloudToDeviceMethod == nil || req.CloudToDeviceMethod.MethodName == "" {
			problems = append(problems, "a method job needs cloudToDeviceMethod.methodName")
		}
	case TypeScheduleUpdateTwin:
		if req.UpdateTwin == nil {
			problems = append(problems, "a twin job needs updateTwin")
		} else if req.UpdateTwin.ETag == "" {
			twin := *req.UpdateTwin
			twin.ETag = "*"
			req.UpdateTwin = &twin
		} else if req.UpdateTwin.ETag != "*" {
			problems = append(problems, `updateTwin.etag must be "*" (the hub only takes forced updates)`)
		}
	default:
		problems = append(problems, fmt.Sprintf("type %q is not %s or %s", clip(string(req.Type), 40), TypeScheduleDeviceMethod, TypeScheduleUpdateTwin))
	}
	if strings.TrimSpace(req.QueryCondition) == "" {
		problems = append(problems, `queryCondition is empty (use "*" for all devices)`)
	} else if err := CheckQueryLength("queryCondition", req.QueryCondition); err != nil {
		return fmt.Errorf("job %s: %w", req.JobID, err)
	}
	if req.MaxExecutionTimeInSeconds < 0 {
		problems = append(problems, "maxExecutionTimeInSeconds is negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: job %s: %s", ErrInvalidRequest, req.JobID, strings.Join(problems, "; "))
	}
	return nil
}

// write runs a non-idempotent request and reconciles an unknown outcome.
// A 2xx counts as the answer only when it is about job id and, when want is
// set, shows that status; anything else is an outcome to reconcile.
func (c *Client) write(ctx context.Context, id string, r request, want JobStatus) (*Job, error) {
	resp, err := c.do(ctx, r)
	if err == nil {
		var job *Job
		job, err = decodeJob(r.op, resp)
		if err == nil {
			err = checkAnswer(r.op, id, job, want)
		}
		if err == nil || errors.Is(err, ErrNotFound) {
			return job, err
		}
		// A 2xx we cannot trust: the hub acted, but on what we cannot say.
		err = fmt.Errorf("%w: %s answered %d but %w", ErrOutcomeUnknown, r.op, resp.status, err)
	}
	if !errors.Is(err, ErrOutcomeUnknown) {
		return nil, err
	}
	return c.reconcile(ctx, id, err)
}

// reconcile asks the hub for the job after a write whose outcome is
// unknown, and returns what it saw with cause.
func (c *Client) reconcile(ctx context.Context, id string, cause error) (*Job, error) {
	job, err := c.readBack(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w; the reconciling GET failed too: %w", cause, err)
	}
	return job, cause
}

// readBack is the GET a write makes to learn what the hub now holds. It
// runs detached from the caller's cancellation (the audit trail needs the
// outcome even when the browser went away), past the breaker (the failure
// that opened it may be this very write), and within ReconcileTimeout,
// which the write left unspent of its call budget.
func (c *Client) readBack(ctx context.Context, id string) (*Job, error) {
	rctx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), breakerBypass{}, true), c.cfg.ReconcileTimeout)
	defer cancel()
	return c.GetJob(rctx, id)
}
