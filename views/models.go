// Package views renders the portal's HTML with templ: the layout, full pages,
// partials that htmx swaps in place, and small components. It imports nothing
// internal: handlers convert hub, auth and audit values into the view models
// below, so a page can be rendered (and tested) from plain data.
package views

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Layout is what every full page needs around its content.
type Layout struct {
	Title      string
	User       *User // nil on pages shown before sign-in (errors)
	Hubs       []string
	CurrentHub string // highlighted in the hub switcher
	Section    string // "jobs", "hubs" or "audit": marks the current nav entry
	CSRFToken  string
	Assets     Assets
	Version    string
}

// Assets are the cache-busted URLs of the static files.
type Assets struct{ CSS, HTMX, JS, Icon string }

// User is the signed-in person as the header shows them.
type User struct {
	Name     string
	Roles    []string
	CanAudit bool // shows the audit link
	IsAdmin  bool // shows the notifications link
}

// Age is how old data is: "updated N s ago", and the "stale" marker when
// the portal could not ask IoT Hub again.
type Age struct {
	Stale     bool
	FetchedAt time.Time
	Age       time.Duration
	// HubFailing: the hub itself answered with an error or not at all (as
	// opposed to the portal holding back to stay under its budget).
	HubFailing bool
	// Why is the reason in plain words, e.g. "IoT Hub is limiting
	// requests"; "" when fresh.
	Why string
}

// Stats are a job's per-device counters.
type Stats struct {
	Devices, Succeeded, Failed, Running, Pending int
}

// Done is succeeded + failed.
func (s Stats) Done() int { return s.Succeeded + s.Failed }

// Percent is n as a whole percentage of the device count, for display. A
// share that rounds to 0 or 100 without being either reads "<1" or ">99", so
// that 10 failures out of 1,500 never look like none and a job with one
// device left never looks done.
func (s Stats) Percent(n int) string {
	if s.Devices <= 0 || n <= 0 {
		return "0"
	}
	if n >= s.Devices {
		return "100"
	}
	p := n * 100 / s.Devices
	switch {
	case p < 1:
		return "<1"
	case p >= 99:
		return ">99"
	}
	return strconv.Itoa(p)
}

// total is the denominator of the progress bar: the device count, or the sum
// of the counters when the hub's counters exceed it (it happens mid-update).
func (s Stats) total() int {
	return max(s.Devices, s.Succeeded+s.Failed+s.Running+s.Pending)
}

// Job is everything the job page shows.
type Job struct {
	Hub, ID       string
	Type          string // wire value, e.g. scheduleDeviceMethod
	Status        string // wire value, e.g. scheduled
	TypeLabel     string // Type and Status in words (handlers fill them from
	StatusLabel   string // the jobs vocabulary; views only show them)
	Terminal      bool
	Cancellable   bool // the hub accepts a cancel in this state
	Created       time.Time
	Started       time.Time
	Ended         time.Time
	PlannedStop   time.Time // start + max execution time; zero when unknown
	MaxExecution  time.Duration
	Query         string
	Method        *Method
	Twin          *Twin
	FailureReason string
	StatusMessage string
	ParentJobID   string
	Stats         *Stats
	Freshness     Age
	Archived      bool      // the hub no longer has the job; this is the portal's snapshot
	LastSeen      time.Time // when the snapshot was taken
	Now           time.Time // the page's notion of now (relative wording)
}

// Method is a direct-method job's invocation.
type Method struct {
	Name            string
	ResponseTimeout int    // seconds
	ConnectTimeout  int    // seconds
	Payload         string // pretty-printed JSON, "" when none
}

// Twin is a twin-update job's patch.
type Twin struct {
	Tags    string // pretty-printed JSON, "" when none
	Desired string // pretty-printed JSON, "" when none
}

// CancelControl says whether and how the cancel button is offered.
type CancelControl struct {
	Allowed         bool // the user may cancel on this hub (role and hub operators)
	NotOnThisHub    bool // an operator elsewhere, but this hub narrows who may cancel
	ConfirmRequired bool // a large job (jobs.ConfirmThreshold): type the job id
	MaxReason       int  // reason length cap
	CSRFToken       string
}

// Banner is the outcome of an action shown above the job.
type Banner struct {
	Kind   string // "ok", "info" or "error"
	Title  string
	Detail string
}

// AuditEntry is one line of an audit list (the job's history or /audit).
type AuditEntry struct {
	Seq           int64
	Time          time.Time
	Action        string
	Result        string
	Actor         string // display name, falling back to e-mail, then subject
	ActorID       string // the subject, for "entries by this person" links
	ActorRoles    []string
	Hub, JobID    string
	Reason        string
	HubStatus     int
	HubErrorCode  string
	HubTrackingID string
	RequestID     string
	ClientIP      string
}

