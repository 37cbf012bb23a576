package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/handlers"
)

// NewEventSink adapts the audit store to auth's security events (sign-in,
// sign-out, CSRF blocks, role refusals). The client IP follows the same
// trusted-proxy rule as the rest of the portal; an event about a job URL
// carries its hub and job id, so the job's history shows it.
func NewEventSink(store *audit.Store, trustedProxies []netip.Prefix) auth.EventSink {
	return &eventSink{store: store, ip: IPExtractor(trustedProxies)}
}

type eventSink struct {
	store *audit.Store
	ip    func(*http.Request) string
}

func (s *eventSink) Record(ctx context.Context, ev auth.Event) error {
	e := audit.Entry{Action: audit.Action(ev.Action), Result: ev.Reason}
	if u := ev.User; u != nil {
		roles := make([]string, len(u.Roles))
		for i, r := range u.Roles {
			roles[i] = string(r)
		}
		e.Actor = audit.Actor{Issuer: u.Issuer, Subject: u.Subject, Name: u.Name, Email: u.Email, Roles: roles}
	}
	if r := ev.Request; r != nil {
		e.ClientIP = s.ip(r)
		e.UserAgent = r.UserAgent()
		if len(e.UserAgent) > 256 {
			e.UserAgent = e.UserAgent[:256]
		}
		e.RequestID = handlers.RequestID(r.Context())
		e.Hub, e.JobID = jobOfPath(r.URL)
	}
	_, err := s.store.Append(ctx, e)
	return err
}

// jobOfPath extracts hub and job id from /hubs/{hub}/jobs/{id}[/...] when
// both are valid; otherwise "" (never an attacker's free text).
func jobOfPath(u *url.URL) (hubName, jobID string) {
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "hubs" || !handlers.ValidHubName(parts[1]) {
		return "", ""
	}
	hubName = parts[1]
	if len(parts) >= 4 && parts[2] == "jobs" && nextRoutes.MatchString("/hubs/"+parts[1]+"/jobs/"+parts[3]) {
		jobID = parts[3]
	}
	return hubName, jobID
}
