package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// entryColumns lists audit_entries in export order; scanEntry reads them.
const entryColumns = `seq, time_us, action, result, actor_iss, actor_sub, actor_name, actor_email,
	actor_roles, client_ip, user_agent, request_id, hub, job_id, reason, hub_status, hub_error_code,
	hub_tracking_id, prev_hash, hash`

// scanEntry reads one row of entryColumns. An unreadable roles column can
// only come from an edit behind the store's back: it is a *BrokenChainError.
func scanEntry(rows *sql.Rows) (Entry, error) {
	var e Entry
	var timeUS int64
	var action, roles string
	err := rows.Scan(&e.Seq, &timeUS, &action, &e.Result,
		&e.Actor.Issuer, &e.Actor.Subject, &e.Actor.Name, &e.Actor.Email, &roles,
		&e.ClientIP, &e.UserAgent, &e.RequestID, &e.Hub, &e.JobID, &e.Reason,
		&e.HubStatus, &e.HubErrorCode, &e.HubTrackingID, &e.PrevHash, &e.Hash)
	if err != nil {
		return Entry{}, err
	}
	e.Time = time.UnixMicro(timeUS).UTC()
	e.Action = Action(action)
	if err := json.Unmarshal([]byte(roles), &e.Actor.Roles); err != nil {
		return e, &BrokenChainError{Seq: e.Seq, Reason: "actor_roles is not a JSON array (entry edited)"}
	}
	return e, nil
}

// List returns entries matching f, newest first (oldest first with
// f.OldestFirst). Page on with f.BeforeSeq (or f.AfterSeq) = the last Seq
// of the previous page.
func (s *Store) List(ctx context.Context, f Filter) ([]Entry, error) {
	where, args := f.conditions()
	limit := f.Limit
	switch {
	case limit <= 0:
		limit = DefaultListLimit
	case limit > MaxListLimit:
		limit = MaxListLimit
	}
	order := " ORDER BY seq DESC"
	if f.OldestFirst {
		order = " ORDER BY seq"
	}
	args = append(args, limit)
	q := `SELECT ` + entryColumns + ` FROM audit_entries` + where + order + fmt.Sprintf(" LIMIT $%d", len(args))
	return s.query(ctx, "list", q, args...)
}