// JobPage is the job page: the job, the cancel control, its history.
type JobPage struct {
	Job     Job
	Cancel  CancelControl
	History []AuditEntry
	// HistoryUnavailable: the audit store could not be read just now.
	HistoryUnavailable bool
	Banner             *Banner
	// RolloutID is the rollout this job delivers a wave of ("" for a job
	// made elsewhere).
	RolloutID string
	// CanCopy offers "Copy" (and, with failed devices, "Rerun on failed
	// devices"): the user may create jobs on this hub.
	CanCopy bool
}

// JobFilter is the job list's GET form.
type JobFilter struct {
	Type, Status, Q string
}

// JobRow is one line of the job list.
type JobRow struct {
	Hub, ID     string
	Type        string
	Status      string
	TypeLabel   string // Type and Status in words
	StatusLabel string
	Created     time.Time
	Started     time.Time
	Ended       time.Time
	Stats       *Stats
}

// JobList is /hubs/{hub}/jobs.
type JobList struct {
	Hub       string
	Filter    JobFilter
	Page      string // the continuation token this page was fetched with ("" = first)
	NextPage  string // token for the next page, "" on the last
	Rows      []JobRow
	Poll      bool // some visible job is not finished: the table refreshes itself
	Freshness Age
	Notice    string // e.g. "no job with that id: showing ids that contain it"
	Types     []Option
	Statuses  []Option
}

// Option is one choice of a select.
type Option struct{ Value, Label string }

// HubSummary is one line of /hubs.
type HubSummary struct {
	Name           string
	Host           string
	Reachable      bool
	Problem        string // plain words when not reachable
	ActiveJobs     int
	ActiveAtLeast  bool // more pages existed: ActiveJobs is a lower bound
	ActiveJobLimit int  // 0 = unknown
	Freshness      Age
	// Active are the queued, enqueued, scheduled and running jobs found on
	// the pages read (ActiveJobs of them), in hub order; /hubs lists them
	// across hubs with ActiveAcross.
	Active []ActiveJob
}

// ActiveJob is one line of /hubs' list of active jobs on every hub: the
// job list's row plus what matters across hubs.
type ActiveJob struct {
	JobRow
	Method  string    // a direct method's name; "" for other types
	StopsBy time.Time // running jobs: start + max execution time; zero otherwise or when unknown
}

// activeRank orders the cross-hub list: running jobs first (they hold a
// slot now), then scheduled ones (their start time is known), then the
// ones waiting in the hub's queue.
func activeRank(status string) int {
	switch status {
	case "running":
		return 0
	case "scheduled":
		return 1
	}
	return 2
}

// ActiveAcross merges every hub's active jobs into one list: running, then
// scheduled, then queued/enqueued; within each by start time (unknown
// last), then hub and id, so the order is the same on every refresh.
func ActiveAcross(hubs []HubSummary) []ActiveJob {
	var all []ActiveJob
	for _, h := range hubs {
		all = append(all, h.Active...)
	}
	slices.SortStableFunc(all, func(a, b ActiveJob) int {
		if c := cmp.Compare(activeRank(a.Status), activeRank(b.Status)); c != 0 {
			return c
		}
		if c := compareStart(a.Started, b.Started); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Hub, b.Hub), cmp.Compare(a.ID, b.ID))
	})
	return all
}

