package audit

import (
	"bytes"
	"context"
	"encoding/csv"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNeutralizeCSVCell(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"device-1", "device-1"},
		{"2026-03-04T05:06:07.891234Z", "2026-03-04T05:06:07.891234Z"},
		{"Olive Operator", "Olive Operator"},
		{"a, b", "a, b"}, // a comma before plain text is harmless
		// OWASP's leading characters.
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		// Skipped before the first character is looked at.
		{" =1+1", "' =1+1"},
		{"\u00a0\u3000=1+1", "'\u00a0\u3000=1+1"},
		{`"=1+1"`, `'"=1+1"`},
		{"\x00=1+1", "'\x00=1+1"},
		{"\u200b@SUM(1)", "'\u200b@SUM(1)"},
		{"\xff=1", "'\xff=1"},
		// Full-width and small forms.
		{"＝1+1", "'＝1+1"},
		{"＋1", "'＋1"},
		{"﹦1", "'﹦1"},
		{"＠SUM(1)", "'＠SUM(1)"},
		// A ";" starts a cell where ";" is the list separator.
		{"a;=1+1", "'a;'=1+1"},
		{"x;@SUM(1)", "'x;'@SUM(1)"},
		{"x; \"=1", "'x;' \"=1"},
		{"a;b", "'a;b"},
		{"a;", "'a;"},
		{";=1;=2", "';'=1;'=2"},
		// So does a comma, a tab or a line break, when a formula follows.
		{"a,=1+1", "a,'=1+1"},
		{"a, -1", "a,' -1"},
		{"a\t=1", "a\t'=1"},
		{"a\n=1", "a\n'=1"},
		{"a\r\n=1", "a\r'\n'=1"},
	} {
		if got := NeutralizeCSVCell(tc.in); got != tc.want {
			t.Errorf("NeutralizeCSVCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// No cell any spreadsheet separator can start is a formula, whatever the
// payload: split the written line the way a ";" locale does and look at
// every cell.
func TestCSVWriterNoFormulaInAnyLocale(t *testing.T) {
	payloads := []string{"a;=1+1", "x;@SUM(1)", "b; =HYPERLINK(\"http://evil\")", "c;\"+1", "d;＝1",
		"e,=1", "=1", " -1", "f;\x00@x", "g;;=1", "h;'=1"}
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	for i, p := range payloads {
		e := Entry{Seq: int64(i + 1), Time: time.Unix(0, 0), Action: AuthLoginFailed, Result: p, Reason: p,
			Actor: Actor{Name: p, Email: p, Roles: []string{p}}, UserAgent: p}
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		for _, sep := range []string{",", ";", "\t"} {
			for _, cell := range strings.Split(line, sep) {
				if startsFormula(strings.TrimLeft(cell, `"`)) && !strings.HasPrefix(cell, "'") {
					t.Errorf("split by %q, cell %q of line %q is a formula", sep, cell, line)
				}
			}
		}
	}
}

func TestCSVWriterRendering(t *testing.T) {
	var buf bytes.Buffer
	w := NewCSVWriter(&buf)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.FixedZone("CET", 3600))
	for _, e := range []Entry{
		{Seq: 1, Time: at, Action: JobCancelIntent, Result: "requested",
			Actor: Actor{Subject: "u-1", Roles: []string{"operator", "viewer"}}, Hub: "prod", JobID: "job-1"},
		{Seq: 2, Time: at.Add(time.Second), Action: JobCancelRefused, HubStatus: 404, HubErrorCode: "JobNotFound"},
	} {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteNote("export incomplete: the audit trail became unavailable"); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || !slices.Equal(rows[0], exportKeys) {
		t.Fatalf("rows = %q, want the export keys then 3 rows", rows)
	}
	col := func(row int, k string) string { return rows[row][slices.Index(exportKeys, k)] }
	for _, c := range []struct {
		row       int
		key, want string
	}{
		{1, "seq", "1"},
		{1, "time", "2026-03-04T04:06:07.891234Z"},
		{1, "actor_roles", "operator viewer"},
		{1, "hub_status", ""}, // no hub answer: empty, not 0
		{2, "hub_status", "404"},
		{2, "actor_roles", ""},
		{3, "seq", ""},
		{3, "result", "export incomplete: the audit trail became unavailable"},
	} {
		if got := col(c.row, c.key); got != c.want {
			t.Errorf("row %d %s = %q, want %q", c.row, c.key, got, c.want)
		}
	}
}

func TestCSVWriterEmptyExportIsAHeader(t *testing.T) {
	var buf bytes.Buffer
	if err := NewCSVWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), strings.Join(exportKeys, ",")+"\n"; got != want {
		t.Errorf("empty export = %q, want %q", got, want)
	}
}

// The CLI's export and a CSVWriter fed from List (oldest first, paged by
// AfterSeq), as GET /audit.csv does, produce the same bytes.
func TestExportCSVEqualsPagedCSVWriter(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		clock := newFakeClock()
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		seedTrail(t, s, clock)
		mustAppend(t, s, Entry{Action: AuthLoginFailed, Result: "a;=1+1", HubStatus: 401,
			Actor: Actor{Name: "=HYPERLINK(\"http://evil\")", Roles: []string{"x;@SUM(1)"}}})

		var cli bytes.Buffer
		if err := s.Export(context.Background(), &cli, "csv", time.Time{}); err != nil {
			t.Fatal(err)
		}
		var web bytes.Buffer
		w := NewCSVWriter(&web)
		f := Filter{OldestFirst: true, Limit: 4}
		for {
			page, err := s.List(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				w.Write(e)
			}
			if len(page) < f.Limit {
				break
			}
			f.AfterSeq = page[len(page)-1].Seq
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if cli.String() != web.String() {
			t.Errorf("CLI export:\n%s\npaged writer:\n%s", cli.String(), web.String())
		}
		if n := strings.Count(cli.String(), "\n"); n != 10 {
			t.Errorf("%d lines, want a header and 9 entries", n)
		}
	})
}
