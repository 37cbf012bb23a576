package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hubjobs/hubjobs/audit"
)

// auditFixture is a config file whose audit.database (set through the
// documented HUBJOBS_AUDIT_DATABASE override) is a SQLite trail of three
// cancel intents.
type auditFixture struct {
	config, dbPath string
	env            env
}

func newAuditFixture(t *testing.T) auditFixture {
	t.Helper()
	dir := t.TempDir()
	f := auditFixture{config: filepath.Join(dir, "hubjobs.yaml"), dbPath: filepath.Join(dir, "audit.db")}
	f.env = env{"HUBJOBS_AUDIT_DATABASE": "sqlite://" + f.dbPath}
	if err := os.WriteFile(f.config, []byte(minimalConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := audit.Open(context.Background(), "sqlite://"+f.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		_, err := store.Append(context.Background(), audit.Entry{
			Action: audit.JobCancelIntent, RequestID: fmt.Sprintf("req-%d", i), Hub: "prod",
			JobID: fmt.Sprintf("job-%d", i), Reason: "firmware 1.2.3 bricks devices",
			Actor: audit.Actor{Subject: "u-1", Name: "=cmd|' /C calc'!A0", Roles: []string{"operator"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Close(); err != nil { // the last close checkpoints the WAL into the file
		t.Fatal(err)
	}
	return f
}

// runCLI runs hubjobs with args and returns its exit code, stdout and stderr.
func (f auditFixture) runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, f.env.get, &stdout, &stderr)
	return exitCode(err, &stderr), stdout.String(), stderr.String()
}

func TestAuditVerify(t *testing.T) {
	tests := []struct {
		name      string
		tamper    func(t *testing.T, dbPath string)
		wantCode  int
		wantFirst string // first line of stdout (exit 0) or stderr
	}{
		{name: "Intact", wantCode: 0, wantFirst: "audit verify: ok, 3 entries"},
		{
			// An intruder with a SQLite shell: drop the trigger, edit a row.
			name: "RowEditedThroughSQL",
			tamper: func(t *testing.T, dbPath string) {
				db := openRawSQLite(t, dbPath)
				for _, stmt := range []string{
					`DROP TRIGGER audit_entries_no_update`,
					`UPDATE audit_entries SET actor_sub = 'u-2' WHERE seq = 2`,
				} {
					if _, err := db.Exec(stmt); err != nil {
						t.Fatalf("%s: %v", stmt, err)
					}
				}
			},
			wantCode: 1, wantFirst: "audit verify: broken at seq 2: hash does not match the entry's content (entry edited)",
		},
		{
			name: "RowDeletedThroughSQL",
			tamper: func(t *testing.T, dbPath string) {
				db := openRawSQLite(t, dbPath)
				for _, stmt := range []string{`DROP TRIGGER audit_entries_no_delete`, `DELETE FROM audit_entries WHERE seq = 2`} {
					if _, err := db.Exec(stmt); err != nil {
						t.Fatalf("%s: %v", stmt, err)
					}
				}
			},
			wantCode: 1, wantFirst: "audit verify: broken at seq 2: entry missing (the next stored entry is seq 3)",
		},
		{
			// No database engine at all: bytes changed in the file.
			name: "FileBytesEdited",
			tamper: func(t *testing.T, dbPath string) {
				data, err := os.ReadFile(dbPath)
				if err != nil {
					t.Fatal(err)
				}
				// reason is not indexed: its only copies are in the rows.
				edited := bytes.ReplaceAll(data, []byte("bricks devices"), []byte("breaks nothing"))
				if bytes.Equal(edited, data) {
					t.Fatal("the reason is not in the database file")
				}
				if err := os.WriteFile(dbPath, edited, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantCode: 1, wantFirst: "audit verify: broken at seq 1: hash does not match the entry's content (entry edited)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuditFixture(t)
			if tc.tamper != nil {
				tc.tamper(t, f.dbPath)
			}
			code, stdout, stderr := f.runCLI(t, "audit", "verify", "--config", f.config)
			out := stdout
			if tc.wantCode != 0 {
				out = stderr
			}
			if first, _, _ := strings.Cut(out, "\n"); code != tc.wantCode || first != tc.wantFirst {
				t.Errorf("exit %d, first line %q; want exit %d, %q\nstdout: %s\nstderr: %s",
					code, first, tc.wantCode, tc.wantFirst, stdout, stderr)
			}
		})
	}
}

func openRawSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAuditExport(t *testing.T) {
	f := newAuditFixture(t)
	t.Run("jsonl", func(t *testing.T) {
		code, stdout, stderr := f.runCLI(t, "audit", "export", "--config", f.config)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], `{"seq":1,"time":"`) || !strings.Contains(lines[2], `"job_id":"job-3"`) {
			t.Errorf("jsonl export:\n%s", stdout)
		}
	})
	t.Run("csv", func(t *testing.T) {
		code, stdout, stderr := f.runCLI(t, "audit", "export", "--config", f.config, "--format", "csv", "--since", "2000-01-01T00:00:00Z")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 4 || rows[0][0] != "seq" || rows[0][19] != "hash" {
			t.Fatalf("csv export: %v", rows)
		}
		if got, want := rows[1][6], `'=cmd|' /C calc'!A0`; got != want {
			t.Errorf("actor_name cell = %q, want the formula neutralised as %q", got, want)
		}
	})
	t.Run("since excludes older entries", func(t *testing.T) {
		code, stdout, _ := f.runCLI(t, "audit", "export", "--config", f.config, "--since", "2999-01-01T00:00:00Z")
		if code != 0 || stdout != "" {
			t.Errorf("exit %d, output %q; want 0 and nothing", code, stdout)
		}
	})
}

func TestAuditUsageErrors(t *testing.T) {
	f := newAuditFixture(t)
	missing := filepath.Join(t.TempDir(), "missing.db")
	tests := []struct {
		name     string
		args     []string
		env      env
		wantText string
	}{
		{name: "NoSubcommand", args: []string{"audit"}, wantText: "usage:"},
		{name: "UnknownSubcommand", args: []string{"audit", "repair"}, wantText: `unknown command "repair"`},
		{name: "NoSource", args: []string{"audit", "verify"}, wantText: "--config FILE or --database URL is required"},
		{
			name: "BothSources", args: []string{"audit", "export", "--config", f.config, "--database", "sqlite://" + f.dbPath},
			wantText: "give --config FILE or --database URL, not both",
		},
		{name: "DatabaseNotAURL", args: []string{"audit", "verify", "--database", f.dbPath}, wantText: "--database: audit: invalid input"},
		{name: "DatabaseFileMissing", args: []string{"audit", "export", "--database", "sqlite://" + missing}, wantText: "does not exist"},
		{name: "UnknownFlag", args: []string{"audit", "verify", "--fix"}, wantText: "not defined: -fix"},
		{name: "BadFormat", args: []string{"audit", "export", "--config", f.config, "--format", "xml"}, wantText: "want csv or jsonl"},
		{name: "BadSince", args: []string{"audit", "export", "--config", f.config, "--since", "yesterday"}, wantText: "RFC 3339"},
		{name: "ConfigFileMissing", args: []string{"audit", "verify", "--config", "/nonexistent.yaml"}, wantText: "config:"},
		{
			name: "DatabaseMissing", args: []string{"audit", "verify", "--config", f.config},
			env: env{"HUBJOBS_AUDIT_DATABASE": "sqlite://" + missing}, wantText: "does not exist",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := f
			if tc.env != nil {
				g.env = tc.env
			}
			code, _, stderr := g.runCLI(t, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.wantText) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.wantText)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("audit verify created the missing database")
	}
}

// An auditor on a bastion host has the database, not the portal's secrets:
// --database needs no config at all, and --config reads only
// audit.database, so a copy of the portal's config whose secrets are unset
// ${VARS} (and whose other keys this version may not even know) works.
func TestAuditWithoutThePortalsSecrets(t *testing.T) {
	f := newAuditFixture(t)
	portalConfig := filepath.Join(t.TempDir(), "portal.yaml")
	text := `public_url: ${PUBLIC_URL}
session: {keys: ["${HUBJOBS_SESSION_KEY}"]}
oidc: {issuer: "${ISSUER}", client_secret: "${HUBJOBS_OIDC_CLIENT_SECRET}"}
hubs: [{name: prod, connection_string: "${PROD_HUB_CS}"}]
notify: {webhooks: [{name: ops, url: "${HOOK_URL}", secret: "${HOOK_SECRET}", events: [rollout.halted]}]}
a_key_from_a_newer_version: true
audit:
  database: sqlite://${AUDIT_DB}
`
	if err := os.WriteFile(portalConfig, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  env
	}{
		{name: "DatabaseFlag", args: []string{"--database", "sqlite://" + f.dbPath}},
		{name: "DatabaseFlagIgnoresTheEnvironment", args: []string{"--database", "sqlite://" + f.dbPath}, env: env{"HUBJOBS_AUDIT_DATABASE": "mysql://elsewhere"}},
		{name: "ConfigWithUnsetSecrets", args: []string{"--config", portalConfig}, env: env{"AUDIT_DB": f.dbPath}},
		{name: "ConfigDatabaseOverridden", args: []string{"--config", portalConfig}, env: env{"HUBJOBS_AUDIT_DATABASE": "sqlite://" + f.dbPath}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := f
			g.env = tc.env
			code, stdout, stderr := g.runCLI(t, append([]string{"audit", "verify"}, tc.args...)...)
			if code != 0 || stdout != "audit verify: ok, 3 entries\nhead: seq 3 hash "+headHash(t, f.dbPath)+"\n" {
				t.Errorf("verify: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			code, stdout, stderr = g.runCLI(t, append([]string{"audit", "export", "--format", "jsonl"}, tc.args...)...)
			if code != 0 || strings.Count(stdout, "\n") != 3 {
				t.Errorf("export: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
	// The one key it reads must still be usable: exit 2 naming it.
	f.env = nil
	code, _, stderr := f.runCLI(t, "audit", "verify", "--config", portalConfig)
	if code != 2 || !strings.Contains(stderr, "config: audit.database: ${AUDIT_DB} is not set") {
		t.Errorf("unset audit.database variable: exit %d, stderr %q; want 2 naming audit.database", code, stderr)
	}
}

// headHash is the trail's head hash as the audit package computes it.
func headHash(t *testing.T, dbPath string) string {
	t.Helper()
	store, err := audit.Open(context.Background(), "sqlite://"+dbPath, audit.MustExist())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	head, err := store.VerifyHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return head.Hash
}
