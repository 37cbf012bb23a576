package main

// Halts and approvals checked from outside: each halt rule, the manual
// halt with its roles and CSRF token, and the four-eyes approval. See
// rollout_helpers_test.go for the world these checks run in.

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// haltWorld is a 40-device fleet (behaviour by index), its simulator,
// and a portal on SQLite driving rollouts every second.
type haltWorld struct {
	hub   *rolloutHub
	setup portalSetup
	db    string
}

func newHaltWorld(t *testing.T, behaviour func(i int) string) *haltWorld {
	t.Helper()
	h := startRolloutHub(t, fleet(40, "paris", behaviour), "--max-active-jobs", "1", "--device-rate", "200")
	db := "sqlite://" + t.TempDir() + "/hubjobs.db"
	setup := rolloutPortal(t, rolloutIdP(t), h, rolloutConfig{database: db})
	startServe(t, setup)
	return &haltWorld{hub: h, setup: setup, db: db}
}

func (w *haltWorld) signIn(t *testing.T, user string) *browser {
	t.Helper()
	b := newBrowser(t)
	b.signIn(w.setup.publicURL, user)
	return b
}

// waitHubJob waits until the hub shows job id in one of statuses.
func (w *haltWorld) waitHubJob(t *testing.T, rid, id string, limit time.Duration, statuses ...string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if j, ok := w.hub.rolloutJobs(t, rid)[id]; ok && slices.Contains(statuses, fmt.Sprint(j["status"])) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not %v at the hub within %s; rollout jobs there: %v", id, statuses, limit, jobStatuses(w.hub.rolloutJobs(t, rid)))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jobStatuses(jobs map[string]map[string]any) map[string]string {
	out := map[string]string{}
	for id, j := range jobs {
		out[id] = fmt.Sprint(j["status"])
	}
	return out
}

// wantHubJobs fails unless the hub holds exactly these jobs of rid, in
// these statuses, and stays so for two more polls: nothing more created.
func (w *haltWorld) wantHubJobs(t *testing.T, rid string, want map[string]string) {
	t.Helper()
	puts := len(w.hub.creates())
	time.Sleep(2500 * time.Millisecond)
	if got := jobStatuses(w.hub.rolloutJobs(t, rid)); !maps.Equal(got, want) {
		t.Errorf("hub jobs of the rollout %v, want %v", got, want)
	}
	if n := len(w.hub.creates()); n != puts {
		t.Errorf("the portal sent %d more creates after the halt", n-puts)
	}
}

func (w *haltWorld) jobID(rid string, wave int) string { return fmt.Sprintf("hj-%s-w%d-1", rid, wave) }

// The failure rule: most devices fail; wave 1 (which no halt can stop
// once running) runs to its end, the rollout halts with the rule's words
// as the engine, and wave 2 is never created. The rule judges a wave
// before the next is made (rollout/README.md, worst case), so no
// scheduled job exists for it to cancel.
func TestRolloutBlackboxFailureRuleHalts(t *testing.T) {
	t.Parallel()
	w := newHaltWorld(t, func(i int) string { return map[bool]string{true: "ok", false: "fail"}[i%4 == 0] })
	author := w.signIn(t, "author")
	rid, _ := author.createRollout(w.setup.publicURL, rolloutForm("tags.site = 'paris'", "10,100%", "5s",
		map[string]string{"failures": "5%", "min_finished": "5"}))
	page := pageText(author.waitRollout(w.setup.publicURL, rid, 45*time.Second, "halted", "completed"))
	if !strings.Contains(page, "Halted by hubjobs because the failure rule fired") || !strings.Contains(page, "threshold 5 %") {
		t.Errorf("the halted page does not say the failure rule fired:\n%s", page)
	}
	w.waitHubJob(t, rid, w.jobID(rid, 1), 20*time.Second, "completed", "failed")
	w1 := fmt.Sprint(w.hub.rolloutJobs(t, rid)[w.jobID(rid, 1)]["status"])
	w.wantHubJobs(t, rid, map[string]string{w.jobID(rid, 1): w1})
	trail := auditOf(t, w.db, rid)
	halt := lastAction(trail, "rollout.halted")
	if halt == nil || halt.ActorSub != "hubjobs" || !strings.Contains(halt.Result, "failed") {
		t.Errorf("rollout.halted entry %+v, want the engine with the failure verdict", halt)
	}
}

