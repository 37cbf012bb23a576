package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hubjobs/hubjobs/hub"
)

// Limits of the "New job" form. The method and twin limits are IoT Hub's
// (direct-method payload 128 KB; twin tags 8 KB, desired properties 32 KB,
// nesting depth 10; method response timeout 5–300 s, connect timeout
// 0–300 s). The hub documents no range for maxExecutionTimeInSeconds; one
// minute to two days covers every value seen in use and keeps a typo (an
// hour typed as seconds) from leaving a job holding the hub's only
// active-job slot for weeks.
const (
	MaxPayloadBytes        = 128 << 10
	MaxTagsBytes           = 8 << 10
	MaxDesiredBytes        = 32 << 10
	MaxTwinDepth           = 10
	MinResponseTimeout     = 5 * time.Second
	MaxResponseTimeout     = 300 * time.Second
	DefaultResponseTimeout = 30 * time.Second
	MaxConnectTimeout      = 300 * time.Second
	MinMaxExecution        = time.Minute
	MaxMaxExecution        = 48 * time.Hour
	DefaultMaxExecution    = time.Hour
	MaxBake                = 24 * time.Hour
	MaxReasonRunes         = 500
	maxMethodName          = 100
	// StartSlack is how far in the past a start time may be: a form
	// filled in at 14:00 and sent at 14:00:40 still means "at 14:00".
	StartSlack = time.Minute
)

// Form field names. They are the keys of FieldErrors and the names of the
// form's inputs, so a message lands next to the field it is about.
const (
	FieldType            = "type"
	FieldMethod          = "method"
	FieldPayload         = "payload"
	FieldResponseTimeout = "response_timeout"
	FieldConnectTimeout  = "connect_timeout"
	FieldTags            = "tags"
	FieldDesired         = "desired"
	FieldCondition       = "condition"
	FieldStart           = "start_at"
	FieldMaxExecution    = "max_execution"
	FieldWaves           = "waves"
	FieldBake            = "bake"
	FieldFailures        = "failures"
	FieldMinFinished     = "min_finished"
	FieldScope           = "scope"
	FieldHealthQuery     = "health_query"
	FieldHealth          = "health_threshold"
	FieldApprovalWaves   = "approval_waves"
	FieldReason          = "reason"
)

// FieldErrors are a form's problems, one plain sentence per field name.
// As an error it wraps ErrInvalidSpec, so the engine can return it from
// Create and the pages can still put every message next to its field.
type FieldErrors map[string]string

func (f FieldErrors) Error() string {
	keys := slices.Sorted(maps.Keys(f))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + f[k]
	}
	return ErrInvalidSpec.Error() + ": " + strings.Join(parts, "; ")
}

func (f FieldErrors) Unwrap() error { return ErrInvalidSpec }

// add keeps the first problem of a field: it is the one to fix first.
func (f FieldErrors) add(field, msg string) {
	if _, ok := f[field]; !ok {
		f[field] = msg
	}
}

// Err is f as an error, nil when there is no problem.
func (f FieldErrors) Err() error {
	if len(f) == 0 {
		return nil
	}
	return f
}

// Draft is the "New job" form as typed: every field a string, so that a
// form with mistakes can be shown again exactly as it was sent.
type Draft struct {
	Type            string // "method" or "twin"
	Method          string
	Payload         string
	ResponseTimeout string // seconds
	ConnectTimeout  string // seconds
	Tags            string // JSON object
	Desired         string // JSON object
	Condition       string
	StartAt         string // empty: now; else a time, UTC unless it names a zone
	MaxExecution    string // a duration such as 1h or 90m; a bare number is seconds
	Waves           string
	Bake            string
	Failures        string
	MinFinished     string
	Scope           string
	HealthQuery     string
	HealthThreshold string
	ApprovalWaves   string // wave numbers, comma-separated
	Reason          string
	WaitForSlot     bool
}

// Draft types.
const (
	DraftMethod = "method"
	DraftTwin   = "twin"
)

