package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/jobs"
	"github.com/hubjobs/hubjobs/rollout"
)

// Problem is a failure as the user reads it: an HTTP status and plain words,
// plus what IoT Hub said when it was the hub. Handlers return a *Problem
// for bad input; Describe turns every other error into one. This file is the
// ONLY place that decides a status code for an error.
type Problem struct {
	Status     int
	Title      string
	Detail     string
	HubCode    string
	TrackingID string
	RetryAfter time.Duration // sent as Retry-After when > 0
	SignIn     string        // login URL that returns to the wanted page, for sign-in failures
	Err        error         // the cause, for the log; never shown
}

func (p *Problem) Error() string {
	if p.Err != nil {
		return fmt.Sprintf("%d %s: %v", p.Status, p.Title, p.Err)
	}
	return fmt.Sprintf("%d %s", p.Status, p.Title)
}

func (p *Problem) Unwrap() error { return p.Err }

func badRequest(title, detail string) *Problem {
	return &Problem{Status: http.StatusBadRequest, Title: title, Detail: detail}
}

// defaultRetry is the Retry-After sent for a throttled hub that named none.
const defaultRetry = 30 * time.Second

// retryAfter is the wait the hub (or its breaker) named, else defaultRetry:
// a 503 always tells the browser when to come back.
func retryAfter(err error) time.Duration {
	if d := hub.RetryAfterHint(err); d > 0 {
		return d
	}
	return defaultRetry
}

// Describe maps any error to the status and words the user sees.
func Describe(err error) *Problem {
	if p, ok := errors.AsType[*Problem](err); ok {
		return p
	}
	p := describe(err)
	p.Err = err
	if he, ok := errors.AsType[*hub.Error](err); ok {
		p.HubCode, p.TrackingID = he.Code, he.TrackingID
		if p.HubCode == "" && he.NumericCode != 0 {
			p.HubCode = strconv.Itoa(he.NumericCode)
		}
	}
	return p
}

