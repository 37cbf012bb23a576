package notify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestValidateRefusesEventsThatCannotBeReported(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"rollout event", Event{Event: RolloutCompleted, Hub: "prod", Rollout: "r1"}, true},
		{"job event", Event{Event: JobCancelled, Hub: "prod", Job: "j1"}, true},
		{"job event inside a rollout", Event{Event: JobFinishedWithFailures, Hub: "prod", Rollout: "r1", Job: "j1"}, true},
		{"test event needs nothing", Event{Event: Test}, true},
		{"unknown event", Event{Event: "rollout.exploded", Hub: "prod", Rollout: "r1"}, false},
		{"no hub", Event{Event: RolloutCreated, Rollout: "r1"}, false},
		{"rollout event without rollout", Event{Event: RolloutHalted, Hub: "prod", Job: "j1"}, false},
		{"job event without job", Event{Event: JobCancelled, Hub: "prod", Rollout: "r1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.ev.validate()
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidEvent)) {
				t.Fatalf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestKnownListsExactlyTheSubscribableEvents(t *testing.T) {
	for _, e := range []string{"rollout.created", "rollout.awaiting_approval", "rollout.halted",
		"rollout.completed", "job.cancelled", "job.finished_with_failures"} {
		if !Known(e) {
			t.Errorf("Known(%q) = false", e)
		}
	}
	for _, e := range []string{"hubjobs.test", "rollout", "job.*", ""} {
		if Known(e) {
			t.Errorf("Known(%q) = true", e)
		}
	}
	if got := len(Events()); got != 6 {
		t.Errorf("Events() has %d entries, want 6", got)
	}
}

func TestPortalPathAndOrderingKey(t *testing.T) {
	tests := []struct {
		ev        Event
		path, key string
	}{
		{Event{Event: RolloutHalted, Hub: "prod", Rollout: "r1"}, "/hubs/prod/rollouts/r1", "/hubs/prod/rollouts/r1"},
		// A job inside a rollout links to the job, orders with the rollout.
		{Event{Event: JobFinishedWithFailures, Hub: "prod", Rollout: "r1", Job: "wave-2"}, "/hubs/prod/jobs/wave-2", "/hubs/prod/rollouts/r1"},
		{Event{Event: JobCancelled, Hub: "eu", Job: "fw 1/2?x#y"}, "/hubs/eu/jobs/fw%201%2F2%3Fx%23y", "/hubs/eu/jobs/fw%201%2F2%3Fx%23y"},
		{Event{Event: Test, ID: "e1"}, "/notifications", "test/e1"},
	}
	for _, tt := range tests {
		if got := tt.ev.portalPath(); got != tt.path {
			t.Errorf("%s portalPath() = %q, want %q", tt.ev.Event, got, tt.path)
		}
		if got := tt.ev.orderingKey(); got != tt.key {
			t.Errorf("%s orderingKey() = %q, want %q", tt.ev.Event, got, tt.key)
		}
	}
}

func TestJSONBodyHasEveryDocumentedKey(t *testing.T) {
	ev := Event{ID: "e1", Event: JobCancelled, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Hub: "prod", Job: "j1", Summary: "cancelled by olive", URL: "https://x/hubs/prod/jobs/j1"}
	body, err := render(FormatJSON, ev)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"id": "e1", "event": "job.cancelled", "time": "2026-01-02T03:04:05Z", "hub": "prod",
		"rollout": "", "job": "j1", "summary": "cancelled by olive", "url": "https://x/hubs/prod/jobs/j1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("body = %s\nwant keys and values %v", body, want)
	}
}

func TestSlackBodyIsAPlainSentenceAndTheLink(t *testing.T) {
	ev := Event{Event: RolloutAwaitingApproval, Hub: "prod", Rollout: "r1",
		Summary: "wave 3 <1,200 devices> needs R&D sign-off", URL: "https://jobs.example.com/hubs/prod/rollouts/r1"}
	body, err := render(FormatSlack, ev)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(body, &got); err != nil || len(got) != 1 {
		t.Fatalf("body %s: want exactly {\"text\": …} (err %v)", body, err)
	}
	want := "Rollout r1 on hub prod is waiting for an approver: wave 3 &lt;1,200 devices&gt; needs R&amp;D sign-off\n" +
		"https://jobs.example.com/hubs/prod/rollouts/r1"
	if got["text"] != want {
		t.Errorf("text = %q\nwant   %q", got["text"], want)
	}
}

func TestVerifyAcceptsOnlyTheExactBodyAndSecret(t *testing.T) {
	body := []byte(`{"id":"e1"}`)
	// Known answer, computed independently:
	// printf '%s' '{"id":"e1"}' | openssl dgst -sha256 -hmac k
	const header = "sha256=a94ba871760457a968c4f0c7f6e96ab70a1cd59eb43f97c738a7dae2bd8722fd"
	if got := sign("k", body); got != header {
		t.Fatalf("sign = %q, want %q", got, header)
	}
	tests := []struct {
		name, secret, header string
		body                 []byte
		want                 bool
	}{
		{"genuine", "k", header, body, true},
		{"other secret", "k2", header, body, false},
		{"body changed", "k", header, []byte(`{"id":"e2"}`), false},
		{"reformatted body", "k", header, []byte(`{"id": "e1"}`), false},
		{"no prefix", "k", strings.TrimPrefix(header, "sha256="), body, false},
		{"empty", "k", "", body, false},
	}
	for _, tt := range tests {
		if got := Verify(tt.secret, tt.body, tt.header); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWebhookPrintsWithoutSecretOrURL(t *testing.T) {
	w := Webhook{Name: "ops", URL: "https://hooks.slack.com/services/T0/B0/tokenpart", Secret: "hunter2",
		Events: []string{"rollout.halted"}, Format: FormatSlack}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", slog.Any("webhook", w))
	for _, out := range []string{fmt.Sprint(w), fmt.Sprintf("%v %+v %s", w, w, w), logged.String()} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "tokenpart") {
			t.Errorf("printed webhook leaks a credential: %s", out)
		}
	}
	if !strings.Contains(logged.String(), "ops") {
		t.Errorf("log line does not name the webhook: %s", logged.String())
	}
}

func TestSubscribed(t *testing.T) {
	w := hook("ops", "https://x", FormatJSON, RolloutHalted, JobCancelled)
	for e, want := range map[EventType]bool{RolloutHalted: true, JobCancelled: true, RolloutCompleted: false, Test: false} {
		if got := w.Subscribed(e); got != want {
			t.Errorf("Subscribed(%s) = %v, want %v", e, got, want)
		}
	}
}
