package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hubjobs/hubjobs/internal/testkit"
)

// seedTrail appends a small varied trail, one second apart, and returns the
// clock's time of the first entry.
func seedTrail(t *testing.T, s *Store, clock *testkit.Clock) time.Time {
	t.Helper()
	start := clock.Now()
	olive := Actor{Subject: "u-olive", Name: "Olive Operator", Email: "olive@example.com", Roles: []string{"operator"}}
	adam := Actor{Subject: "u-adam", Name: "Adam Admin", Email: "adam@corp.example", Roles: []string{"admin"}}
	odd := Actor{Subject: "u-odd", Name: "100%_sure", Email: "odd@example.com"}
	for _, e := range []Entry{
		{Action: AuthLogin, Actor: olive}, // 1
		{Action: JobCancelIntent, Actor: olive, RequestID: "r1", Hub: "prod", JobID: "job-a"},    // 2
		{Action: JobCancelSucceeded, Actor: olive, RequestID: "r1", Hub: "prod", JobID: "job-a"}, // 3
		{Action: AuthLogin, Actor: adam}, // 4
		{Action: JobCancelIntent, Actor: adam, RequestID: "r2", Hub: "eu", JobID: "job-a"},  // 5
		{Action: JobCancelRefused, Actor: adam, RequestID: "r2", Hub: "eu", JobID: "job-a"}, // 6
		{Action: AuthzDenied, Actor: odd, Hub: "prod", JobID: "job-b"},                      // 7
		{Action: AuthLogout, Actor: olive},                                                  // 8
	} {
		mustAppend(t, s, e)
		clock.Advance(time.Second)
	}
	return start
}

func TestList_FiltersAndPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		start := seedTrail(t, s, clock)
		tests := []struct {
			name   string
			filter Filter
			want   []int64
		}{
			{name: "All", filter: Filter{}, want: []int64{8, 7, 6, 5, 4, 3, 2, 1}},
			{name: "UserSubjectExact", filter: Filter{User: "u-adam"}, want: []int64{6, 5, 4}},
			{name: "UserSubjectPrefixIsNotEnough", filter: Filter{User: "u-ad"}, want: []int64{}},
			{name: "UserNamePrefixAnyCase", filter: Filter{User: "olive op"}, want: []int64{8, 3, 2, 1}},
			{name: "UserEmailPrefix", filter: Filter{User: "adam@"}, want: []int64{6, 5, 4}},
			{name: "UserLikeCharsAreLiteral", filter: Filter{User: "100%_"}, want: []int64{7}},
			{name: "UserPercentMatchesNothingElse", filter: Filter{User: "%"}, want: []int64{}},
			{name: "Hub", filter: Filter{Hub: "prod"}, want: []int64{7, 3, 2}},
			{name: "HubAndJob", filter: Filter{Hub: "eu", JobID: "job-a"}, want: []int64{6, 5}},
			{name: "Job", filter: Filter{JobID: "job-a"}, want: []int64{6, 5, 3, 2}},
			{name: "Action", filter: Filter{Action: AuthLogin}, want: []int64{4, 1}},
			{name: "SinceInclusive", filter: Filter{Since: start.Add(6 * time.Second)}, want: []int64{8, 7}},
			{name: "UntilExclusive", filter: Filter{Until: start.Add(2 * time.Second)}, want: []int64{2, 1}},
			{name: "Range", filter: Filter{Since: start.Add(2 * time.Second), Until: start.Add(4 * time.Second)}, want: []int64{4, 3}},
			{name: "Limit", filter: Filter{Limit: 3}, want: []int64{8, 7, 6}},
			{name: "NextPage", filter: Filter{Limit: 3, BeforeSeq: 6}, want: []int64{5, 4, 3}},
			{name: "LastPage", filter: Filter{Limit: 3, BeforeSeq: 3}, want: []int64{2, 1}},
			{name: "PageWithFilter", filter: Filter{User: "olive", BeforeSeq: 3}, want: []int64{2, 1}},
			{name: "OldestFirst", filter: Filter{OldestFirst: true, Limit: 3}, want: []int64{1, 2, 3}},
			{name: "OldestFirstNextPage", filter: Filter{OldestFirst: true, Limit: 3, AfterSeq: 3}, want: []int64{4, 5, 6}},
			{name: "OldestFirstWithFilter", filter: Filter{OldestFirst: true, Hub: "prod", AfterSeq: 2}, want: []int64{3, 7}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.List(context.Background(), tc.filter)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(seqs(got), tc.want) {
					t.Errorf("List(%+v) = seqs %v, want %v", tc.filter, seqs(got), tc.want)
				}
			})
		}
	})
}

