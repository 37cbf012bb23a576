package hubsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

const (
	maxRequestBody    = 1 << 20   // bigger PUT or query bodies are refused
	maxMethodPayload  = 128 << 10 // direct-method payload limit
	maxJobIDLength    = 128
	defaultMaxExec    = 3600 // seconds, the Node SDK's and CLI's default
	defaultMethodWait = 30   // responseTimeoutInSeconds default
)

// validJobID accepts 1..128 printable ASCII characters except the ones that
// cannot travel in a URL path segment unescaped (/ \ ? # %) and spaces. The
// hub documents no rule; quotes are allowed on purpose, so that a client's
// quoting of ids in devices.jobs SQL is exercised end to end.
func validJobID(id string) bool {
	if len(id) == 0 || len(id) > maxJobIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/\?#%`, c) >= 0 {
			return false
		}
	}
	return true
}

// createJob is PUT /jobs/v2/{id}: validate, refuse duplicates and too many
// active jobs, then answer 200 with the minimal {"jobId","type","status"}.
func (s *Sim) createJob(r *http.Request, id string, now time.Time) reply {
	if !validJobID(id) {
		return fail(newHubError(codeArgumentInvalid, "Invalid job id '%s'.", id))
	}
	spec, herr := s.parseJobRequest(r, id, now)
	if herr != nil {
		return fail(herr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.liveJob(id, now) != nil || s.importExport[id] {
		return fail(newHubError(codeJobAlreadyExists, "Job with id '%s' already exists.", id))
	}
	if s.activeJobs(now) >= s.opts.MaxActiveJobs {
		e := newHubError(codeThrottlingMaxActiveJobCount, "%d", http.StatusTooManyRequests)
		e.format = formatNested
		return fail(e)
	}
	s.jobs[id] = newJob(spec, s.registry, s.opts.Seed)
	return okJSON(createResponse{JobID: id, Type: spec.typ, Status: statusQueued}, nil)
}

// readBody reads a request body of at most maxRequestBody bytes.
func readBody(r *http.Request) ([]byte, *hubError) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	switch {
	case err != nil:
		return nil, newHubError(codeArgumentInvalid, "Could not read the request body.")
	case len(body) > maxRequestBody:
		return nil, newHubError(codeArgumentInvalid, "The request body is larger than %d bytes.", maxRequestBody)
	}
	return body, nil
}

// parseJobRequest decodes and validates a PUT body into a jobSpec.
func (s *Sim) parseJobRequest(r *http.Request, id string, now time.Time) (jobSpec, *hubError) {
	body, herr := readBody(r)
	if herr != nil {
		return jobSpec{}, herr
	}
	var req jobRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return jobSpec{}, newHubError(codeArgumentInvalid, "Invalid job request: %v", err)
	}
	if dec.More() {
		return jobSpec{}, newHubError(codeArgumentInvalid, "Invalid job request: data after the JSON object")
	}
	if req.Type != typeScheduleDeviceMethod && req.Type != typeScheduleUpdateTwin {
		return jobSpec{}, newHubError(codeGenericBadRequest, "BadRequest")
	}
	if req.JobID != nil && *req.JobID != id {
		return jobSpec{}, newHubError(codeArgumentInvalid, "jobId '%s' in the body does not match '%s' in the path.", *req.JobID, id)
	}
	spec := jobSpec{
		id: id, typ: req.Type, condition: req.QueryCondition, created: now,
		maxExec: defaultMaxExec, queuedFor: s.opts.QueuedPhase,
		rate: s.opts.DeviceRate, failureRate: s.opts.FailureRate,
	}
	if req.Type == typeScheduleDeviceMethod {
		spec.method, herr = validMethod(req.CloudToDeviceMethod, req.UpdateTwin)
	} else {
		spec.twin, herr = validTwin(req.UpdateTwin, req.CloudToDeviceMethod)
	}
	if herr != nil {
		return jobSpec{}, herr
	}
	if tooLong(req.QueryCondition) {
		return jobSpec{}, queryTooLong("queryCondition", req.QueryCondition)
	}
	var err error
	if spec.target, err = parseCondition(req.QueryCondition); err != nil {
		return jobSpec{}, newHubError(codeArgumentInvalid, "Invalid queryCondition: %v", err)
	}
	if req.StartTime != nil {
		if spec.start, err = parseHubTime(*req.StartTime); err != nil {
			return jobSpec{}, newHubError(codeArgumentInvalid, "Invalid startTime '%s'.", *req.StartTime)
		}
		// A start in the past (or .NET's zero time) means "now": the
		// deadline then counts from creation, not from year 1.
		spec.start = later(spec.start, now)
	}
	if m := req.MaxExecutionTimeInSeconds; m != nil {
		if *m < 0 {
			return jobSpec{}, newHubError(codeArgumentInvalid, "maxExecutionTimeInSeconds must not be negative.")
		}
		if *m > 0 {
			spec.maxExec = *m
		}
	}
	return spec, nil
}

