package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// exportKeys are the export columns (docs/contract.md "Audit entry"), in order. The
// canonical encoding, the JSON lines export, the CSV header and the log line
// all follow this order.
var exportKeys = []string{
	"seq", "time", "action", "result",
	"actor_iss", "actor_sub", "actor_name", "actor_email", "actor_roles",
	"client_ip", "user_agent", "request_id", "hub", "job_id", "reason",
	"hub_status", "hub_error_code", "hub_tracking_id", "prev_hash", "hash",
}

// genesisHash is the prev_hash of seq 1.
var genesisHash = strings.Repeat("0", 64)

// record is an entry in its exported shape. Its field order IS the canonical
// key order; encoding/json keeps struct order.
type record struct {
	Seq           int64    `json:"seq"`
	Time          string   `json:"time"`
	Action        string   `json:"action"`
	Result        string   `json:"result"`
	ActorIss      string   `json:"actor_iss"`
	ActorSub      string   `json:"actor_sub"`
	ActorName     string   `json:"actor_name"`
	ActorEmail    string   `json:"actor_email"`
	ActorRoles    []string `json:"actor_roles"`
	ClientIP      string   `json:"client_ip"`
	UserAgent     string   `json:"user_agent"`
	RequestID     string   `json:"request_id"`
	Hub           string   `json:"hub"`
	JobID         string   `json:"job_id"`
	Reason        string   `json:"reason"`
	HubStatus     int      `json:"hub_status"`
	HubErrorCode  string   `json:"hub_error_code"`
	HubTrackingID string   `json:"hub_tracking_id"`
	PrevHash      string   `json:"prev_hash"`
	Hash          string   `json:"hash,omitempty"` // empty in the canonical form
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func recordOf(e Entry) record {
	roles := e.Actor.Roles
	if roles == nil {
		roles = []string{}
	}
	return record{
		Seq: e.Seq, Time: formatTime(e.Time), Action: string(e.Action), Result: e.Result,
		ActorIss: e.Actor.Issuer, ActorSub: e.Actor.Subject, ActorName: e.Actor.Name,
		ActorEmail: e.Actor.Email, ActorRoles: roles,
		ClientIP: e.ClientIP, UserAgent: e.UserAgent, RequestID: e.RequestID,
		Hub: e.Hub, JobID: e.JobID, Reason: e.Reason,
		HubStatus: e.HubStatus, HubErrorCode: e.HubErrorCode, HubTrackingID: e.HubTrackingID,
		PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

// jsonLine encodes r compactly, without HTML escaping, without the trailing
// newline. Stored strings hold no control, line-separator or invalid UTF-8
// (sanitize), so the only escapes left are \" and \\, and any standard JSON
// encoder given the same values produces the same bytes.
func (r record) jsonLine() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		// A struct of strings, ints and a string slice always encodes.
		panic(fmt.Sprintf("audit: encode record: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// canonical is the byte string the hash covers: the JSON line without "hash".
func (r record) canonical() []byte {
	r.Hash = ""
	return r.jsonLine()
}

// chainHash is hex(SHA-256(canonical || prev_hash)), prev_hash being the 64
// lowercase hex characters of the previous entry's hash (genesisHash for
// seq 1).
func (r record) chainHash() string {
	h := sha256.New()
	h.Write(r.canonical())
	h.Write([]byte(r.PrevHash))
	return hex.EncodeToString(h.Sum(nil))
}

// Field caps, in characters (runes) after escaping; a capped value ends with
// truncatedMarker. Reason is what an operator typed in the cancel dialog;
// the rest are identifiers, addresses and a user agent.
const (
	maxFieldChars   = 1024
	maxReasonChars  = 500
	maxRoles        = 64
	truncatedMarker = "…[truncated]"
	// maxScanBytes bounds the work on hostile input (a 1 MB job id): only
	// this much is scanned for secrets and escaped. It is far above what a
	// capped field can show, unless redactions shrink 64 KB of secrets.
	maxScanBytes = 64 << 10
)

// secretPatterns are credentials that must never reach the trail, even when
// someone pastes one into a reason or an IdP puts one in a display name.
// The Entry has no field meant for them; this is defence in depth.
var secretPatterns = regexp.MustCompile(
	`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*` + // JWT (ID/access token)
		`|(?i:bearer\s+[A-Za-z0-9._~+/=-]{8,})` + // Authorization header value
		`|(?i:SharedAccessSignature\s+\S+)` + // IoT Hub SAS token
		`|(?i:SharedAccessKey=[^;\s]+)` + // connection-string key
		`|(?i:\bsig=[A-Za-z0-9%+/=]{16,})`) // SAS signature parameter

const redacted = "[redacted]"

// sanitize makes a value safe to store, hash, log and render: credentials are
// redacted; control characters (C0, DEL, C1), format characters (bidi
// overrides and isolates U+202A–U+202E, U+2066–U+2069, zero-width
// U+200B–U+200F, U+2060, U+FEFF …) and the line/paragraph separators
// U+2028/U+2029 become the six-character text \uXXXX; each byte of invalid
// UTF-8 becomes \xNN; the result is capped at limit characters.
//
// A backslash is kept as is, so a literal "\u202e" typed by a user reads the
// same as an escaped U+202E: the goal is that no value can forge a log line
// or reorder text on screen, not a reversible encoding.
func sanitize(s string, limit int) string {
	if len(s) > maxScanBytes {
		s = s[:maxScanBytes] // a cut rune becomes \xNN; nothing past here could fit anyway
	}
	s = secretPatterns.ReplaceAllString(s, redacted)
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || mustEscape(r) {
			clean = false
			break
		}
	}
	if clean && utf8.RuneCountInString(s) <= limit {
		return s
	}
	var b strings.Builder
	room := limit - utf8.RuneCountInString(truncatedMarker)
	cut := -1 // b.Len() where the marker goes if the value turns out too long
	count := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case mustEscape(r):
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		n := utf8.RuneCountInString(piece)
		if cut < 0 && count+n > room {
			cut = b.Len() // never cut an escape in half
		}
		if count += n; count > limit {
			return b.String()[:cut] + truncatedMarker
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}

func mustEscape(r rune) bool {
	return unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp)
}

// sanitizeEntry applies sanitize to every string of e.
func sanitizeEntry(e Entry) Entry {
	f := func(s string) string { return sanitize(s, maxFieldChars) }
	e.Result = f(e.Result)
	e.Actor.Issuer = f(e.Actor.Issuer)
	e.Actor.Subject = f(e.Actor.Subject)
	e.Actor.Name = f(e.Actor.Name)
	e.Actor.Email = f(e.Actor.Email)
	roles := e.Actor.Roles
	if len(roles) > maxRoles {
		roles = roles[:maxRoles]
	}
	e.Actor.Roles = make([]string, len(roles))
	for i, r := range roles {
		e.Actor.Roles[i] = f(r)
	}
	e.ClientIP = f(e.ClientIP)
	e.UserAgent = f(e.UserAgent)
	e.RequestID = f(e.RequestID)
	e.Hub = f(e.Hub)
	e.JobID = f(e.JobID)
	e.Reason = sanitize(e.Reason, maxReasonChars)
	e.HubErrorCode = f(e.HubErrorCode)
	e.HubTrackingID = f(e.HubTrackingID)
	return e
}

// actionPattern keeps action names to the dotted lower-case style of the
// constants above, so a custom action cannot smuggle text into filters.
var actionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

func validate(e Entry) error {
	if !actionPattern.MatchString(string(e.Action)) || len(e.Action) > 64 {
		return fmt.Errorf("%w: action %q is not a dotted lower-case name", ErrInvalid, e.Action)
	}
	if strings.HasPrefix(string(e.Action), "job.cancel.") && e.RequestID == "" {
		return fmt.Errorf("%w: %s needs a request id to pair intent and outcome", ErrInvalid, e.Action)
	}
	if e.HubStatus < 0 || e.HubStatus > 999 {
		return fmt.Errorf("%w: hub status %d is not an HTTP status", ErrInvalid, e.HubStatus)
	}
	return nil
}