func describe(err error) *Problem {
	if he, ok := errors.AsType[*echo.HTTPError](err); ok {
		return describeHTTP(he.Code)
	}
	switch {
	case errors.Is(err, hub.ErrInvalidJobID):
		return badRequest("That is not a job id", "Job ids are 1 to 128 letters, digits, dashes or underscores.")
	case errors.Is(err, hub.ErrInvalidRequest):
		return badRequest("Bad request", "The request has a value IoT Hub cannot be asked about.")
	case errors.Is(err, hub.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Title: "Job not found",
			Detail: "IoT Hub does not know this job. It forgets jobs 30 days after they finish, and this portal has no copy of it."}
	case errors.Is(err, hub.ErrNotCancellable):
		return &Problem{Status: http.StatusConflict, Title: "This job cannot be cancelled now",
			Detail: "IoT Hub cancels only jobs that are queued, enqueued or scheduled. A running job runs until every device has answered or its maximum execution time is over."}
	case errors.Is(err, jobs.ErrUnknownHub):
		return &Problem{Status: http.StatusNotFound, Title: "No such hub", Detail: "This portal has no hub by that name. Pick one from the list of hubs."}
	case errors.Is(err, rollout.ErrNotFound):
		return &Problem{Status: http.StatusNotFound, Title: "Rollout not found", Detail: "This hub has no rollout with that id."}
	case errors.Is(err, rollout.ErrFinal):
		return &Problem{Status: http.StatusConflict, Title: "This rollout has already ended",
			Detail: "It has completed or been halted, and nothing about it can change any more."}
	case errors.Is(err, rollout.ErrNotAwaitingApproval):
		return &Problem{Status: http.StatusConflict, Title: "This rollout is not waiting for an approval",
			Detail: "Only a wave that waits for an approver can be approved; reload the rollout page to see where it is."}
	case errors.Is(err, rollout.ErrSelfApproval):
		return &Problem{Status: http.StatusForbidden, Title: "You cannot approve your own rollout",
			Detail: "A wave that needs an approval must be approved by someone other than the rollout's author. No role lifts this rule."}
	case errors.Is(err, rollout.ErrUnknownApprover):
		return &Problem{Status: http.StatusForbidden, Title: "Your approval could not be recorded",
			Detail: "An approval is recorded under the name of the person who gives it, and your sign-in does not say who you are. Sign out, sign in again and retry."}
	case errors.Is(err, rollout.ErrStale):
		return &Problem{Status: http.StatusConflict, Title: "The rollout changed while you acted",
			Detail: "It moved on while your request was being recorded, and nothing was changed. Reload the rollout page and try again."}
	case errors.Is(err, rollout.ErrIDTaken):
		return &Problem{Status: http.StatusConflict, Title: "That rollout id is already taken",
			Detail: "Another hub already has a rollout with this id, and nothing was created. Reload the New job form for a fresh id and submit again."}
	case errors.Is(err, rollout.ErrInvalidSpec):
		return &Problem{Status: http.StatusUnprocessableEntity, Title: "The rollout cannot be planned",
			Detail: strings.TrimPrefix(err.Error(), rollout.ErrInvalidSpec.Error()+": ")}
	case isNotRecorded(err):
		nr, _ := errors.AsType[*jobs.NotRecordedError](err)
		return &Problem{Status: http.StatusServiceUnavailable, Title: nr.Action + " not attempted: the audit trail is unavailable",
			Detail:     "Every change to a job must be recorded before it is sent to IoT Hub, and the audit trail cannot be written right now. Nothing was sent to the hub.",
			RetryAfter: defaultRetry}
	case errors.Is(err, hub.ErrThrottled):
		return &Problem{Status: http.StatusServiceUnavailable, Title: "IoT Hub is busy",
			Detail:     "The hub is limiting requests (or the portal's own budget of calls to it is spent) and there is no recent copy to show instead.",
			RetryAfter: retryAfter(err)}
	case errors.Is(err, hub.ErrOutcomeUnknown), errors.Is(err, hub.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Problem{Status: http.StatusGatewayTimeout, Title: "IoT Hub did not answer in time",
			Detail: "The hub took too long to answer. Nothing is known to have changed; try again in a moment."}
	case errors.Is(err, hub.ErrUnauthorized):
		return &Problem{Status: http.StatusBadGateway, Title: "IoT Hub refused the portal's credentials",
			Detail: "The hub rejected the portal's access key or token. An administrator needs to check the hub's configuration."}
	case errors.Is(err, hub.ErrConflict):
		return &Problem{Status: http.StatusConflict, Title: "IoT Hub refused the request",
			Detail: "The hub reported a conflict or a quota that stops this request."}
	case errors.Is(err, hub.ErrNotAttempted):
		return &Problem{Status: http.StatusServiceUnavailable, Title: "IoT Hub is failing; nothing was sent",
			Detail: "The last calls to this hub all failed, so the portal pauses calls to it for a moment rather than add to the load. " +
				"Nothing was sent to the hub. Try again after the pause.",
			RetryAfter: retryAfter(err)}
	case errors.Is(err, hub.ErrUnavailable), errors.Is(err, hub.ErrBadResponse), errors.Is(err, hub.ErrResponseTooLarge):
		return &Problem{Status: http.StatusBadGateway, Title: "IoT Hub could not be reached",
			Detail: "The hub did not give a usable answer (it may be down, or the network to it is failing)."}
	case errors.Is(err, audit.ErrUnavailable):
		return &Problem{Status: http.StatusServiceUnavailable, Title: "The audit trail is unavailable",
			Detail:     "Actions are refused while the portal cannot record them. Reading jobs still works.",
			RetryAfter: defaultRetry}
	case isHubRefusal(err):
		return &Problem{Status: http.StatusBadGateway, Title: "IoT Hub refused the request",
			Detail: "The hub answered with an error the portal has no explanation for; its code is below."}
	case errors.Is(err, context.Canceled):
		return &Problem{Status: 499, Title: "Request cancelled", Detail: "The browser went away before the answer was ready."}
	}
	return &Problem{Status: http.StatusInternalServerError, Title: "Something went wrong",
		Detail: "The portal hit an unexpected problem. It has been logged."}
}

func isNotRecorded(err error) bool {
	_, ok := errors.AsType[*jobs.NotRecordedError](err)
	return ok
}

// LogLevel is how loudly a problem is logged. ERROR is for what someone
// must look at: the portal failing, or the hub failing it. The portal
// holding back under its own budget and the hub asking to slow down are
// the budget working as designed (and anyone can cause them by reading a
// lot), so they are warnings; a refusal of bad input is information; a
// missing page is noise.
func (p *Problem) LogLevel() slog.Level {
	switch {
	case errors.Is(p.Err, hub.ErrThrottled):
		return slog.LevelWarn
	case p.Status == 499:
		return slog.LevelInfo
	case p.Status >= 500:
		return slog.LevelError
	case p.Status == http.StatusNotFound:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// isHubRefusal is any other 4xx answer from the hub: the hub's word, not an
// unexpected fault of the portal (a 500 would page someone for it).
func isHubRefusal(err error) bool {
	he, ok := errors.AsType[*hub.Error](err)
	return ok && he.StatusCode >= 400 && he.StatusCode < 500
}

// staleReason says why a read served older data: the portal holding back
// under its own budget, or the hub failing (with its code and tracking id,
// which the user may need for Azure support).
func staleReason(err error) (why string, hubFailing bool) {
	if _, ok := errors.AsType[*hub.BudgetError](err); ok {
		return "the portal is pausing its calls to this hub so as not to exceed the hub's request limits", false
	}
	why = "IoT Hub did not give a fresh answer"
	switch {
	case err == nil:
	case errors.Is(err, hub.ErrThrottled):
		why = "IoT Hub is limiting requests (throttling)"
	case errors.Is(err, hub.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		why = "IoT Hub did not answer in time"
	case errors.Is(err, hub.ErrNotAttempted):
		why = "the last calls to IoT Hub all failed, so the portal is pausing its calls to it for a moment"
	case errors.Is(err, hub.ErrUnavailable), errors.Is(err, hub.ErrBadResponse), errors.Is(err, hub.ErrResponseTooLarge):
		why = "IoT Hub could not be reached"
	}
	if he, ok := errors.AsType[*hub.Error](err); ok {
		if he.Code != "" {
			why += "; its error code: " + he.Code
		}
		if he.TrackingID != "" {
			why += ", tracking id " + he.TrackingID
		}
	}
	return why, true
}

func describeHTTP(status int) *Problem {
	switch status {
	case http.StatusNotFound:
		return &Problem{Status: status, Title: "Page not found", Detail: "There is nothing at this address. Check the link, or start from the list of jobs."}
	case http.StatusMethodNotAllowed:
		return &Problem{Status: status, Title: "Method not allowed", Detail: "This address does not accept that kind of request."}
	case http.StatusRequestEntityTooLarge:
		return &Problem{Status: status, Title: "Request too large", Detail: "The request body is larger than the portal accepts."}
	case http.StatusForbidden:
		return &Problem{Status: status, Title: "Not allowed", Detail: "Your roles do not allow this."}
	case http.StatusUnauthorized:
		return &Problem{Status: status, Title: "Please sign in", Detail: "You need to sign in first."}
	case http.StatusBadRequest:
		return &Problem{Status: status, Title: "Bad request", Detail: "The request could not be understood."}
	case http.StatusServiceUnavailable:
		return &Problem{Status: status, Title: "Temporarily unavailable", Detail: "Try again in a moment."}
	}
	if status >= 500 {
		return &Problem{Status: status, Title: "Something went wrong", Detail: "The portal hit an unexpected problem. It has been logged."}
	}
	return &Problem{Status: status, Title: http.StatusText(status), Detail: ""}
}

// limitPattern finds a number in the hub's throttling message, e.g.
// "... maximum number of active jobs (10) ...".
var limitPattern = regexp.MustCompile(`\b([1-9][0-9]?)\b`)

// activeJobLimit is the active-job limit a 429 ThrottlingMaxActiveJobCountExceeded
// reveals: the number in its message, or -1 ("reached, count unknown").
func activeJobLimit(err error) int {
	he, ok := errors.AsType[*hub.Error](err)
	if !ok || he.Code != "ThrottlingMaxActiveJobCountExceeded" {
		return 0
	}
	if m := limitPattern.FindStringSubmatch(he.Message); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return -1
}
