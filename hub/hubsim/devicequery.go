package hubsim

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// queryTooLong is the refusal of a query or condition over maxQueryLength
// characters: 412 PreconditionFailed, the status and code reported for
// long job conditions on a real hub (the limit's status is unverified; 400
// is plausible too, and clients must handle both).
func queryTooLong(what, src string) *hubError {
	return newHubError(codePreconditionFailed, "The %s is %d characters long; query expressions can have a maximum length of %d characters.",
		what, utf8.RuneCountInString(src), maxQueryLength)
}

// queryDevices is POST /devices/query: twins (SELECT *, projections,
// COUNT) or devices.jobs records, as a bare JSON array paged through the
// x-ms-* headers.
func (s *Sim) queryDevices(r *http.Request, now time.Time) reply {
	body, herr := readBody(r)
	if herr != nil {
		return fail(herr)
	}
	var req devicesQueryRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Query == nil {
		return fail(newHubError(codeArgumentInvalid, "The request body must be {\"query\":\"<sql>\"}."))
	}
	if tooLong(*req.Query) {
		return fail(queryTooLong("query", *req.Query))
	}
	q, err := parseDevicesQuery(*req.Query)
	if err != nil {
		return fail(newHubError(codeArgumentInvalid, "Invalid query: %v", err))
	}
	size, err := pageSize(r)
	if err != nil {
		return fail(newHubError(codeArgumentInvalid, "%v", err))
	}
	scope := "devices|" + *req.Query
	after, resume, err := readCursor(r, scope)
	if err != nil {
		return fail(newHubError(codeArgumentInvalid, "%v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch q.kind {
	case queryDeviceJobs:
		return s.queryDeviceJobs(q, page{size: size, scope: scope, after: after, resume: resume}, now)
	case queryCount:
		n := 0
		for i := range s.registry {
			if q.where == nil || q.where.eval(&s.registry[i]) {
				n++
			}
		}
		return okJSON([]map[string]int{{q.countKey: n}}, itemType("Raw"))
	}
	return s.queryTwins(q, page{size: size, scope: scope, after: after, resume: resume})
}

// page is where a paged query starts and how many items it returns.
type page struct {
	size   int
	scope  string
	after  cursor
	resume bool
}

func itemType(t string) http.Header {
	return http.Header{http.CanonicalHeaderKey(headerItemType): {t}}
}

// queryTwins answers SELECT * (item type Twin) and projections (Raw) in
// registry order; the cursor is the index of the page's last device.
// Callers hold s.mu.
func (s *Sim) queryTwins(q devicesQuery, pg page) reply {
	start := 0
	if pg.resume {
		start = max(0, pg.after.Device+1)
	}
	var items []any
	last, more := -1, false
	for i := start; i < len(s.registry); i++ {
		d := &s.registry[i]
		if q.where != nil && !q.where.eval(d) {
			continue
		}
		if len(items) == pg.size {
			more = true
			break
		}
		items = append(items, twinResult(q, d))
		last = i
	}
	if items == nil {
		items = []any{}
	}
	header := itemType("Twin")
	if q.kind == queryProjection {
		header = itemType("Raw")
	}
	if more {
		header.Set(headerContinuation, encodeCursor(cursor{Scope: pg.scope, Device: last}))
	}
	return okJSON(items, header)
}

// twinResult is d's item: the whole twin, or the selected properties (an
// undefined one is left out).
func twinResult(q devicesQuery, d *device) any {
	if q.kind == queryTwins {
		return d.item()
	}
	out := make(map[string]any, len(q.fields))
	for _, f := range q.fields {
		if v, ok := d.value(f.path); ok {
			out[f.key] = v
		}
	}
	return out
}

// queryDeviceJobs answers SELECT * FROM devices.jobs: per-device records,
// jobs newest first and devices in job order. Callers hold s.mu.
func (s *Sim) queryDeviceJobs(q devicesQuery, pg page, now time.Time) reply {
	jobs := s.orderedJobs(now)
	if id, ok := requiredEquals(q.where, "jobId"); ok {
		jobs = slices.DeleteFunc(jobs, func(j *job) bool { return j.id != id })
	}
	records := []deviceJobRecord{}
	var last cursor
	more := false
scan:
	for _, j := range jobs {
		for i := range j.devices {
			if pg.resume && !pg.after.after(j.created, j.id, i) {
				continue
			}
			rec := j.record(i, now)
			if q.where != nil && !q.where.eval(recordDocument{&rec}) {
				continue
			}
			if len(records) == pg.size {
				more = true
				break scan
			}
			records = append(records, rec)
			last = cursor{Scope: pg.scope, Created: j.created.UnixNano(), JobID: j.id, Device: i}
		}
	}
	header := itemType("DeviceJob")
	if more {
		header.Set(headerContinuation, encodeCursor(last))
	}
	return okJSON(records, header)
}