func TestList_LimitDefaultsAndCap(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.newDSN(t))
		for i := range MaxListLimit + 1 {
			mustAppend(t, s, Entry{Action: AuthLogin, RequestID: fmt.Sprint(i)})
		}
		for _, tc := range []struct{ limit, want int }{{0, DefaultListLimit}, {-1, DefaultListLimit}, {10_000, MaxListLimit}} {
			got, err := s.List(context.Background(), Filter{Limit: tc.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.want {
				t.Errorf("List(Limit: %d) returned %d entries, want %d", tc.limit, len(got), tc.want)
			}
		}
	})
}

// TestVerify_NamesTheTamperedEntry is docs/security.md H52: someone with database
// access drops the triggers and rewrites history; Verify names the entry.
func TestVerify_NamesTheTamperedEntry(t *testing.T) {
	tests := []struct {
		name       string
		tamper     string // SQL run after dropping the triggers
		forge      bool   // also recompute the edited entry's own hash
		wantSeq    int64
		wantReason string
	}{
		{name: "Edit", tamper: `UPDATE audit_entries SET reason = 'routine' WHERE seq = 3`, wantSeq: 3, wantReason: "entry edited"},
		{name: "EditRoles", tamper: `UPDATE audit_entries SET actor_roles = '["admin"]' WHERE seq = 2`, wantSeq: 2, wantReason: "entry edited"},
		{name: "EditTime", tamper: `UPDATE audit_entries SET time_us = time_us + 1 WHERE seq = 4`, wantSeq: 4, wantReason: "entry edited"},
		{name: "GarbleRoles", tamper: `UPDATE audit_entries SET actor_roles = 'admin' WHERE seq = 2`, wantSeq: 2, wantReason: "actor_roles"},
		{name: "EditAndRehash", tamper: `UPDATE audit_entries SET actor_sub = 'someone-else' WHERE seq = 3`, forge: true, wantSeq: 4, wantReason: "prev_hash does not match the hash of seq 3"},
		{name: "DeleteMiddle", tamper: `DELETE FROM audit_entries WHERE seq = 3`, wantSeq: 3, wantReason: "entry missing"},
		{name: "DeleteFirst", tamper: `DELETE FROM audit_entries WHERE seq = 1`, wantSeq: 1, wantReason: "entry missing"},
		{name: "Reorder", tamper: `UPDATE audit_entries SET seq = 100 WHERE seq = 3;
			UPDATE audit_entries SET seq = 3 WHERE seq = 4;
			UPDATE audit_entries SET seq = 4 WHERE seq = 100`, wantSeq: 3, wantReason: "prev_hash does not match the hash of seq 2"},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				dsn := b.newDSN(t)
				s := openStore(t, dsn, WithClock(newFakeClock().Now))
				for i := range 5 {
					mustAppend(t, s, cancelIntent(fmt.Sprintf("r%d", i), "job"))
				}
				raw := rawDB(t, dsn)
				mustExec(t, raw, b.dropTriggers)
				mustExec(t, raw, tc.tamper)
				if tc.forge {
					forgeHash(t, s, raw, 3)
				}
				err := s.Verify(context.Background())
				var broken *BrokenChainError
				if !errors.As(err, &broken) {
					t.Fatalf("Verify = %v, want a *BrokenChainError", err)
				}
				if broken.Seq != tc.wantSeq || !strings.Contains(broken.Reason, tc.wantReason) {
					t.Errorf("Verify = seq %d %q, want seq %d containing %q", broken.Seq, broken.Reason, tc.wantSeq, tc.wantReason)
				}
			})
		}
	})
}

