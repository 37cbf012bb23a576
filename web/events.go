package web

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/hubjobs/hubjobs/audit"
	"github.com/hubjobs/hubjobs/auth"
	"github.com/hubjobs/hubjobs/handlers"
	"github.com/hubjobs/hubjobs/hub"
)

// NewEventSink adapts the audit store to auth's security events (sign-in,
// sign-out, CSRF blocks, role refusals). The client IP follows the same
// trusted-proxy rule as the rest of the portal.
//
// An event of a signed-in user about a job URL carries its hub and job id,
// so the job's history shows it; both are the validated values of the path
// (unescaped once, then checked against the hub-name and job-id rules), so
// /hubs/e%75/… is recorded as hub "eu" and an id with an encoded "/" is no id.
//
// Anonymous events — no signed-in user: a forged or signed-out cookie, an
// IdP error callback, a session-less cross-site POST — cost an attacker
// nothing, so they never carry a hub or job (an anonymous request cannot
// push a job's real entries out of its history) and are rate-limited per
// client address: see anonymousLimiter.
func NewEventSink(store *audit.Store, trustedProxies []netip.Prefix) auth.EventSink {
	return newEventSink(store, IPExtractor(trustedProxies), time.Now, time.AfterFunc)
}

// entryAppender is what the sink needs from the audit store.
type entryAppender interface {
	Append(ctx context.Context, e audit.Entry) (audit.Entry, error)
}

func newEventSink(store entryAppender, ip func(*http.Request) string, now func() time.Time,
	afterFunc func(time.Duration, func()) *time.Timer) *eventSink {
	s := &eventSink{store: store, ip: ip}
	s.anonymous = newAnonymousLimiter(now, afterFunc, s.appendSummary)
	return s
}

type eventSink struct {
	store     entryAppender
	ip        func(*http.Request) string
	anonymous *anonymousLimiter
}

// authActions maps auth's event names onto audit's actions (auth imports
// nothing internal, so it spells them itself); an event missing here is
// refused rather than stored under an unchecked name.
var authActions = map[string]audit.Action{
	auth.ActionLogin:       audit.AuthLogin,
	auth.ActionLoginFailed: audit.AuthLoginFailed,
	auth.ActionLogout:      audit.AuthLogout,
	auth.ActionCSRFBlocked: audit.CSRFBlocked,
	auth.ActionAuthzDenied: audit.AuthzDenied,
}

func (s *eventSink) Record(ctx context.Context, ev auth.Event) error {
	action, ok := authActions[ev.Action]
	if !ok {
		return fmt.Errorf("web: auth event %q has no audit action", ev.Action)
	}
	e := audit.Entry{Action: action, Result: ev.Reason}
	if r := ev.Request; r != nil {
		e.ClientIP = s.ip(r)
		e.UserAgent = r.UserAgent()
		if len(e.UserAgent) > 256 {
			e.UserAgent = e.UserAgent[:256]
		}
		e.RequestID = handlers.RequestID(r.Context())
	}
	u := ev.User
	if u == nil {
		if !s.anonymous.admit(action, e.ClientIP) {
			return nil // counted; the window's summary entry reports it
		}
		_, err := s.store.Append(ctx, e)
		return err
	}
	e.Actor = handlers.AuditActor(u)
	if ev.Request != nil {
		e.Hub, e.JobID = jobOfPath(ev.Request.URL)
	}
	_, err := s.store.Append(ctx, e)
	return err
}

// appendSummary writes a window's summary. It runs from a timer, after the
// request that caused it is gone, hence its own context (Append bounds it).
func (s *eventSink) appendSummary(e audit.Entry) {
	_, _ = s.store.Append(context.Background(), e) // a failure is logged and counted by the store
}

// jobOfPath extracts hub and job id from /hubs/{hub}/jobs/{id}[/...]: each
// segment of the escaped path unescaped once and checked against the hub
// name and job id rules, as the handlers do; otherwise "" (never an
// attacker's free text, never half an id).
func jobOfPath(u *url.URL) (hubName, jobID string) {
	segs := strings.Split(strings.TrimPrefix(u.EscapedPath(), "/"), "/")
	seg := func(i int) string {
		if i >= len(segs) {
			return ""
		}
		v, err := url.PathUnescape(segs[i])
		if err != nil {
			return ""
		}
		return v
	}
	if seg(0) != "hubs" || !hub.ValidHubName(seg(1)) {
		return "", ""
	}
	if seg(2) == "jobs" && hub.ValidJobID(seg(3)) {
		return seg(1), seg(3)
	}
	return seg(1), ""
}