// validMethod checks a method job's cloudToDeviceMethod and fills the
// documented defaults (response timeout 30 s, connect timeout 0).
func validMethod(m *methodSpec, twin *twinSpec) (*methodSpec, *hubError) {
	switch {
	case m == nil:
		return nil, newHubError(codeArgumentInvalid, "cloudToDeviceMethod is required for scheduleDeviceMethod jobs.")
	case twin != nil:
		return nil, newHubError(codeArgumentInvalid, "updateTwin is not allowed in scheduleDeviceMethod jobs.")
	case strings.TrimSpace(m.MethodName) == "":
		return nil, newHubError(codeArgumentInvalid, "cloudToDeviceMethod.methodName is required.")
	case len(m.Payload) > maxMethodPayload:
		return nil, newHubError(codeArgumentInvalid, "The method payload is larger than %d bytes.", maxMethodPayload)
	case m.ResponseTimeoutInSeconds != 0 && (m.ResponseTimeoutInSeconds < 5 || m.ResponseTimeoutInSeconds > 300):
		return nil, newHubError(codeArgumentInvalid, "responseTimeoutInSeconds must be between 5 and 300.")
	case m.ConnectTimeoutInSeconds < 0 || m.ConnectTimeoutInSeconds > 300:
		return nil, newHubError(codeArgumentInvalid, "connectTimeoutInSeconds must be between 0 and 300.")
	}
	out := *m
	if out.ResponseTimeoutInSeconds == 0 {
		out.ResponseTimeoutInSeconds = defaultMethodWait
	}
	if len(out.Payload) > 0 {
		var compact bytes.Buffer
		if err := json.Compact(&compact, out.Payload); err == nil {
			out.Payload = compact.Bytes()
		}
	}
	return &out, nil
}

// validTwin checks a twin job's updateTwin: the Twin shape (tags and/or
// properties.desired, never a bare desired, never reported) with etag "*",
// since the hub only accepts forced updates.
func validTwin(t *twinSpec, method *methodSpec) (*twinSpec, *hubError) {
	switch {
	case t == nil:
		return nil, newHubError(codeArgumentInvalid, "updateTwin is required for scheduleUpdateTwin jobs.")
	case method != nil:
		return nil, newHubError(codeArgumentInvalid, "cloudToDeviceMethod is not allowed in scheduleUpdateTwin jobs.")
	case t.ETag != "*":
		return nil, newHubError(codeArgumentInvalid, "updateTwin.etag must be '*'.")
	case t.Properties != nil && isPresent(t.Properties.Reported):
		return nil, newHubError(codeArgumentInvalid, "Reported properties cannot be updated by a job.")
	}
	var desired json.RawMessage
	if t.Properties != nil {
		desired = t.Properties.Desired
	}
	hasTags, err := twinSection("tags", t.Tags)
	if err != nil {
		return nil, newHubError(codeArgumentInvalid, "%v", err)
	}
	hasDesired, err := twinSection("properties.desired", desired)
	if err != nil {
		return nil, newHubError(codeArgumentInvalid, "%v", err)
	}
	if !hasTags && !hasDesired {
		return nil, newHubError(codeArgumentInvalid, "updateTwin must carry tags or properties.desired.")
	}
	out := &twinSpec{ETag: "*"}
	if hasTags {
		out.Tags = compactJSON(t.Tags)
	}
	if hasDesired {
		out.Properties = &twinProperties{Desired: compactJSON(desired)}
	}
	return out, nil
}

