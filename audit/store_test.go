package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOpen_SQLitePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("sub", 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dsn      string
		opts     []Option
		wantFile string // created file, relative to dir; "" = Open must fail
		wantErr  error
	}{
		{name: "relative", dsn: "sqlite://sub/rel.db", wantFile: "sub/rel.db"},
		{name: "absolute", dsn: "sqlite://" + filepath.Join(dir, "abs.db"), wantFile: "abs.db"},
		{name: "ErrEmptyPath", dsn: "sqlite://", wantErr: ErrInvalid},
		{name: "ErrQueryInPath", dsn: "sqlite://x.db?mode=ro", wantErr: ErrInvalid},
		{name: "ErrMissingDirectory", dsn: "sqlite://nope/x.db", wantErr: ErrInvalid},
		{name: "ErrScheme", dsn: "mysql://x", wantErr: ErrInvalid},
		{name: "ErrMustExist", dsn: "sqlite://missing.db", opts: []Option{MustExist()}, wantErr: ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.dsn, tc.opts...)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open(%q) error = %v, want %v", tc.dsn, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%q): %v", tc.dsn, err)
			}
			defer s.Close()
			mustAppend(t, s, cancelIntent("r1", "j1"))
			info, err := os.Stat(filepath.Join(dir, tc.wantFile))
			if err != nil {
				t.Fatalf("database file: %v", err)
			}
			if got := info.Mode().Perm(); got != 0o600 {
				t.Errorf("database file mode = %o, want 600 (the trail holds e-mail and IP addresses)", got)
			}
		})
	}
	if _, err := os.Stat("missing.db"); err == nil {
		t.Error("MustExist created the missing file")
	}
}

func TestOpen_MigrationsIdempotentAndConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		// Two replicas starting at once, then a restart.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Go(func() {
				s, err := Open(context.Background(), dsn)
				if err == nil {
					s.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("concurrent Open: %v", err)
			}
		}
		s := openStore(t, dsn)
		mustAppend(t, s, cancelIntent("r1", "j1"))
		var n int
		if err := rawDB(t, dsn).QueryRow(`SELECT count(*) FROM hubjobs_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		ms, err := loadMigrations(migrationFiles, b.name)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(ms); n != want {
			t.Errorf("hubjobs_migrations has %d rows, want %d", n, want)
		}
	})
}

// TestAppend_HashIsTheDocumentedEncoding pins the canonical encoding that
// README.md gives outside verifiers: if this test changes, old chains no
// longer verify.
func TestAppend_HashIsTheDocumentedEncoding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		first := mustAppend(t, s, cancelIntent("req-1", "job-1"))

		canonical := `{"seq":1,"time":"2026-03-04T05:06:07.891234Z","action":"job.cancel.intent","result":"",` +
			`"actor_iss":"https://idp.example.com","actor_sub":"u-42","actor_name":"Olive Operator",` +
			`"actor_email":"olive@example.com","actor_roles":["operator"],"client_ip":"203.0.113.7",` +
			`"user_agent":"Mozilla/5.0","request_id":"req-1","hub":"prod","job_id":"job-1",` +
			`"reason":"wrong firmware","hub_status":0,"hub_error_code":"","hub_tracking_id":"",` +
			`"prev_hash":"` + strings.Repeat("0", 64) + `"}`
		sum := sha256.Sum256([]byte(canonical + strings.Repeat("0", 64)))
		if want := hex.EncodeToString(sum[:]); first.Hash != want {
			t.Fatalf("hash = %s, want %s (SHA-256 of %s || prev_hash)", first.Hash, want, canonical)
		}

		clock.Advance(time.Second)
		second := mustAppend(t, s, Entry{Action: JobCancelSucceeded, Result: "cancelled", RequestID: "req-1",
			Hub: "prod", JobID: "job-1", HubStatus: 200, HubTrackingID: "T1"})
		if second.Seq != 2 || second.PrevHash != first.Hash {
			t.Errorf("second entry seq=%d prev_hash=%s, want 2 and %s", second.Seq, second.PrevHash, first.Hash)
		}
		if want := clock.Now().Truncate(time.Microsecond); !second.Time.Equal(want) {
			t.Errorf("time = %v, want %v", second.Time, want)
		}
		got, err := s.List(context.Background(), Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Hash != second.Hash || got[1].Hash != first.Hash {
			t.Fatalf("List = %+v, want the two entries newest first", got)
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestAppend_RefusesInvalidEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.newDSN(t))
		tests := []struct {
			name  string
			entry Entry
		}{
			{name: "NoAction", entry: Entry{}},
			{name: "ActionWithSpaces", entry: Entry{Action: "job cancel"}},
			{name: "ActionWithNewline", entry: Entry{Action: "auth.login\nauth.logout"}},
			{name: "IntentWithoutRequestID", entry: Entry{Action: JobCancelIntent, Hub: "prod", JobID: "j"}},
			{name: "NegativeHubStatus", entry: Entry{Action: AuthLogin, HubStatus: -1}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Append(context.Background(), tc.entry); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnavailable) {
					t.Errorf("Append error = %v, want ErrInvalid only", err)
				}
			})
		}
		if got, _ := s.List(context.Background(), Filter{}); len(got) != 0 {
			t.Errorf("invalid entries were stored: %+v", got)
		}
	})
}

func TestAppend_DatabaseRefusesUpdateAndDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		s := openStore(t, dsn)
		mustAppend(t, s, cancelIntent("r1", "j1"))
		raw := rawDB(t, dsn)
		for _, stmt := range []string{
			`UPDATE audit_entries SET reason = 'nothing to see' WHERE seq = 1`,
			`DELETE FROM audit_entries WHERE seq = 1`,
		} {
			_, err := raw.Exec(stmt)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: error = %v, want the trigger's append-only refusal", stmt, err)
			}
		}
		if b.name == "postgres" {
			if _, err := raw.Exec(`TRUNCATE audit_entries`); err == nil {
				t.Error("TRUNCATE succeeded")
			}
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify after refused changes: %v", err)
		}
	})
}

// TestAppend_Concurrent is docs/security.md H49: 1,000 appends at once, none lost
// or duplicated, seq strictly increasing, the chain verifies. On PostgreSQL
// it also runs with two Store instances (two replicas) on one trail.
func TestAppend_Concurrent(t *testing.T) {
	const n = 1000
	run := func(t *testing.T, stores ...*Store) {
		t.Helper()
		var wg sync.WaitGroup
		got := make([]Entry, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = stores[i%len(stores)].Append(context.Background(),
					cancelIntent(fmt.Sprintf("req-%d", i), fmt.Sprintf("job-%d", i)))
			})
		}
		wg.Wait()
		bySeq := map[int64]string{}
		for i, e := range got {
			if errs[i] != nil {
				t.Fatalf("append %d: %v", i, errs[i])
			}
			if prev, dup := bySeq[e.Seq]; dup {
				t.Fatalf("seq %d given to both %s and %s", e.Seq, prev, e.RequestID)
			}
			bySeq[e.Seq] = e.RequestID
		}
		stored, err := stores[0].List(context.Background(), Filter{Limit: MaxListLimit})
		if err != nil {
			t.Fatal(err)
		}
		head, err := stores[0].VerifyHead(context.Background())
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if head.Seq != n {
			t.Fatalf("chain head seq = %d, want %d", head.Seq, n)
		}
		for _, e := range stored { // the newest page: what each Append said is what is stored
			if bySeq[e.Seq] != e.RequestID {
				t.Errorf("seq %d stored %s, Append reported %s", e.Seq, e.RequestID, bySeq[e.Seq])
			}
		}
		if !slices.IsSortedFunc(stored, func(a, b Entry) int { return int(b.Seq - a.Seq) }) {
			t.Error("List is not newest first")
		}
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		run(t, openStore(t, b.newDSN(t)))
	})
	t.Run("postgres/two-stores", func(t *testing.T) {
		dsn := newPostgresSchema(t)
		run(t, openStore(t, dsn), openStore(t, dsn))
	})
}

// TestAppend_EscapesAndLogsOneLine is docs/security.md F41: CR/LF, U+2028, bidi
// overrides and ANSI sequences cannot forge a line or reorder text.
func TestAppend_EscapesAndLogsOneLine(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		var logBuf bytes.Buffer
		s := openStore(t, b.newDSN(t), WithLogger(slog.New(slog.NewJSONHandler(&logBuf, nil))))
		e := cancelIntent("r1", "job\r\n{\"action\":\"auth.login\"}")
		e.Actor.Name = "Eve\u202eevil\u2028x\x1b[31mred\u200b"
		e.UserAgent = "bad\xffutf8\x00"
		stored := mustAppend(t, s, e)

		wantName := `Eve\u202eevil\u2028x\u001b[31mred\u200b`
		wantJob := `job\u000d\u000a{"action":"auth.login"}`
		if stored.Actor.Name != wantName || stored.JobID != wantJob || stored.UserAgent != `bad\xffutf8\u0000` {
			t.Errorf("stored name=%q job=%q ua=%q, want %q, %q, %q", stored.Actor.Name, stored.JobID, stored.UserAgent,
				wantName, wantJob, `bad\xffutf8\u0000`)
		}
		lines := strings.Split(strings.TrimSuffix(logBuf.String(), "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("log has %d lines, want 1:\n%s", len(lines), logBuf.String())
		}
		var logged struct {
			Msg   string         `json:"msg"`
			Audit map[string]any `json:"audit"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &logged); err != nil {
			t.Fatalf("log line is not JSON: %v\n%s", err, lines[0])
		}
		if logged.Audit["actor_name"] != wantName || logged.Audit["hash"] != stored.Hash {
			t.Errorf("logged audit = %v", logged.Audit)
		}
		if got := len(logged.Audit); got != len(exportKeys) {
			t.Errorf("logged %d keys, want the %d export keys", got, len(exportKeys))
		}
		var export bytes.Buffer
		if err := s.Export(context.Background(), &export, "jsonl", time.Time{}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(export.String(), "\n"); got != 1 {
			t.Errorf("jsonl export has %d lines, want 1", got)
		}
		if err := s.Verify(context.Background()); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestSanitize(t *testing.T) {
	long := strings.Repeat("a", 600)
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{name: "Plain", in: "Olive Operator", limit: 1024, want: "Olive Operator"},
		{name: "Unicode", in: "Élodie 山田", limit: 1024, want: "Élodie 山田"},
		{name: "CRLF", in: "a\r\nb", limit: 1024, want: `a\u000d\u000ab`},
		{name: "Tab", in: "a\tb", limit: 1024, want: `a\u0009b`},
		{name: "ANSI", in: "\x1b[2J", limit: 1024, want: `\u001b[2J`},
		{name: "C1", in: "a\u0085b", limit: 1024, want: `a\u0085b`},
		{name: "Bidi", in: "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069", limit: 1024,
			want: `\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069`},
		{name: "ZeroWidth", in: "\u200b\u200c\u200d\u200e\u200f\ufeff", limit: 1024, want: `\u200b\u200c\u200d\u200e\u200f\ufeff`},
		{name: "LineSeparators", in: "\u2028\u2029", limit: 1024, want: `\u2028\u2029`},
		{name: "InvalidUTF8", in: "a\xc3(b", limit: 1024, want: `a\xc3(b`},
		{name: "Truncated", in: long, limit: 500, want: strings.Repeat("a", 500-len([]rune(truncatedMarker))) + truncatedMarker},
		{name: "TruncatedNeverSplitsAnEscape", in: "ab\ncdefghijklmnop", limit: 19, want: "ab" + truncatedMarker},
		{name: "ExactlyAtLimit", in: strings.Repeat("b", 500), limit: 500, want: strings.Repeat("b", 500)},
		{name: "JWT", in: "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl here", limit: 1024, want: "token [redacted] here"},
		{name: "Bearer", in: "Authorization: Bearer abcdefghijklmnop", limit: 1024, want: "Authorization: [redacted]"},
		{name: "SASToken", in: "SharedAccessSignature sr=h&sig=x&se=1", limit: 1024, want: "[redacted]"},
		{name: "ConnectionString", in: "HostName=h;SharedAccessKeyName=o;SharedAccessKey=c2VjcmV0a2V5;", limit: 1024,
			want: "HostName=h;SharedAccessKeyName=o;[redacted];"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := sanitize(tc.in, tc.limit); got != tc.want {
				t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAppend_CapsFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.newDSN(t))
		e := cancelIntent("r1", strings.Repeat("j", 1<<20)) // a 1 MB job id (docs/security.md F38)
		e.Reason = strings.Repeat("r", 2000)
		stored := mustAppend(t, s, e)
		if got := len([]rune(stored.JobID)); got != maxFieldChars || !strings.HasSuffix(stored.JobID, truncatedMarker) {
			t.Errorf("job id kept %d characters, want %d ending with the marker", got, maxFieldChars)
		}
		if got := len([]rune(stored.Reason)); got != maxReasonChars {
			t.Errorf("reason kept %d characters, want %d", got, maxReasonChars)
		}
	})
}
