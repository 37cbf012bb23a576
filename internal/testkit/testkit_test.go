package testkit_test

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

func TestBufferKeepsEveryConcurrentWrite(t *testing.T) {
	var b testkit.Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(&b, "line %02d\n", i) })
	}
	wg.Wait()
	for i := range 20 {
		if !strings.Contains(b.String(), fmt.Sprintf("line %02d\n", i)) {
			t.Errorf("line %02d lost:\n%s", i, b.String())
		}
	}
}

func TestClockMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	c := testkit.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	c.Advance(90 * time.Second)
	c.Advance(-30 * time.Second)
	if got, want := c.Now(), start.Add(time.Minute); !got.Equal(want) {
		t.Errorf("after +90s -30s: %v, want %v", got, want)
	}
	later := start.Add(24 * time.Hour)
	c.Set(later)
	if got := c.Now(); !got.Equal(later) {
		t.Errorf("after Set: %v, want %v", got, later)
	}
}

// server sets a cookie on /login and redirects to /home, which echoes it.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "s1", Path: "/"})
		http.Redirect(w, r, "/home", http.StatusSeeOther)
	})
	mux.HandleFunc("/home", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("session")
		if err != nil {
			http.Error(w, "signed out", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "hello "+c.Value)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get fetches rawURL with client and closes the body.
func get(t *testing.T, client *http.Client, rawURL string) *http.Response {
	t.Helper()
	resp, err := client.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestBrowserKeepsCookiesThroughRedirects(t *testing.T) {
	srv := server(t)
	b := testkit.NewBrowser(t)
	resp := get(t, b, srv.URL+"/login")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/home" {
		t.Fatalf("login ended at %s with %s, want /home 200", resp.Request.URL, resp.Status)
	}
	if c := testkit.Cookie(b, srv.URL, "session"); c == nil || c.Value != "s1" {
		t.Errorf("Cookie(session) = %v, want s1", c)
	}
	if c := testkit.Cookie(b, srv.URL, "other"); c != nil {
		t.Errorf("Cookie(other) = %v, want nil", c)
	}
	if other := testkit.NewBrowser(t); testkit.Cookie(other, srv.URL, "session") != nil {
		t.Error("two browsers share a cookie jar")
	}
}

func TestNoRedirectBrowserStopsAtEachHop(t *testing.T) {
	srv := server(t)
	b := testkit.NewNoRedirectBrowser(t)
	resp := get(t, b, srv.URL+"/login")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/home" {
		t.Fatalf("login: %s Location %q, want 303 to /home", resp.Status, resp.Header.Get("Location"))
	}
	if resp = get(t, b, srv.URL+"/home"); resp.StatusCode != http.StatusOK {
		t.Errorf("/home with the kept cookie: %s, want 200", resp.Status)
	}
}

func TestPostgresSchemaIsFreshAndPrivate(t *testing.T) {
	first, second := testkit.PostgresSchema(t, "testkit_test"), testkit.PostgresSchema(t, "testkit_test")
	if first == second {
		t.Fatalf("two schemas share a DSN: %s", first)
	}
	open := func(dsn string) *sql.DB {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	a, b := open(first), open(second)
	if _, err := a.Exec(`CREATE TABLE marks (n int); INSERT INTO marks VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.QueryRow(`SELECT count(*) FROM marks`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("own schema: count %d, err %v", n, err)
	}
	if _, err := b.Exec(`SELECT 1 FROM marks`); err == nil {
		t.Error("a table of one schema is visible from the other")
	}
}
