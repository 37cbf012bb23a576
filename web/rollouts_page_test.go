package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
	"github.com/hubjobs/hubjobs/rollout"
)

func TestSlotBusyOffersToWaitWithTheSameRollout(t *testing.T) {
	p, fake := newRolloutPortal(t)
	a := p.as(authorU)
	fake.slotBusy = &rollout.SlotBusyError{Limit: 1, Holders: []rollout.Holder{{JobID: "nightly-7", Status: hub.StatusRunning, StopsBy: t0.Add(40 * time.Minute)}}}
	r := p.post(a, "/hubs/prod/rollouts", jobForm("busyrid"))
	if r.StatusCode != http.StatusConflict {
		t.Fatalf("slot busy = %d, want 409", r.StatusCode)
	}
	doc := r.doc(t)
	holder := doc.Find(`#slot-holders li[data-job-id="nightly-7"]`)
	if holder.Length() != 1 || !strings.Contains(holder.Text(), "running") || holder.Find("time").Length() != 1 ||
		holder.Find("a").AttrOr("href", "") != "/hubs/prod/jobs/nightly-7" {
		t.Errorf("the page does not name the job holding the slot, its status and when it stops: %q", holder.Text())
	}
	wait := doc.Find("#wait-for-slot-form")
	form := url.Values{}
	wait.Find("input").Each(func(_ int, s *goquerySelection) { form.Set(s.AttrOr("name", ""), s.AttrOr("value", "")) })
	if form.Get("rid") != "busyrid" || form.Get("wait_for_slot") != "1" || form.Get("method") != "reboot" || form.Get("payload") != `{"delay":5}` {
		t.Fatalf("the wait form does not resend the same form and rid: %v", form)
	}
	if fake.stored() != 0 {
		t.Fatal("a refused start stored a rollout")
	}
	r = p.post(a, "/hubs/prod/rollouts", form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/hubs/prod/rollouts/busyrid" {
		t.Errorf("waiting for the slot = %d → %q, want 303 to the rollout page", r.StatusCode, r.Header.Get("Location"))
	}
	if got, _ := fake.get("prod", "busyrid"); got == nil || !got.Spec.WaitForSlot {
		t.Error("the engine was not asked to wait for the slot")
	}
}

// seeded is a rollout in the middle of things: wave 1 passed, wave 2 waits
// for an approval.
func seeded(author audit.Actor) rollout.Rollout {
	spec := rollout.Spec{Hub: "prod", Type: hub.TypeScheduleUpdateTwin, Condition: "tags.ring = 'broad'", MaxExecution: time.Hour,
		Twin: &hub.Twin{ETag: "*", Properties: &hub.TwinProperties{Desired: map[string]any{"fw": "2.1"}}}, Reason: "fw 2.1 <b>now</b>"}
	return rollout.Rollout{ID: "r2d2", Hub: "prod", Spec: spec, Author: author, Created: t0.Add(-time.Hour), Devices: 260,
		Status: rollout.Status{State: rollout.AwaitingApproval, Wave: 2, Since: t0},
		Waves: []rollout.WaveRecord{
			{Number: 1, Size: 10, Started: t0.Add(-50 * time.Minute), Finished: t0.Add(-20 * time.Minute),
				Jobs:     []rollout.JobRecord{{ID: "hj-r2d2-w1-1", Devices: 10, State: "completed", Stats: &hub.DeviceJobStatistics{DeviceCount: 10, SucceededCount: 10}}},
				Verdicts: []rollout.Verdict{{Evaluated: true, Rule: rollout.HaltFailures, Text: "wave 1: 0 of 10 failed (0 %), threshold 5 %: passed"}}},
			{Number: 2, Size: 250, Jobs: []rollout.JobRecord{{ID: "hj-r2d2-w2-1", Devices: 209, State: "pending"}, {ID: "hj-r2d2-w2-2", Devices: 41, State: "pending"}}},
		},
		Next: "wave 2 starts once an approver approves it", Waiting: "wave 2 has 250 devices, above the 100 that need an approval"}
}

func actorOf(p *portal, u *user) audit.Actor {
	return audit.Actor{Issuer: p.issuer, Subject: "sub-" + u.name, Name: u.name}
}

