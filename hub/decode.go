package hub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// checkAnswer refuses a decoded job that is not the answer asked for: one
// about another job (a misrouted or cached answer), or, when want is set,
// one in another status. A cancel's 200 with status "queued", or a status
// no version of the hub has spelled, is never reported as a cancel.
func checkAnswer(op, id string, job *Job, want JobStatus) error {
	if job.JobID != "" && job.JobID != id {
		return fmt.Errorf("IoT Hub %s: %w: the answer is about job %q", op, ErrBadResponse, clip(plain(job.JobID), 40))
	}
	if want != "" && job.Status != want {
		return fmt.Errorf("IoT Hub %s: %w: status %q where %q was expected", op, ErrBadResponse, clip(plain(string(job.Status)), 40), want)
	}
	return nil
}

// decodeJob reads a job from a 2xx body. A 200 that describes no job (see
// Job.absent) is ErrNotFound: never report a job, or a cancel, that is not.
func decodeJob(op string, resp *response) (*Job, error) {
	if err := checkJSON(op, resp); err != nil {
		return nil, err
	}
	var job Job
	if err := json.Unmarshal(resp.body, &job); err != nil {
		return nil, fmt.Errorf("IoT Hub %s: %w: %w", op, ErrBadResponse, err)
	}
	if job.absent() {
		return nil, &Error{
			Op: op, StatusCode: resp.status, Code: "JobNotFound",
			Message:   fmt.Sprintf("the hub answered with status %q, which is how it reports a job id it does not have", job.Status),
			RequestID: plain(resp.header.Get("x-ms-request-id")),
		}
	}
	return &job, nil
}

// decodePage reads a query page: a bare JSON array on the real hub; the
// swagger's {"items":[…]} object is understood too.
func decodePage[T any](op string, resp *response) ([]T, error) {
	if err := checkJSON(op, resp); err != nil {
		return nil, err
	}
	body := bytes.TrimSpace(resp.body)
	var items []T
	var err error
	if len(body) > 0 && body[0] == '{' {
		var qr struct {
			Items []T `json:"items"`
		}
		err = json.Unmarshal(body, &qr)
		items = qr.Items
	} else {
		err = json.Unmarshal(body, &items)
	}
	if err != nil {
		return nil, fmt.Errorf("IoT Hub %s: %w: %w", op, ErrBadResponse, err)
	}
	return items, nil
}

// checkJSON refuses a success body that declares itself something other
// than JSON (a captive portal's HTML page answering 200, say).
func checkJSON(op string, resp *response) error {
	ct := resp.header.Get("Content-Type")
	if ct != "" && !strings.Contains(ct, "json") && !strings.Contains(strings.ToLower(ct), "json") {
		return fmt.Errorf("IoT Hub %s: %w: Content-Type %q", op, ErrBadResponse, clip(ct, 60))
	}
	return nil
}
