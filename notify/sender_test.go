package notify

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDeliveryCarriesHeadersAndAVerifiableSignature(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		w := hook("ops", rc.URL+"/hook", FormatJSON, RolloutHalted)
		o := openOutbox(t, db, b.dialect, newFakeClock(), w)
		enqueue(t, db, o, halted("r1"))
		newSender(t, o, SenderConfig{}).sendAllDue(t)

		reqs := rc.got()
		if len(reqs) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(reqs))
		}
		r, d := reqs[0], onlyDelivery(t, o)
		if r.contentType != "application/json" || r.event != "rollout.halted" || r.delivery != d.ID {
			t.Errorf("headers: Content-Type %q, event %q, delivery %q (stored %q)", r.contentType, r.event, r.delivery, d.ID)
		}
		if !Verify(w.Secret, r.body, r.signature) {
			t.Errorf("signature %q does not verify over %s", r.signature, r.body)
		}
		var ev Event
		if err := json.Unmarshal(r.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ID != d.EventID || ev.URL != testPublicURL+"/hubs/prod/rollouts/r1" || ev.Summary != halted("r1").Summary {
			t.Errorf("body %s", r.body)
		}
		if d.Status != Delivered || d.Attempts != 1 || d.LastStatus != 200 || d.LastAnswer != "ok" || d.DeliveredAt.IsZero() {
			t.Errorf("stored delivery %+v, want delivered on the first attempt", d)
		}
	})
}

func TestOnlySubscribedWebhooksReceiveAndInTheirFormat(t *testing.T) {
	db, _ := openSQLite(t)
	jsonRC, slackRC, otherRC := newReceiver(t), newReceiver(t), newReceiver(t)
	o := openOutbox(t, db, SQLite, newFakeClock(),
		hook("json", jsonRC.URL, FormatJSON, RolloutHalted, JobCancelled),
		hook("slack", slackRC.URL, FormatSlack, RolloutHalted),
		hook("other", otherRC.URL, FormatJSON, RolloutCompleted))
	enqueue(t, db, o, halted("r1"), Event{Event: JobCancelled, Hub: "prod", Job: "j9"})
	newSender(t, o, SenderConfig{}).sendAllDue(t)

	if got := len(jsonRC.got()); got != 2 {
		t.Errorf("json webhook got %d, want 2", got)
	}
	if got := len(otherRC.got()); got != 0 {
		t.Errorf("unsubscribed webhook got %d, want 0", got)
	}
	slack := slackRC.got()
	if len(slack) != 1 {
		t.Fatalf("slack webhook got %d, want 1", len(slack))
	}
	var body map[string]string
	if err := json.Unmarshal(slack[0].body, &body); err != nil {
		t.Fatal(err)
	}
	if want := "Rollout r1 on hub prod halted: 7 of 100 devices failed in wave 2\n" + testPublicURL + "/hubs/prod/rollouts/r1"; body["text"] != want {
		t.Errorf("slack text %q, want %q", body["text"], want)
	}
	if !Verify("s3cret-slack", slack[0].body, slack[0].signature) {
		t.Error("slack body signature does not verify")
	}
}

