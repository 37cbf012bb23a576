package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub"
)

// EventKind names a job event as webhook receivers see it.
type EventKind string

const (
	// EventCancelled: a cancel through the portal was accepted by IoT Hub.
	EventCancelled EventKind = "job.cancelled"
	// EventFinishedWithFailures: a job the portal showed or drove was seen
	// completed or failed with failed devices.
	EventFinishedWithFailures EventKind = "job.finished_with_failures"
)

// Event is a fact about a job for the webhooks. jobs defines its own type,
// and the portal converts it, so that jobs need not know how events travel.
type Event struct {
	// ID is deterministic (kind/hub/job): each fact happens once per job,
	// so replicas, retries and page views that observe it again produce
	// the same ID, which the outbox queues once per webhook.
	ID      string
	Kind    EventKind
	Hub     string
	Job     string
	Summary string
	Details map[string]any
}

// Announcer sends job events on (the notification outbox, through an
// adapter the portal wires). Both methods only write to the database: no
// receiver is ever waited for.
type Announcer interface {
	// AnnounceWith writes ev through tx, the transaction of the audit
	// entry that records the fact: both are committed or neither is.
	AnnounceWith(ctx context.Context, tx *sql.Tx, ev Event) error
	// Announce writes ev on its own, for a fact the portal only observes.
	Announce(ctx context.Context, ev Event) error
}

// failuresReportWindow: a job seen finished with failures is reported only
// if it ended this recently (or its end time is unknown). Opening a
// month-old job is not news, and receivers would not want it as such.
const failuresReportWindow = 24 * time.Hour

func eventID(kind EventKind, hubName, jobID string) string {
	return string(kind) + "/" + hubName + "/" + jobID
}

// cancelledEvent is the event of a cancel IoT Hub accepted.
func cancelledEvent(origin Origin, r CancelRequest, j *hub.Job) Event {
	by := ActorName(origin.Actor)
	ev := Event{ID: eventID(EventCancelled, r.Hub, r.JobID), Kind: EventCancelled, Hub: r.Hub, Job: r.JobID,
		Summary: "cancelled by " + by, Details: map[string]any{"cancelled_by": by}}
	if r.Reason != "" {
		ev.Summary += " (" + r.Reason + ")"
		ev.Details["reason"] = r.Reason
	}
	if j != nil && j.DeviceJobStatistics != nil {
		ev.Details["devices"] = j.DeviceJobStatistics.DeviceCount
	}
	return ev
}

// recordCancelled appends a successful cancel's outcome with its
// job.cancelled event in one transaction. The audit entry matters more
// than the notification: if the announcer refuses (its own error, the
// store is fine), the outcome is appended alone and the loss is logged.
func (s *Service) recordCancelled(ctx context.Context, e audit.Entry, ev Event) error {
	_, err := s.audit.AppendWith(ctx, e, func(ctx context.Context, tx *sql.Tx) error {
		return s.announce.AnnounceWith(ctx, tx, ev)
	})
	if err == nil || errors.Is(err, audit.ErrUnavailable) {
		if err != nil {
			s.log.ErrorContext(ctx, "audit of an outcome failed; the intent will be reconciled",
				"action", e.Action, "hub", e.Hub, "job", e.JobID, "err", err)
		}
		return err
	}
	s.log.ErrorContext(ctx, "job.cancelled notification not queued; recording the outcome without it",
		"hub", e.Hub, "job", e.JobID, "err", err)
	return s.record(ctx, e)
}

// announceFailures reports a job seen completed or failed with failed
// devices, once: this process remembers what it reported, and the
// deterministic event ID makes the outbox drop what another replica (or
// this one before a restart) already queued. A failed write is logged and
// tried again the next time the job is seen.
func (s *Service) announceFailures(ctx context.Context, hubName string, j *hub.Job) {
	st := j.DeviceJobStatistics
	status := j.Status.Normalized()
	if s.announce == nil || st == nil || st.FailedCount == 0 || (status != hub.StatusCompleted && status != hub.StatusFailed) {
		return
	}
	if !j.EndTime.IsZero() && s.now().Sub(j.EndTime.Time) > failuresReportWindow {
		return
	}
	key := historyKey(hubName, j.JobID)
	if _, done := s.reported.Get(key); done {
		return
	}
	ev := Event{ID: eventID(EventFinishedWithFailures, hubName, j.JobID), Kind: EventFinishedWithFailures,
		Hub: hubName, Job: j.JobID,
		Summary: fmt.Sprintf("%d of %d devices failed (job %s)", st.FailedCount, st.DeviceCount, status),
		Details: map[string]any{"status": string(status), "devices": st.DeviceCount,
			"failed": st.FailedCount, "succeeded": st.SucceededCount}}
	if err := s.announce.Announce(ctx, ev); err != nil {
		s.log.WarnContext(ctx, "job.finished_with_failures not queued; tried again when the job is next seen",
			"hub", hubName, "job", j.JobID, "err", err)
		return
	}
	s.reported.Add(key, struct{}{})
}