// The health rule: wave 1's devices report health 'error' once their job
// succeeded; counted before the bake ends, the rule halts the rollout
// while wave 2 is still a scheduled job, and that job is cancelled at the
// hub without ever running.
func TestRolloutBlackboxHealthRuleCancelsTheScheduledWave(t *testing.T) {
	t.Parallel()
	w := newHaltWorld(t, func(i int) string { return map[bool]string{true: "ok", false: "unhealthy"}[i%4 == 0] })
	stop := make(chan struct{})
	watch := w.hub.watchJobs(stop)
	author := w.signIn(t, "author")
	rid, _ := author.createRollout(w.setup.publicURL, rolloutForm("tags.site = 'paris'", "10,100%", "8s",
		map[string]string{"health_query": "properties.reported.health = 'error'", "health_threshold": "5%"}))
	page := pageText(author.waitRollout(w.setup.publicURL, rid, 45*time.Second, "halted", "completed"))
	w.waitHubJob(t, rid, w.jobID(rid, 2), 10*time.Second, "cancelled")
	close(stop)
	seen := <-watch
	if !strings.Contains(page, "because the health rule fired") || !strings.Contains(page, "unhealthy") {
		t.Errorf("the halted page does not say the health rule fired:\n%s", page)
	}
	if s := seen.seen[w.jobID(rid, 2)]; slices.Contains(s, "running") || !slices.Contains(s, "scheduled") {
		t.Errorf("wave 2 went through %v at the hub; want scheduled, then cancelled, never running", s)
	}
	w.wantHubJobs(t, rid, map[string]string{w.jobID(rid, 1): "completed", w.jobID(rid, 2): "cancelled"})
	trail := auditOf(t, w.db, rid)
	halt := lastAction(trail, "rollout.halted")
	if halt == nil || halt.ActorSub != "hubjobs" || !strings.Contains(halt.Result, "unhealthy") {
		t.Errorf("rollout.halted entry %+v, want the engine with the health verdict", halt)
	}
	if countAction(trail, "job.cancel.succeeded", w.jobID(rid, 2)) != 1 {
		t.Errorf("no job.cancel.succeeded for wave 2; trail:\n%s", strings.Join(actions(trail), "\n"))
	}
}