func TestReceiverAnswersDecideTheOutcome(t *testing.T) {
	tests := []struct {
		status int
		header http.Header
		want   Status
		next   time.Duration // from the attempt, for retries
	}{
		{200, nil, Delivered, 0},
		{204, nil, Delivered, 0},
		{400, nil, Failed, 0},
		{401, nil, Failed, 0},
		{404, nil, Failed, 0},
		{410, nil, Failed, 0},
		{408, nil, Pending, 3750 * time.Millisecond}, // first backoff: 5 s, jittered to 3.75 s
		{429, nil, Pending, 3750 * time.Millisecond},
		{429, http.Header{"Retry-After": {"120"}}, Pending, 2 * time.Minute},
		{503, http.Header{"Retry-After": {"86400"}}, Pending, time.Hour}, // capped
		{500, nil, Pending, 3750 * time.Millisecond},
		{302, nil, Pending, 3750 * time.Millisecond}, // redirects are not followed
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tt := range tests {
			db, _ := b.open(t)
			rc := newReceiver(t)
			rc.answerWith(tt.status, tt.header, strings.Repeat("x", 300))
			clock := newFakeClock()
			o := openOutbox(t, db, b.dialect, clock, hook("ops", rc.URL, FormatJSON, RolloutHalted))
			enqueue(t, db, o, halted("r1"))
			s := newSender(t, o, SenderConfig{})
			s.sendAllDue(t)
			d := onlyDelivery(t, o)
			wantAnswer := answerLimit // the first bytes of 300
			if tt.status == http.StatusNoContent {
				wantAnswer = 0
			}
			if d.Status != tt.want || d.Attempts != 1 || d.LastStatus != tt.status || len(d.LastAnswer) != wantAnswer {
				t.Errorf("HTTP %d %v: %s after %d attempts (last %d, answer %d bytes), want %s after 1",
					tt.status, tt.header, d.Status, d.Attempts, d.LastStatus, len(d.LastAnswer), tt.want)
				continue
			}
			if tt.want == Pending {
				if got := d.NextAttemptAt.Sub(clock.Now()); got != tt.next {
					t.Errorf("HTTP %d %v: next attempt in %s, want %s", tt.status, tt.header, got, tt.next)
				}
				if n := s.sendAllDue(t); n != 0 {
					t.Errorf("HTTP %d: retried %d before its time", tt.status, n)
				}
			}
		}
	})
}

func TestRetriesResendTheSameDeliveryUntilAccepted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		clock := newFakeClock()
		o := openOutbox(t, db, b.dialect, clock, hook("ops", rc.URL, FormatJSON, RolloutHalted))
		enqueue(t, db, o, halted("r1"))
		s := newSender(t, o, SenderConfig{})
		for _, status := range []int{500, 429, 408, 502} {
			rc.answerWith(status, nil, "")
			if n := s.sendAllDue(t); n != 1 {
				t.Fatalf("HTTP %d round sent %d, want 1", status, n)
			}
			clock.Set(onlyDelivery(t, o).NextAttemptAt)
		}
		rc.answerWith(200, nil, "")
		s.sendAllDue(t)

		reqs := rc.got()
		if len(reqs) != 5 {
			t.Fatalf("receiver got %d requests, want 5", len(reqs))
		}
		for _, r := range reqs[1:] {
			if r.delivery != reqs[0].delivery || string(r.body) != string(reqs[0].body) || r.signature != reqs[0].signature {
				t.Errorf("retry differs from the first attempt: %s %s vs %s %s", r.delivery, r.body, reqs[0].delivery, reqs[0].body)
			}
		}
		if d := onlyDelivery(t, o); d.Status != Delivered || d.Attempts != 5 {
			t.Errorf("delivery %+v, want delivered after 5 attempts", d)
		}
	})
}

func TestBackoffGrowsToTheCapAndGivesUpAfter24Hours(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		rc.answerWith(503, nil, "down")
		clock := newFakeClock()
		created := clock.Now()
		o := openOutbox(t, db, b.dialect, clock, hook("ops", rc.URL, FormatJSON, RolloutHalted))
		enqueue(t, db, o, halted("r1"))
		s := newSender(t, o, SenderConfig{})
		var waits []time.Duration
		for {
			if n := s.sendAllDue(t); n != 1 {
				t.Fatalf("round sent %d, want 1", n)
			}
			d := onlyDelivery(t, o)
			if d.Status != Pending {
				break
			}
			waits = append(waits, d.NextAttemptAt.Sub(clock.Now()))
			clock.Set(d.NextAttemptAt)
		}
		d := onlyDelivery(t, o)
		if d.Status != Failed || !strings.Contains(d.LastError, "gave up after 24h") {
			t.Errorf("final delivery %+v, want failed, gave up", d)
		}
		if got := clock.Now().Sub(created); got != 24*time.Hour {
			t.Errorf("last attempt %s after creation, want exactly 24h", got)
		}
		// With jitter pinned at the middle: 3.75 s, 7.5 s, 15 s … up to 7.5 min.
		for i, want := range []time.Duration{3750 * time.Millisecond, 7500 * time.Millisecond, 15 * time.Second, 30 * time.Second} {
			if waits[i] != want {
				t.Errorf("wait %d = %s, want %s", i+1, waits[i], want)
			}
		}
		if cap := 450 * time.Second; waits[len(waits)-2] != cap {
			t.Errorf("late waits %v, want the cap %s", waits[len(waits)-3:], cap)
		}
		if len(rc.got()) != d.Attempts {
			t.Errorf("receiver saw %d attempts, outbox counts %d", len(rc.got()), d.Attempts)
		}
		t.Logf("%s: %d attempts over 24 h", b.dialect, d.Attempts)
	})
}

