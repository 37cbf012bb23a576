package views_test

import (
	"testing"

	"github.com/hubjobs/hubjobs/views"
)

// A cancel can take the hub's whole call budget (about 25 s): while it is on
// its way the dialog says so and its submit button cannot be pressed again.
func TestCancelDialogShowsTheCancelIsOnItsWay(t *testing.T) {
	job := views.Job{Hub: "prod", ID: "job-1", Type: "scheduleDeviceMethod", Status: "scheduled", Cancellable: true,
		Stats: &views.Stats{Devices: 10, Pending: 10}}
	d := render(t, views.JobFullPage(layout(), views.JobPage{Job: job, Cancel: views.CancelControl{Allowed: true, MaxReason: 500}}))
	form := d.Find("#cancel-form")
	if v, _ := form.Attr("hx-disabled-elt"); v != "#cancel-submit" || form.Find("#cancel-submit").Length() != 1 {
		t.Errorf("cancel form hx-disabled-elt = %q, want the submit button disabled while the request runs", v)
	}
	if s := form.Find("#cancel-sending.htmx-indicator[role=status]"); s.Length() != 1 || s.Text() == "" {
		t.Error("no in-flight indicator inside the cancel form")
	}
}