func TestRolloutPageWordsAndButtons(t *testing.T) {
	p, fake := newRolloutPortal(t)
	fake.put(seeded(actorOf(p, authorU)))

	viewer := p.get(p.as(viewerU), "/hubs/prod/rollouts/r2d2")
	doc := viewer.doc(t)
	for sel, want := range map[string]string{
		"#rollout-waves [data-wave=\"1\"] .verdict": "wave 1: 0 of 10 failed (0 %), threshold 5 %: passed",
		"#rollout-next":    "wave 2 starts once an approver approves it",
		"#rollout-waiting": "above the 100 that need an approval",
		"#rollout-author":  "Ari Author",
	} {
		if got := doc.Find(sel).Text(); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	if doc.Find(`a[href="/hubs/prod/jobs/hj-r2d2-w2-2"]`).Length() != 1 {
		t.Error("a wave's jobs are not linked to their pages")
	}
	if doc.Find("#halt,#approve").Length() != 0 || strings.Contains(viewer.body, "<b>now</b>") {
		t.Error("a viewer is offered buttons, or the reason is live HTML")
	}
	if doc.Find("#rollout-status[hx-get]").Length() != 1 {
		t.Error("an active rollout's status does not poll")
	}
	if d := p.get(p.as(operatorU), "/hubs/prod/rollouts/r2d2").doc(t); d.Find("#halt").Length() != 1 || d.Find("#approve").Length() != 0 {
		t.Error("an operator is not offered Halt (only)")
	}
	if d := p.get(p.as(approverU), "/hubs/prod/rollouts/r2d2").doc(t); d.Find("#approve").Length() != 1 || d.Find("#halt").Length() != 0 {
		t.Error("an approver is not offered Approve (only)")
	}
	selfApprover := &user{name: authorU.name, roles: []auth.Role{auth.RoleAuthor, auth.RoleApprover}, claims: []string{"Jobs.Write", "Jobs.Approve"}}
	sa := p.as(selfApprover)
	if d := p.get(sa, "/hubs/prod/rollouts/r2d2").doc(t); d.Find("#approve").Length() != 0 || !strings.Contains(d.Find("#approve-unavailable").Text(), "someone else") {
		t.Error("the author is offered to approve their own rollout")
	}
	r := p.post(sa, "/hubs/prod/rollouts/r2d2/approve", url.Values{})
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.body, "cannot approve your own rollout") {
		t.Errorf("self-approval = %d, want 403 in plain words", r.StatusCode)
	}

	// Approve, then halt; each in the words of the page.
	ap := p.as(approverU)
	if r := p.post(ap, "/hubs/prod/rollouts/r2d2/approve", url.Values{}); r.StatusCode != http.StatusOK || !strings.Contains(r.doc(t).Find("#rollout-result").Text(), "Wave approved") {
		t.Fatalf("approve = %d\n%s", r.StatusCode, r.body)
	}
	if r := p.post(ap, "/hubs/prod/rollouts/r2d2/approve", url.Values{}); r.StatusCode != http.StatusConflict {
		t.Errorf("approving twice = %d, want 409", r.StatusCode)
	}
	op := p.as(operatorU)
	r = p.post(op, "/hubs/prod/rollouts/r2d2/halt", url.Values{"reason": {"fw 2.1 bricks tx200"}}, "HX-Request", "true")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.doc(t).Find("#rollout-halted").Text(), "Halted by Otto Operator: fw 2.1 bricks tx200") {
		t.Fatalf("halt = %d\n%s", r.StatusCode, r.body)
	}
	if r := p.post(op, "/hubs/prod/rollouts/r2d2/halt", url.Values{}); r.StatusCode != http.StatusConflict {
		t.Errorf("halting a halted rollout = %d, want 409", r.StatusCode)
	}
	status := p.get(p.as(viewerU), "/hubs/prod/rollouts/r2d2/status", "HX-Request", "true")
	if status.StatusCode != handlers.StatusStopPolling || status.doc(t).Find("#rollout-status[hx-get]").Length() != 0 {
		t.Errorf("a halted rollout's status = %d, want 286 without polling", status.StatusCode)
	}
	// "Continue with the remaining devices", for an author.
	fake.remaining["r2d2"] = []string{"b-7", "o'brien(1)"}
	cont := p.get(p.as(authorU), "/hubs/prod/rollouts/r2d2").doc(t).Find("#continue-remaining").AttrOr("href", "")
	if cont != "/hubs/prod/rollouts/new?from_rollout=r2d2" {
		t.Fatalf("continue link %q", cont)
	}
	form := p.get(p.as(authorU), cont).doc(t)
	if got := form.Find("#f-condition").Text(); got != `deviceId IN ['b-7','o\'brien(1)']` {
		t.Errorf("continue condition %q", got)
	}
	if form.Find(`#f-type option[value="twin"][selected]`).Length() != 1 || !strings.Contains(form.Find("#f-desired").Text(), `"fw": "2.1"`) {
		t.Error("continue does not carry the rollout's change")
	}
}