// Spec reads the draft into a Spec for hubName, checking every field
// (now is the clock for "not in the past"). A field that cannot be read
// gets its message and the rest are still checked, so the author sees
// every problem at once.
func (d Draft) Spec(hubName string, now time.Time) (Spec, FieldErrors) {
	fe := FieldErrors{}
	s := Spec{Hub: hubName, Condition: strings.TrimSpace(d.Condition), Reason: strings.TrimSpace(d.Reason), WaitForSlot: d.WaitForSlot}
	switch d.Type {
	case DraftMethod:
		s.Type = hub.TypeScheduleDeviceMethod
		s.Method = d.method(fe)
	case DraftTwin:
		s.Type = hub.TypeScheduleUpdateTwin
		s.Twin = d.twin(fe)
	default:
		fe.add(FieldType, "choose a direct method or a twin update")
	}
	if at := strings.TrimSpace(d.StartAt); at != "" {
		t, err := parseStart(at)
		switch {
		case err != nil:
			fe.add(FieldStart, err.Error())
		case t.Before(now.Add(-StartSlack)):
			fe.add(FieldStart, "is in the past; leave it empty to start now")
		default:
			s.Start = t.UTC()
		}
	}
	s.MaxExecution = durationField(fe, FieldMaxExecution, d.MaxExecution, DefaultMaxExecution)
	s.Bake = durationField(fe, FieldBake, d.Bake, 0)
	if w, err := ParseWaves(d.Waves); err != nil {
		fe.add(FieldWaves, err.Error())
	} else {
		s.Waves = w
	}
	s.Rules = d.rules(fe)
	for k, v := range s.Validate() {
		fe.add(k, v)
	}
	return s, fe
}

func (d Draft) method(fe FieldErrors) *hub.CloudToDeviceMethod {
	m := &hub.CloudToDeviceMethod{MethodName: strings.TrimSpace(d.Method)}
	m.ResponseTimeoutInSeconds = int32(secondsField(fe, FieldResponseTimeout, d.ResponseTimeout, DefaultResponseTimeout) / time.Second)
	m.ConnectTimeoutInSeconds = int32(secondsField(fe, FieldConnectTimeout, d.ConnectTimeout, 0) / time.Second)
	if p := strings.TrimSpace(d.Payload); p != "" {
		if !json.Valid([]byte(p)) {
			fe.add(FieldPayload, "is not valid JSON (leave it empty to send no payload)")
		} else {
			var compact bytes.Buffer
			_ = json.Compact(&compact, []byte(p))
			m.Payload = compact.Bytes()
		}
	}
	return m
}

func (d Draft) twin(fe FieldErrors) *hub.Twin {
	t := &hub.Twin{ETag: "*"}
	t.Tags = jsonObject(fe, FieldTags, d.Tags)
	if desired := jsonObject(fe, FieldDesired, d.Desired); desired != nil {
		t.Properties = &hub.TwinProperties{Desired: desired}
	}
	return t
}

func (d Draft) rules(fe FieldErrors) Rules {
	var r Rules
	var err error
	if r.Failures, err = ParseThreshold(d.Failures); err != nil {
		fe.add(FieldFailures, "write a percentage such as 5% or a device count such as 10")
	}
	if r.Health, err = ParseThreshold(d.HealthThreshold); err != nil {
		fe.add(FieldHealth, "write a percentage such as 2% or a device count such as 3")
	}
	if m := strings.TrimSpace(d.MinFinished); m != "" {
		if r.MinFinished, err = strconv.Atoi(m); err != nil || r.MinFinished < 0 {
			fe.add(FieldMinFinished, "is a whole number of devices, 0 or more")
		}
	}
	r.Scope = Scope(strings.TrimSpace(d.Scope))
	r.HealthQuery = strings.TrimSpace(d.HealthQuery)
	for _, part := range strings.Split(d.ApprovalWaves, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		n, err := strconv.Atoi(part)
		if err != nil {
			fe.add(FieldApprovalWaves, fmt.Sprintf("%q is not a wave number; list wave numbers such as 2,3", part))
			continue
		}
		if !slices.Contains(r.ApprovalWaves, n) {
			r.ApprovalWaves = append(r.ApprovalWaves, n)
		}
	}
	slices.Sort(r.ApprovalWaves)
	return r
}

