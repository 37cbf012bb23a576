package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/hub/hubsim"
)

// SIGKILL of the portal while its deliveries are pending loses none: the
// outbox is in the database, and a portal restarted on the same file
// sends them all (each delivery id at least once).
func TestSIGKILLWithPendingDeliveriesLosesNothing(t *testing.T) {
	w := fastWorld(t)
	rc := newHookReceiver(t, "kill")
	rc.setAnswer(func(hookCall) (int, string) { return http.StatusServiceUnavailable, "down" })
	setup := notifyPortal(t, w, "sqlite://"+filepath.Join(t.TempDir(), "hubjobs.db"),
		testHook{name: "ops", url: rc.url(), secret: "kill-secret", events: []string{"job.cancelled"}})
	sp := startServe(t, setup)
	operator := newBrowser(t)
	operator.signIn(setup.publicURL, "operator")
	jobs := []string{"k1", "k2", "k3"}
	for _, id := range jobs {
		w.hubJob(t, id, time.Now().Add(time.Hour))
		operator.cancelOK(setup.publicURL, id)
	}
	for deadline := time.Now().Add(10 * time.Second); len(rc.all()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("no delivery attempted before the kill")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := sp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sp.wait(t, 10*time.Second)
	tried := len(rc.all())

	rc.setAnswer(func(hookCall) (int, string) { return http.StatusOK, "back" })
	startServe(t, setup)
	// A delivery in flight at the kill waits out its lease (60 s).
	got := rc.waitAccepted(t, len(jobs), 90*time.Second)
	arrived := map[string]bool{}
	for _, c := range got {
		var ev struct{ Job string }
		if err := json.Unmarshal(c.body, &ev); err != nil {
			t.Fatal(err)
		}
		arrived[ev.Job] = true
	}
	for _, id := range jobs {
		if !arrived[id] {
			t.Errorf("job.cancelled for %s never arrived after the restart", id)
		}
	}
	t.Logf("%d attempts before the kill; after the restart %d delivery ids accepted", tried, len(got))
}

// A receiver that takes 10 s to answer slows neither pages nor a cancel:
// deliveries are written in the cancel's transaction and sent by the
// background sender, never waited for.
func TestASlowReceiverSlowsNoPageAndNoCancel(t *testing.T) {
	w := fastWorld(t)
	rc := newHookReceiver(t, "slow")
	rc.setDelay(10 * time.Second)
	setup := notifyPortal(t, w, "sqlite://"+filepath.Join(t.TempDir(), "hubjobs.db"),
		testHook{name: "slow", url: rc.url(), secret: "slow-secret", events: []string{"job.cancelled"}})
	startServe(t, setup)
	viewer, operator := newBrowser(t), newBrowser(t)
	viewer.signIn(setup.publicURL, "viewer")
	operator.signIn(setup.publicURL, "operator")
	pageURL := setup.publicURL + "/hubs/prod/jobs/" + hubsim.DemoCompletedJobID
	median := func() time.Duration {
		var ds []time.Duration
		for range 9 {
			start := time.Now()
			if resp, _ := viewer.get(pageURL); resp.StatusCode != http.StatusOK {
				t.Fatalf("job page: %s", resp.Status)
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	before := median()
	var cancels []time.Duration
	for _, id := range []string{"s1", "s2"} {
		w.hubJob(t, id, time.Now().Add(time.Hour))
		start := time.Now()
		operator.cancelOK(setup.publicURL, id)
		cancels = append(cancels, time.Since(start))
	}
	time.Sleep(2 * time.Second) // the sender (polling each second) has posted both and waits on the receiver
	during := median()
	t.Logf("job page median %s without pending deliveries, %s with two stuck on a 10 s receiver; cancels took %s", before, during, cancels)
	if during > before+250*time.Millisecond {
		t.Errorf("job page median %s with a slow receiver, %s without", during, before)
	}
	for _, d := range cancels {
		if d > 2*time.Second {
			t.Errorf("a cancel took %s with a slow receiver", d)
		}
	}
}

// notify.webhooks problems exit 2, naming the key, quoting no URL or secret.
func TestNotifyConfigErrorsExitTwoNamingTheKey(t *testing.T) {
	config := minimalConfig + `notify:
  webhooks:
    - name: ops
      url: ftp://hooks.example.com/URL-TOKEN-1
      events: [job.cancelled]
    - name: chat
      url: https://hooks.example.com/URL-TOKEN-2
      secret: chat-secret-3
      events: [job.exploded]
      format: xml
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, env{}.get, &bytes.Buffer{}, &stderr)
	if code := exitCode(err, &stderr); code != 2 {
		t.Fatalf("exit code %d, want 2 (stderr %q)", code, stderr.String())
	}
	out := stderr.String()
	for _, key := range []string{"notify.webhooks[0].url", "notify.webhooks[0].secret", "notify.webhooks[1].events[0]", "notify.webhooks[1].format"} {
		if !strings.Contains(out, "config: "+key+": ") {
			t.Errorf("stderr does not name %s:\n%s", key, out)
		}
	}
	for _, secret := range []string{"URL-TOKEN-1", "URL-TOKEN-2", "chat-secret-3"} {
		if strings.Contains(out, secret) {
			t.Errorf("stderr quotes %q", secret)
		}
	}
}
