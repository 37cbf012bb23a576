package audit

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// The same suite runs on every backend. PostgreSQL is the machine's server
// (trust auth); each test gets a fresh schema, dropped afterwards. Without
// it the PostgreSQL half skips locally and fails under CI=true.

type backend struct {
	name string
	// newDSN returns the DSN of a fresh, empty trail removed after the test.
	newDSN func(t testing.TB) string
	// dropTriggers is what an intruder runs before rewriting history.
	dropTriggers string
}

var backends = []backend{
	{
		name: "sqlite",
		newDSN: func(t testing.TB) string {
			return "sqlite://" + filepath.Join(t.TempDir(), "audit.db")
		},
		dropTriggers: `DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete`,
	},
	{
		name:         "postgres",
		newDSN:       newPostgresSchema,
		dropTriggers: `DROP TRIGGER audit_entries_append_only ON audit_entries`,
	},
}

func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

// newPostgresSchema is the DSN of a fresh, private schema (testkit.PostgresSchema).
func newPostgresSchema(t testing.TB) string { return testkit.PostgresSchema(t, "audit_test") }

func openStore(t testing.TB, dsn string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", redactDSN(dsn), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && strings.HasPrefix(dsn, "postgres") {
		return u.Redacted()
	}
	return dsn
}

// rawDB is a connection that bypasses the Store: an intruder, or a tool.
func rawDB(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	driver, name := "pgx", dsn
	if path, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		driver, name = "sqlite", path
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one connection: what it changes, it sees
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t testing.TB, db *sql.DB, query string, args ...any) {
	t.Helper()
	for _, stmt := range strings.Split(query, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := db.Exec(stmt, args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// newFakeClock is the settable clock for WithClock, stopped at a fixed
// instant with sub-second digits.
func newFakeClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 891_234_567, time.UTC))
}

// cancelIntent is a typical intent written by the cancel handler.
func cancelIntent(requestID, jobID string) Entry {
	return Entry{
		Action: JobCancelIntent,
		Actor: Actor{Issuer: "https://idp.example.com", Subject: "u-42", Name: "Olive Operator",
			Email: "olive@example.com", Roles: []string{"operator"}},
		ClientIP: "203.0.113.7", UserAgent: "Mozilla/5.0", RequestID: requestID,
		Hub: "prod", JobID: jobID, Reason: "wrong firmware",
	}
}

func mustAppend(t testing.TB, s *Store, e Entry) Entry {
	t.Helper()
	got, err := s.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append(%s): %v", e.Action, err)
	}
	return got
}

func seqs(entries []Entry) []int64 {
	out := make([]int64, len(entries))
	for i, e := range entries {
		out[i] = e.Seq
	}
	return out
}