// Validate checks a Spec however it was made (from the form, or by the
// engine before it stores one), each problem under the form field it is
// about. It checks what can be known without the hub; whether the hub
// accepts the condition, and how many devices it selects, is the plan's.
func (s Spec) Validate() FieldErrors {
	fe := FieldErrors{}
	switch s.Type {
	case hub.TypeScheduleDeviceMethod:
		validateMethod(fe, s.Method)
	case hub.TypeScheduleUpdateTwin:
		validateTwin(fe, s.Twin)
	default:
		fe.add(FieldType, "choose a direct method or a twin update")
	}
	switch c := strings.TrimSpace(s.Condition); {
	case c == "":
		fe.add(FieldCondition, `is needed: write a condition such as tags.ring = 'canary', or * for every device`)
	case utf8.RuneCountInString(c) > MaxCondition:
		fe.add(FieldCondition, fmt.Sprintf("is %s characters; IoT Hub allows %s", count(utf8.RuneCountInString(c)), count(MaxCondition)))
	case !utf8.ValidString(c) || hasControl(c, false):
		fe.add(FieldCondition, "contains characters that are not text")
	}
	if s.MaxExecution < MinMaxExecution || s.MaxExecution > MaxMaxExecution {
		fe.add(FieldMaxExecution, "is between 1 minute and 48 hours")
	}
	if s.Bake < 0 || s.Bake > MaxBake {
		fe.add(FieldBake, "is between 0 and 24 hours")
	}
	validateRules(fe, s.Rules)
	if n := utf8.RuneCountInString(s.Reason); n > MaxReasonRunes || !utf8.ValidString(s.Reason) {
		fe.add(FieldReason, fmt.Sprintf("is %d characters; keep it under %d", n, MaxReasonRunes))
	} else if hasControl(s.Reason, true) {
		fe.add(FieldReason, "contains control characters; use plain text")
	}
	return fe
}

func validateMethod(fe FieldErrors, m *hub.CloudToDeviceMethod) {
	if m == nil {
		fe.add(FieldMethod, "is needed for a direct method")
		return
	}
	switch name := m.MethodName; {
	case name == "":
		fe.add(FieldMethod, "is needed: the name of the direct method the devices implement, such as reboot")
	case len(name) > maxMethodName:
		fe.add(FieldMethod, fmt.Sprintf("is %d characters; keep it to %d", len(name), maxMethodName))
	case strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		fe.add(FieldMethod, "may hold printable ASCII characters only, without spaces")
	}
	if len(m.Payload) > MaxPayloadBytes {
		fe.add(FieldPayload, fmt.Sprintf("is %s bytes; IoT Hub allows %s (128 KB)", count(len(m.Payload)), count(MaxPayloadBytes)))
	} else if len(m.Payload) > 0 && !json.Valid(m.Payload) {
		fe.add(FieldPayload, "is not valid JSON (leave it empty to send no payload)")
	}
	if r := time.Duration(m.ResponseTimeoutInSeconds) * time.Second; r < MinResponseTimeout || r > MaxResponseTimeout {
		fe.add(FieldResponseTimeout, "is between 5 and 300 seconds")
	}
	if c := time.Duration(m.ConnectTimeoutInSeconds) * time.Second; c < 0 || c > MaxConnectTimeout {
		fe.add(FieldConnectTimeout, "is between 0 and 300 seconds")
	}
}

func validateTwin(fe FieldErrors, t *hub.Twin) {
	var desired map[string]any
	if t != nil && t.Properties != nil {
		desired = t.Properties.Desired
	}
	if t == nil || (len(t.Tags) == 0 && len(desired) == 0) {
		fe.add(FieldDesired, "a twin update needs tags or desired properties (or both)")
		return
	}
	twinLimit(fe, FieldTags, t.Tags, MaxTagsBytes, "8 KB")
	twinLimit(fe, FieldDesired, desired, MaxDesiredBytes, "32 KB")
}

func twinLimit(fe FieldErrors, field string, v map[string]any, limit int, words string) {
	if v == nil {
		return
	}
	b, _ := json.Marshal(v)
	switch {
	case len(b) > limit:
		fe.add(field, fmt.Sprintf("is %s bytes; IoT Hub allows %s (%s)", count(len(b)), count(limit), words))
	case depth(v) > MaxTwinDepth:
		fe.add(field, fmt.Sprintf("nests %d levels deep; IoT Hub allows %d", depth(v), MaxTwinDepth))
	}
}

