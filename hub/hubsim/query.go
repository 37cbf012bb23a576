package hubsim

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file holds the two statements built on the WHERE grammar of
// where.go: a job's queryCondition, and the SQL of POST /devices/query
// (over device twins or devices.jobs). Anything outside them is refused
// with the position of the problem, so a client that builds other SQL
// finds out in tests.

// maxQueryLength is the documented limit of a query expression, applied
// to the query text and (unverified on real hubs) to a job's condition.
const maxQueryLength = 8192

// tooLong reports whether a query or condition exceeds maxQueryLength
// characters.
func tooLong(src string) bool { return utf8.RuneCountInString(src) > maxQueryLength }

// condition is a parsed queryCondition: all devices ("*"), or a WHERE
// expression over twins.
type condition struct {
	all   bool
	where expr
}

// parseCondition accepts "*" or a WHERE body over twins (no SELECT or
// FROM: the reference marks a full SELECT as unverified).
func parseCondition(src string) (condition, error) {
	switch strings.TrimSpace(src) {
	case "*":
		return condition{all: true}, nil
	case "":
		return condition{}, &QueryError{Pos: 1, Msg: "queryCondition is empty (use * for all devices)"}
	}
	e, err := parseWhere(src, twinScope)
	return condition{where: e}, err
}

func (c condition) matches(d *device) bool { return c.all || c.where.eval(d) }

// queryKind is what a device query selects.
type queryKind int

const (
	queryTwins      queryKind = iota // SELECT * FROM devices
	queryProjection                  // SELECT deviceId, tags.x AS x FROM devices
	queryCount                       // SELECT COUNT() AS n FROM devices
	queryDeviceJobs                  // SELECT * FROM devices.jobs
)

// projection is one selected property and the key it comes back under.
type projection struct {
	path pathOperand
	key  string
}

type devicesQuery struct {
	kind     queryKind
	fields   []projection
	countKey string
	where    expr // nil: every device or record
}

// twinRootKeys give single-segment projections the twin's own casing
// (SELECT DeviceId returns "deviceId").
var twinRootKeys = map[string]string{"deviceid": "deviceId", "status": "status", "connectionstate": "connectionState", "version": "version",
	"etag": "etag", "lastactivitytime": "lastActivityTime"}

// deviceJobsFields are the devices.jobs properties a condition may test.
var deviceJobsFields = []string{"jobId", "deviceId", "status", "jobType", "startTimeUtc", "endTimeUtc", "createdDateTimeUtc", "lastUpdatedDateTimeUtc"}

func deviceJobsScope(path []string) string {
	if len(path) == 3 && strings.EqualFold(path[0], "devices") && strings.EqualFold(path[1], "jobs") &&
		slices.ContainsFunc(deviceJobsFields, func(f string) bool { return strings.EqualFold(f, path[2]) }) {
		return ""
	}
	return fmt.Sprintf("unknown property %q: use devices.jobs.<%s>", strings.Join(path, "."), strings.Join(deviceJobsFields, "|"))
}

// parseDevicesQuery accepts
//
//	SELECT * | COUNT() [AS name] | path [AS name] {, path [AS name]}
//	FROM devices | devices.jobs
//	[WHERE condition]
//
// devices.jobs takes only SELECT * (as the docs say). GROUP BY, TOP,
// ORDER BY and devices.modules are not modelled and are refused.
func parseDevicesQuery(src string) (devicesQuery, error) {
	toks, err := lex(src)
	if err != nil {
		return devicesQuery{}, err
	}
	p := &parser{src: src, toks: toks}
	if err := p.expectKeyword("SELECT"); err != nil {
		return devicesQuery{}, err
	}
	selectTok := p.peek()
	q, err := p.selectList()
	if err != nil {
		return devicesQuery{}, err
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return devicesQuery{}, err
	}
	from := p.next()
	switch {
	case from.kind == tokPath && len(from.segs) == 1 && strings.EqualFold(from.segs[0], "devices"):
		p.scope = twinScope
		for _, f := range q.fields {
			if problem := twinScope(f.path); problem != "" {
				return devicesQuery{}, p.fail(selectTok, "%s", problem)
			}
		}
	case from.kind == tokPath && len(from.segs) == 2 && strings.EqualFold(from.segs[0], "devices") && strings.EqualFold(from.segs[1], "jobs"):
		if q.kind != queryTwins {
			return devicesQuery{}, p.fail(selectTok, "devices.jobs supports only SELECT *")
		}
		q.kind, p.scope = queryDeviceJobs, deviceJobsScope
	default:
		return devicesQuery{}, p.fail(from, "expected devices or devices.jobs after FROM, found %s", from.describe())
	}
	if p.peek().keyword("WHERE") {
		p.next()
		if q.where, err = p.where(); err != nil {
			return devicesQuery{}, err
		}
	}
	if t := p.peek(); t.kind != tokEOF {
		return devicesQuery{}, p.fail(t, "unexpected %s (GROUP BY, ORDER BY and TOP are not supported)", t.describe())
	}
	return q, nil
}

