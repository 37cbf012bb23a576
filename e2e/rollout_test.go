package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hubjobs/hubjobs/hub"
)

// rolloutPoll is the engine's poll interval in the rollout tests: the
// smallest the config allows, so that a wave's end is seen within a second.
const rolloutPoll = time.Second

// rolloutJobsOpsPerMinute is the hub's jobs budget in the rollout tests.
// Polling every second, the engine counts the hub's active jobs about once
// a second, which is all that its share (0.5) of the default 100 a minute
// refills: the next wave's create then never gets a call (seen: a minute
// of job.create.refused "this caller's share … is spent", once a poll).
// The simulator has no jobs throttle, so the test gives the portal more.
const rolloutJobsOpsPerMinute = 600

// waitRolloutState waits until the rollout page (live, without a reload:
// its status section polls every 5 s) shows the state.
func (b *browser) waitRolloutState(state string, timeout time.Duration) {
	b.t.Helper()
	b.waitFor("the rollout page to show "+state,
		fmt.Sprintf(`document.querySelector('#rollout-status[data-state=%q]') !== null`, state), timeout)
}

// TestApproverApprovesWaveAndOperatorHaltsRollout: an author creates a
// rollout of three waves whose second needs an approval; the author is not
// offered the approval, an approver gives it, the second wave runs, and
// while the third waits as a scheduled hub job through the bake an operator
// halts the rollout with a reason: the scheduled job is cancelled on the hub
// and the page says who halted it and why.
func TestApproverApprovesWaveAndOperatorHaltsRollout(t *testing.T) {
	// Ten devices (site lyon) at 10 devices/s: waves of 2, 3 and 5 devices
	// each run ~3.5 s. The bake is the operator's window to halt while wave
	// 3 is scheduled; it is paid twice (before the approval too).
	const bake = 8 * time.Second
	author, approver, operator := newBrowser(t), newBrowser(t), newBrowser(t)
	s := startServeStackWith(t, simOptions{Registry: fleet(), DeviceRate: 10},
		portalOptions{RolloutPoll: rolloutPoll, JobsOpsPerMinute: rolloutJobsOpsPerMinute})
	devices := fleetCount("site", "lyon")
	wantSizes := []int{2, 3, devices - 5}

	openSignedOut(author, s.URL, s.URL+"/hubs/"+hubName+"/rollouts/new", dexSignIn(dexAuthor))
	// Every field but the condition is set without events; typing the
	// condition last makes one plan request with everything in it (each
	// plan costs queries from the author's share of the hub's budget).
	for field, value := range map[string]string{
		"method": "reboot", "waves": "2,5,100%", "bake": bake.String(), "approval_waves": "2", "reason": "e2e: staged reboot",
	} {
		author.do("fill "+field, chromedp.SetValue(chromedp.CSS("#f-"+field), value))
	}
	author.typeInto("#f-condition", "tags.site = 'lyon'")
	author.waitPlanDevices(devices)
	author.waitFor("the plan's three waves", `document.querySelectorAll('#plan-waves li[data-wave]').length === 3`, stepTimeout)
	for i, want := range wantSizes {
		sel := fmt.Sprintf(`#plan-waves li[data-wave="%d"]`, i+1)
		if got, _ := author.attr(sel, "data-size"); got != fmt.Sprint(want) {
			t.Errorf("plan wave %d has %s devices, want %d", i+1, got, want)
		}
	}
	if gate := author.text(`#plan-waves li[data-wave="2"]`); !strings.Contains(gate, "approval") {
		t.Errorf("plan wave 2 reads %q, want it to say it waits for an approval", gate)
	}
	author.screenshotOf("plan", "#plan-section")

	rid, _ := author.attr(`#rollout-form input[name="rid"]`, "value")
	author.do("create", chromedp.Click(chromedp.CSS("#create-submit")))
	author.waitLocation(s.URL + rolloutPath(rid))

	// The approver and the operator sign in while wave 1 runs and bakes.
	openSignedOut(approver, s.URL, s.URL+rolloutPath(rid), dexSignIn(dexApprover))
	openSignedOut(operator, s.URL, s.URL+rolloutPath(rid), dexSignIn(dexOperator))

	// An operator who starts typing a halt reason keeps it while the live
	// status section, which holds the halt form, is replaced by its poll.
	draft := "e2e: draft reason, typed slowly"
	operator.typeInto("#halt-reason", draft)
	operator.do("mark the status section", chromedp.Evaluate[chromedp.Void](`document.querySelector('#rollout-status').dataset.e2eOld = '1'; undefined`))
	operator.waitFor("the status section to be replaced by its poll",
		`(() => { const e = document.querySelector('#rollout-status'); return e !== null && e.dataset.e2eOld !== '1' })()`, pollInterval+stepTimeout)
	if got := operator.value("#halt-reason"); got != draft {
		t.Errorf("the halt reason being typed reads %q after the status poll, want %q kept", got, draft)
	}

	// Wave 1 (~5 s), then the bake, then the gate.
	author.waitRolloutState("awaiting_approval", 5*time.Second+bake+pollInterval+stepTimeout)
	if author.exists("#approve") {
		t.Error("the author is offered to approve their own rollout")
	}
	if note := author.text("#approve-unavailable"); !strings.Contains(note, "someone else") {
		t.Errorf("the author is told %q, want that someone else must approve", note)
	}
	author.screenshot("author-awaiting-approval")
	if _, err := s.Hub.Client.GetJob(testContext(t, 5*time.Second), rolloutJobID(rid, 2, 1)); err == nil {
		t.Errorf("wave 2's job %s exists on the hub before anyone approved it", rolloutJobID(rid, 2, 1))
	}

	// The approver opens the page now (as from the notification).
	approver.navigate(s.URL + rolloutPath(rid))
	if state, _ := approver.attr("#rollout-status", "data-state"); state != "awaiting_approval" {
		t.Fatalf("the approver finds the rollout %q, want awaiting_approval", state)
	}
	approver.screenshot("rollout-awaiting-approval")
	approver.do("approve", chromedp.Click(chromedp.CSS("#approve")))
	approver.waitURL("the approval's answer", func(loc string) bool { return strings.HasSuffix(loc, rolloutPath(rid)+"/approve") })
	if banner := approver.text("#rollout-result"); !strings.Contains(banner, "approved") {
		t.Errorf("after approving, the page says %q", banner)
	}
	if got := approver.text(`#rollout-waves li[data-wave="2"] .approved`); !strings.Contains(got, dexApprover.Username) {
		t.Errorf("wave 2 reads %q, want it approved by %s", got, dexApprover.Username)
	}

	// Wave 2 runs and finishes; wave 3 is then made a scheduled job that
	// starts when the bake ends.
	s.Hub.waitJobStatus(t, rolloutJobID(rid, 2, 1), hub.StatusCompleted, 15*time.Second)
	wave3 := rolloutJobID(rid, 3, 1)
	s.Hub.waitJobStatus(t, wave3, hub.StatusScheduled, 5*time.Second)

	reason := "e2e: devices in lyon report a bad firmware"
	operator.navigate(s.URL + rolloutPath(rid))
	if state, _ := operator.attr("#rollout-status", "data-state"); state != "baking" {
		t.Fatalf("the operator finds the rollout %q, want baking (wave 3 scheduled)", state)
	}
	operator.typeInto("#halt-reason", reason)
	operator.do("halt", chromedp.Click(chromedp.CSS("#halt")))
	operator.waitURL("the halt's answer", func(loc string) bool { return strings.HasSuffix(loc, rolloutPath(rid)+"/halt") })
	operator.waitRolloutState("halted", stepTimeout)
	halted := operator.text("#rollout-halted")
	if !strings.Contains(halted, reason) || !strings.Contains(halted, "Halted by "+dexOperator.Username) {
		t.Errorf("the halted rollout reads %q, want who halted it (%s) and why (%q)", halted, dexOperator.Username, reason)
	}
	if operator.exists("#halt") || operator.exists("#approve") {
		t.Error("a halted rollout still offers halt or approve")
	}
	operator.screenshot("rollout-halted")
	// The halt cancels before it answers, and a halted page no longer
	// polls: what it says now is what the operator keeps reading.
	if state, _ := operator.attr(fmt.Sprintf(`#rollout-waves li[data-job-id=%q]`, wave3), "data-state"); state != "cancelled" {
		t.Errorf("right after the halt, wave 3's job %s shows %q, want cancelled", wave3, state)
	}
	if next := operator.text("#rollout-next"); strings.Contains(next, "running") {
		t.Errorf("right after the halt the page says %q, but no job of the rollout is running", next)
	}

	if job := s.Hub.waitJobStatus(t, wave3, hub.StatusCancelled, 5*time.Second); job.StartTime.IsZero() {
		t.Errorf("wave 3's job %s had no start time; it should have waited as a scheduled job", wave3)
	}
	operator.navigate(s.URL + jobPath(wave3))
	if status, _ := operator.attr("#job-status", "data-status"); status != "cancelled" {
		t.Errorf("wave 3's job page shows %q, want cancelled", status)
	}
	if href, _ := operator.attr("#job-rollout a", "href"); href != rolloutPath(rid) {
		t.Errorf("wave 3's job links to rollout %q, want %q", href, rolloutPath(rid))
	}
}