func isPresent(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// twinSection checks that a tags or desired section is a non-empty object
// whose keys follow the twin rules (no '.', '$', space or control
// characters) and whose depth is at most 10.
func twinSection(name string, raw json.RawMessage) (bool, error) {
	if !isPresent(raw) {
		return false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, fmt.Errorf("%s: %v", name, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return false, fmt.Errorf("%s must be a JSON object", name)
	}
	if err := checkTwinKeys(name, obj, 1); err != nil {
		return false, err
	}
	return len(obj) > 0, nil
}

func checkTwinKeys(path string, obj map[string]any, depth int) error {
	if depth > 10 {
		return fmt.Errorf("%s is nested deeper than 10 levels", path)
	}
	for k, v := range obj {
		if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r == '.' || r == '$' || r == ' ' || r < 0x20 || (r >= 0x7f && r <= 0x9f) }) {
			return fmt.Errorf("%s: invalid property name %q", path, k)
		}
		if child, ok := v.(map[string]any); ok {
			if err := checkTwinKeys(path+"."+k, child, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// parseHubTime reads an ISO 8601 time with or without fraction and zone (no
// zone means UTC, as in the hub's own zoneless times).
func parseHubTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("invalid time %q", v)
}

// liveJob is the job with id unless it does not exist or outlived the
// retention (which purges it). Callers hold s.mu.
func (s *Sim) liveJob(id string, now time.Time) *job {
	j := s.jobs[id]
	if j != nil && j.expired(now, s.opts.Retention) {
		delete(s.jobs, id)
		return nil
	}
	return j
}

// activeJobs counts unfinished (queued, scheduled or running) jobs. Callers
// hold s.mu.
func (s *Sim) activeJobs(now time.Time) int {
	n := 0
	for _, j := range s.jobs {
		if !j.finished(now) {
			n++
		}
	}
	return n
}

func jobNotFound(id string) *hubError {
	return newHubError(codeJobNotFound, "Job with id '%s' not found.", id)
}

// getJob is GET /jobs/v2/{id}: the full JobResponse.
func (s *Sim) getJob(id string, now time.Time) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.liveJob(id, now); j != nil {
		return okJSON(j.response(now), nil)
	}
	if s.importExport[id] || s.opts.MissingJobsUnknown {
		return okJSON(unknownJobResponse{JobID: id, Type: typeUnknown, Status: statusUnknown}, nil)
	}
	return fail(jobNotFound(id))
}

// cancelJob is POST /jobs/v2/{id}/cancel. Queued and scheduled jobs become
// "cancelled" (their devices "canceled") and the full job comes back with
// 200. Running and finished jobs are refused with
// OperationNotAllowedInCurrentState, worded as the real hub words it for a
// running job ("Job cannot be cancelled in 'Running' status."), at
// Options.CancelRefusedStatus; a second cancel is refused too, never a
// silent 200.
func (s *Sim) cancelJob(id string, now time.Time) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.liveJob(id, now)
	if j == nil {
		return fail(jobNotFound(id))
	}
	if !j.cancellable(now) {
		state := j.status(now)
		e := newHubError(codeOperationNotAllowedInState, "Job cannot be cancelled in '%s' status.", strings.ToUpper(state[:1])+state[1:])
		e.status = s.opts.CancelRefusedStatus
		return fail(e)
	}
	j.cancelledAt = now
	return okJSON(j.response(now), nil)
}

// queryJobs is GET /jobs/v2/query?jobType=&jobStatus=: a bare JSON array of
// JobResponse, newest first, paged through x-ms-* headers. Filter values
// match the wire enums case-insensitively (the C# v1 SDK sends PascalCase).
func (s *Sim) queryJobs(r *http.Request, now time.Time) reply {
	q := r.URL.Query()
	jobType, ok := enumValue(jobTypes, q.Get("jobType"))
	if !ok {
		return fail(newHubError(codeArgumentInvalid, "Invalid jobType '%s'.", q.Get("jobType")))
	}
	jobStatus, ok := enumValue(jobStatuses, q.Get("jobStatus"))
	if !ok {
		return fail(newHubError(codeArgumentInvalid, "Invalid jobStatus '%s'.", q.Get("jobStatus")))
	}
	size, err := pageSize(r)
	if err != nil {
		return fail(newHubError(codeArgumentInvalid, "%v", err))
	}
	scope := "jobs|" + jobType + "|" + jobStatus
	after, resume, err := readCursor(r, scope)
	if err != nil {
		return fail(newHubError(codeArgumentInvalid, "%v", err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	page := []jobResponse{}
	var last *job
	more := false
	for _, j := range s.orderedJobs(now) {
		if resume && !after.after(j.created, j.id, -1) {
			continue
		}
		if (jobType != "" && j.typ != jobType) || (jobStatus != "" && j.status(now) != jobStatus) {
			continue
		}
		if len(page) == size {
			more = true
			break
		}
		page = append(page, j.response(now))
		last = j
	}
	header := http.Header{http.CanonicalHeaderKey(headerItemType): {"JobResponse"}}
	if more {
		header.Set(headerContinuation, encodeCursor(cursor{Scope: scope, Created: last.created.UnixNano(), JobID: last.id, Device: -1}))
	}
	return okJSON(page, header)
}

// enumValue returns the canonical spelling of v in values ("" stays "").
func enumValue(values []string, v string) (string, bool) {
	if v == "" {
		return "", true
	}
	i := slices.IndexFunc(values, func(e string) bool { return strings.EqualFold(e, v) })
	if i < 0 {
		return "", false
	}
	return values[i], true
}

// orderedJobs lists live jobs newest first (ties by id), purging expired
// ones. Callers hold s.mu.
func (s *Sim) orderedJobs(now time.Time) []*job {
	list := make([]*job, 0, len(s.jobs))
	for id := range s.jobs {
		if j := s.liveJob(id, now); j != nil {
			list = append(list, j)
		}
	}
	slices.SortFunc(list, func(a, b *job) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return list
}
