package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
)

// Format is how a webhook's bodies are written.
type Format string

const (
	// FormatJSON sends the Event object itself (the default when empty).
	FormatJSON Format = "json"
	// FormatSlack sends a Slack/Mattermost incoming-webhook {"text": …}.
	FormatSlack Format = "slack"
)

// The headers of every delivery.
const (
	HeaderEvent     = "X-Hubjobs-Event"
	HeaderDelivery  = "X-Hubjobs-Delivery"
	HeaderSignature = "X-Hubjobs-Signature"
)

// Webhook is one receiver from notify.webhooks. The config package
// validates it (https URL, secret present, known events and format).
type Webhook struct {
	Name   string
	URL    string // may itself be a credential (Slack URLs are): never logged
	Secret string
	Events []string
	Format Format
}

// Subscribed reports whether the webhook wants event.
func (w Webhook) Subscribed(event EventType) bool {
	return slices.Contains(w.Events, string(event))
}

// String and LogValue keep the secret and the URL out of logs and error
// messages however a Webhook is printed.
func (w Webhook) String() string { return "webhook " + w.Name }

func (w Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", w.Name),
		slog.String("events", strings.Join(w.Events, ",")), slog.String("format", string(w.Format)))
}

// sign is the X-Hubjobs-Signature of body: sha256= and the hex HMAC-SHA256
// of the exact body bytes keyed with the webhook's secret.
func sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify is what a receiver does with a delivery: it reports whether header
// (the X-Hubjobs-Signature value) is the signature of body under secret,
// comparing in constant time. body must be the raw request body, before any
// JSON decoding.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(sign(secret, body)))
}
