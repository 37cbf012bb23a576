package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Sentinels matched with errors.Is against *Error, *BudgetError and
// transport failures. Handlers map them to a status and a message in one
// place; they never need to look at codes.
var (
	ErrNotFound          = errors.New("hub: job not found")                    // 404 JobNotFound, or 200 with status unknown on GET
	ErrNotCancellable    = errors.New("hub: job not cancellable in its state") // OperationNotAllowedInCurrentState
	ErrThrottled         = errors.New("hub: throttled")                        // 429 (any Throttling* code), or the local budget
	ErrUnauthorized      = errors.New("hub: unauthorized")                     // 401, and 403 that is not a quota
	ErrConflict          = errors.New("hub: conflict or quota")                // 409, 412, 403 quota codes
	ErrUnavailable       = errors.New("hub: unreachable or failing")           // transport errors, 5xx after retries
	ErrTimeout           = errors.New("hub: timed out")                        // attempt timeout / call budget exhausted
	ErrOutcomeUnknown    = errors.New("hub: outcome unknown")                  // write sent, no definite answer; reconciled by GET
	ErrNotAttempted      = errors.New("hub: not attempted")                    // nothing sent: the breaker is open (*BreakerError)
	ErrInvalidJobID      = errors.New("hub: invalid job id")                   // rejected before any request
	ErrInvalidConnString = errors.New("hub: invalid connection string")
	ErrInvalidRequest    = errors.New("hub: invalid request")         // other bad input, rejected before any request
	ErrBadResponse       = errors.New("hub: unreadable response")     // 2xx whose body is not what the wire contract says
	ErrResponseTooLarge  = errors.New("hub: response body too large") // body over Config.MaxResponseBytes
	ErrJobExists         = errors.New("hub: job already exists")      // 409 JobAlreadyExists on create; CreateJob returns the existing job with it
	ErrQueryTooLong      = errors.New("hub: query too long")          // over MaxQueryLength: refused locally, or by the hub as 412 or 400
	ErrQueryRefused      = errors.New("hub: query refused")           // a 400 to a device query (invalid), or ErrQueryTooLong
)

// Error is the hub's answer to a failed call, parsed from either body format
// and the iothub-errorcode header.
type Error struct {
	Op          string // "GetJob", "CancelJob", …
	StatusCode  int
	Code        string // code name, e.g. "JobNotFound"
	NumericCode int    // e.g. 404002 when the hub sent one
	Message     string // human text after "ErrorCode:Name;"
	TrackingID  string
	RequestID   string        // x-ms-request-id
	RetryAfter  time.Duration // from Retry-After, 0 when absent
}

// Error reads in plain words: what failed, what the hub said, and the ids
// an operator quotes to Azure support.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("IoT Hub ")
	if e.Op != "" {
		b.WriteString(e.Op + " ")
	}
	b.WriteString("failed: HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
		if e.NumericCode != 0 {
			fmt.Fprintf(&b, " (%d)", e.NumericCode)
		}
	} else if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	var ids []string
	if e.TrackingID != "" {
		ids = append(ids, "tracking ID "+e.TrackingID)
	}
	if e.RequestID != "" {
		ids = append(ids, "request ID "+e.RequestID)
	}
	if e.RetryAfter > 0 {
		ids = append(ids, "retry after "+e.RetryAfter.String())
	}
	if len(ids) > 0 {
		b.WriteString(" [" + strings.Join(ids, ", ") + "]")
	}
	return b.String()
}