func TestDeliveriesOfOneKeyArriveInOrderOthersDoNotWait(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		// The receiver refuses r1's first event for a while; r2 is fine.
		failFirst := 3
		rc.setAnswer(func(r *http.Request, body []byte) (int, http.Header, string) {
			var ev Event
			json.Unmarshal(body, &ev)
			if ev.Rollout == "r1" && ev.Event == RolloutCreated && failFirst > 0 {
				failFirst--
				return 503, nil, ""
			}
			return 200, nil, ""
		})
		clock := newFakeClock()
		o := openOutbox(t, db, b.dialect, clock, hook("ops", rc.URL, FormatJSON, Events()...))
		r1 := []EventType{RolloutCreated, RolloutAwaitingApproval, RolloutHalted}
		for _, e := range r1 {
			enqueue(t, db, o, Event{Event: e, Hub: "prod", Rollout: "r1"})
		}
		enqueue(t, db, o, Event{Event: JobFinishedWithFailures, Hub: "prod", Rollout: "r1", Job: "w1"},
			Event{Event: RolloutCreated, Hub: "prod", Rollout: "r2"}, Event{Event: RolloutCompleted, Hub: "prod", Rollout: "r2"})
		s := newSender(t, o, SenderConfig{MaxConcurrent: 8})
		for range 10 {
			s.sendAllDue(t)
			clock.Advance(time.Minute)
		}
		// Keys are sent in parallel, so only the order within a key is fixed.
		perKey := map[string][]string{}
		r2DoneBeforeR1 := false
		for _, r := range rc.got() {
			var ev Event
			json.Unmarshal(r.body, &ev)
			perKey[ev.Rollout] = append(perKey[ev.Rollout], string(ev.Event)+" "+http.StatusText(r.status))
			if ev.Rollout == "r2" && ev.Event == RolloutCompleted {
				r2DoneBeforeR1 = len(perKey["r1"]) < 4 // r1's head had not been accepted yet
			}
		}
		want := map[string][]string{
			"r1": {"rollout.created Service Unavailable", "rollout.created Service Unavailable",
				"rollout.created Service Unavailable", "rollout.created OK", "rollout.awaiting_approval OK",
				"rollout.halted OK", "job.finished_with_failures OK"},
			"r2": {"rollout.created OK", "rollout.completed OK"},
		}
		for key, w := range want {
			if strings.Join(perKey[key], "\n") != strings.Join(w, "\n") {
				t.Errorf("%s: receiver saw\n%s\nwant\n%s", key, strings.Join(perKey[key], "\n"), strings.Join(w, "\n"))
			}
		}
		if !r2DoneBeforeR1 {
			t.Error("r2 waited for r1's failing head")
		}
	})
}

