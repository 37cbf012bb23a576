package hubsim

import (
	"fmt"
	"slices"
	"strings"
)

// This file holds the two small grammars the simulator understands: a job's
// queryCondition and the devices.jobs SQL of POST /devices/query. Both are
// strict subsets of the IoT Hub query language; anything outside them is
// 400 ArgumentInvalid, so a client that builds other SQL finds out in tests.

type tokenKind int

const (
	tokIdent  tokenKind = iota // deviceId, tags.site, devices.jobs.jobId, keywords
	tokString                  // 'text' with '' as an escaped quote
	tokPunct                   // * = [ ] , ( )
)

type token struct {
	kind tokenKind
	text string // identifier, unescaped string, or the punctuation character
}

// keyword reports whether t is the identifier kw, case-insensitively (the
// IoT Hub query language's keywords are case-insensitive; property names
// are not).
func (t token) keyword(kw string) bool { return t.kind == tokIdent && strings.EqualFold(t.text, kw) }

func (t token) punct(p string) bool { return t.kind == tokPunct && t.text == p }

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case strings.IndexByte("*=[],()", c) >= 0:
			toks = append(toks, token{tokPunct, string(c)})
			i++
		case c == '\'':
			var b strings.Builder
			i++
			for {
				if i >= len(src) {
					return nil, fmt.Errorf("unterminated string literal")
				}
				if src[i] == '\'' {
					if i+1 < len(src) && src[i+1] == '\'' {
						b.WriteByte('\'')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(src[i])
				i++
			}
			toks = append(toks, token{tokString, b.String()})
		case isIdentByte(c, true):
			start := i
			for i < len(src) && isIdentByte(src[i], false) {
				i++
			}
			toks = append(toks, token{tokIdent, src[start:i]})
		default:
			return nil, fmt.Errorf("unexpected character %q at offset %d", c, i)
		}
	}
	return toks, nil
}

func isIdentByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		return true
	case c >= '0' && c <= '9', c == '.':
		return !first
	}
	return false
}

// parser walks a token list; every grammar rule reports a plain error that
// the handler turns into 400 ArgumentInvalid.
type parser struct {
	toks []token
	pos  int
}

func (p *parser) done() bool { return p.pos >= len(p.toks) }

func (p *parser) peek() token {
	if p.done() {
		return token{kind: tokPunct, text: "end of input"}
	}
	return p.toks[p.pos]
}

func (p *parser) next() token { t := p.peek(); p.pos++; return t }

