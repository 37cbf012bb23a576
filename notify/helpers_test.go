package notify

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	_ "modernc.org/sqlite"             // driver "sqlite"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// The store-facing tests run on both databases. PostgreSQL is the
// machine's server (trust auth); each test gets a fresh schema, dropped
// afterwards. Without it the PostgreSQL half skips locally and fails
// under CI=true.

type backend struct {
	dialect Dialect
	// open returns a handle on a fresh, empty database; newHandle opens a
	// second, independent handle on the same database (another replica).
	open func(t testing.TB) (db *sql.DB, newHandle func() *sql.DB)
}

var backends = []backend{
	{dialect: SQLite, open: openSQLite},
	{dialect: Postgres, open: openPostgres},
}

func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(string(b.dialect), func(t *testing.T) { test(t, b) })
	}
}

// sqliteParams are the audit store's: the outbox normally shares its file.
const sqliteParams = "_busy_timeout=5000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=on&_txlock=immediate"

func openSQLite(t testing.TB) (*sql.DB, func() *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hubjobs.db")
	handle := func() *sql.DB { return openHandle(t, "sqlite", path+"?"+sqliteParams) }
	return handle(), handle
}

func openPostgres(t testing.TB) (*sql.DB, func() *sql.DB) {
	t.Helper()
	dsn := testkit.PostgresSchema(t, "notify_test")
	handle := func() *sql.DB { return openHandle(t, "pgx", dsn) }
	return handle(), handle
}

func openHandle(t testing.TB, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(8)
	t.Cleanup(func() { db.Close() })
	return db
}

// newFakeClock is the settable clock for Config.Now, stopped at a fixed
// instant in whole microseconds, the outbox's resolution.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 891_234_000, time.UTC))
}

const testPublicURL = "https://jobs.example.com"

func openOutbox(t testing.TB, db *sql.DB, d Dialect, clock *testkit.Clock, webhooks ...Webhook) *Outbox {
	t.Helper()
	o, err := Open(context.Background(), db, d, Config{PublicURL: testPublicURL + "/", Webhooks: webhooks, Now: clock.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return o
}

func newSender(t testing.TB, o *Outbox, cfg SenderConfig) *Sender {
	t.Helper()
	s, err := NewSender(o, cfg)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	s.jitter = func() float64 { return 0.5 } // the middle of the jitter range
	return s
}

// enqueue commits ev's deliveries in a transaction of their own.
func enqueue(t testing.TB, db *sql.DB, o *Outbox, evs ...Event) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, ev := range evs {
		if err := o.Enqueue(context.Background(), tx, ev); err != nil {
			t.Fatalf("Enqueue(%s): %v", ev.Event, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// sendDue is one synchronous round of Run: claim what is due (up to
// MaxConcurrent), deliver it all in parallel, return how many.
func (s *Sender) sendDue(t testing.TB) int {
	t.Helper()
	ctx := context.Background()
	batch, err := s.claim(ctx, s.maxConcurrent)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	var wg sync.WaitGroup
	for _, d := range batch {
		wg.Go(func() { s.deliver(ctx, d) })
	}
	wg.Wait()
	return len(batch)
}

// sendAllDue repeats sendDue until nothing is due at the current time.
func (s *Sender) sendAllDue(t testing.TB) int {
	t.Helper()
	total := 0
	for n := s.sendDue(t); n > 0; n = s.sendDue(t) {
		total += n
	}
	return total
}

func deliveries(t testing.TB, o *Outbox) []Delivery {
	t.Helper()
	ds, err := o.Recent(context.Background(), 10_000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func onlyDelivery(t testing.TB, o *Outbox) Delivery {
	t.Helper()
	ds := deliveries(t, o)
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries, want 1: %+v", len(ds), ds)
	}
	return ds[0]
}

// received is one request as the receiver saw it.
type received struct {
	delivery, event, signature, contentType string
	body                                    []byte
	status                                  int
}

// receiver is a local webhook endpoint whose answers the test scripts.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
	answer   func(r *http.Request, body []byte) (status int, header http.Header, reply string)
}

func newReceiver(t testing.TB) *receiver {
	t.Helper()
	rc := &receiver{answer: func(*http.Request, []byte) (int, http.Header, string) { return http.StatusOK, nil, "ok" }}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		answer := rc.answer
		rc.mu.Unlock()
		status, header, reply := answer(r, body)
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, reply)
		rc.mu.Lock()
		rc.requests = append(rc.requests, received{
			delivery: r.Header.Get(HeaderDelivery), event: r.Header.Get(HeaderEvent),
			signature: r.Header.Get(HeaderSignature), contentType: r.Header.Get("Content-Type"),
			body: body, status: status,
		})
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) answerWith(status int, header http.Header, reply string) {
	rc.setAnswer(func(*http.Request, []byte) (int, http.Header, string) { return status, header, reply })
}

func (rc *receiver) setAnswer(f func(r *http.Request, body []byte) (int, http.Header, string)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.answer = f
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.requests...)
}

func hook(name, url string, format Format, events ...EventType) Webhook {
	names := make([]string, len(events))
	for i, e := range events {
		names[i] = string(e)
	}
	return Webhook{Name: name, URL: url, Secret: "s3cret-" + name, Events: names, Format: format}
}

func halted(rollout string) Event {
	return Event{Event: RolloutHalted, Hub: "prod", Rollout: rollout, Summary: "7 of 100 devices failed in wave 2"}
}