func (p *parser) selectList() (devicesQuery, error) {
	switch t := p.peek(); {
	case t.punct("*"):
		p.next()
		return devicesQuery{kind: queryTwins}, nil
	case t.keyword("COUNT"):
		p.next()
		if err := p.expectPunct("("); err != nil {
			return devicesQuery{}, err
		}
		if err := p.expectPunct(")"); err != nil {
			return devicesQuery{}, err
		}
		key, err := p.alias("$1")
		return devicesQuery{kind: queryCount, countKey: key}, err
	}
	q := devicesQuery{kind: queryProjection}
	for {
		t := p.next()
		if t.kind != tokPath || isReserved(t) {
			return devicesQuery{}, p.fail(t, "expected *, COUNT() or a property, found %s", t.describe())
		}
		key := t.segs[len(t.segs)-1]
		if k, ok := twinRootKeys[strings.ToLower(key)]; ok && len(t.segs) == 1 {
			key = k
		}
		key, err := p.alias(key)
		if err != nil {
			return devicesQuery{}, err
		}
		q.fields = append(q.fields, projection{path: pathOperand(t.segs), key: key})
		if !p.peek().punct(",") {
			return q, nil
		}
		p.next()
	}
}

// alias reads an optional "AS name", returning def without one.
func (p *parser) alias(def string) (string, error) {
	if !p.peek().keyword("AS") {
		return def, nil
	}
	p.next()
	t := p.next()
	if t.kind != tokPath || len(t.segs) != 1 || isReserved(t) {
		return "", p.fail(t, "expected a name after AS, found %s", t.describe())
	}
	return t.segs[0], nil
}

// requiredEquals finds a top-level conjunct `<field> = 'v'` in e, so that a
// devices.jobs query for one job need not build every job's records.
func requiredEquals(e expr, field string) (string, bool) {
	switch e := e.(type) {
	case andExpr:
		if v, ok := requiredEquals(e.l, field); ok {
			return v, ok
		}
		return requiredEquals(e.r, field)
	case cmpExpr:
		path, okP := e.l.(pathOperand)
		lit, okL := e.r.(literal)
		if !okP || !okL || e.op != "=" || !strings.EqualFold(path[len(path)-1], field) {
			return "", false
		}
		v, ok := lit.v.(string)
		return v, ok
	}
	return "", false
}

// recordDocument evaluates devices.jobs conditions against one record;
// times compare as the strings the record carries.
type recordDocument struct{ r *deviceJobRecord }

func (d recordDocument) value(path []string) (any, bool) {
	switch strings.ToLower(path[2]) {
	case "jobid":
		return d.r.JobID, true
	case "deviceid":
		return d.r.DeviceID, true
	case "status":
		return d.r.Status, true
	case "jobtype":
		return d.r.JobType, true
	case "starttimeutc":
		return zonelessString(d.r.StartTimeUtc), true
	case "endtimeutc":
		return zonelessString(d.r.EndTimeUtc), true
	case "createddatetimeutc":
		return hubTimeString(d.r.CreatedDateTimeUtc), true
	case "lastupdateddatetimeutc":
		return hubTimeString(d.r.LastUpdatedDateTimeUtc), true
	}
	return nil, false
}
