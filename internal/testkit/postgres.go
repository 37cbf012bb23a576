package testkit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
)

// PostgresDSN is the PostgreSQL server tests use: HUBJOBS_TEST_POSTGRES, or
// the machine's own server with trust authentication.
func PostgresDSN() string {
	if dsn := os.Getenv("HUBJOBS_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// postgresAdmin is one connection pool per test binary for creating and
// dropping schemas; the server is probed once, not once per test.
var postgresAdmin = sync.OnceValues(func() (*sql.DB, error) {
	db, err := sql.Open("pgx", PostgresDSN())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
})

// PostgresSchema creates an empty schema called prefix_<random>, drops it
// when the test ends, and returns a DSN whose search_path is that schema
// (pgx sends unknown URL parameters as run-time settings). Tests of several
// packages run at once on one server, so each test gets its own schema
// instead of sharing tables.
//
// Without a reachable server the test is skipped, or failed when CI=true:
// in CI a missing database is a broken pipeline, not a reason to pass.
func PostgresSchema(t testing.TB, prefix string) string {
	t.Helper()
	admin, err := postgresAdmin()
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL not reachable at %s: %v (start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start`, or set HUBJOBS_TEST_POSTGRES)", PostgresDSN(), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix) // never fails (crypto/rand panics instead)
	schema := prefix + "_" + hex.EncodeToString(suffix)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(PostgresDSN())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
