package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/notify"
)

// fakeOutbox is a stateful stand-in for *notify.Outbox: SendTest queues a
// pending delivery that Recent then lists, newest first.
type fakeOutbox struct {
	webhooks   []string
	deliveries []notify.Delivery
	sent       int
}

func (f *fakeOutbox) Recent(_ context.Context, limit int) ([]notify.Delivery, error) {
	return f.deliveries[:min(limit, len(f.deliveries))], nil
}

func (f *fakeOutbox) SendTest(_ context.Context, webhook string) (string, error) {
	for _, w := range f.webhooks {
		if w == webhook {
			f.sent++
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", f.sent)
			f.deliveries = append([]notify.Delivery{{ID: id, Webhook: w, Event: notify.Test, Status: notify.Pending}}, f.deliveries...)
			return id, nil
		}
	}
	return "", fmt.Errorf("%w %q", notify.ErrUnknownWebhook, webhook)
}

func (f *fakeOutbox) Webhooks() []string { return f.webhooks }

// serveNotifications runs one request through the pages; a returned error
// is rendered as Describe maps it (as web's error handler does).
func serveNotifications(t *testing.T, o Outbox, method, target string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	n := New(Config{}).Notifications(o)
	e := echo.New()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	rec := httptest.NewRecorder()
	c := e.NewContext(req, rec)
	h := n.List
	if method == http.MethodPost {
		h = n.SendTest
	}
	if err := h(c); err != nil {
		rec.Code = Describe(err).Status
	}
	return rec
}

func TestNotificationsPageShowsDeliveriesByNameWithTheAnswerEscaped(t *testing.T) {
	o := &fakeOutbox{webhooks: []string{"ops", "chat"}, deliveries: []notify.Delivery{
		{ID: "d1", Webhook: "ops", Event: notify.JobCancelled, Status: notify.Failed, Attempts: 1,
			LastStatus: 400, LastError: "refused with HTTP 400", LastAnswer: `<img src=x onerror=alert(1)>`},
		{ID: "d2", Webhook: "chat", Event: notify.JobCancelled, Status: notify.Pending, Attempts: 2,
			NextAttemptAt: time.Date(2026, 3, 10, 12, 0, 5, 0, time.UTC), LastError: "no answer within 10s"},
	}}
	rec := serveNotifications(t, o, http.MethodGet, "/notifications", nil)
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{`data-delivery="d1" data-status="failed"`, `data-delivery="d2" data-status="pending"`,
		"refused with HTTP 400", "&lt;img src=x onerror=alert(1)&gt;", "2026-03-10 12:00:05 UTC", `<option value="chat">`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<img src=x") {
		t.Error("the receiver's answer is rendered as HTML")
	}
}

func TestSendTestQueuesAndTheDeliveryIsFollowed(t *testing.T) {
	o := &fakeOutbox{webhooks: []string{"ops"}}
	for _, tc := range []struct {
		name, method, target string
		form                 url.Values
		status               int
		location, contains   string
	}{
		{name: "known webhook", method: http.MethodPost, target: "/notifications/test", form: url.Values{"webhook": {"ops"}},
			status: http.StatusSeeOther, location: "/notifications?test=00000000-0000-4000-8000-000000000001"},
		{name: "the page follows it", method: http.MethodGet, target: "/notifications?test=00000000-0000-4000-8000-000000000001",
			status: http.StatusOK, contains: "Test event queued to ops"},
		{name: "unknown webhook", method: http.MethodPost, target: "/notifications/test", form: url.Values{"webhook": {"nope"}},
			status: http.StatusBadRequest},
		// The webhook is read from the POST body only: one named in the URL sends nothing.
		{name: "webhook in the URL only", method: http.MethodPost, target: "/notifications/test?webhook=ops", form: url.Values{},
			status: http.StatusBadRequest},
		{name: "malformed delivery id", method: http.MethodGet, target: "/notifications?test=../x", status: http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serveNotifications(t, o, tc.method, tc.target, tc.form)
			if rec.Code != tc.status || rec.Header().Get("Location") != tc.location || !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("%d Location %q, want %d %q containing %q", rec.Code, rec.Header().Get("Location"), tc.status, tc.location, tc.contains)
			}
		})
	}
	if o.sent != 1 {
		t.Errorf("%d test events queued, want 1", o.sent)
	}
}
