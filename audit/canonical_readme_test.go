package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeCanonical builds canonical(entry) exactly as audit/README.md
// ("Canonical encoding") describes it, by hand, without the package's record
// type or encoding/json: the export keys in order without "hash"; seq and
// hub_status as numbers; actor_roles as an array of strings; everything else
// a string; no spaces; strings as UTF-8 where the only escapes are \" and
// \\; time as RFC 3339 UTC with Z and up to 6 fractional digits, trailing
// zeros dropped. An outside verifier following the README must get the
// same bytes, so this test fails when code and README drift apart.
func readmeCanonical(e Entry) string {
	str := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	t := e.Time.UTC()
	ts := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		ts += "." + strings.TrimRight(strconv.Itoa(1_000_000 + us)[1:], "0")
	}
	ts += "Z"
	roles := make([]string, len(e.Actor.Roles))
	for i, r := range e.Actor.Roles {
		roles[i] = str(r)
	}
	fields := []string{
		`"seq":` + strconv.FormatInt(e.Seq, 10),
		`"time":` + str(ts),
		`"action":` + str(string(e.Action)),
		`"result":` + str(e.Result),
		`"actor_iss":` + str(e.Actor.Issuer),
		`"actor_sub":` + str(e.Actor.Subject),
		`"actor_name":` + str(e.Actor.Name),
		`"actor_email":` + str(e.Actor.Email),
		`"actor_roles":[` + strings.Join(roles, ",") + `]`,
		`"client_ip":` + str(e.ClientIP),
		`"user_agent":` + str(e.UserAgent),
		`"request_id":` + str(e.RequestID),
		`"hub":` + str(e.Hub),
		`"job_id":` + str(e.JobID),
		`"reason":` + str(e.Reason),
		`"hub_status":` + strconv.Itoa(e.HubStatus),
		`"hub_error_code":` + str(e.HubErrorCode),
		`"hub_tracking_id":` + str(e.HubTrackingID),
		`"prev_hash":` + str(e.PrevHash),
	}
	return "{" + strings.Join(fields, ",") + "}"
}

func TestReadmeCanonicalEncodingRecomputesTheChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clock := newFakeClock() // …07.891234567: stored as 891234 µs
		s := openStore(t, b.newDSN(t), WithClock(clock.Now))
		tricky := cancelIntent(`r-"1"`, "job-1")
		tricky.Actor.Name = "Zoë \"Z\" O'Brien <admin> & co \\ 🚀"
		tricky.Actor.Roles = []string{"operator", `a\b`}
		tricky.Reason = "line one\r\nline two \u202e evil \u2028 sep"
		tricky.UserAgent = "Mozilla/5.0 (X11) <script>&amp;"
		entries := []Entry{
			tricky,
			{Action: JobCancelRefused, RequestID: `r-"1"`, Hub: "prod", JobID: "job-1",
				HubStatus: 405, HubErrorCode: "OperationNotAllowedInCurrentState", HubTrackingID: "abc-G:2",
				Time: time.Date(2026, 3, 4, 5, 6, 8, 500_000_000, time.UTC)}, // .5: trailing zeros dropped
			{Action: AuthLogin, Time: time.Date(2026, 3, 4, 5, 6, 9, 0, time.UTC)}, // whole second: no fraction, no roles
		}
		prev := strings.Repeat("0", 64)
		var stored []Entry
		for i, e := range entries {
			got := mustAppend(t, s, e)
			stored = append(stored, got)
			if got.Seq != int64(i+1) || got.PrevHash != prev {
				t.Fatalf("entry %d: seq %d prev_hash %s, want %d and %s", i, got.Seq, got.PrevHash, i+1, prev)
			}
			canonical := readmeCanonical(got)
			sum := sha256.Sum256([]byte(canonical + prev))
			if want := hex.EncodeToString(sum[:]); got.Hash != want {
				t.Fatalf("entry %d: hash %s, but SHA-256(README canonical ‖ prev_hash) = %s\ncanonical: %s", i, got.Hash, want, canonical)
			}
			prev = got.Hash
		}
		if strings.ContainsAny(stored[0].Reason, "\r\n\u202e\u2028") {
			t.Errorf("reason stored with raw control or bidi characters: %q", stored[0].Reason)
		}
		if tm := readmeCanonical(stored[2]); !strings.Contains(tm, `"time":"2026-03-04T05:06:09Z"`) || !strings.Contains(tm, `"actor_roles":[]`) {
			t.Errorf("canonical of a whole-second entry without roles: %s", tm)
		}

		// README: a JSON-lines export line is canonical(entry) with ,"hash":"…" before the brace.
		var out bytes.Buffer
		if err := s.Export(ctx, &out, "jsonl", time.Time{}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if len(lines) != len(stored) {
			t.Fatalf("export has %d lines, want %d", len(lines), len(stored))
		}
		for i, e := range stored {
			c := readmeCanonical(e)
			if want := c[:len(c)-1] + `,"hash":"` + e.Hash + `"}`; lines[i] != want {
				t.Errorf("export line %d:\n got %s\nwant %s", i+1, lines[i], want)
			}
		}
	})
}