// compareStart orders times ascending with the zero time last.
func compareStart(a, b time.Time) int {
	switch {
	case a.IsZero() && b.IsZero():
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

// Device is one row of per-device results.
type Device struct {
	ID               string
	Status           string
	StatusLabel      string // Status in words
	Started, Ended   time.Time
	LastUpdated      time.Time
	ErrorCode        string
	ErrorDescription string
	HasResponse      bool
	ResponseStatus   int
	ResponsePayload  string // compact JSON
}

// DevicePage is /hubs/{hub}/jobs/{id}/devices.
type DevicePage struct {
	Hub, JobID string
	Devices    []Device
	Offset     int    // index of the first row shown (within the filtered rows)
	Total      int    // rows fetched from the hub
	Status     string // device status filter ("" = all)
	Matching   int    // rows that pass the filter
	PageSize   int
	Truncated  bool // the hub had more than the portal reads at once
	FailedIDs  []string
	Failures   []FailureKind  // why devices failed, most common first
	Counts     map[string]int // per status
	// StatusLabels are the device statuses in words, for the filter tabs.
	StatusLabels map[string]string
	Freshness    Age
}

// FailureKind is one reason devices failed (an IoT Hub error code, or the
// status a device's method answered) and how many devices it hit.
type FailureKind struct {
	Label string
	Count int
}

// AuditFilter is /audit's GET form.
type AuditFilter struct {
	User, Hub, Job, Action, Since, Until string
}

// AuditPage is /audit.
type AuditPage struct {
	Filter     AuditFilter
	Entries    []AuditEntry
	NextBefore int64 // seq for the next (older) page, 0 when none
	Actions    []Option
}

// ErrorPage is the plain-words page (or fragment) for any failure.
type ErrorPage struct {
	Status    int
	Title     string
	Detail    string
	HubCode   string
	TrackID   string
	RequestID string
	Retry     string // e.g. "in about 30 seconds"
	Again     string // local URL to retry (a GET that may work later), "" when retrying cannot help
	// SignIn is where "Sign in again" leads when a sign-in expired or
	// failed: the login URL that returns to the page the user wanted.
	SignIn string
}

// SignInLink is the sign-in button's target on an error page, or "" for
// none: a page for a signed-out visitor offers one, except a 403, where
// signing in again would land on the same refusal.
func (e ErrorPage) SignInLink(signedIn bool) string {
	switch {
	case e.SignIn != "":
		return e.SignIn
	case signedIn || e.Status == 403:
		return ""
	}
	return "/auth/login"
}

// Count renders n with thousands separators ("12,000"), as counts of
// devices read at a glance.
func Count(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// Duration renders d in plain words ("2 h 5 min", "45 s").
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		m, s := int(d.Minutes()), int(d.Seconds())%60
		if s == 0 {
			return fmt.Sprintf("%d min", m)
		}
		return fmt.Sprintf("%d min %d s", m, s)
	case d < 48*time.Hour:
		h, m := int(d.Hours()), int(d.Minutes())%60
		if m == 0 {
			return fmt.Sprintf("%d h", h)
		}
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d days", int(d.Hours())/24)
}

// RolloutForm is the "New job" form: the values as typed (by form field
// name), a message per field, and what the page says around it.
type RolloutForm struct {
	Hub string
	// RID is the rollout id the form was rendered with: creating twice with
	// it (a double submit) lands on one rollout.
	RID    string
	Values map[string]string
	Errors map[string]string
	// Notice explains a pre-fill ("Copied from job …", or why the failed
	// devices could not be listed); NoticeKind is "info" or "error".
	Notice, NoticeKind string
	// Problem is a refusal not tied to one field.
	Problem   string
	SlotBusy  *SlotBusy
	CSRFToken string
}

// Value is field's value as typed.
func (f RolloutForm) Value(field string) string { return f.Values[field] }

// SlotBusy says why a job that should start now cannot: every active-job
// slot of the hub is held.
type SlotBusy struct {
	Limit   int
	Holders []SlotHolder
}

// SlotHolder is a job holding an active-job slot.
type SlotHolder struct {
	Hub, JobID, Status, StatusLabel string
	StopsBy                         time.Time
}

// Plan is the plan fragment: what would happen if the form were sent now.
type Plan struct {
	Hub string
	// Errors are the field messages, swapped next to each field; Fields
	// lists every field so that fixed ones are cleared.
	Errors map[string]string
	Fields []string
	// Counted: the hub counted the devices (Devices, as of CountAge).
	Counted  bool
	Devices  int
	CountAge Age
	// Unavailable says in words why there is no count (the query budget
	// is spent, the hub refuses the condition, the hub is down).
	Unavailable string
	Sample      []string
	Waves       []PlanWave
	HubJobs     int
	JobsExact   bool // false: estimated from the sample's id lengths
	// Limits that apply.
	MaxActiveJobs    int
	JobsOpsPerMinute int
	DeviceRate       string
	ETA              string
	WorstCase        string
}

// PlanWave is one wave of a plan.
type PlanWave struct {
	Number, Size, Jobs int
	Step               string
	Approval           bool
}

// RolloutRow is one line of the rollout list.
type RolloutRow struct {
	Hub, ID           string
	State, StateLabel string
	Author            string
	Created           time.Time
	Devices, Waves    int
	Wave              int
	What              string // "Direct method reboot", "Twin update"
}

// RolloutList is the rollout list page.
type RolloutList struct {
	Hub       string
	Status    string
	Statuses  []Option
	Rows      []RolloutRow
	CanCreate bool
	Now       time.Time
}

// Rollout is the rollout page.
type Rollout struct {
	Hub, ID           string
	State, StateLabel string
	Final             bool
	Author            string
	Created           time.Time
	Devices           int
	What              string
	Condition         string
	Reason            string
	Waves             []RolloutWave
	Next, Waiting     string
	Halted            string // who halted it and why, in words
	CanHalt           bool
	CanApprove        bool
	// ApproveNote says why an approver is not offered the button (their
	// own rollout).
	ApproveNote string
	CanContinue bool // halted: "Continue with the remaining devices"
	CSRFToken   string
	Banner      *Banner
	Now         time.Time
}

// RolloutWave is one wave on the rollout page's timeline.
type RolloutWave struct {
	Number, Size      int
	Started, Finished time.Time
	Jobs              []RolloutJob
	Verdicts          []Verdict
	ApprovedBy        string
	Current           bool
}

// RolloutJob is one hub job of a wave.
type RolloutJob struct {
	ID, State, StateLabel string
	Devices               int
	Stats                 *Stats
	Start                 time.Time
}

// Verdict is a rule evaluation in words.
type Verdict struct {
	Text  string
	Fired bool
}
