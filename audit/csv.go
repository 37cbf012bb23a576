package audit

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// CSVWriter streams entries as CSV: a header row of the export keys, then
// one row per entry, with one rendering wherever the trail is exported (the
// CLI's `audit export --format csv` and GET /audit.csv): seq as a decimal,
// time RFC 3339 in UTC with up to 6 fractional digits, actor_roles joined by
// spaces, hub_status empty when there was no hub answer, and every cell
// passed through NeutralizeCSVCell. Rows are buffered; call Flush.
type CSVWriter struct {
	w *csv.Writer
	// header is written on the first Write or Flush, so a constructor
	// never does I/O and an empty export is still a header row.
	headerDone bool
}

// NewCSVWriter returns a CSVWriter on w.
func NewCSVWriter(w io.Writer) *CSVWriter { return &CSVWriter{w: csv.NewWriter(w)} }

// Write adds one entry's row.
func (c *CSVWriter) Write(e Entry) error {
	c.header()
	return c.w.Write(csvRow(recordOf(e)))
}

// WriteNote adds a row that is not an entry: note in the result column, the
// other cells empty (for instance "export incomplete: …" when the store
// fails half-way through a download whose header is already sent).
func (c *CSVWriter) WriteNote(note string) error {
	c.header()
	row := make([]string, len(exportKeys))
	row[indexOfKey("result")] = NeutralizeCSVCell(note)
	return c.w.Write(row)
}

// Flush writes any buffered rows to the underlying writer.
func (c *CSVWriter) Flush() error {
	c.header()
	c.w.Flush()
	return c.w.Error()
}

func (c *CSVWriter) header() {
	if !c.headerDone {
		c.headerDone = true
		c.w.Write(exportKeys) // errors surface at Flush (csv.Writer keeps them)
	}
}

func indexOfKey(k string) int {
	for i, key := range exportKeys {
		if key == k {
			return i
		}
	}
	panic("audit: unknown export key " + k)
}

func csvRow(r record) []string {
	status := ""
	if r.HubStatus != 0 {
		status = strconv.Itoa(r.HubStatus)
	}
	cells := []string{
		strconv.FormatInt(r.Seq, 10), r.Time, r.Action, r.Result,
		r.ActorIss, r.ActorSub, r.ActorName, r.ActorEmail, strings.Join(r.ActorRoles, " "),
		r.ClientIP, r.UserAgent, r.RequestID, r.Hub, r.JobID, r.Reason,
		status, r.HubErrorCode, r.HubTrackingID, r.PrevHash, r.Hash,
	}
	for i, c := range cells {
		cells[i] = NeutralizeCSVCell(c)
	}
	return cells
}

// JSONLinesWriter streams entries as JSON lines: each line is the entry's
// canonical encoding with "hash" added (README "Canonical encoding"), the
// form to recompute the chain from. Lines are buffered; call Flush.
type JSONLinesWriter struct{ w *bufio.Writer }

// NewJSONLinesWriter returns a JSONLinesWriter on w.
func NewJSONLinesWriter(w io.Writer) *JSONLinesWriter {
	return &JSONLinesWriter{w: bufio.NewWriter(w)}
}

// Write adds one entry's line.
func (j *JSONLinesWriter) Write(e Entry) error {
	j.w.Write(recordOf(e).jsonLine())
	return j.w.WriteByte('\n') // a bufio.Writer error sticks: this reports any earlier one
}

// Flush writes any buffered lines to the underlying writer.
func (j *JSONLinesWriter) Flush() error { return j.w.Flush() }

// NeutralizeCSVCell makes a CSV cell safe to open in a spreadsheet in any
// locale (OWASP "CSV Injection"). A spreadsheet evaluates a cell whose text
// starts with = + - @ (or their full-width and small forms, which some IMEs
// and spreadsheets fold to ASCII), often after skipping spaces, quotes,
// control and invisible characters; and a spreadsheet whose list separator
// is ";" (French, German locales) splits a comma-separated file at every
// ";" whatever the quoting, so the text after a ";" inside a value starts a
// new cell. So:
//
//   - a value that starts with a formula character once those ignorable
//     characters are skipped, starts with TAB, CR or LF, or contains ";" at
//     all, gets a leading apostrophe (spreadsheets show it as text);
//   - inside a value, an apostrophe is inserted right after every ",", ";",
//     TAB, CR or LF that is followed (after ignorable characters) by a
//     formula character, so no cell any separator can start is a formula.
//
// The value otherwise stays as it was: "a;=1+1" becomes "'a;'=1+1". Audit
// values never hold TAB, CR or LF (they are escaped at append time), but the
// device export passes the hub's text through here too.
func NeutralizeCSVCell(v string) string {
	if v == "" {
		return v
	}
	prefix := startsFormula(v) || strings.ContainsRune(v, ';')
	if !prefix && !strings.ContainsAny(v, ",\t\r\n") {
		return v
	}
	var b strings.Builder
	if prefix {
		b.WriteByte('\'')
	}
	for i := 0; i < len(v); i++ {
		b.WriteByte(v[i])
		if isCellSeparator(v[i]) && startsFormula(v[i+1:]) {
			b.WriteByte('\'')
		}
	}
	return b.String()
}

// isCellSeparator reports whether some spreadsheet may start a new cell
// after c when it reads a CSV file.
func isCellSeparator(c byte) bool {
	return c == ',' || c == ';' || c == '\t' || c == '\r' || c == '\n'
}

// startsFormula reports whether a cell whose text is s could be read as a
// formula: its first character that is not ignorable is a formula
// character, or it starts with TAB, CR or LF (OWASP's list).
func startsFormula(s string) bool {
	if s != "" && (s[0] == '\t' || s[0] == '\r' || s[0] == '\n') {
		return true
	}
	for _, r := range s {
		switch {
		case isFormulaRune(r):
			return true
		case isIgnorableInCell(r):
			continue
		}
		return false
	}
	return false
}

// isFormulaRune: = + - @ and their full-width (U+FF1D, U+FF0B, U+FF0D,
// U+FF20) and small (U+FE66, U+FE62, U+FE63, U+FE6B) forms.
func isFormulaRune(r rune) bool {
	switch r {
	case '=', '+', '-', '@', '＝', '＋', '－', '＠', '﹦', '﹢', '﹣', '﹫':
		return true
	}
	return false
}

// isIgnorableInCell is what a spreadsheet or an import may skip before it
// looks at a cell's first character: white space of any kind, quotes,
// control characters (NUL included) and invisible format characters, and
// the bytes of invalid UTF-8.
func isIgnorableInCell(r rune) bool {
	return r == '"' || r == utf8.RuneError || unicode.IsSpace(r) ||
		unicode.In(r, unicode.Cc, unicode.Cf)
}