func TestRolloutHaltAndApproveRefusals(t *testing.T) {
	p, fake := newRolloutPortal(t)
	fake.put(seeded(actorOf(p, authorU)))
	planned := seeded(actorOf(p, authorU))
	planned.ID, planned.Status = "waiting", rollout.Status{State: rollout.Planned}
	fake.put(planned)
	// A one-wave rollout waiting for a free slot: running, but its job not sent.
	slot := seeded(actorOf(p, authorU))
	slot.ID, slot.Status = "slotwait", rollout.Status{State: rollout.Running, Wave: 1}
	slot.Waves = []rollout.WaveRecord{{Number: 1, Size: 10, Jobs: []rollout.JobRecord{{ID: "hj-slotwait-w1-1", Devices: 10, State: "pending"}}}}
	fake.put(slot)
	for _, tc := range []struct {
		u      *user
		path   string
		status int
	}{
		{viewerU, "/hubs/prod/rollouts/r2d2/halt", http.StatusForbidden},
		{authorU, "/hubs/prod/rollouts/r2d2/halt", http.StatusForbidden}, // started: operators only
		{approverU, "/hubs/prod/rollouts/r2d2/halt", http.StatusForbidden},
		{operatorU, "/hubs/prod/rollouts/r2d2/approve", http.StatusForbidden},
		{authorU, "/hubs/prod/rollouts/waiting/halt", http.StatusOK},  // the author withdraws a wait
		{authorU, "/hubs/prod/rollouts/slotwait/halt", http.StatusOK}, // … also a wait for a free slot
		{viewerU, "/hubs/prod/rollouts/nope/halt", http.StatusForbidden},
		{operatorU, "/hubs/prod/rollouts/nope/halt", http.StatusNotFound},
		{operatorU, "/hubs/prod/rollouts/BAD/halt", http.StatusBadRequest},
	} {
		before := len(p.entries(audit.Filter{Action: audit.AuthzDenied}))
		r := p.post(p.as(tc.u), tc.path, url.Values{"reason": {"test"}})
		if r.StatusCode != tc.status {
			t.Errorf("%s by %s = %d, want %d", tc.path, tc.u.name, r.StatusCode, tc.status)
		}
		denied := len(p.entries(audit.Filter{Action: audit.AuthzDenied})) - before
		if (tc.status == http.StatusForbidden) != (denied == 1) {
			t.Errorf("%s by %s: %d authz.denied entries", tc.path, tc.u.name, denied)
		}
	}
	if r, _ := fake.get("prod", "r2d2"); r.Status.State != rollout.AwaitingApproval {
		t.Errorf("refusals changed the rollout: %s", r.Status.State)
	}
	// CSRF on halt.
	noToken := url.Values{"_csrf": {""}}
	if r := p.post(p.as(operatorU), "/hubs/prod/rollouts/r2d2/halt", noToken); r.StatusCode != http.StatusForbidden {
		t.Errorf("halt without CSRF = %d", r.StatusCode)
	}
	if r, _ := fake.get("prod", "r2d2"); r.Status.State != rollout.AwaitingApproval {
		t.Error("a halt without CSRF token halted")
	}
}

func TestRolloutListAndJobLink(t *testing.T) {
	p, fake := newRolloutPortal(t)
	older := seeded(actorOf(p, authorU))
	newer := seeded(actorOf(p, authorU))
	newer.ID, newer.Created, newer.Status = "newer", t0, rollout.Status{State: rollout.Completed, Wave: 2}
	fake.put(older)
	fake.put(newer)
	v := p.as(viewerU)
	doc := p.get(v, "/hubs/prod/rollouts").doc(t)
	var ids []string
	doc.Find("#rollouts-table tr[data-rollout-id]").Each(func(_ int, s *goquerySelection) { ids = append(ids, s.AttrOr("data-rollout-id", "")) })
	if strings.Join(ids, ",") != "newer,r2d2" {
		t.Errorf("list %v, want newest first", ids)
	}
	if doc.Find("#new-job").Length() != 0 {
		t.Error("a viewer is offered New job")
	}
	if d := p.get(v, "/hubs/prod/rollouts?status=completed").doc(t); d.Find("tr[data-rollout-id]").Length() != 1 {
		t.Error("the status filter does not filter")
	}
	if r := p.get(v, "/hubs/prod/rollouts?status=bogus"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("bad status = %d", r.StatusCode)
	}
	if p.get(v, "/hubs/prod/jobs").doc(t).Find(`#nav-rollouts[href="/hubs/prod/rollouts"]`).Length() != 1 {
		t.Error("no Rollouts tab in the nav")
	}
	p.createJob("prod", "hj-r2d2-w1-1", "*", t0)
	if got := p.get(v, "/hubs/prod/jobs/hj-r2d2-w1-1").doc(t).Find("#job-rollout a").AttrOr("href", ""); got != "/hubs/prod/rollouts/r2d2" {
		t.Errorf("a rollout's job links to %q", got)
	}
	if !webNextAllowed("/hubs/prod/rollouts/r2d2") || !webNextAllowed("/hubs/prod/rollouts/new") || webNextAllowed("/hubs/prod/rollouts/r2d2/status") {
		t.Error("next= does not accept exactly the bookmarkable rollout pages")
	}
}
