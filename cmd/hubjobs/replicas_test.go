package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/hub/hubsim"
	"github.com/hubjobs/hubjobs/internal/testkit"
)

// Two replicas behind no sticky sessions: whichever one a request lands on,
// the user is the same user, a sign-out anywhere holds everywhere, and the
// cancels of both land in one audit chain that verifies.
func TestTwoReplicasSharePostgres(t *testing.T) {
	dsn := testkit.PostgresSchema(t, "hubjobs_cmd")
	w := newWorld(t)
	replicas := make([]portalSetup, 2)
	procs := make([]*serveProcess, 2)
	for i := range replicas {
		replicas[i] = newPortalSetup(t, w, "${TEST_AUDIT_DSN}", "server:\n  drain_delay: 0s\n")
		replicas[i].env["TEST_AUDIT_DSN"] = dsn
		procs[i] = startServe(t, replicas[i])
	}
	a, b := replicas[0].publicURL, replicas[1].publicURL

	user := newBrowser(t)
	user.signIn(a, "operator")
	if resp, _ := user.get(b + "/hubs"); resp.StatusCode != http.StatusOK || resp.Request.URL.String() != b+"/hubs" {
		t.Fatalf("signed in on A, /hubs on B ended at %s with %s", resp.Request.URL, resp.Status)
	}

	ctx := context.Background()
	for _, c := range []struct{ base, job string }{{a, hubsim.DemoQueuedJobID}, {b, hubsim.DemoScheduledJobID}} {
		resp, body, err := user.cancel(ctx, c.base, "prod", c.job, "replica test")
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(body), "cancelled") {
			t.Fatalf("cancel %s on %s: %v %v %.300q", c.job, c.base, err, resp, body)
		}
	}

	// Sign out on A; the cookie the browser held must not work on B.
	stolen := user.cookies(b)
	resp, _, err := user.post(ctx, a, "/auth/logout", url.Values{"_csrf": {user.csrf(a + "/hubs")}})
	if err != nil || resp.StatusCode >= 400 {
		t.Fatalf("logout on A: %v %v", err, resp)
	}
	replay := testkit.NewNoRedirectBrowser(t)
	bURL, _ := url.Parse(b)
	replay.Jar.SetCookies(bURL, stolen)
	resp, err = replay.Get(b + "/hubs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "/auth/login") {
		t.Errorf("signed-out cookie on B: %s Location %q, want 303 to the login", resp.Status, loc)
	}

	for i, p := range procs {
		if code := p.stop(t); code != 0 {
			t.Errorf("replica %d exit code %d", i, code)
		}
	}
	store, err := audit.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Verify(ctx); err != nil {
		t.Fatalf("shared chain: %v", err)
	}
	entries, err := store.List(ctx, audit.Filter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range slices.Backward(entries) {
		got = append(got, string(e.Action)+" "+e.JobID)
	}
	for _, want := range []string{
		"auth.login ",
		"job.cancel.intent " + hubsim.DemoQueuedJobID, "job.cancel.succeeded " + hubsim.DemoQueuedJobID,
		"job.cancel.intent " + hubsim.DemoScheduledJobID, "job.cancel.succeeded " + hubsim.DemoScheduledJobID,
		"auth.logout ",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("shared trail lacks %q; it holds (oldest first):\n%s", want, strings.Join(got, "\n"))
		}
	}
}