// depth is how many levels of objects v nests: {"a":1} is 1.
func depth(v any) int {
	switch x := v.(type) {
	case map[string]any:
		d := 0
		for _, c := range x {
			d = max(d, depth(c))
		}
		return d + 1
	case []any:
		d := 0
		for _, c := range x {
			d = max(d, depth(c))
		}
		return d
	}
	return 0
}

func validateRules(fe FieldErrors, r Rules) {
	if err := r.Failures.valid(); err != nil {
		fe.add(FieldFailures, err.Error())
	}
	if err := r.Health.valid(); err != nil {
		fe.add(FieldHealth, err.Error())
	}
	if r.MinFinished < 0 {
		fe.add(FieldMinFinished, "is a whole number of devices, 0 or more")
	}
	if r.Scope != "" && r.Scope != PerWave && r.Scope != Cumulative {
		fe.add(FieldScope, "is per wave or cumulative")
	}
	switch q := r.HealthQuery; {
	case q == "" && r.Health.IsSet():
		fe.add(FieldHealthQuery, "is needed with a health threshold: the condition that means a device is unhealthy")
	case q != "" && !r.Health.IsSet():
		fe.add(FieldHealth, "is needed with a health query: how many unhealthy devices halt the rollout")
	case utf8.RuneCountInString(q) > MaxCondition:
		fe.add(FieldHealthQuery, fmt.Sprintf("is %s characters; IoT Hub allows %s", count(utf8.RuneCountInString(q)), count(MaxCondition)))
	}
	for _, w := range r.ApprovalWaves {
		if w < 1 || w > MaxWaves {
			fe.add(FieldApprovalWaves, fmt.Sprintf("wave %d does not exist: waves are numbered 1 to %d", w, MaxWaves))
		}
	}
}

// jsonObject reads a twin section: empty is none; anything else must be a
// JSON object.
func jsonObject(fe FieldErrors, field, text string) map[string]any {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	var v map[string]any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil || dec.More() || v == nil {
		fe.add(field, `is not a JSON object; write one such as {"fw": {"version": "1.2"}}`)
		return nil
	}
	return v
}

// secondsField reads a whole number of seconds; empty is def.
func secondsField(fe FieldErrors, field, text string, def time.Duration) time.Duration {
	text = strings.TrimSpace(text)
	if text == "" {
		return def
	}
	n, err := strconv.Atoi(text)
	if err != nil {
		fe.add(field, "is a whole number of seconds")
		return def
	}
	return time.Duration(n) * time.Second
}

// durationField reads "1h30m", "90m", "45s" or a bare number of seconds;
// empty is def.
func durationField(fe FieldErrors, field, text string, def time.Duration) time.Duration {
	text = strings.ReplaceAll(strings.TrimSpace(text), " ", "")
	if text == "" {
		return def
	}
	if n, err := strconv.Atoi(text); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(text)
	if err != nil || strings.ContainsAny(text, "µun") { // ns, us, µs: never what an author means
		fe.add(field, "is a duration such as 90m, 1h or 1h30m (a bare number is seconds)")
		return def
	}
	return d
}

// startLayouts are the start times the form accepts: the browser's
// datetime-local value (UTC), and RFC 3339 with a zone offset.
var startLayouts = []struct {
	layout string
	zoned  bool
}{
	{time.RFC3339, true}, {"2006-01-02T15:04Z07:00", true},
	{"2006-01-02T15:04:05", false}, {"2006-01-02T15:04", false}, {"2006-01-02 15:04", false},
}

func parseStart(text string) (time.Time, error) {
	for _, l := range startLayouts {
		if t, err := time.Parse(l.layout, text); err == nil {
			return t, nil // without a zone, time.Parse reads UTC
		}
	}
	return time.Time{}, fmt.Errorf("is not a time: write 2026-03-10T14:00 (UTC) or 2026-03-10T15:00+01:00")
}

// hasControl reports control characters; lines allows line breaks and tabs.
func hasControl(s string, lines bool) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) && !(lines && (r == '\n' || r == '\r' || r == '\t'))
	}) >= 0
}
