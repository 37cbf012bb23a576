package handlers

import (
	"context"
	"errors"
	"net/http"
	"regexp"

	"github.com/labstack/echo/v4"

	"github.com/hubjobs/hubjobs/notify"
	"github.com/hubjobs/hubjobs/views"
)

// Outbox is what the notifications page needs from the webhook outbox
// (*notify.Outbox).
type Outbox interface {
	Recent(ctx context.Context, limit int) ([]notify.Delivery, error)
	SendTest(ctx context.Context, webhook string) (string, error)
	Webhooks() []string
}

// recentDeliveries is how many deliveries /notifications lists.
const recentDeliveries = 100

// deliveryIDPattern is the shape of a delivery id (a UUID), checked
// before a ?test= value is looked up.
var deliveryIDPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// NotificationPages serves /notifications (admin; the routes check the
// role and, for the POST, the CSRF token).
type NotificationPages struct {
	h      *Handlers
	outbox Outbox
}

// Notifications returns the pages over o.
func (h *Handlers) Notifications(o Outbox) *NotificationPages {
	return &NotificationPages{h: h, outbox: o}
}

// List serves GET /notifications: the newest deliveries, and with
// ?test={delivery id} the outcome of a test event just sent.
func (n *NotificationPages) List(c echo.Context) error {
	testID := c.QueryParam("test")
	if testID != "" && !deliveryIDPattern.MatchString(testID) {
		return badRequest("That is not a delivery id", "Send a new test event from this page.")
	}
	ds, err := n.outbox.Recent(c.Request().Context(), recentDeliveries)
	if err != nil {
		return err
	}
	m := views.NotificationsPage{Webhooks: n.outbox.Webhooks()}
	for _, d := range ds {
		v := deliveryView(d)
		m.Deliveries = append(m.Deliveries, v)
		if d.ID == testID {
			m.Test = &v
		}
	}
	return render(c, http.StatusOK, views.NotificationsFullPage(n.h.layout(c, "Notifications", "notifications", ""), m))
}

// SendTest serves POST /notifications/test: it queues a test event to the
// webhook named in the form (the POST body only, never the URL's query)
// and sends the browser to the page that follows it. The page never waits
// for the receiver. It is not audited: the trail has no action for the
// portal's own settings, and the outbox keeps the test delivery.
func (n *NotificationPages) SendTest(c echo.Context) error {
	id, err := n.outbox.SendTest(c.Request().Context(), c.Request().PostFormValue("webhook"))
	if errors.Is(err, notify.ErrUnknownWebhook) {
		return badRequest("No such webhook", "Pick a webhook from the list on the notifications page.")
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, views.NotificationsURL(id))
}

// deliveryView converts an outbox row for display (its webhook by name).
func deliveryView(d notify.Delivery) views.Delivery {
	return views.Delivery{ID: d.ID, Webhook: d.Webhook, Event: string(d.Event), Status: string(d.Status),
		Attempts: d.Attempts, Created: d.CreatedAt, NextAttempt: d.NextAttemptAt, Delivered: d.DeliveredAt,
		LastStatus: d.LastStatus, LastError: d.LastError, LastAnswer: d.LastAnswer}
}