// forgeHash recomputes seq's own hash after an edit, as a careful intruder
// who read README.md would.
func forgeHash(t *testing.T, s *Store, raw *sql.DB, seq int64) {
	t.Helper()
	got, err := s.List(context.Background(), Filter{BeforeSeq: seq + 1, Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("read seq %d: %v", seq, err)
	}
	mustExec(t, raw, `UPDATE audit_entries SET hash = $1 WHERE seq = $2`, recordOf(got[0]).chainHash(), seq)
}

func TestVerify_EmptyAndIntact(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.newDSN(t))
		head, err := s.VerifyHead(context.Background())
		if err != nil || head != (Head{}) {
			t.Fatalf("VerifyHead(empty) = %+v, %v; want zero head, nil", head, err)
		}
		var last Entry
		for i := range 3 {
			last = mustAppend(t, s, cancelIntent(fmt.Sprint(i), "j"))
		}
		head, err = s.VerifyHead(context.Background())
		if err != nil || head != (Head{Seq: 3, Hash: last.Hash}) {
			t.Errorf("VerifyHead = %+v, %v; want seq 3, hash %s", head, err, last.Hash)
		}
	})
}

func TestExport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		start := seedTrail(t, s, clock)
		formula := mustAppend(t, s, Entry{Action: AuthLoginFailed, Actor: Actor{Name: "=HYPERLINK(\"http://evil\")",
			Email: "+1@x", Subject: "-2", Issuer: "@SUM(A1)", Roles: []string{"a", "b"}}, HubStatus: 401})

		t.Run("jsonl", func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Export(context.Background(), &buf, "jsonl", time.Time{}); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 9 {
				t.Fatalf("%d lines, want 9", len(lines))
			}
			last := lines[8]
			if got := jsonKeys(t, last); !slices.Equal(got, exportKeys) {
				t.Errorf("keys = %v, want %v", got, exportKeys)
			}
			r := recordOf(formula)
			if want := string(r.jsonLine()); last != want {
				t.Errorf("line = %s, want %s", last, want)
			}
			if got, want := strings.TrimSuffix(last, `,"hash":"`+formula.Hash+`"}`)+"}", string(r.canonical()); got != want {
				t.Errorf("a line minus its hash is not the canonical encoding:\n%s\n%s", got, want)
			}
		})
		t.Run("csv", func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Export(context.Background(), &buf, "csv", start.Add(6*time.Second)); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 4 || !slices.Equal(rows[0], exportKeys) {
				t.Fatalf("rows = %v, want the header and seqs 7–9", rows)
			}
			if got := []string{rows[1][0], rows[2][0], rows[3][0]}; !slices.Equal(got, []string{"7", "8", "9"}) {
				t.Errorf("seqs = %v, want 7 8 9 (since is inclusive)", got)
			}
			row := rows[3]
			col := func(k string) string { return row[slices.Index(exportKeys, k)] }
			for k, want := range map[string]string{
				"actor_name": `'=HYPERLINK("http://evil")`, "actor_email": "'+1@x", "actor_sub": "'-2",
				"actor_iss": "'@SUM(A1)", "actor_roles": "a b", "hub_status": "401", "hash": formula.Hash,
			} {
				if got := col(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
		t.Run("ErrFormat", func(t *testing.T) {
			if err := s.Export(context.Background(), &bytes.Buffer{}, "xml", time.Time{}); !errors.Is(err, ErrInvalid) {
				t.Errorf("Export(xml) = %v, want ErrInvalid", err)
			}
		})
	})
}

// jsonKeys returns the top-level keys of a JSON object in document order.
func jsonKeys(t *testing.T, line string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}