func (p *parser) expectKeyword(kw string) error {
	if t := p.next(); !t.keyword(kw) {
		return fmt.Errorf("expected %s, found %q", kw, t.text)
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if t := p.next(); !t.punct(s) {
		return fmt.Errorf("expected %q, found %q", s, t.text)
	}
	return nil
}

func (p *parser) expectString() (string, error) {
	t := p.next()
	if t.kind != tokString {
		return "", fmt.Errorf("expected a quoted string, found %q", t.text)
	}
	return t.text, nil
}

// condition is a parsed queryCondition: all devices, or every predicate
// true (AND).
type condition struct {
	all   bool
	preds []predicate
}

// predicate is "field = 'v'" or "field IN ['a','b']"; field is "deviceId"
// or a tag path without its "tags." prefix.
type predicate struct {
	tag    string // empty: the predicate is on deviceId
	values []string
}

// parseCondition accepts `*`, `deviceId = '…'`, `deviceId IN ['…',…]` and
// `tags.<name> = '…'` joined by AND. Property names are case-sensitive;
// keywords are not.
func parseCondition(src string) (condition, error) {
	toks, err := lex(src)
	if err != nil {
		return condition{}, err
	}
	if len(toks) == 0 {
		return condition{}, fmt.Errorf("queryCondition is empty")
	}
	if len(toks) == 1 && toks[0].punct("*") {
		return condition{all: true}, nil
	}
	p := &parser{toks: toks}
	var c condition
	for {
		pred, err := p.conditionPredicate()
		if err != nil {
			return condition{}, err
		}
		c.preds = append(c.preds, pred)
		if p.done() {
			return c, nil
		}
		if err := p.expectKeyword("AND"); err != nil {
			return condition{}, err
		}
	}
}

func (p *parser) conditionPredicate() (predicate, error) {
	field := p.next()
	switch {
	case field.kind == tokIdent && field.text == "deviceId":
		if p.peek().keyword("IN") {
			p.next()
			values, err := p.stringList()
			return predicate{values: values}, err
		}
		if err := p.expectPunct("="); err != nil {
			return predicate{}, err
		}
		v, err := p.expectString()
		return predicate{values: []string{v}}, err
	case field.kind == tokIdent && strings.HasPrefix(field.text, "tags.") && validPath(strings.TrimPrefix(field.text, "tags.")):
		if err := p.expectPunct("="); err != nil {
			return predicate{}, err
		}
		v, err := p.expectString()
		return predicate{tag: strings.TrimPrefix(field.text, "tags."), values: []string{v}}, err
	}
	return predicate{}, fmt.Errorf("unsupported condition at %q: use deviceId = '…', deviceId IN ['…'], tags.<name> = '…' or *", field.text)
}

// stringList parses ['a', 'b', …] (at least one element).
func (p *parser) stringList() ([]string, error) {
	if err := p.expectPunct("["); err != nil {
		return nil, err
	}
	var values []string
	for {
		v, err := p.expectString()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		if p.peek().punct("]") {
			p.next()
			return values, nil
		}
		if err := p.expectPunct(","); err != nil {
			return nil, err
		}
	}
}

func validPath(path string) bool {
	for seg := range strings.SplitSeq(path, ".") {
		if seg == "" || strings.Contains(seg, "$") {
			return false
		}
	}
	return true
}

// matches reports whether a registry device satisfies the condition.
func (c condition) matches(d device) bool {
	if c.all {
		return true
	}
	for _, p := range c.preds {
		v := d.id
		if p.tag != "" {
			var ok bool
			if v, ok = d.tags[p.tag]; !ok {
				return false
			}
		}
		if !slices.Contains(p.values, v) {
			return false
		}
	}
	return true
}

// maxQueryLength is the documented limit of the IoT Hub query text.
const maxQueryLength = 8192

// deviceJobsFields are the devices.jobs properties a WHERE clause may test.
var deviceJobsFields = []string{"jobId", "deviceId", "status", "jobType"}

// deviceJobsQuery is a parsed SELECT * FROM devices.jobs [WHERE …]: a set of
// required field values (AND of equalities).
type deviceJobsQuery struct {
	equals map[string]string
}

// parseDeviceJobsQuery accepts
//
//	SELECT * FROM devices.jobs [WHERE devices.jobs.<field> = '…' [AND …]]
//
// with <field> one of jobId, deviceId, status, jobType. Real hubs allow more
// (any boolean condition on devices.jobs); projections, aggregates and
// FROM devices are what the reference says never works for jobs, and the
// simulator rejects everything outside the subset with ArgumentInvalid.
func parseDeviceJobsQuery(src string) (deviceJobsQuery, error) {
	if len(src) > maxQueryLength {
		return deviceJobsQuery{}, fmt.Errorf("query is longer than %d characters", maxQueryLength)
	}
	toks, err := lex(src)
	if err != nil {
		return deviceJobsQuery{}, err
	}
	p := &parser{toks: toks}
	if err := p.expectKeyword("SELECT"); err != nil {
		return deviceJobsQuery{}, err
	}
	if err := p.expectPunct("*"); err != nil {
		return deviceJobsQuery{}, fmt.Errorf("only SELECT * is supported on devices.jobs: %w", err)
	}
	if err := p.expectKeyword("FROM"); err != nil {
		return deviceJobsQuery{}, err
	}
	if err := p.expectKeyword("devices.jobs"); err != nil {
		return deviceJobsQuery{}, err
	}
	q := deviceJobsQuery{equals: map[string]string{}}
	if p.done() {
		return q, nil
	}
	if err := p.expectKeyword("WHERE"); err != nil {
		return deviceJobsQuery{}, err
	}
	for {
		field := p.next()
		const prefix = "devices.jobs."
		hasPrefix := len(field.text) > len(prefix) && strings.EqualFold(field.text[:len(prefix)], prefix)
		name := field.text[min(len(prefix), len(field.text)):]
		if field.kind != tokIdent || !hasPrefix || !slices.Contains(deviceJobsFields, name) {
			return deviceJobsQuery{}, fmt.Errorf("unsupported condition at %q: use devices.jobs.<%s> = '…'", field.text, strings.Join(deviceJobsFields, "|"))
		}
		if err := p.expectPunct("="); err != nil {
			return deviceJobsQuery{}, err
		}
		v, err := p.expectString()
		if err != nil {
			return deviceJobsQuery{}, err
		}
		if prev, dup := q.equals[name]; dup && prev != v {
			return deviceJobsQuery{}, fmt.Errorf("conflicting conditions on %s", name)
		}
		q.equals[name] = v
		if p.done() {
			return q, nil
		}
		if err := p.expectKeyword("AND"); err != nil {
			return deviceJobsQuery{}, err
		}
	}
}