// Is maps the hub's answer onto the sentinels. Codes win over statuses where
// the reference shows them disagreeing: OperationNotAllowedInCurrentState
// has no verified HTTP status, so it is "not cancellable" whatever the
// status; a 403 is a quota only when its code says so (IoT Hub reports RBAC
// denials as 401, so any other 403 is treated as unauthorized).
func (e *Error) Is(target error) bool {
	code := e.Code
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound || code == "JobNotFound"
	case ErrNotCancellable:
		return code == "OperationNotAllowedInCurrentState"
	case ErrThrottled:
		return e.StatusCode == http.StatusTooManyRequests || strings.HasPrefix(code, "Throttl")
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized ||
			(e.StatusCode == http.StatusForbidden && !isQuotaCode(code))
	case ErrJobExists:
		return code == "JobAlreadyExists"
	case ErrQueryTooLong:
		return e.queryTooLong()
	case ErrQueryRefused:
		return e.queryTooLong() || e.StatusCode == http.StatusBadRequest && queryOps[e.Op]
	case ErrConflict:
		return e.StatusCode == http.StatusConflict || e.StatusCode == http.StatusPreconditionFailed ||
			(e.StatusCode == http.StatusForbidden && isQuotaCode(code))
	case ErrUnavailable:
		// 3xx: redirects are never followed, so the hub is not reachable
		// at the configured address.
		return e.StatusCode >= 500 && e.StatusCode != http.StatusGatewayTimeout ||
			e.StatusCode >= 300 && e.StatusCode < 400
	case ErrTimeout:
		return e.StatusCode == http.StatusRequestTimeout || e.StatusCode == http.StatusGatewayTimeout
	}
	return false
}

// queryOps are the operations whose request carries a query or a job's
// queryCondition, so a 400 or 412 to them may be about that text.
var queryOps = map[string]bool{"CreateJob": true, "QueryDevices": true, "CountDevices": true, "DeviceIDs": true, "QueryDeviceJobs": true}

// queryTooLong recognises the hub refusing a query or condition for its
// length. The reference has it both ways: a 412 PreconditionFailed whose
// text misleadingly speaks of etags (a create carries no precondition of
// its own, etag is always "*"), and a 400 saying the query is too long.
func (e *Error) queryTooLong() bool {
	if !queryOps[e.Op] {
		return false
	}
	switch e.StatusCode {
	case http.StatusPreconditionFailed:
		return e.Code == "" || e.Code == "PreconditionFailed"
	case http.StatusBadRequest:
		m := strings.ToLower(e.Message)
		return strings.Contains(m, "too long") || strings.Contains(m, "length") || strings.Contains(m, "8192") || strings.Contains(m, "exceeds")
	}
	return false
}

func isQuotaCode(code string) bool {
	return strings.Contains(code, "Quota") || strings.HasPrefix(code, "TooMany")
}

// RetryAfterHint is how long the caller should wait before trying again
// after err, from the hub's Retry-After, the local budget or the breaker's
// cool-down; 0 when none says. Handlers put it in their own Retry-After.
func RetryAfterHint(err error) time.Duration {
	if he, ok := errors.AsType[*Error](err); ok && he.RetryAfter > 0 {
		return he.RetryAfter
	}
	if be, ok := errors.AsType[*BudgetError](err); ok {
		return be.RetryAfter
	}
	if be, ok := errors.AsType[*BreakerError](err); ok {
		return be.RetryAfter
	}
	return 0
}

// codeNames maps the numeric codes of format B (first three digits = HTTP
// status) to the names format A and the iothub-errorcode header use. The
// table is the reference's list of codes relevant to jobs.
var codeNames = map[int]string{
	400000: "GenericBadRequest",
	400001: "InvalidProtocolVersion",
	400004: "ArgumentInvalid",
	401002: "IotHubUnauthorizedAccess",
	401003: "IotHubUnauthorized",
	403002: "IotHubQuotaExceeded",
	403003: "JobQuotaExceeded",
	404002: "JobNotFound",
	405102: "OperationNotAllowedInCurrentState",
	409103: "DeviceJobAlreadyExists",
	409104: "JobAlreadyExists",
	412003: "JobRunPreconditionFailed",
	429001: "ThrottlingException",
	429002: "ThrottleBacklogLimitExceeded",
	429003: "ThrottlingBacklogTimeout",
	429004: "ThrottlingMaxActiveJobCountExceeded",
	500001: "ServerError",
	503001: "ServiceUnavailable",
}

