package views

import (
	"net/url"
	"strconv"
)

// URL builders: every dynamic URL in the portal comes from here, with each
// path segment escaped by url.PathEscape and every query value encoded by
// url.Values, so a hostile job id or token can never change the URL's shape.
// Templates wrap the result in templ.URL, which additionally refuses any
// non-relative scheme.

// HubsURL is the hub overview.
func HubsURL() string { return "/hubs" }

// JobsURL is a hub's job list, first page, no filters.
func JobsURL(hub string) string { return "/hubs/" + url.PathEscape(hub) + "/jobs" }

// JobsQueryURL is a hub's job list with filters and a continuation token.
func JobsQueryURL(hub string, f JobFilter, page string) string {
	v := url.Values{}
	set(v, "type", f.Type)
	set(v, "status", f.Status)
	set(v, "q", f.Q)
	set(v, "page", page)
	return withQuery(JobsURL(hub), v)
}

// JobURL is the bookmarkable job page.
func JobURL(hub, id string) string { return JobsURL(hub) + "/" + url.PathEscape(id) }

// JobStatusURL is the polled live fragment.
func JobStatusURL(hub, id string) string { return JobURL(hub, id) + "/status" }

// JobCancelURL is where the cancel form posts.
func JobCancelURL(hub, id string) string { return JobURL(hub, id) + "/cancel" }

// JobDevicesURL is the per-device results from row offset.
func JobDevicesURL(hub, id string, offset int) string { return JobDevicesQueryURL(hub, id, "", offset) }

// JobDevicesQueryURL is the per-device results with a device status
// filter ("" = every status), from row offset.
func JobDevicesQueryURL(hub, id, status string, offset int) string {
	v := url.Values{}
	set(v, "status", status)
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	return withQuery(JobURL(hub, id)+"/devices", v)
}

// JobDevicesCSVURL is the per-device CSV export.
func JobDevicesCSVURL(hub, id string) string { return JobURL(hub, id) + "/devices.csv" }

// AuditURL is the audit trail with filters, older than seq before (0 = newest).
func AuditURL(f AuditFilter, before int64) string {
	return withQuery("/audit", auditValues(f, before))
}

// AuditCSVURL is the audit export with the same filters.
func AuditCSVURL(f AuditFilter) string { return withQuery("/audit.csv", auditValues(f, 0)) }

func auditValues(f AuditFilter, before int64) url.Values {
	v := url.Values{}
	set(v, "user", f.User)
	set(v, "hub", f.Hub)
	set(v, "job", f.Job)
	set(v, "action", f.Action)
	set(v, "since", f.Since)
	set(v, "until", f.Until)
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	return v
}

func set(v url.Values, key, value string) {
	if value != "" {
		v.Set(key, value)
	}
}

func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// RolloutsURL is a hub's rollout list.
func RolloutsURL(hub string) string { return "/hubs/" + url.PathEscape(hub) + "/rollouts" }

// RolloutsQueryURL is the rollout list filtered by state.
func RolloutsQueryURL(hub, status string) string {
	v := url.Values{}
	set(v, "status", status)
	return withQuery(RolloutsURL(hub), v)
}

// RolloutURL is the rollout page; its live fragment, halt and approve
// hang below it.
func RolloutURL(hub, rid string) string { return RolloutsURL(hub) + "/" + url.PathEscape(rid) }

func RolloutStatusURL(hub, rid string) string  { return RolloutURL(hub, rid) + "/status" }
func RolloutHaltURL(hub, rid string) string    { return RolloutURL(hub, rid) + "/halt" }
func RolloutApproveURL(hub, rid string) string { return RolloutURL(hub, rid) + "/approve" }

// NewRolloutURL is the blank "New job" form; RolloutPlanURL its plan
// fragment; the form posts to RolloutsURL.
func NewRolloutURL(hub string) string  { return RolloutsURL(hub) + "/new" }
func RolloutPlanURL(hub string) string { return RolloutsURL(hub) + "/plan" }

// CopyJobURL opens the form pre-filled from a job; RerunFailedURL with the
// devices that failed in it; ContinueRolloutURL with the devices a halted
// rollout never reached.
func CopyJobURL(hub, id string) string {
	return withQuery(NewRolloutURL(hub), url.Values{"from_job": {id}})
}

func RerunFailedURL(hub, id string) string {
	return withQuery(NewRolloutURL(hub), url.Values{"from_job": {id}, "devices": {"failed"}})
}

func ContinueRolloutURL(hub, rid string) string {
	return withQuery(NewRolloutURL(hub), url.Values{"from_rollout": {rid}})
}
