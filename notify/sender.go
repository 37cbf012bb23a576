package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// The delivery policy. README.md explains each choice.
const (
	// requestTimeout bounds one POST, answer included.
	requestTimeout = 10 * time.Second
	// leaseDuration is how long a claim keeps other senders off a delivery.
	// It must exceed requestTimeout plus the time to record the outcome, so
	// that a live sender's lease never expires under it; a dead sender's
	// deliveries are picked up again once it has.
	leaseDuration = time.Minute
	// The n-th retry waits retryBase·2^(n-1), at most retryCap, jittered
	// down to half of that so receivers coming back are not stampeded.
	retryBase = 5 * time.Second
	retryCap  = 10 * time.Minute
	// retryAfterCap bounds how long a receiver's Retry-After may hold us.
	retryAfterCap = time.Hour
	// giveUpAfter: a delivery not accepted this long after it was enqueued
	// fails.
	giveUpAfter = 24 * time.Hour
	// answerLimit is how much of the receiver's answer is kept; drainLimit
	// how much more is read so the connection can be reused.
	answerLimit = 200
	drainLimit  = 4 << 10
	// retention: settled deliveries older than this are deleted.
	retention     = 30 * 24 * time.Hour
	purgeInterval = time.Hour
	// settleTimeout bounds recording an outcome, even during shutdown.
	settleTimeout = 5 * time.Second

	defaultMaxConcurrent = 4
	defaultPollInterval  = time.Second
)

// SenderConfig tunes a Sender; the zero value is usable.
type SenderConfig struct {
	// HTTPClient sends the POSTs. The default follows no redirects (a
	// signed body is not re-sent where a 3xx points; 3xx is retried).
	HTTPClient *http.Client
	// Owner names this sender in leases; unique per process. Default:
	// hostname, pid and a random suffix.
	Owner  string
	Logger *slog.Logger
	// Registerer receives hubjobs_notify_deliveries_total{outcome},
	// hubjobs_notify_outbox_pending and
	// hubjobs_notify_outbox_oldest_pending_seconds.
	Registerer prometheus.Registerer
	// MaxConcurrent bounds the POSTs in flight (default 4): a slow
	// receiver holds at most that many goroutines and connections.
	MaxConcurrent int
	// PollInterval is how often the outbox is read for due deliveries
	// when nothing else wakes the sender (default 1 s).
	PollInterval time.Duration
}

// Sender delivers the outbox's deliveries in the background. Any number
// of senders may run against one database: a delivery is claimed with a
// lease in the database, so one sender at a time sends it.
type Sender struct {
	outbox        *Outbox
	client        *http.Client
	owner         string
	logger        *slog.Logger
	metrics       *senderMetrics
	maxConcurrent int
	pollInterval  time.Duration
	jitter        func() float64 // in [0, 1)
	lastPurge     time.Time
}

// NewSender returns a sender for o; it sends nothing until Run.
func NewSender(o *Outbox, cfg SenderConfig) (*Sender, error) {
	s := &Sender{
		outbox:        o,
		client:        cfg.HTTPClient,
		owner:         cfg.Owner,
		logger:        cfg.Logger,
		maxConcurrent: cfg.MaxConcurrent,
		pollInterval:  cfg.PollInterval,
		jitter:        rand.Float64,
	}
	if s.client == nil {
		s.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	}
	if s.owner == "" {
		host, _ := os.Hostname()
		s.owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newID()[:8])
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxConcurrent <= 0 {
		s.maxConcurrent = defaultMaxConcurrent
	}
	if s.pollInterval <= 0 {
		s.pollInterval = defaultPollInterval
	}
	var err error
	if s.metrics, err = newSenderMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return s, nil
}

// Run delivers until ctx ends, then waits for the POSTs in flight and
// releases their leases. Every state change is a database write, so a
// sender killed at any point loses nothing: its claimed deliveries are
// sent again (same delivery id) when their leases expire.
func (s *Sender) Run(ctx context.Context) {
	slots := make(chan struct{}, s.maxConcurrent)
	freed := make(chan struct{}, 1)
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	ticker := time.NewTicker(s.pollInterval)
	defer ticker.Stop()
	s.housekeep(ctx)
	for {
		if free := cap(slots) - len(slots); free > 0 {
			batch, err := s.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				s.logger.Warn("notify: claiming deliveries failed", slog.String("error", err.Error()))
			}
			for _, d := range batch {
				slots <- struct{}{}
				inFlight.Go(func() {
					defer func() {
						<-slots
						select { // a finished delivery may unblock the next of its key
						case freed <- struct{}{}:
						default:
						}
					}()
					s.deliver(ctx, d)
				})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-freed:
		case <-ticker.C:
			s.housekeep(ctx)
		}
	}
}

// claimed is a delivery this sender holds the lease of.
type claimed struct {
	seq      int64
	id       string
	webhook  string
	event    EventType
	body     []byte
	attempts int
	created  time.Time
}