// CodeName returns the name of a numeric IoT Hub error code, or "" when the
// code is not in the reference's table.
func CodeName(numeric int) string { return codeNames[numeric] }

// wireError is what can be read out of an error body, whatever its format.
type wireError struct {
	Code        string
	NumericCode int
	Message     string
	TrackingID  string
}

// maxNesting bounds how deep parseErrorBody follows a body embedded in a
// message (format B, the nested throttling variant); real bodies nest once.
const maxNesting = 3

// parseErrorBody reads an IoT Hub error body in any of its known shapes:
//
//	A:      {"Message":"ErrorCode:Name;text","ExceptionMessage":"Tracking ID:id-G:n-TimeStamp:…"}
//	B:      {"Message":"{\"errorCode\":404103,\"trackingId\":\"…\",\"message\":\"…\"}"}
//	nested: format A whose text embeds another format-A body
//	bare B: {"errorCode":404103,"trackingId":"…","message":"…"}
//
// Anything else (an HTML page from a proxy, truncated JSON) yields a short
// plain-text description; it never fails and never panics.
func parseErrorBody(body []byte) wireError {
	return parseErrorDepth(bytes.TrimSpace(body), 0)
}

func parseErrorDepth(body []byte, depth int) wireError {
	// Every field is raw so that a field of an unexpected type costs only
	// that field, not the whole body.
	var raw struct {
		Message          json.RawMessage `json:"Message"`
		ExceptionMessage json.RawMessage `json:"ExceptionMessage"`
		ErrorCode        json.RawMessage `json:"errorCode"`
		TrackingID       json.RawMessage `json:"trackingId"`
		Code             json.RawMessage `json:"code"`
	}
	if len(body) == 0 {
		return wireError{}
	}
	if body[0] != '{' || json.Unmarshal(body, &raw) != nil {
		return wireError{Message: describeNonJSON(body)}
	}
	var w wireError
	w.NumericCode, w.Code = errorCode(raw.ErrorCode)
	w.TrackingID = trackingID("Tracking ID:" + jsonString(raw.TrackingID))
	if w.TrackingID == "" {
		w.TrackingID = trackingID(jsonString(raw.ExceptionMessage))
	}
	msg := strings.TrimSpace(jsonString(raw.Message))
	switch {
	case strings.HasPrefix(msg, "{") && depth < maxNesting:
		// Format B: Message is itself a JSON error body.
		w = merge(w, parseErrorDepth([]byte(msg), depth+1))
	case strings.HasPrefix(msg, "ErrorCode:"):
		name, text, _ := strings.Cut(strings.TrimPrefix(msg, "ErrorCode:"), ";")
		w.Code = strings.TrimSpace(name)
		w.Message = strings.TrimSpace(text)
		if i := strings.Index(w.Message, "{"); i >= 0 && depth < maxNesting {
			// Nested variant: "Error: 429 {\"Message\":\"ErrorCode:…;429\",…}".
			inner := parseErrorDepth([]byte(w.Message[i:]), depth+1)
			w.Message = strings.TrimSpace(w.Message[:i])
			w = merge(w, inner)
		}
	default:
		w.Message = msg
	}
	if w.Code == "" {
		w.Code = plain(jsonString(raw.Code))
	}
	if w.Code == "" {
		w.Code = CodeName(w.NumericCode)
	}
	w.Message = plain(w.Message)
	if isStatusNoise(w.Message) {
		w.Message = "" // "429" says nothing the status does not
	}
	return w
}

// merge fills what outer lacks from inner; outer wins where both speak,
// except for the text when the outer one is only a status number.
func merge(outer, inner wireError) wireError {
	if outer.Code == "" {
		outer.Code = inner.Code
	}
	if outer.NumericCode == 0 {
		outer.NumericCode = inner.NumericCode
	}
	if outer.TrackingID == "" {
		outer.TrackingID = inner.TrackingID
	}
	if outer.Message == "" || isStatusNoise(outer.Message) {
		outer.Message = inner.Message
	}
	return outer
}

