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

// CreateJob schedules a method or twin-update job (PUT /jobs/v2/{id}). The
// hub answers with a minimal body ({"jobId","type","status":"queued"}).
// Like CancelJob it is never re-sent once the hub may have acted (a second
// PUT would meet JobAlreadyExists); an unknown outcome is reconciled by GET.
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
		return c.write(ctx, req.JobID, request{op: op, method: http.MethodPut, path: "/jobs/v2/" + req.JobID, body: body, write: true}, "")
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
// unknown. It runs detached from the caller's cancellation (the audit
// trail needs the outcome even when the browser went away) and within
// ReconcileTimeout, which the write left unspent.
func (c *Client) reconcile(ctx context.Context, id string, cause error) (*Job, error) {
	rctx, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), breakerBypass{}, true), c.cfg.ReconcileTimeout)
	defer cancel()
	job, err := c.GetJob(rctx, id)
	if err != nil {
		return nil, fmt.Errorf("%w; the reconciling GET failed too: %w", cause, err)
	}
	return job, cause
}