// The manual halt, during a long bake with wave 2 scheduled: a viewer is
// refused (403, authz.denied) and an operator's POST without the CSRF
// token is refused, neither changing anything; the operator's halt with
// the page's token halts the rollout, cancels wave 2 at the hub and
// records the reason.
func TestRolloutBlackboxManualHaltNeedsOperatorAndCSRF(t *testing.T) {
	t.Parallel()
	w := newHaltWorld(t, nil)
	author := w.signIn(t, "author")
	rid, _ := author.createRollout(w.setup.publicURL, rolloutForm("tags.site = 'paris'", "10,100%", "2m", nil))
	w.waitHubJob(t, rid, w.jobID(rid, 2), 30*time.Second, "scheduled")
	base, path := w.setup.publicURL, "/hubs/prod/rollouts/"+rid+"/halt"
	pageURL := base + "/hubs/prod/rollouts/" + rid

	viewer := w.signIn(t, "viewer")
	if resp, _, err := viewer.post(t.Context(), base, path, url.Values{"_csrf": {viewer.csrf(pageURL)}, "reason": {"viewer"}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer halt: %v %v, want 403", err, resp.Status)
	}
	operator := w.signIn(t, "operator")
	if resp, _, err := operator.post(t.Context(), base, path, url.Values{"reason": {"no token"}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("operator halt without a CSRF token: %v %v, want 403", err, resp.Status)
	}
	if state, _ := operator.rolloutState(base, rid); state != "baking" {
		t.Errorf("after two refused halts the rollout is %s, want still baking", state)
	}
	if got := jobStatuses(w.hub.rolloutJobs(t, rid)); got[w.jobID(rid, 2)] != "scheduled" {
		t.Errorf("after two refused halts wave 2 is %v at the hub, want still scheduled", got)
	}

	resp, body, err := operator.post(t.Context(), base, path, url.Values{"_csrf": {operator.csrf(pageURL)}, "reason": {"bad firmware seen in the field"}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("operator halt: %v %v\n%s", err, resp.Status, pageText(body))
	}
	if text := pageText(body); !strings.Contains(text, "Halted by Otto Operator: bad firmware seen in the field") {
		t.Errorf("the halt answer does not say who halted and why:\n%s", text)
	}
	w.waitHubJob(t, rid, w.jobID(rid, 2), 5*time.Second, "cancelled")
	w.wantHubJobs(t, rid, map[string]string{w.jobID(rid, 1): "completed", w.jobID(rid, 2): "cancelled"})

	trail := auditOf(t, w.db, rid)
	if denied := lastAction(trail, "authz.denied"); denied == nil || denied.ActorSub != "demo-viewer" {
		t.Errorf("no authz.denied entry for the viewer's halt; trail:\n%s", strings.Join(actions(trail), "\n"))
	}
	if n := countAction(trail, "rollout.halted", rid); n != 1 {
		t.Errorf("%d rollout.halted entries, want 1", n)
	}
	if halt := lastAction(trail, "rollout.halted"); halt == nil || halt.ActorSub != "demo-operator" || halt.Reason != "bad firmware seen in the field" {
		t.Errorf("rollout.halted entry %+v, want the operator and the reason", halt)
	}
	if countAction(trail, "job.cancel.succeeded", w.jobID(rid, 2)) != 1 {
		t.Errorf("no job.cancel.succeeded for wave 2; trail:\n%s", strings.Join(actions(trail), "\n"))
	}
}

// Approval is four-eyes: a wave gated in the form waits for an approver;
// its author, though holding the approver role, is refused (403, nothing
// approved, no job created); an author without the role is refused as
// well; another approver's approval lets the wave go and the rollout
// completes.
func TestRolloutBlackboxApprovalIsFourEyes(t *testing.T) {
	t.Parallel()
	w := newHaltWorld(t, nil)
	pat := w.signIn(t, "pat") // writes and approves
	rid, _ := pat.createRollout(w.setup.publicURL, rolloutForm("tags.site = 'paris'", "10,100%", "2s", map[string]string{"approval_waves": "2"}))
	base, path := w.setup.publicURL, "/hubs/prod/rollouts/"+rid+"/approve"
	pageURL := base + "/hubs/prod/rollouts/" + rid
	page := pageText(pat.waitRollout(base, rid, 30*time.Second, "awaiting_approval"))
	if !strings.Contains(page, "You wrote this rollout, so someone else must approve it") {
		t.Errorf("the author's page does not explain why there is no approve button:\n%s", page)
	}

	resp, body, err := pat.post(t.Context(), base, path, url.Values{"_csrf": {pat.csrf(pageURL)}})
	if err != nil || resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "You cannot approve your own rollout") {
		t.Errorf("self-approval: %v %v, want 403 \"You cannot approve your own rollout\"", err, resp.Status)
	}
	author := w.signIn(t, "author")
	if resp, _, err := author.post(t.Context(), base, path, url.Values{"_csrf": {author.csrf(pageURL)}}); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("approval by an author without the approver role: %v %v, want 403", err, resp.Status)
	}
	time.Sleep(1500 * time.Millisecond) // a poll or two: nothing may move
	if state, _ := pat.rolloutState(base, rid); state != "awaiting_approval" {
		t.Errorf("after refused approvals the rollout is %s", state)
	}
	if _, ok := w.hub.rolloutJobs(t, rid)[w.jobID(rid, 2)]; ok {
		t.Errorf("wave 2 reached the hub without an approval")
	}

	approver := w.signIn(t, "approver")
	resp, body, err = approver.post(t.Context(), base, path, url.Values{"_csrf": {approver.csrf(pageURL)}})
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("approval: %v %v\n%s", err, resp.Status, pageText(body))
	}
	approver.waitRollout(base, rid, 30*time.Second, "completed")
	trail := auditOf(t, w.db, rid)
	approvals := 0
	for _, r := range trail {
		if r.Action == "rollout.approved" {
			approvals++
			if r.ActorSub != "demo-approver" {
				t.Errorf("rollout.approved by %q, want demo-approver", r.ActorSub)
			}
		}
	}
	if approvals != 1 {
		t.Errorf("%d rollout.approved entries, want 1; trail:\n%s", approvals, strings.Join(actions(trail), "\n"))
	}
	if n := countAction(trail, "authz.denied", rid); n != 1 {
		t.Errorf("%d authz.denied entries for the rollout, want 1 (the author without the role)", n)
	}
}

// lastAction is the newest record with action, or nil.
func lastAction(rs []auditRecord, action string) *auditRecord {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].Action == action {
			return &rs[i]
		}
	}
	return nil
}