// isStatusNoise reports texts like "429" or "Error: 429" that say nothing
// the status code does not.
func isStatusNoise(s string) bool {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "Error:"))
	_, err := strconv.Atoi(s)
	return err == nil
}

// errorCode reads format B's errorCode: a number (404103), a numeric
// string, or, leniently, a code name.
func errorCode(raw json.RawMessage) (numeric int, name string) {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		s := strings.TrimSpace(jsonString(raw))
		if s == "" {
			return 0, ""
		}
		if _, err := strconv.Atoi(s); err != nil {
			return 0, plain(s)
		}
		n = json.Number(s)
	}
	v, err := strconv.Atoi(n.String())
	if err != nil || v < 0 {
		return 0, ""
	}
	return v, ""
}

// jsonString is raw's value when it is a JSON string, else "".
func jsonString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// trackingID extracts "<id>-G:<n>" from "Tracking ID:<id>-G:<n>-TimeStamp:…"
// (format A's ExceptionMessage, and format B's trackingId once prefixed):
// the value Azure support asks for, without the time stamp.
func trackingID(exc string) string {
	_, rest, ok := strings.Cut(exc, "Tracking ID:")
	if !ok {
		return ""
	}
	if i := strings.Index(rest, "-TimeStamp:"); i >= 0 {
		rest = rest[:i]
	}
	return plain(rest)
}

// describeNonJSON summarizes a body that is not a JSON error, such as a
// proxy's HTML page, without echoing markup into logs or pages.
func describeNonJSON(body []byte) string {
	if bytes.HasPrefix(body, []byte("<")) {
		if title := htmlTitle(body); title != "" {
			return plain("non-JSON error page: " + title)
		}
		return "non-JSON error page"
	}
	if text := plain(string(body)); text != "" && utf8.Valid(body) {
		return plain("non-JSON error body: " + text)
	}
	return "unreadable error body"
}

func htmlTitle(body []byte) string {
	start := indexFoldASCII(body, "<title>")
	if start < 0 {
		return ""
	}
	rest := body[start+len("<title>"):]
	end := indexFoldASCII(rest, "</title>")
	if end < 0 {
		return ""
	}
	return plain(string(rest[:end]))
}

// indexFoldASCII finds an ASCII tag case-insensitively in b. It compares in
// place rather than searching bytes.ToLower(b): lowering invalid UTF-8
// changes its length, and the index would then point past the title in b
// (a proxy's error page is arbitrary bytes; the fuzzer found this).
func indexFoldASCII(b []byte, tag string) int {
	for i := 0; i+len(tag) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(tag)], []byte(tag)) {
			return i
		}
	}
	return -1
}

// plain collapses whitespace and control characters and clips to a length
// fit for one log line or a message on a page.
func plain(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	const max = 300
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// newError builds the *Error for a non-2xx answer from its status, headers
// and (capped) body. The iothub-errorcode header wins over the body's code:
// it is set by the hub itself, whereas bodies nest and vary.
func newError(op string, resp *http.Response, body []byte, now time.Time) *Error {
	w := parseErrorBody(body)
	e := &Error{
		Op:          op,
		StatusCode:  resp.StatusCode,
		Code:        w.Code,
		NumericCode: w.NumericCode,
		Message:     w.Message,
		TrackingID:  w.TrackingID,
		RequestID:   plain(resp.Header.Get("x-ms-request-id")),
		RetryAfter:  parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	if h := plain(resp.Header.Get("iothub-errorcode")); h != "" {
		e.Code = h
	}
	return e
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP-date
// (RFC 9110 §10.2.3); anything else, or a date in the past, is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		const maxSecs = int64(365 * 24 * 3600) // keep the Duration from overflowing
		return time.Duration(min(secs, maxSecs)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
