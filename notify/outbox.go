package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Dialect is the database the outbox lives in. Both take the same $N
// placeholders and portable SQL; they differ in DDL and in how a claim
// skips rows another replica is claiming.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Status is where a delivery stands.
type Status string

const (
	Pending   Status = "pending"   // not yet accepted by the receiver; retried
	Delivered Status = "delivered" // the receiver answered 2xx
	Failed    Status = "failed"    // refused (4xx), or not accepted within 24 h
)

// ErrUnknownWebhook is returned by SendTest for a name not in the config.
var ErrUnknownWebhook = errors.New("notify: unknown webhook")

// Config is what the outbox needs to fan an event out and render it.
type Config struct {
	// PublicURL is the portal's external base URL (public_url); each
	// event's url is this plus the page of what it reports.
	PublicURL string
	// Webhooks are the receivers; names must be unique, as deliveries
	// refer to their webhook by name.
	Webhooks []Webhook
	// Now replaces time.Now for the outbox and its senders (tests).
	Now func() time.Time
}

// Outbox is the durable queue of webhook deliveries in the portal's
// database. It is safe for concurrent use.
type Outbox struct {
	db        *sql.DB
	dialect   Dialect
	publicURL string
	webhooks  map[string]Webhook
	order     []string // webhook names in config order, for fan-out
	clock     func() time.Time
}

// Open applies notify's migrations to db (idempotent; its own tables only)
// and returns the outbox stored there. db may be the audit database.
func Open(ctx context.Context, db *sql.DB, dialect Dialect, cfg Config) (*Outbox, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("notify: unknown dialect %q", dialect)
	}
	o := &Outbox{
		db:        db,
		dialect:   dialect,
		publicURL: strings.TrimRight(cfg.PublicURL, "/"),
		webhooks:  make(map[string]Webhook, len(cfg.Webhooks)),
		clock:     cfg.Now,
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	for _, w := range cfg.Webhooks {
		if _, dup := o.webhooks[w.Name]; dup {
			return nil, fmt.Errorf("notify: two webhooks named %q", w.Name)
		}
		o.webhooks[w.Name] = w
		o.order = append(o.order, w.Name)
	}
	if err := migrate(ctx, db, string(dialect)); err != nil {
		return nil, fmt.Errorf("notify: migrate %s: %w", dialect, err)
	}
	return o, nil
}

// now is the clock in UTC at the precision the database keeps.
func (o *Outbox) now() time.Time { return o.clock().UTC().Truncate(time.Microsecond) }

func (o *Outbox) webhook(name string) (Webhook, bool) {
	w, ok := o.webhooks[name]
	return w, ok
}

// Execer is what Enqueue writes through: the caller's *sql.Tx, so that the
// deliveries commit or roll back with the change they report.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Enqueue writes one delivery per webhook subscribed to ev.Event, through
// tx. Pass the transaction that makes the change ev reports: then either
// the change and its deliveries are both committed or neither is, and the
// sender, which only sees committed rows, never reports a change that was
// rolled back nor misses one that was made. Call it after the statement
// that locks what ev is about (the rollout's row, say): transactions that
// report the same rollout then commit in the order they enqueue, which is
// the order receivers get their events in.
func (o *Outbox) Enqueue(ctx context.Context, tx Execer, ev Event) error {
	if err := ev.validate(); err != nil {
		return err
	}
	ev = o.complete(ev)
	for _, name := range o.order {
		if w := o.webhooks[name]; w.Subscribed(ev.Event) {
			if _, err := o.insert(ctx, tx, w, ev); err != nil {
				return err
			}
		}
	}
	return nil
}

// Publish is Enqueue in a transaction of its own, for a fact that has no
// change to commit with: a job seen finishing is only observed, nothing
// about it is written. Every subscribed webhook gets its delivery, or none
// does (and the caller may try again: an event with a deterministic ID is
// never queued twice for one webhook).
func (o *Outbox) Publish(ctx context.Context, ev Event) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("notify: publish %s: %w", ev.Event, err)
	}
	defer tx.Rollback()
	if err := o.Enqueue(ctx, tx, ev); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("notify: publish %s: %w", ev.Event, err)
	}
	return nil
}

// Webhooks names the configured webhooks in config order: what the admin
// page offers a test delivery to. Names only: URLs and secrets stay here.
func (o *Outbox) Webhooks() []string { return slices.Clone(o.order) }

// SendTest enqueues a test event to the named webhook alone, whatever it
// subscribes to, and returns its delivery id.
func (o *Outbox) SendTest(ctx context.Context, webhook string) (string, error) {
	w, ok := o.webhooks[webhook]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownWebhook, webhook)
	}
	ev := o.complete(Event{Event: Test, Summary: "a test delivery sent from the notifications page"})
	return o.insert(ctx, o.db, w, ev)
}

// complete fills in what the caller leaves to the outbox.
func (o *Outbox) complete(ev Event) Event {
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.Time.IsZero() {
		ev.Time = o.now()
	}
	ev.Time = ev.Time.UTC()
	ev.URL = o.publicURL + ev.portalPath()
	return ev
}

func (o *Outbox) insert(ctx context.Context, tx Execer, w Webhook, ev Event) (string, error) {
	body, err := render(w.Format, ev)
	if err != nil {
		return "", err
	}
	id := newID()
	now := o.now().UnixMicro()
	_, err = tx.ExecContext(ctx, `INSERT INTO notify_outbox
		(delivery_id, event_id, webhook, event, ordering_key, body, status, next_attempt_us, created_us)
		VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)
		ON CONFLICT (event_id, webhook) DO NOTHING`,
		id, ev.ID, w.Name, string(ev.Event), ev.orderingKey(), body, now)
	if err != nil {
		return "", fmt.Errorf("notify: enqueue %s for %s: %w", ev.Event, w.Name, err)
	}
	return id, nil
}

// Delivery is one row of the outbox as the admin page shows it.
type Delivery struct {
	ID            string // X-Hubjobs-Delivery
	EventID       string
	Webhook       string
	Event         EventType
	Key           string // the ordering key: the rollout's or job's page path
	Status        Status
	Attempts      int
	CreatedAt     time.Time
	NextAttemptAt time.Time // meaningful while Pending
	DeliveredAt   time.Time // zero unless Delivered
	LastStatus    int       // the receiver's last HTTP status, 0 if it never answered
	LastError     string    // why the last attempt did not deliver
	LastAnswer    string    // the first bytes of the receiver's last answer
}

// Recent lists the newest deliveries first, at most limit of them.
func (o *Outbox) Recent(ctx context.Context, limit int) ([]Delivery, error) {
	rows, err := o.db.QueryContext(ctx, `SELECT delivery_id, event_id, webhook, event, ordering_key,
		status, attempts, created_us, next_attempt_us, delivered_us, last_status, last_error, last_answer
		FROM notify_outbox ORDER BY seq DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("notify: recent deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		var created, next, delivered int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.Webhook, &d.Event, &d.Key, &d.Status, &d.Attempts,
			&created, &next, &delivered, &d.LastStatus, &d.LastError, &d.LastAnswer); err != nil {
			return nil, fmt.Errorf("notify: recent deliveries: %w", err)
		}
		d.CreatedAt, d.NextAttemptAt, d.DeliveredAt = fromMicros(created), fromMicros(next), fromMicros(delivered)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notify: recent deliveries: %w", err)
	}
	return out, nil
}

// fromMicros reads a stored time; 0 stands for "not yet".
func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// newID is a random (version 4) UUID: event and delivery ids.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