func TestAFailedDeliveryDoesNotHoldItsKeyBack(t *testing.T) {
	db, _ := openSQLite(t)
	rc := newReceiver(t)
	rc.setAnswer(func(r *http.Request, body []byte) (int, http.Header, string) {
		if strings.Contains(string(body), `"rollout.created"`) {
			return 400, nil, "bad"
		}
		return 200, nil, ""
	})
	o := openOutbox(t, db, SQLite, newFakeClock(), hook("ops", rc.URL, FormatJSON, Events()...))
	enqueue(t, db, o, Event{Event: RolloutCreated, Hub: "prod", Rollout: "r1"}, halted("r1"))
	newSender(t, o, SenderConfig{}).sendAllDue(t)
	got := map[EventType]Status{}
	for _, d := range deliveries(t, o) {
		got[d.Event] = d.Status
	}
	if got[RolloutCreated] != Failed || got[RolloutHalted] != Delivered {
		t.Errorf("statuses %v, want created failed and halted delivered", got)
	}
}

func TestUnreachableReceiverAndRemovedWebhook(t *testing.T) {
	db, _ := openSQLite(t)
	rc := newReceiver(t)
	deadURL := rc.URL
	rc.Close() // connection refused from now on
	clock := newFakeClock()
	o := openOutbox(t, db, SQLite, clock,
		hook("dead", deadURL+"/services/T0/B0/tokenpart", FormatJSON, RolloutHalted),
		hook("gone", "https://gone.example", FormatJSON, RolloutHalted))
	enqueue(t, db, o, halted("r1"))
	// The config changed and "gone" was removed before the sender ran.
	o.webhooks = map[string]Webhook{"dead": o.webhooks["dead"]}
	newSender(t, o, SenderConfig{}).sendAllDue(t)
	for _, d := range deliveries(t, o) {
		switch d.Webhook {
		case "dead":
			if d.Status != Pending || d.LastStatus != 0 || !strings.Contains(d.LastError, "refused") || strings.Contains(d.LastError, "tokenpart") {
				t.Errorf("dead receiver: %+v, want pending, connection refused, no URL", d)
			}
		case "gone":
			if d.Status != Failed || !strings.Contains(d.LastError, "no longer configured") {
				t.Errorf("removed webhook: %+v, want failed", d)
			}
		}
	}
}

func TestSlowReceiverTimesOutAndIsRetried(t *testing.T) {
	db, _ := openSQLite(t)
	rc := newReceiver(t)
	release := make(chan struct{})
	defer close(release)
	rc.setAnswer(func(r *http.Request, _ []byte) (int, http.Header, string) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return 200, nil, ""
	})
	o := openOutbox(t, db, SQLite, newFakeClock(), hook("ops", rc.URL, FormatJSON, RolloutHalted))
	enqueue(t, db, o, halted("r1"))
	// A client timeout stands in for requestTimeout, which is 10 s.
	s := newSender(t, o, SenderConfig{HTTPClient: &http.Client{Timeout: 200 * time.Millisecond}})
	start := time.Now()
	s.sendAllDue(t)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("one attempt took %s", took)
	}
	if d := onlyDelivery(t, o); d.Status != Pending || d.LastStatus != 0 || d.LastError == "" {
		t.Errorf("delivery %+v, want pending after a timeout", d)
	}
}

func TestMetricsCountOutcomesAndBacklogAge(t *testing.T) {
	db, _ := openSQLite(t)
	rc := newReceiver(t)
	clock := newFakeClock()
	o := openOutbox(t, db, SQLite, clock,
		hook("ok", rc.URL+"/ok", FormatJSON, RolloutHalted), hook("bad", rc.URL+"/bad", FormatJSON, RolloutHalted),
		hook("flaky", rc.URL+"/flaky", FormatJSON, RolloutHalted))
	rc.setAnswer(func(r *http.Request, _ []byte) (int, http.Header, string) {
		return map[string]int{"/ok": 200, "/bad": 404, "/flaky": 500}[r.URL.Path], nil, ""
	})
	enqueue(t, db, o, halted("r1"))
	reg := prometheus.NewRegistry()
	s := newSender(t, o, SenderConfig{Registerer: reg})
	s.sendAllDue(t)
	clock.Advance(90 * time.Second)
	s.housekeep(context.Background())
	for outcome, want := range map[string]float64{"delivered": 1, "failed": 1, "retried": 1} {
		if got := testutil.ToFloat64(s.metrics.deliveries.WithLabelValues(outcome)); got != want {
			t.Errorf("deliveries{outcome=%s} = %v, want %v", outcome, got, want)
		}
	}
	if got := testutil.ToFloat64(s.metrics.oldest); got != 90 {
		t.Errorf("oldest pending = %v s, want 90", got)
	}
	if got := testutil.ToFloat64(s.metrics.pending); got != 1 {
		t.Errorf("pending = %v, want 1", got)
	}
	if _, err := NewSender(o, SenderConfig{Registerer: reg}); err != nil {
		t.Errorf("a second sender on the same registry: %v", err)
	}
}

