package views

import "strings"

// Plain-words text views own: what a status means, audit actions, hub
// error codes. The short words for a job's status and type come with the
// view models (handlers fill them from the jobs vocabulary).

// statusExplanations say what each job status means and what happens next.
var statusExplanations = map[string]string{
	"enqueued":  "IoT Hub has accepted the job and put it in its queue. It has not started on any device yet, so it can still be cancelled.",
	"queued":    "IoT Hub has accepted the job and is waiting to start it (a hub runs only a few jobs at a time). It can still be cancelled.",
	"scheduled": "The job is waiting for its start time. Nothing has been sent to devices yet, so it can still be cancelled.",
	"running":   "IoT Hub is sending the job to its devices. IoT Hub does not allow a running job to be cancelled: it runs until every device has answered or its maximum execution time is reached.",
	"completed": "The job has finished. Every targeted device was processed; see the statistics for how many succeeded and failed.",
	"failed":    "The job failed as a whole. The failure reason below is what IoT Hub reported.",
	"cancelled": "The job was cancelled before it ran on every device. Devices it had already reached keep their result.",
	"unknown":   "IoT Hub reports this job's status as \"unknown\". It does this for jobs it can no longer describe (for example import/export jobs, or jobs being cleaned up); no action is possible from here.",
}

// StatusExplanation says in plain words what a job status means.
func StatusExplanation(status string) string {
	if s, ok := statusExplanations[status]; ok {
		return s
	}
	if status == "" {
		return statusExplanations["unknown"]
	}
	return "IoT Hub reported a status this portal does not know (\"" + status + "\"). Check the hub's documentation."
}

// ActionLabel is an audit action for people.
func ActionLabel(a string) string {
	switch a {
	case "job.cancel.intent":
		return "Cancel requested"
	case "job.cancel.succeeded":
		return "Cancelled"
	case "job.cancel.refused":
		return "Cancel refused"
	case "job.cancel.unknown":
		return "Cancel outcome unknown"
	case "job.cancel.denied":
		return "Cancel denied (not allowed)"
	case "job.cancel.reconciled":
		return "Cancel outcome reconciled"
	case "auth.login":
		return "Signed in"
	case "auth.login_failed":
		return "Sign-in failed"
	case "auth.logout":
		return "Signed out"
	case "csrf.blocked":
		return "Forged request blocked"
	case "authz.denied":
		return "Access denied"
	}
	return a
}

// hubCodeTexts say in plain words what IoT Hub's common error codes mean.
var hubCodeTexts = map[string]string{
	"OperationNotAllowedInCurrentState":   "the job was no longer in a state that can be cancelled (it had started or finished)",
	"JobNotFound":                         "the hub does not know this job",
	"ThrottlingException":                 "the hub was limiting requests",
	"ThrottlingMaxActiveJobCountExceeded": "the hub already runs as many jobs as its tier allows",
	"JobQuotaExceeded":                    "the hub's job quota is used up",
	"IotHubUnauthorizedAccess":            "the hub refused the portal's credentials",
	"IotHubUnauthorized":                  "the hub refused the portal's credentials",
	"ServerError":                         "the hub had an internal problem",
	"ServiceUnavailable":                  "the hub was temporarily unavailable",
	"PreconditionFailed":                  "the hub rejected the request's preconditions (etag)",
	"ArgumentInvalid":                     "the hub rejected a value in the request",
}

// HubCodeText is IoT Hub's error code in plain words; unknown codes read
// "the hub refused the request" (the code itself is shown next to it).
func HubCodeText(code string) string {
	if s, ok := hubCodeTexts[code]; ok {
		return s
	}
	return "the hub refused the request"
}

// statusClass is the CSS class of a status badge; unknown values fall back
// to the "unknown" colour so hub data never becomes a class name.
func statusClass(status string) string {
	switch status {
	case "enqueued", "queued", "scheduled", "running", "completed", "failed", "cancelled", "canceled", "pending",
		"planned", "baking", "awaiting_approval", "halted": // and a rollout's states
		return "badge s-" + status
	}
	return "badge s-unknown"
}

// RolesText joins roles for the header.
func RolesText(roles []string) string { return strings.Join(roles, ", ") }

// rolloutStates are a rollout's states in words.
var rolloutStates = map[string]string{
	"planned":           "Planned",
	"running":           "Running",
	"baking":            "Baking",
	"awaiting_approval": "Awaiting approval",
	"completed":         "Completed",
	"halted":            "Halted",
}

// RolloutStates are the states the rollout list filters on, in order.
func RolloutStates() []Option {
	out := []Option{{Value: "", Label: "Any state"}}
	for _, s := range []string{"planned", "running", "baking", "awaiting_approval", "completed", "halted"} {
		out = append(out, Option{Value: s, Label: rolloutStates[s]})
	}
	return out
}

// RolloutStateLabel is a rollout state for people.
func RolloutStateLabel(s string) string {
	if l, ok := rolloutStates[s]; ok {
		return l
	}
	return s
}

// rolloutStateExplanations say what each rollout state means.
var rolloutStateExplanations = map[string]string{
	"planned":           "The rollout is stored and nothing has been sent to IoT Hub yet.",
	"running":           "A wave's hub jobs exist and are being delivered to its devices.",
	"baking":            "The last wave finished and passed its rules; the next one waits out the bake time, as a scheduled hub job that a halt cancels.",
	"awaiting_approval": "The next wave waits for an approver who is not the author.",
	"completed":         "Every wave finished and passed its rules.",
	"halted":            "The rollout stopped for good: nothing more is created, and scheduled jobs were cancelled. A job already running is left to finish.",
}

// RolloutStateExplanation says what a rollout state means.
func RolloutStateExplanation(s string) string { return rolloutStateExplanations[s] }