// Anonymous events are recorded per client address (an IPv6 address by its
// /64, which one host usually holds whole) and action: the first
// anonymousPerWindow in a window of anonymousPeriod, then one summary entry
// when the window ends, "N more … suppressed". So an address adds at most
// anonymousPerWindow+1 entries per action a minute, and the trail still
// says how many it sent. At most anonymousAddresses windows are tracked
// (least recently started dropped first; a dropped window's summary still
// comes, from its timer).
const (
	anonymousPerWindow = 10
	anonymousPeriod    = time.Minute
	anonymousAddresses = 10_000
)

type anonymousKey struct {
	action  audit.Action
	address string
}

type anonymousWindow struct {
	start                time.Time
	clientIP             string // the first one seen in the window
	recorded, suppressed int
	closed               bool // its summary is written: the next event opens a new window
}

type anonymousLimiter struct {
	mu        sync.Mutex
	now       func() time.Time
	afterFunc func(time.Duration, func()) *time.Timer
	summarise func(audit.Entry)
	windows   *expirable.LRU[anonymousKey, *anonymousWindow]
}

func newAnonymousLimiter(now func() time.Time, afterFunc func(time.Duration, func()) *time.Timer,
	summarise func(audit.Entry)) *anonymousLimiter {
	return &anonymousLimiter{now: now, afterFunc: afterFunc, summarise: summarise,
		windows: expirable.NewLRU[anonymousKey, *anonymousWindow](anonymousAddresses, nil, anonymousPeriod)}
}

// admit reports whether an anonymous event from clientIP is recorded. The
// first one suppressed in a window arms a timer for the window's summary;
// an event after the window writes the summary at once if the timer has
// not yet.
func (l *anonymousLimiter) admit(action audit.Action, clientIP string) bool {
	key := anonymousKey{action: action, address: addressKey(clientIP)}
	l.mu.Lock()
	now := l.now()
	w, ok := l.windows.Get(key)
	var due []audit.Entry
	if !ok || w.closed || now.Sub(w.start) >= anonymousPeriod {
		if ok {
			due = l.takeSummary(key, w)
		}
		w = &anonymousWindow{start: now, clientIP: clientIP}
		l.windows.Add(key, w)
	}
	admitted := w.recorded < anonymousPerWindow
	if admitted {
		w.recorded++
	} else if w.suppressed++; w.suppressed == 1 {
		l.afterFunc(w.start.Add(anonymousPeriod).Sub(now), func() { l.summariseLater(key, w) })
	}
	l.mu.Unlock()
	for _, e := range due {
		l.summarise(e)
	}
	return admitted
}

func (l *anonymousLimiter) summariseLater(key anonymousKey, w *anonymousWindow) {
	l.mu.Lock()
	due := l.takeSummary(key, w)
	l.mu.Unlock()
	for _, e := range due {
		l.summarise(e)
	}
}

// takeSummary closes w and returns its summary entry, if it suppressed
// anything and has not been summarised yet. l.mu must be held.
func (l *anonymousLimiter) takeSummary(key anonymousKey, w *anonymousWindow) []audit.Entry {
	if w.closed || w.suppressed == 0 {
		return nil
	}
	w.closed = true
	return []audit.Entry{{
		Action:   key.action,
		ClientIP: w.clientIP,
		Result: fmt.Sprintf("%d more anonymous %s events from %s suppressed between %s and %s (only the first %d per address per %s are recorded)",
			w.suppressed, key.action, key.address, w.start.UTC().Format(time.RFC3339),
			w.start.Add(anonymousPeriod).UTC().Format(time.RFC3339), anonymousPerWindow, anonymousPeriod),
	}}
}

// addressKey is the address an anonymous event is counted against: the IP
// itself, or for IPv6 its /64; "unknown" when there is none.
func addressKey(clientIP string) string {
	a, err := netip.ParseAddr(clientIP)
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}
