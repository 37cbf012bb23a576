package views_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/views"
)

// What someone opening a job from a ticket link reads first: how far it
// got, how many failed, how fresh that is, and who cancelled it and why.
func TestJobPageReadsAtAGlance(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	running := views.Job{Hub: "prod", ID: "fw", Type: "scheduleDeviceMethod", Status: "running", Now: now,
		Method:  &views.Method{Name: "applyFirmware"},
		Started: now.Add(-time.Minute), PlannedStop: now.Add(59 * time.Minute), MaxExecution: time.Hour,
		Stats:     &views.Stats{Devices: 12000, Succeeded: 3000, Failed: 120, Running: 40, Pending: 8840},
		Freshness: views.Age{FetchedAt: now.Add(-3 * time.Second), Age: 3 * time.Second}}
	d := render(t, views.JobFullPage(layout(), views.JobPage{Job: running}))
	if got := strings.Join(strings.Fields(d.Find("#progress-summary").Text()), " "); got != "3,120 of 12,000 devices done (26 %) · 120 failed · 40 running" {
		t.Errorf("progress summary = %q", got)
	}
	if d.Find("#planned-stop time[data-rel]").Length() != 1 {
		t.Error("the planned stop has no relative time (\"in 59 minutes\")")
	}
	if age, _ := d.Find("#freshness [data-age]").Attr("data-age"); age != "3" {
		t.Errorf("freshness age = %q, want 3 (seconds, counted on by app.js)", age)
	}
	if !strings.Contains(d.Find("#job-status-line").Text(), "applyFirmware") {
		t.Error("the status line does not name the method")
	}

	cancelled := views.Job{Hub: "prod", ID: "rb", Type: "scheduleDeviceMethod", Status: "cancelled", Terminal: true, Now: now,
		Created: now.Add(-3 * time.Hour), Started: now.Add(time.Hour), Ended: now.Add(-2 * time.Hour),
		Stats: &views.Stats{Devices: 336}}
	history := []views.AuditEntry{
		{Action: "job.cancel.succeeded", Actor: "Otto Operator", Time: now.Add(-2 * time.Hour), RequestID: "r1"},
		{Action: "job.cancel.intent", Actor: "Otto Operator", Time: now.Add(-2 * time.Hour), RequestID: "r1", Reason: "wrong window"},
	}
	d = render(t, views.JobFullPage(layout(), views.JobPage{Job: cancelled, History: history}))
	by := strings.Join(strings.Fields(d.Find("#cancelled-by").Text()), " ")
	if !strings.Contains(by, "by Otto Operator") || !strings.Contains(by, "reason: wrong window") {
		t.Errorf("cancelled-by = %q, want the person and the reason from the intent", by)
	}
	if got := d.Find("#progress-summary").Text(); !strings.Contains(got, "No device was reached") {
		t.Errorf("a job cancelled before it started reads %q", got)
	}
	timeline := d.Find("#timeline").Text()
	if !strings.Contains(timeline, "Was to start") || !strings.Contains(timeline, "Cancelled") {
		t.Errorf("timeline = %q: a job cancelled before its start time did not start, and its end is the cancel", timeline)
	}
}

func TestOperatorWithoutRightsOnThisHubIsToldWhy(t *testing.T) {
	job := views.Job{Hub: "eu", ID: "j", Status: "scheduled", Cancellable: true}
	d := render(t, views.JobFullPage(layout(), views.JobPage{Job: job, Cancel: views.CancelControl{NotOnThisHub: true}}))
	if d.Find("#cancel-open").Length() != 0 || !strings.Contains(d.Find("#cancel-not-here").Text(), "hub eu") {
		t.Error("an operator who may not cancel on this hub gets no explanation (or gets the button)")
	}
	viewer := render(t, views.JobFullPage(layout(), views.JobPage{Job: job}))
	if viewer.Find("#cancel-not-here").Length()+viewer.Find("#cancel-open").Length() != 0 {
		t.Error("a viewer sees cancel wording")
	}
}

func TestDeviceStatusFilterLinksKeepTheirPlace(t *testing.T) {
	m := views.DevicePage{Hub: "prod", JobID: "j", Total: 120, Matching: 77, PageSize: 50, Status: "failed",
		Counts: map[string]int{"failed": 77, "completed": 43}, StatusLabels: map[string]string{"failed": "Failed", "completed": "Completed"}}
	for i := range 50 {
		m.Devices = append(m.Devices, views.Device{ID: "d" + string(rune('a'+i%26)), Status: "failed"})
	}
	d := render(t, views.Devices(m))
	if cur := d.Find(`nav.tabs a[aria-current]`); cur.Length() != 1 || !strings.Contains(cur.Text(), "Failed (77)") {
		t.Errorf("current filter = %q", cur.Text())
	}
	if href, _ := d.Find("#devices-next").Attr("href"); href != "/hubs/prod/jobs/j/devices?offset=50&status=failed" {
		t.Errorf("next page = %q: paging must keep the filter", href)
	}
	if got := d.Find(".pager").Text(); !strings.Contains(got, "of 77") {
		t.Errorf("pager = %q: it counts the filtered rows", got)
	}
}

func TestAuditorOnlyHeaderHasNoHubsLink(t *testing.T) {
	l := layout()
	l.Hubs, l.User.CanAudit = nil, true
	d := render(t, views.AuditFullPage(l, views.AuditPage{}))
	if strings.Contains(d.Find("#hub-switcher").Text(), "All hubs") {
		t.Error("a user who may not read jobs is offered the hubs page")
	}
}

func TestCountGroupsThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1500: "-1,500"} {
		if got := views.Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
}

// A job cancelled while it was queued never started, even though the hub
// reports a start time in the past.
func TestCancelledWhileQueuedDoesNotReadAsStarted(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	j := views.Job{Hub: "prod", ID: "q", Status: "cancelled", Terminal: true, Now: now,
		Created: now.Add(-10 * time.Minute), Started: now.Add(-10 * time.Minute), Ended: now.Add(-time.Minute),
		Stats: &views.Stats{Devices: 262}}
	d := render(t, views.JobFullPage(layout(), views.JobPage{Job: j}))
	if tl := d.Find("#timeline").Text(); !strings.Contains(tl, "Was to start") || strings.Contains(tl, "Started") {
		t.Errorf("timeline = %q", tl)
	}
}