func TestRunDeliversInTheBackgroundAndStopsWithItsContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		o, err := Open(context.Background(), db, b.dialect,
			Config{PublicURL: testPublicURL, Webhooks: []Webhook{hook("ops", rc.URL, FormatJSON, RolloutHalted)}})
		if err != nil {
			t.Fatal(err)
		}
		s := newSender(t, o, SenderConfig{PollInterval: 20 * time.Millisecond})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		for _, r := range []string{"r1", "r2", "r3"} {
			enqueue(t, db, o, halted(r))
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(rc.got()) < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
		for _, d := range deliveries(t, o) {
			if d.Status != Delivered {
				t.Errorf("delivery %s is %s", d.Key, d.Status)
			}
		}
	})
}

func TestAnAcceptedRetryMakesTheWebhooksOtherWaitingDeliveriesDue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		db, _ := b.open(t)
		rc := newReceiver(t)
		clock := newFakeClock()
		other := hook("other", rc.URL+"/other", FormatJSON, RolloutHalted)
		o := openOutbox(t, db, b.dialect, clock, hook("ops", rc.URL, FormatJSON, RolloutHalted), other)
		rc.setAnswer(func(r *http.Request, body []byte) (int, http.Header, string) {
			if strings.Contains(string(body), `"r3"`) {
				return 429, http.Header{"Retry-After": {"600"}}, "" // throttled: keeps its wait
			}
			return 503, nil, ""
		})
		enqueue(t, db, o, halted("r1"), halted("r2"), halted("r3"))
		s := newSender(t, o, SenderConfig{MaxConcurrent: 8})
		s.sendAllDue(t)
		// Give r2 a much longer wait, as after many failures.
		later := clock.Now().Add(10 * time.Minute).UnixMicro()
		if _, err := db.Exec(`UPDATE notify_outbox SET next_attempt_us = $1 WHERE ordering_key LIKE '%r2'`, later); err != nil {
			t.Fatal(err)
		}
		rc.setAnswer(func(r *http.Request, _ []byte) (int, http.Header, string) {
			if r.URL.Path == "/other" {
				return 503, nil, "" // still down
			}
			return 200, nil, ""
		})
		clock.Advance(10 * time.Second) // r1's retry is due, r2's is not
		s.sendAllDue(t)
		got := map[string]Status{}
		for _, d := range deliveries(t, o) {
			got[d.Webhook+" "+d.Key] = d.Status
		}
		want := map[string]Status{
			"ops /hubs/prod/rollouts/r1": Delivered, "ops /hubs/prod/rollouts/r2": Delivered,
			"ops /hubs/prod/rollouts/r3": Pending, // throttled
			// Another webhook's receiver did not come back.
			"other /hubs/prod/rollouts/r1": Pending, "other /hubs/prod/rollouts/r2": Pending,
			"other /hubs/prod/rollouts/r3": Pending,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s, want %s", k, got[k], w)
			}
		}
		for _, d := range deliveries(t, o) {
			if d.Webhook == "other" && d.Key == "/hubs/prod/rollouts/r2" && d.NextAttemptAt.UnixMicro() != later {
				t.Errorf("other's r2 was rescheduled to %s", d.NextAttemptAt)
			}
		}
	})
}
