package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/notify"
)

// The portal as a process, a local receiver, and what arrives: signed
// events, only those subscribed to, in each webhook's format, once per
// fact; the admin page; no secret anywhere.
func TestWebhooksGetSignedSubscribedEventsFromThePortal(t *testing.T) {
	w := fastWorld(t)
	ops := newHookReceiver(t, "OPS-URL-TOKEN-5f1c")
	chat := newHookReceiver(t, "CHAT-URL-TOKEN-9a2e")
	const opsSecret, chatSecret = "ops-hmac-secret-7d3b", "chat-hmac-secret-c8e4"
	db := "sqlite://" + filepath.Join(t.TempDir(), "hubjobs.db")
	setup := notifyPortal(t, w, db,
		testHook{name: "ops", url: ops.url(), secret: opsSecret, events: []string{"job.cancelled", "job.finished_with_failures"}},
		testHook{name: "chat", url: chat.url(), secret: chatSecret, format: "slack", events: []string{"job.cancelled"}})
	sp := startServe(t, setup)

	w.hubJob(t, "to-cancel", time.Now().Add(time.Hour))
	w.hubJob(t, "flaky-push", time.Now())
	operator, admin := newBrowser(t), newBrowser(t)
	operator.signIn(setup.publicURL, "operator")
	admin.signIn(setup.publicURL, "admin")
	operator.cancelOK(setup.publicURL, "to-cancel")
	time.Sleep(3 * time.Second) // flaky-push finishes: 20 devices at 100/s, 2 s of work each
	// Seen finished by several page views: reported once.
	for range 3 {
		admin.get(setup.publicURL + "/hubs/prod/jobs/flaky-push")
	}

	got := ops.waitAccepted(t, 2, 20*time.Second)
	chatGot := chat.waitAccepted(t, 1, 20*time.Second)
	time.Sleep(2 * time.Second) // anything more would have arrived by now
	if n := len(ops.accepted()); n != 2 {
		t.Errorf("ops accepted %d deliveries, want 2 (one per fact)", n)
	}
	if n := len(chat.accepted()); n != 1 {
		t.Errorf("chat accepted %d deliveries, want 1: it subscribes to job.cancelled only", n)
	}
	byEvent := map[string]hookCall{}
	for _, c := range got {
		byEvent[c.event] = c
		if c.contentType != "application/json" || !notify.Verify(opsSecret, c.body, c.signature) {
			t.Errorf("%s: content type %q, signature %q does not verify", c.event, c.contentType, c.signature)
		}
		if notify.Verify(chatSecret, c.body, c.signature) {
			t.Errorf("%s verifies under another webhook's secret", c.event)
		}
	}
	var cancelled, failed map[string]any
	json.Unmarshal(byEvent["job.cancelled"].body, &cancelled)
	json.Unmarshal(byEvent["job.finished_with_failures"].body, &failed)
	for _, c := range []struct{ what, got, want string }{
		{"cancelled event", str(cancelled["event"]), "job.cancelled"},
		{"cancelled id", str(cancelled["id"]), "job.cancelled/prod/to-cancel"},
		{"cancelled hub", str(cancelled["hub"]), "prod"},
		{"cancelled job", str(cancelled["job"]), "to-cancel"},
		{"cancelled url", str(cancelled["url"]), setup.publicURL + "/hubs/prod/jobs/to-cancel"},
		{"cancelled summary", str(cancelled["summary"]), "cancelled by Otto Operator (test)"},
		{"failures id", str(failed["id"]), "job.finished_with_failures/prod/flaky-push"},
		{"failures url", str(failed["url"]), setup.publicURL + "/hubs/prod/jobs/flaky-push"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if !regexp.MustCompile(`^\d+ of 20 devices failed`).MatchString(str(failed["summary"])) {
		t.Errorf("failures summary %q", failed["summary"])
	}
	for _, c := range chatGot {
		var slack struct{ Text string }
		if err := json.Unmarshal(c.body, &slack); err != nil || !notify.Verify(chatSecret, c.body, c.signature) {
			t.Fatalf("slack body %s (signature verifies: %v)", c.body, notify.Verify(chatSecret, c.body, c.signature))
		}
		want := "Job to-cancel on hub prod was cancelled: cancelled by Otto Operator (test)\n" + setup.publicURL + "/hubs/prod/jobs/to-cancel"
		if slack.Text != want {
			t.Errorf("slack text %q, want %q", slack.Text, want)
		}
	}

	// The admin page: deliveries by webhook name, a test event sent and
	// followed until delivered.
	_, page := admin.get(setup.publicURL + "/notifications")
	for _, want := range []string{"job.finished_with_failures", "job.cancelled", ">ops<", ">chat<", "delivered", `id="send-test"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/notifications lacks %q", want)
		}
	}
	token := admin.csrf(setup.publicURL + "/notifications")
	resp, page, err := admin.post(t.Context(), setup.publicURL, "/notifications/test", url.Values{"_csrf": {token}, "webhook": {"chat"}})
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.RawQuery, "test=") {
		t.Fatalf("send test: %v %v at %v", err, resp.Status, resp.Request.URL)
	}
	testURL := resp.Request.URL.String()
	chat.waitAccepted(t, 2, 10*time.Second)
	if c := chat.all()[len(chat.all())-1]; c.event != "hubjobs.test" || "test="+c.delivery != resp.Request.URL.RawQuery {
		t.Errorf("test delivery %s %s, want hubjobs.test with the page's id %s", c.event, c.delivery, resp.Request.URL.RawQuery)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(page, "Test event delivered to chat") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		_, page = admin.get(testURL)
	}
	if !strings.Contains(page, "Test event delivered to chat") {
		t.Errorf("the test result never showed as delivered")
	}

	// Others: 403 and an authz.denied entry, like every other route.
	for _, who := range []string{"operator", "viewer"} {
		b := newBrowser(t)
		b.signIn(setup.publicURL, who)
		if resp, _ := b.get(setup.publicURL + "/notifications"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s GET /notifications: %s, want 403", who, resp.Status)
		}
	}
	if _, audit := admin.get(setup.publicURL + "/audit?action=authz.denied"); !strings.Contains(audit, "GET /notifications") {
		t.Errorf("no authz.denied entry for the refused /notifications")
	}
	if _, jobPage := admin.get(setup.publicURL + "/hubs/prod/jobs/to-cancel"); true {
		page += jobPage
	}
	sp.stop(t)

	// No secret and no webhook URL in the logs or on any page shown.
	for _, secret := range []string{opsSecret, chatSecret, "OPS-URL-TOKEN-5f1c", "CHAT-URL-TOKEN-9a2e"} {
		if strings.Contains(sp.output.String(), secret) {
			t.Errorf("process output contains %q", secret)
		}
		if strings.Contains(page, secret) {
			t.Errorf("a page contains %q", secret)
		}
	}
}

func str(v any) string { s, _ := v.(string); return s }

// A receiver that answers 500, then recovers; one that refuses with 400;
// one down (503) for a while: retries keep the delivery id, 4xx fails at
// once, and everything queued while down arrives once it is back.
func TestWebhookRetriesRefusalsAndARecoveredReceiver(t *testing.T) {
	w := fastWorld(t)
	flaky, refusing, down := newHookReceiver(t, "flaky"), newHookReceiver(t, "refusing"), newHookReceiver(t, "down")
	var mu sync.Mutex // POSTs of different jobs arrive concurrently
	failedOnce := map[string]bool{}
	flaky.setAnswer(func(c hookCall) (int, string) {
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce[c.delivery] {
			failedOnce[c.delivery] = true
			return http.StatusInternalServerError, "try later"
		}
		return http.StatusOK, "ok"
	})
	refusing.setAnswer(func(hookCall) (int, string) { return http.StatusBadRequest, `<script>alert("x")</script> bad payload` })
	up := time.Now().Add(8 * time.Second)
	down.setAnswer(func(hookCall) (int, string) {
		if time.Now().Before(up) {
			return http.StatusServiceUnavailable, "down"
		}
		return http.StatusOK, "back"
	})
	cancelled := []string{"job.cancelled"}
	setup := notifyPortal(t, w, "sqlite://"+filepath.Join(t.TempDir(), "hubjobs.db"),
		testHook{name: "flaky", url: flaky.url(), secret: "s1", events: cancelled},
		testHook{name: "refusing", url: refusing.url(), secret: "s2", events: cancelled},
		testHook{name: "down", url: down.url(), secret: "s3", events: cancelled})
	startServe(t, setup)
	operator := newBrowser(t)
	operator.signIn(setup.publicURL, "operator")
	jobs := []string{"c1", "c2", "c3"} // within one caller's share of the hub budget
	for _, id := range jobs {
		w.hubJob(t, id, time.Now().Add(time.Hour))
		operator.cancelOK(setup.publicURL, id)
	}

	flakyGot := flaky.waitAccepted(t, len(jobs), 30*time.Second)
	for id := range flakyGot {
		var tries int
		for _, c := range flaky.all() {
			if c.delivery == id {
				tries++
			}
		}
		if tries != 2 {
			t.Errorf("flaky delivery %s tried %d times, want 2 (a 500, then the same id accepted)", id, tries)
		}
	}
	downGot := down.waitAccepted(t, len(jobs), 60*time.Second)
	lag := time.Since(up)
	t.Logf("receiver down for 8 s: %d/%d arrived, the last %.1f s after it came back", len(downGot), len(jobs), lag.Seconds())
	if n := len(refusing.all()); n != len(jobs) {
		t.Errorf("refusing receiver got %d calls, want %d: a 400 fails at once, no retry", n, len(jobs))
	}

	admin := newBrowser(t)
	admin.signIn(setup.publicURL, "admin")
	_, page := admin.get(setup.publicURL + "/notifications")
	if strings.Contains(page, `<script>alert("x")</script>`) || !strings.Contains(page, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; bad payload`) {
		t.Errorf("the receiver's answer is not shown escaped")
	}
	if strings.Count(page, `data-status="failed"`) != len(jobs) || !strings.Contains(page, "refused with HTTP 400") {
		t.Errorf("/notifications does not show %d failed deliveries refused with HTTP 400", len(jobs))
	}
}