// conditions is f as a SQL WHERE clause (empty when f selects everything)
// and its arguments, numbered $1…; Limit and the order are the caller's.
func (f Filter) conditions() (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.User != "" {
		prefix := arg(strings.ToLower(escapeLike(f.User)) + "%")
		where = append(where, fmt.Sprintf(`(actor_sub = %s OR lower(actor_name) LIKE %s ESCAPE '\' OR lower(actor_email) LIKE %s ESCAPE '\')`,
			arg(f.User), prefix, prefix))
	}
	if f.Hub != "" {
		where = append(where, "hub = "+arg(f.Hub))
	}
	if f.JobID != "" {
		where = append(where, "job_id = "+arg(f.JobID))
	}
	if f.Action != "" {
		where = append(where, "action = "+arg(string(f.Action)))
	}
	if !f.Since.IsZero() {
		where = append(where, "time_us >= "+arg(f.Since.UnixMicro()))
	}
	if !f.Until.IsZero() {
		where = append(where, "time_us < "+arg(f.Until.UnixMicro()))
	}
	if f.BeforeSeq > 0 {
		where = append(where, "seq < "+arg(f.BeforeSeq))
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > "+arg(f.AfterSeq))
	}
	if len(where) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// escapeLike makes s match itself literally inside LIKE … ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// PendingIntents are job.cancel.intent and job.create.intent entries with
// no outcome of their kind sharing their RequestID, oldest first: cancels
// and creates interrupted between the intent and the outcome (a crash, a
// kill -9).
func (s *Store) PendingIntents(ctx context.Context) ([]Entry, error) {
	return s.query(ctx, "pending intents", `SELECT `+entryColumns+` FROM audit_entries i
		WHERE (action = $1 AND NOT EXISTS (
			SELECT 1 FROM audit_entries o WHERE o.request_id = i.request_id AND o.action IN (`+cancelOutcomeList+`)))
		OR (action = $2 AND NOT EXISTS (
			SELECT 1 FROM audit_entries o WHERE o.request_id = i.request_id AND o.action IN (`+createOutcomeList+`)))
		ORDER BY seq`, string(JobCancelIntent), string(JobCreateIntent))
}

// createOutcomes are the actions that settle a job.create.intent sharing
// their RequestID (reconciliation writes succeeded or refused).
var createOutcomes = []Action{JobCreateSucceeded, JobCreateRefused, JobCreateUnknown}

// cancelOutcomeList and createOutcomeList are the outcome lists as SQL
// string literals (constants, no input).
var cancelOutcomeList, createOutcomeList = sqlList(cancelOutcomes), sqlList(createOutcomes)

func sqlList(actions []Action) string {
	quoted := make([]string, len(actions))
	for i, a := range actions {
		quoted[i] = "'" + string(a) + "'"
	}
	return strings.Join(quoted, ", ")
}

// hasOutcome reports whether requestID already has an outcome of the same
// kind (create or cancel) as outcome, the one about to be written.
func hasOutcome(ctx context.Context, tx *sql.Tx, outcome Action, requestID string) (bool, error) {
	list := cancelOutcomeList
	if slices.Contains(createOutcomes, outcome) {
		list = createOutcomeList
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_entries
		WHERE request_id = $1 AND action IN (`+list+`)`, requestID).Scan(&n)
	return n > 0, err
}

func (s *Store) query(ctx context.Context, op, q string, args ...any) ([]Entry, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, unavailable(op, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, unavailable(op, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(op, err)
	}
	return out, nil
}

// inFlightGrace is how long an intent this process wrote may still be
// waiting for its outcome: a cancel's hub call ends within 25 s (its call
// budget), so an intent older than this has lost its outcome for good.
const inFlightGrace = 2 * time.Minute

// StatusLookup reads a job's current status from its hub, for Reconcile:
// StatusNotFound when the hub has no such job.
type StatusLookup func(ctx context.Context, hub, jobID string) (status string, err error)

// StatusNotFound is the status a StatusLookup reports for a job the hub
// does not have: a create intent with it was not created.
const StatusNotFound = "not_found"

// Reconcile settles every pending intent older than the reconcile grace
// (WithReconcileGrace) by looking the job up and appending an outcome
// sharing the intent's RequestID, Hub, JobID and Actor: for a cancel,
// job.cancel.reconciled with Result = the status seen; for a create,
// job.create.succeeded "reconciled: created" when the job exists, else
// job.create.refused "reconciled: not created". It returns how many it
// settled.
//
// When a lookup fails the intent stays pending — writing an outcome would
// claim a knowledge nobody has — and the failures come back joined in the
// error, for the log; a later Reconcile (next start, or a periodic call)
// retries. A store failure stops the walk and wraps ErrUnavailable.
// An intent that another replica settled meanwhile is skipped.
func (s *Store) Reconcile(ctx context.Context, lookup StatusLookup) (int, error) {
	pending, err := s.PendingIntents(ctx)
	if err != nil {
		return 0, err
	}
	settled := 0
	var lookupErrs []error
	for _, intent := range pending {
		grace := s.reconcileGrace // its request may still be running on another replica
		if !intent.Time.Before(s.opened) {
			grace = max(grace, inFlightGrace) // … or in this process
		}
		if s.now().Sub(intent.Time) < grace {
			continue
		}
		status, err := lookup(ctx, intent.Hub, intent.JobID)
		if err != nil {
			lookupErrs = append(lookupErrs, fmt.Errorf("reconcile seq %d (hub %s, job %s): %w",
				intent.Seq, intent.Hub, intent.JobID, err))
			continue
		}
		action, result := reconciled(intent.Action, status)
		_, err = s.append(ctx, Entry{
			Action:    action,
			Result:    result,
			Actor:     intent.Actor,
			RequestID: intent.RequestID,
			Hub:       intent.Hub,
			JobID:     intent.JobID,
		}, true, nil)
		switch {
		case errors.Is(err, errSettled):
		case err != nil:
			return settled, err
		default:
			settled++
		}
	}
	return settled, errors.Join(lookupErrs...)
}

// reconciled is the outcome reconciliation writes for an intent, given the
// job's status as the hub says it now.
func reconciled(intent Action, status string) (Action, string) {
	switch {
	case intent != JobCreateIntent:
		return JobCancelReconciled, status
	case status == StatusNotFound:
		return JobCreateRefused, "reconciled: not created"
	}
	return JobCreateSucceeded, "reconciled: created"
}
