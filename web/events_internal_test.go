package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
)

// recordingStore keeps what the sink appends.
type recordingStore struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (s *recordingStore) Append(_ context.Context, e audit.Entry) (audit.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.entries = append(s.entries, e)
	return e, nil
}

func (s *recordingStore) all() []audit.Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.entries)
}

// sinkRig is a sink on a recording store, a settable clock and timers the
// test fires by hand.
type sinkRig struct {
	sink   *eventSink
	store  *recordingStore
	now    time.Time
	timers []func()
}

func newSinkRig(t *testing.T) *sinkRig {
	t.Helper()
	r := &sinkRig{store: &recordingStore{}, now: time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)}
	r.sink = newEventSink(r.store, func(req *http.Request) string { return req.Header.Get("X-Test-IP") },
		func() time.Time { return r.now },
		func(_ time.Duration, f func()) *time.Timer { r.timers = append(r.timers, f); return nil })
	return r
}

func (r *sinkRig) fireTimers() {
	timers := r.timers
	r.timers = nil
	for _, f := range timers {
		f()
	}
}

// event records ev about path from ip; user nil is anonymous.
func (r *sinkRig) event(t *testing.T, action, path, ip string, u *auth.User) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("X-Test-IP", ip)
	if err := r.sink.Record(t.Context(), auth.Event{Action: action, User: u, Reason: "r", Request: req}); err != nil {
		t.Fatal(err)
	}
}

func countSummaries(es []audit.Entry) (summaries, events int) {
	for _, e := range es {
		if strings.Contains(e.Result, "suppressed") {
			summaries++
		} else {
			events++
		}
	}
	return summaries, events
}

func TestAnonymousEventsAreLimitedPerAddressAndSummarised(t *testing.T) {
	r := newSinkRig(t)
	for range 25 {
		r.event(t, auth.ActionLoginFailed, "/hubs/prod/jobs/job-1", "198.51.100.7", nil)
	}
	if s, n := countSummaries(r.store.all()); s != 0 || n != anonymousPerWindow {
		t.Fatalf("during the window: %d summaries, %d events; want 0 and %d", s, n, anonymousPerWindow)
	}
	// Another address, and another action from the same one, have their own allowance.
	r.event(t, auth.ActionLoginFailed, "/", "198.51.100.8", nil)
	r.event(t, auth.ActionCSRFBlocked, "/auth/logout", "198.51.100.7", nil)
	if got := len(r.store.all()); got != anonymousPerWindow+2 {
		t.Fatalf("%d entries, want %d", got, anonymousPerWindow+2)
	}

	r.now = r.now.Add(anonymousPeriod)
	r.fireTimers()
	es := r.store.all()
	last := es[len(es)-1]
	if s, _ := countSummaries(es); s != 1 || !strings.Contains(last.Result, "15 more anonymous auth.login_failed events from 198.51.100.7 suppressed") {
		t.Fatalf("after the window: %d summaries, last %q; want one saying 15 more were suppressed", s, last.Result)
	}
	if last.Action != audit.AuthLoginFailed || last.ClientIP != "198.51.100.7" || last.Hub != "" || last.JobID != "" {
		t.Errorf("summary = %+v, want auth.login_failed from the address, no hub or job", last)
	}
	for _, e := range es {
		if e.Hub != "" || e.JobID != "" || e.Actor.Subject != "" {
			t.Errorf("anonymous entry %q carries hub %q job %q actor %q", e.Result, e.Hub, e.JobID, e.Actor.Subject)
		}
	}

	// A new window records again.
	r.event(t, auth.ActionLoginFailed, "/", "198.51.100.7", nil)
	if got := len(r.store.all()); got != len(es)+1 {
		t.Errorf("the next window recorded %d entries, want 1", got-len(es))
	}
}

// An event after the window writes the summary itself when the timer is
// late, and the timer then writes nothing more.
func TestAnonymousSummaryWrittenOnceWhicheverComesFirst(t *testing.T) {
	r := newSinkRig(t)
	for range anonymousPerWindow + 3 {
		r.event(t, auth.ActionLoginFailed, "/", "2001:db8::1", nil)
	}
	r.now = r.now.Add(anonymousPeriod + time.Second)
	r.event(t, auth.ActionLoginFailed, "/", "2001:db8::2", nil) // same /64
	r.fireTimers()
	es := r.store.all()
	s, n := countSummaries(es)
	if s != 1 || n != anonymousPerWindow+1 {
		t.Fatalf("%d summaries, %d events; want 1 and %d", s, n, anonymousPerWindow+1)
	}
	if !strings.Contains(es[anonymousPerWindow].Result, "3 more anonymous auth.login_failed events from 2001:db8::/64") {
		t.Errorf("summary = %q, want 3 more from the /64, before the new window's event", es[anonymousPerWindow].Result)
	}
}

// Signed-in events are never limited and carry the validated hub and job
// of the path: unescaped once and checked, so an escaped spelling of a hub
// lands under the hub's name and an id with an encoded "/" is no id.
func TestSignedInEventsCarryTheValidatedJobOfThePath(t *testing.T) {
	u := &auth.User{Issuer: "https://idp", Subject: "u-1", Name: "Vic Viewer", Roles: []auth.Role{auth.RoleViewer}}
	for _, tc := range []struct{ path, hub, job string }{
		{"/hubs/prod/jobs/job-1", "prod", "job-1"},
		{"/hubs/e%75/jobs/job-1/cancel", "eu", "job-1"},
		{"/hubs/prod/jobs/job%2D1", "prod", "job-1"},
		{"/hubs/prod/jobs/abc%2Fdef", "prod", ""},
		{"/hubs/prod/jobs/abc%2fdef/cancel", "prod", ""},
		{"/hubs/prod/jobs/a%252Fb", "prod", ""},
		{"/hubs/prod/jobs/%E2%80%AEjob-1", "prod", ""},
		{"/hubs/prod/jobs/" + strings.Repeat("j", 129), "prod", ""},
		{"/hubs/PROD/jobs/job-1", "", ""},
		{"/hubs/pr%2Fod/jobs/job-1", "", ""},
		{"/hubs/prod", "prod", ""},
		{"/audit", "", ""},
	} {
		r := newSinkRig(t)
		r.event(t, auth.ActionAuthzDenied, tc.path, "198.51.100.7", u)
		e := r.store.all()[0]
		if e.Hub != tc.hub || e.JobID != tc.job || e.Actor.Subject != "u-1" {
			t.Errorf("%s: hub %q job %q actor %q, want hub %q job %q actor u-1", tc.path, e.Hub, e.JobID, e.Actor.Subject, tc.hub, tc.job)
		}
	}
	r := newSinkRig(t)
	for range 3 * anonymousPerWindow {
		r.event(t, auth.ActionAuthzDenied, "/audit", "198.51.100.7", u)
	}
	if got := len(r.store.all()); got != 3*anonymousPerWindow {
		t.Errorf("signed-in events recorded %d of %d", got, 3*anonymousPerWindow)
	}
}

// auth spells its event names itself (it imports nothing internal): each
// maps onto the audit action of the same name, and nothing else is stored.
func TestAuthEventsMapOntoAuditActions(t *testing.T) {
	for name, action := range authActions {
		if string(action) != name || !slices.Contains(audit.Actions(), action) {
			t.Errorf("auth event %q maps to %q", name, action)
		}
	}
	r := newSinkRig(t)
	err := r.sink.Record(t.Context(), auth.Event{Action: "auth.made_up"})
	if err == nil || len(r.store.all()) != 0 {
		t.Errorf("an unknown event = %v with %d entries, want refused", err, len(r.store.all()))
	}
}
