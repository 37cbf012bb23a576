package notify

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// EventType names what happened. Receivers route on it: it is the body's
// "event" and the X-Hubjobs-Event header.
type EventType string

const (
	RolloutCreated          EventType = "rollout.created"
	RolloutAwaitingApproval EventType = "rollout.awaiting_approval"
	RolloutHalted           EventType = "rollout.halted"
	RolloutCompleted        EventType = "rollout.completed"
	JobCancelled            EventType = "job.cancelled"
	JobFinishedWithFailures EventType = "job.finished_with_failures"
	// Test is what SendTest sends to one webhook. No webhook subscribes to
	// it, so it is not in Events and config must refuse it.
	Test EventType = "hubjobs.test"
)

var subscribable = []EventType{
	RolloutCreated, RolloutAwaitingApproval, RolloutHalted, RolloutCompleted,
	JobCancelled, JobFinishedWithFailures,
}

// Events lists the events a webhook may subscribe to, for config validation
// and documentation.
func Events() []EventType { return slices.Clone(subscribable) }

// Known reports whether name is an event a webhook may subscribe to.
func Known(name string) bool { return slices.Contains(subscribable, EventType(name)) }

// ErrInvalidEvent is returned by Enqueue for an event it cannot report: an
// unknown type, or a missing hub, rollout or job.
var ErrInvalidEvent = errors.New("notify: invalid event")

// Event is one thing to report, and the body of a json webhook. Rollout and
// Job are always present (empty when they do not apply) so receivers can
// read the same keys for every event.
type Event struct {
	// ID identifies the event across webhooks (each webhook's delivery has
	// its own X-Hubjobs-Delivery). Enqueue generates it when empty. A caller
	// that may observe the same fact more than once (several replicas
	// seeing one job finish) sets it deterministically, e.g.
	// "job.finished_with_failures/prod/job-42": an ID already enqueued for a
	// webhook is not enqueued again.
	ID      string    `json:"id"`
	Event   EventType `json:"event"`
	Time    time.Time `json:"time"` // set by Enqueue when zero
	Hub     string    `json:"hub"`
	Rollout string    `json:"rollout"`
	Job     string    `json:"job"`
	Summary string    `json:"summary"`
	// URL is the portal page of what the event reports; Enqueue builds it
	// from the public URL, so callers leave it empty.
	URL string `json:"url"`
	// Details carries event-specific facts (wave number, failed count …).
	Details map[string]any `json:"details,omitempty"`
}

func (ev Event) validate() error {
	kind, _, _ := strings.Cut(string(ev.Event), ".")
	switch {
	case ev.Event == Test:
		return nil
	case !Known(string(ev.Event)):
		return fmt.Errorf("%w: unknown event %q", ErrInvalidEvent, ev.Event)
	case ev.Hub == "":
		return fmt.Errorf("%w: %s without a hub", ErrInvalidEvent, ev.Event)
	case kind == "rollout" && ev.Rollout == "":
		return fmt.Errorf("%w: %s without a rollout", ErrInvalidEvent, ev.Event)
	case kind == "job" && ev.Job == "":
		return fmt.Errorf("%w: %s without a job", ErrInvalidEvent, ev.Event)
	}
	return nil
}

// portalPath is the page of what the event reports: the job page for job
// events (even inside a rollout), the rollout page for rollout events.
func (ev Event) portalPath() string {
	switch {
	case ev.Event == Test:
		return "/notifications"
	case strings.HasPrefix(string(ev.Event), "job."):
		return jobPath(ev.Hub, ev.Job)
	}
	return rolloutPath(ev.Hub, ev.Rollout)
}

// orderingKey groups the events that must reach a receiver in the order
// they were enqueued: everything about one rollout (its jobs' events
// included), else everything about one job. Test events are unordered.
func (ev Event) orderingKey() string {
	switch {
	case ev.Event == Test:
		return "test/" + ev.ID
	case ev.Rollout != "":
		return rolloutPath(ev.Hub, ev.Rollout)
	}
	return jobPath(ev.Hub, ev.Job)
}

func rolloutPath(hub, rollout string) string {
	return "/hubs/" + url.PathEscape(hub) + "/rollouts/" + url.PathEscape(rollout)
}

func jobPath(hub, job string) string {
	return "/hubs/" + url.PathEscape(hub) + "/jobs/" + url.PathEscape(job)
}

// sentence says the event in plain words, for chat.
func (ev Event) sentence() string {
	var s string
	switch ev.Event {
	case RolloutCreated:
		s = fmt.Sprintf("Rollout %s on hub %s was created", ev.Rollout, ev.Hub)
	case RolloutAwaitingApproval:
		s = fmt.Sprintf("Rollout %s on hub %s is waiting for an approver", ev.Rollout, ev.Hub)
	case RolloutHalted:
		s = fmt.Sprintf("Rollout %s on hub %s halted", ev.Rollout, ev.Hub)
	case RolloutCompleted:
		s = fmt.Sprintf("Rollout %s on hub %s completed", ev.Rollout, ev.Hub)
	case JobCancelled:
		s = fmt.Sprintf("Job %s on hub %s was cancelled", ev.Job, ev.Hub)
	case JobFinishedWithFailures:
		s = fmt.Sprintf("Job %s on hub %s finished with failures", ev.Job, ev.Hub)
	default:
		s = "Test event from hubjobs"
	}
	if ev.Summary != "" {
		s += ": " + ev.Summary
	}
	return s
}

// render is the body a webhook of format f receives for ev. It is rendered
// once, at enqueue time, so every retry sends (and signs) the same bytes.
func render(f Format, ev Event) ([]byte, error) {
	var v any = ev
	if f == FormatSlack {
		// Slack and Mattermost incoming webhooks: one line of words, then
		// the link on its own line, which both unfurl. Slack reserves
		// & < > in text; the URL's segments are already path-escaped.
		v = struct {
			Text string `json:"text"`
		}{slackEscaper.Replace(ev.sentence()) + "\n" + ev.URL}
	}
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
	}
	return body, nil
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
