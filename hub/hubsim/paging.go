package hubsim

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Paging follows the SDKs, not the swagger: the page size arrives in the
// x-ms-max-item-count request header, the continuation token in the
// x-ms-continuation request header, and the next token leaves in the
// x-ms-continuation response header, which is absent on the last page.
const (
	headerMaxItemCount = "x-ms-max-item-count"
	headerContinuation = "x-ms-continuation"
	headerItemType     = "x-ms-item-type"

	// defaultPageSize applies when the client sends no x-ms-max-item-count;
	// maxPageSize caps larger requests (the hub "may use another value"),
	// so a client asking for 1000 still has to follow continuations.
	defaultPageSize = 100
	maxPageSize     = 100
)

var errBadContinuation = errors.New("invalid continuation token")

// pageSize reads x-ms-max-item-count: absent → default, above the cap →
// the cap, not a positive integer → error.
func pageSize(r *http.Request) (int, error) {
	v := r.Header.Get(headerMaxItemCount)
	if v == "" {
		return defaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errors.New("x-ms-max-item-count must be a positive integer")
	}
	return min(n, maxPageSize), nil
}

// cursor is the position after the last item of a page, in the order
// jobs are listed: newest createdTime first, then job id, then the device's
// index inside the job. Keyset (not offset) paging keeps pages stable while
// new jobs are created between requests.
type cursor struct {
	Scope   string `json:"s"` // which query the token belongs to
	Created int64  `json:"c"` // job createdTime, Unix nanoseconds
	JobID   string `json:"j"`
	Device  int    `json:"d"` // device index; -1 for job listings
}

// after reports whether the item (created, jobID, device) comes after c.
func (c cursor) after(created time.Time, jobID string, device int) bool {
	ns := created.UnixNano()
	switch {
	case ns != c.Created:
		return ns < c.Created
	case jobID != c.JobID:
		return jobID > c.JobID
	}
	return device > c.Device
}

// Tokens are standard base64 (with "+", "/" and "="), so a client that
// forgets to escape them in a URL, or trims them, finds out; real hubs'
// tokens are opaque JSON-ish strings with similar characters.
func encodeCursor(c cursor) string {
	c.Scope = scopeDigest(c.Scope)
	b, _ := json.Marshal(c)
	return base64.StdEncoding.EncodeToString(b)
}

// readCursor decodes the request's continuation token for scope. ok is
// false when the request starts from the beginning.
func readCursor(r *http.Request, scope string) (c cursor, ok bool, err error) {
	v := r.Header.Get(headerContinuation)
	if v == "" {
		return cursor{}, false, nil
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || json.Unmarshal(raw, &c) != nil || c.Scope != scopeDigest(scope) {
		return cursor{}, false, errBadContinuation
	}
	return c, true, nil
}

// scopeDigest shortens a query's identity (it may be 8 KB of SQL) for the
// token; a token replayed against another query is refused.
func scopeDigest(scope string) string {
	sum := sha256.Sum256([]byte(scope))
	return hex.EncodeToString(sum[:8])
}