// claim leases up to n due deliveries in one statement. A delivery is due
// when it is pending, its next attempt has come, no live lease holds it,
// and no earlier delivery to the same webhook with the same ordering key
// is still pending — which keeps each key's deliveries in order and at
// most one of them in flight. The outer WHERE re-checks the lease, so of
// two senders racing for a row only one updates it; on PostgreSQL, SKIP
// LOCKED makes the loser move on to other rows instead of waiting.
func (s *Sender) claim(ctx context.Context, n int) ([]claimed, error) {
	now := s.outbox.now()
	lock := ""
	if s.outbox.dialect == Postgres {
		lock = "FOR UPDATE SKIP LOCKED"
	}
	rows, err := s.outbox.db.QueryContext(ctx, `UPDATE notify_outbox
		SET lease_owner = $1, lease_until_us = $2
		WHERE seq IN (
			SELECT o.seq FROM notify_outbox o
			WHERE o.status = 'pending' AND o.next_attempt_us <= $3 AND o.lease_until_us <= $3
			  AND NOT EXISTS (SELECT 1 FROM notify_outbox e
			      WHERE e.status = 'pending' AND e.webhook = o.webhook
			        AND e.ordering_key = o.ordering_key AND e.seq < o.seq)
			ORDER BY o.next_attempt_us, o.seq
			LIMIT $4 `+lock+`)
		  AND status = 'pending' AND lease_until_us <= $3
		RETURNING seq, delivery_id, webhook, event, body, attempts, created_us`,
		s.owner, now.Add(leaseDuration).UnixMicro(), now.UnixMicro(), n)
	if err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	defer rows.Close()
	var batch []claimed
	for rows.Next() {
		var d claimed
		var created int64
		if err := rows.Scan(&d.seq, &d.id, &d.webhook, &d.event, &d.body, &d.attempts, &created); err != nil {
			return nil, fmt.Errorf("notify: claim: %w", err)
		}
		d.created = fromMicros(created)
		batch = append(batch, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: claim: %w", err)
	}
	sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
	return batch, nil
}

// deliver makes one attempt and records its outcome. When ctx ends before
// the receiver answered, the lease is released instead: the outcome is
// unknown, and the next sender to start should not wait for it to expire.
func (s *Sender) deliver(ctx context.Context, d claimed) {
	var a attempt
	if w, ok := s.outbox.webhook(d.webhook); ok {
		a = s.post(ctx, w, d)
	} else {
		a = attempt{refused: fmt.Sprintf("webhook %q is no longer configured", d.webhook)}
	}
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	if ctx.Err() != nil && a.status == 0 {
		_, err := s.outbox.db.ExecContext(dbctx, `UPDATE notify_outbox SET lease_owner = '', lease_until_us = 0
			WHERE seq = $1 AND lease_owner = $2`, d.seq, s.owner)
		if err != nil {
			s.logger.Warn("notify: releasing a lease failed", slog.String("delivery", d.id), slog.String("error", err.Error()))
		}
		return
	}
	if err := s.settle(dbctx, d, a); err != nil {
		// The lease will expire and the delivery be sent again.
		s.logger.Warn("notify: recording a delivery failed", slog.String("delivery", d.id), slog.String("error", err.Error()))
	}
}

// attempt is what one POST came to.
type attempt struct {
	status     int           // the receiver's HTTP status; 0 if it never answered
	answer     string        // the first answerLimit bytes of its answer
	err        string        // why there was no answer (timeout, refused …)
	retryAfter time.Duration // the receiver's Retry-After, if any
	refused    string        // set when retrying cannot help
}

func (s *Sender) post(ctx context.Context, w Webhook, d claimed) attempt {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(d.body))
	if err != nil {
		return attempt{refused: "the webhook's URL is not valid"} // the error would quote the URL
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hubjobs-webhook")
	req.Header.Set(HeaderEvent, string(d.event))
	req.Header.Set(HeaderDelivery, d.id)
	req.Header.Set(HeaderSignature, sign(w.Secret, d.body))
	resp, err := s.client.Do(req)
	if err != nil {
		return attempt{err: transportError(err)}
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, answerLimit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	return attempt{
		status:     resp.StatusCode,
		answer:     printable(answer),
		retryAfter: retryAfter(resp.Header.Get("Retry-After"), s.outbox.now()),
	}
}

// transportError says why there was no answer without quoting the URL,
// which *url.Error does and which may be a credential.
func transportError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", requestTimeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// printable makes a receiver's answer safe to store and show: valid UTF-8
// without NULs (PostgreSQL TEXT refuses both).
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), string(utf8.RuneError))
	return strings.ReplaceAll(s, "\x00", "")
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(header string, now time.Time) time.Duration {
	if header == "" {
		return 0
	}
	if secs, err := strconv.Atoi(header); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(header); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// outcome is what settle decided for a delivery after an attempt.
type outcome struct {
	status      Status
	nextAttempt time.Time
	reason      string // last_error
}

// decide applies the policy: 2xx delivered; 4xx other than 408 and 429
// refused for good; anything else retried with backoff (or after the
// receiver's Retry-After) until giveUpAfter from creation, the last try
// falling exactly then.
func decide(a attempt, attemptsBefore int, created, now time.Time, jitter float64) outcome {
	switch {
	case a.refused != "":
		return outcome{status: Failed, reason: a.refused}
	case a.status >= 200 && a.status < 300:
		return outcome{status: Delivered}
	case a.status >= 400 && a.status < 500 && a.status != http.StatusRequestTimeout && a.status != http.StatusTooManyRequests:
		return outcome{status: Failed, reason: fmt.Sprintf("refused with HTTP %d", a.status)}
	}
	reason := a.err
	if a.status != 0 {
		reason = fmt.Sprintf("HTTP %d", a.status)
	}
	deadline := created.Add(giveUpAfter)
	if !now.Before(deadline) {
		return outcome{status: Failed, reason: "gave up after 24h; last: " + reason}
	}
	delay := backoff(attemptsBefore+1, jitter)
	if a.retryAfter > 0 {
		delay = min(max(a.retryAfter, time.Second), retryAfterCap)
	}
	next := now.Add(delay)
	if next.After(deadline) {
		next = deadline
	}
	return outcome{status: Pending, nextAttempt: next, reason: reason}
}

// backoff is the wait after the n-th failed attempt (n ≥ 1).
func backoff(n int, jitter float64) time.Duration {
	d := retryCap
	if n <= 20 { // 5 s · 2^20 is far past the cap; avoid overflow
		d = min(retryBase<<(n-1), retryCap)
	}
	return d/2 + time.Duration(jitter*float64(d/2))
}

// settle records an attempt, only while this sender still holds the lease:
// if it expired and another sender took the delivery over, that sender's
// outcome is the one that counts.
func (s *Sender) settle(ctx context.Context, d claimed, a attempt) error {
	now := s.outbox.now()
	o := decide(a, d.attempts, d.created, now, s.jitter())
	var deliveredAt, nextAttempt int64
	switch o.status {
	case Delivered:
		deliveredAt = now.UnixMicro()
	case Pending:
		nextAttempt = o.nextAttempt.UnixMicro()
	}
	res, err := s.outbox.db.ExecContext(ctx, `UPDATE notify_outbox
		SET status = $1, attempts = attempts + 1, next_attempt_us = $2, delivered_us = $3,
		    last_status = $4, last_error = $5, last_answer = $6, lease_owner = '', lease_until_us = 0
		WHERE seq = $7 AND lease_owner = $8 AND status = 'pending'`,
		string(o.status), nextAttempt, deliveredAt, a.status, o.reason, a.answer, d.seq, s.owner)
	if err != nil {
		return fmt.Errorf("notify: settle %s: %w", d.id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		s.logger.Warn("notify: lease lost before the outcome was recorded; the delivery is sent again",
			slog.String("delivery", d.id))
		return nil
	}
	s.metrics.count(o.status)
	if o.status == Delivered && d.attempts > 0 {
		s.receiverIsBack(ctx, d.webhook, now)
	}
	if o.status != Delivered {
		s.logger.Warn("notify: delivery not accepted", slog.String("webhook", d.webhook),
			slog.String("delivery", d.id), slog.String("event", string(d.event)),
			slog.String("status", string(o.status)), slog.Int("attempt", d.attempts+1),
			slog.String("reason", o.reason))
	}
	return nil
}

// receiverIsBack makes the webhook's other waiting deliveries due now: an
// accepted retry means the receiver recovered, and the heads of other keys
// should not sit out the rest of their backoff (up to retryCap). Deliveries
// the receiver throttled (429) keep their wait.
func (s *Sender) receiverIsBack(ctx context.Context, webhook string, now time.Time) {
	_, err := s.outbox.db.ExecContext(ctx, `UPDATE notify_outbox SET next_attempt_us = $1
		WHERE webhook = $2 AND status = 'pending' AND next_attempt_us > $1 AND last_status <> 429`,
		now.UnixMicro(), webhook)
	if err != nil {
		s.logger.Warn("notify: rescheduling a recovered webhook's deliveries failed",
			slog.String("webhook", webhook), slog.String("error", err.Error()))
	}
}

// housekeep refreshes the backlog gauges and, hourly, deletes settled
// deliveries past retention. Failures are logged: neither stops sending.
func (s *Sender) housekeep(ctx context.Context) {
	now := s.outbox.now()
	var pending, oldest int64
	err := s.outbox.db.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MIN(created_us), 0)
		FROM notify_outbox WHERE status = 'pending'`).Scan(&pending, &oldest)
	if err != nil {
		if ctx.Err() == nil {
			s.logger.Warn("notify: reading the backlog failed", slog.String("error", err.Error()))
		}
		return
	}
	s.metrics.backlog(pending, oldest, now)
	if now.Sub(s.lastPurge) < purgeInterval {
		return
	}
	s.lastPurge = now
	if _, err := s.outbox.db.ExecContext(ctx, `DELETE FROM notify_outbox
		WHERE status <> 'pending' AND created_us < $1`, now.Add(-retention).UnixMicro()); err != nil {
		s.logger.Warn("notify: purging old deliveries failed", slog.String("error", err.Error()))
	}
}
