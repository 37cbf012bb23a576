package hubsim

import (
	"slices"
	"strconv"
	"strings"
)

// The WHERE grammar of device queries and job queryConditions, parsed by
// recursive descent into an expression tree:
//
//	or      := and { OR and }
//	and     := not { AND not }
//	not     := NOT not | primary
//	primary := '(' or ')' | IS_DEFINED '(' path ')'
//	         | STARTSWITH '(' path ',' string ')'
//	         | operand (= | != | <> | < | > | <= | >=) operand
//	         | path (IN | NIN) '[' literal { ',' literal } ']'
//	operand := path | literal
//	literal := string | number | TRUE | FALSE | NULL
//
// Keywords are case-insensitive. STARTSWITH is not in the documented
// grammar but real twin queries accept it (and refuse STARTS_WITH, the
// routing spelling), so a client may rely on it. Which paths exist depends on what is
// queried (twins or devices.jobs); a scope checks them while parsing, so
// an unknown property is an error with its position, not a silent miss.

// expr is a boolean condition over one document (a twin or a devices.jobs
// record). String prints it back in the grammar, fully parenthesised, so
// that printing and re-parsing is an identity.
type expr interface {
	eval(d document) bool
	String() string
}

// document is what a condition is evaluated against: value resolves a path
// (ok is false when the property is not defined).
type document interface {
	value(path []string) (v any, ok bool)
}

type (
	andExpr     struct{ l, r expr }
	orExpr      struct{ l, r expr }
	notExpr     struct{ x expr }
	definedExpr struct{ path pathOperand }
	prefixExpr  struct {
		path   pathOperand
		prefix string
	}
	cmpExpr struct {
		op   string // canonical: = != < > <= >=
		l, r operand
	}
	inExpr struct {
		path   pathOperand
		values []any
		negate bool // NIN
	}
)

// operand is a path or a literal in a comparison.
type operand interface {
	resolve(d document) (any, bool)
	String() string
}

type (
	pathOperand []string
	literal     struct{ v any } // string, float64, bool or nil
)

func (e andExpr) eval(d document) bool     { return e.l.eval(d) && e.r.eval(d) }
func (e orExpr) eval(d document) bool      { return e.l.eval(d) || e.r.eval(d) }
func (e notExpr) eval(d document) bool     { return !e.x.eval(d) }
func (e definedExpr) eval(d document) bool { _, ok := d.value(e.path); return ok }

// eval is true for a string property starting with the prefix; an
// undefined or non-string property never starts with anything.
func (e prefixExpr) eval(d document) bool {
	v, _ := d.value(e.path)
	s, ok := v.(string)
	return ok && strings.HasPrefix(s, e.prefix)
}

func (e andExpr) String() string     { return "(" + e.l.String() + " AND " + e.r.String() + ")" }
func (e orExpr) String() string      { return "(" + e.l.String() + " OR " + e.r.String() + ")" }
func (e notExpr) String() string     { return "NOT " + e.x.String() }
func (e definedExpr) String() string { return "IS_DEFINED(" + e.path.String() + ")" }
func (e prefixExpr) String() string {
	return "STARTSWITH(" + e.path.String() + ", " + quoteLiteral(e.prefix) + ")"
}
func (e cmpExpr) String() string { return e.l.String() + " " + e.op + " " + e.r.String() }

func (e inExpr) String() string {
	items := make([]string, len(e.values))
	for i, v := range e.values {
		items[i] = literal{v}.String()
	}
	kw := " IN ["
	if e.negate {
		kw = " NIN ["
	}
	return e.path.String() + kw + strings.Join(items, ", ") + "]"
}

// eval compares two defined primitives. Comparisons with an undefined
// property, or with an object or array, are false whatever the operator
// (so `x != 'a'` does not match twins without x); = and != between
// different primitive types are false and true; ordering needs two numbers
// or two strings (strings compare bytewise, as ISO times must).
func (e cmpExpr) eval(d document) bool {
	a, okA := e.l.resolve(d)
	b, okB := e.r.resolve(d)
	if !okA || !okB || !primitive(a) || !primitive(b) {
		return false
	}
	switch e.op {
	case "=":
		return a == b
	case "!=":
		return a != b
	}
	c, ok := order(a, b)
	if !ok {
		return false
	}
	switch e.op {
	case "<":
		return c < 0
	case ">":
		return c > 0
	case "<=":
		return c <= 0
	}
	return c >= 0
}

func (e inExpr) eval(d document) bool {
	v, ok := d.value(e.path)
	if !ok || !primitive(v) {
		return false
	}
	return slices.Contains(e.values, v) != e.negate
}

func primitive(v any) bool {
	switch v.(type) {
	case nil, string, float64, bool:
		return true
	}
	return false
}

func order(a, b any) (int, bool) {
	switch a := a.(type) {
	case float64:
		if b, ok := b.(float64); ok {
			return cmpFloat(a, b), true
		}
	case string:
		if b, ok := b.(string); ok {
			return strings.Compare(a, b), true
		}
	}
	return 0, false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (p pathOperand) resolve(d document) (any, bool) { return d.value(p) }

func (p pathOperand) String() string {
	segs := make([]string, len(p))
	for i, s := range p {
		segs[i] = s
		if !plainSegment(s) {
			segs[i] = "[[" + s + "]]"
		}
	}
	return strings.Join(segs, ".")
}

func plainSegment(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}

func (l literal) resolve(document) (any, bool) { return l.v, true }

func (l literal) String() string {
	switch v := l.v.(type) {
	case string:
		return quoteLiteral(v)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return "null"
}

// quoteLiteral quotes s as the documentation says a client must: single
// quotes, with \' and \\ escaped.
func quoteLiteral(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// scope decides which paths a condition may name; it returns a message
// when path is not one of them.
type scope func(path []string) (problem string)

// parser walks a token list (always ending with tokEOF).
type parser struct {
	src   string
	toks  []token
	pos   int
	scope scope
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *parser) fail(t token, format string, args ...any) error {
	return errAt(p.src, t.pos, format, args...)
}

func (p *parser) expectKeyword(kw string) error {
	if t := p.next(); !t.keyword(kw) {
		return p.fail(t, "expected %s, found %s", kw, t.describe())
	}
	return nil
}

func (p *parser) expectPunct(s string) error {
	if t := p.next(); !t.punct(s) {
		return p.fail(t, "expected %q, found %s", s, t.describe())
	}
	return nil
}

// reserved are the words that cannot be a property path.
var reserved = []string{"AND", "OR", "NOT", "IN", "NIN", "IS_DEFINED", "STARTSWITH", "TRUE", "FALSE", "NULL", "SELECT", "FROM", "WHERE", "AS", "COUNT", "GROUP", "BY", "TOP"}

func isReserved(t token) bool {
	return slices.ContainsFunc(reserved, t.keyword)
}

// parseWhere parses a whole condition: every token must be consumed.
func parseWhere(src string, sc scope) (expr, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{src: src, toks: toks, scope: sc}
	e, err := p.where()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.fail(t, "unexpected %s after the condition", t.describe())
	}
	return e, nil
}

// where parses a condition up to the first token that cannot continue it.
func (p *parser) where() (expr, error) { return p.or() }

func (p *parser) or() (expr, error) {
	l, err := p.and()
	for err == nil && p.peek().keyword("OR") {
		p.next()
		var r expr
		if r, err = p.and(); err == nil {
			l = orExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	for err == nil && p.peek().keyword("AND") {
		p.next()
		var r expr
		if r, err = p.not(); err == nil {
			l = andExpr{l, r}
		}
	}
	return l, err
}

func (p *parser) not() (expr, error) {
	if !p.peek().keyword("NOT") {
		return p.primary()
	}
	p.next()
	x, err := p.not()
	return notExpr{x}, err
}

func (p *parser) primary() (expr, error) {
	t := p.peek()
	switch {
	case t.punct("("):
		p.next()
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expectPunct(")")
	case t.keyword("IS_DEFINED"):
		p.next()
		if err := p.expectPunct("("); err != nil {
			return nil, err
		}
		path, err := p.path()
		if err != nil {
			return nil, err
		}
		return definedExpr{path}, p.expectPunct(")")
	case t.keyword("STARTSWITH"):
		p.next()
		return p.startsWith()
	}
	l, err := p.operand()
	if err != nil {
		return nil, err
	}
	op := p.next()
	switch {
	case op.keyword("IN"), op.keyword("NIN"):
		path, ok := l.(pathOperand)
		if !ok {
			return nil, p.fail(op, "%s needs a property on its left", strings.ToUpper(op.text))
		}
		values, err := p.literalList()
		return inExpr{path: path, values: values, negate: op.keyword("NIN")}, err
	case op.kind == tokPunct && slices.Contains([]string{"=", "!=", "<>", "<", ">", "<=", ">="}, op.text):
		r, err := p.operand()
		if err != nil {
			return nil, err
		}
		_, lPath := l.(pathOperand)
		if _, rPath := r.(pathOperand); !lPath && !rPath {
			return nil, p.fail(t, "a comparison needs a property on one side")
		}
		canonical := op.text
		if canonical == "<>" {
			canonical = "!="
		}
		return cmpExpr{op: canonical, l: l, r: r}, nil
	}
	return nil, p.fail(op, "expected a comparison operator, IN or NIN, found %s", op.describe())
}

// startsWith parses the arguments of STARTSWITH: (path, 'prefix').
func (p *parser) startsWith() (expr, error) {
	if err := p.expectPunct("("); err != nil {
		return nil, err
	}
	path, err := p.path()
	if err != nil {
		return nil, err
	}
	if err := p.expectPunct(","); err != nil {
		return nil, err
	}
	t := p.next()
	if t.kind != tokString {
		return nil, p.fail(t, "STARTSWITH needs a string prefix, found %s", t.describe())
	}
	return prefixExpr{path: path, prefix: t.text}, p.expectPunct(")")
}

func (p *parser) operand() (operand, error) {
	if t := p.peek(); t.kind == tokPath && !t.keyword("TRUE") && !t.keyword("FALSE") && !t.keyword("NULL") {
		return p.path()
	}
	v, err := p.literal()
	return literal{v}, err
}

// path reads a property path the scope accepts.
func (p *parser) path() (pathOperand, error) {
	t := p.next()
	if t.kind != tokPath || isReserved(t) {
		return nil, p.fail(t, "expected a property, found %s", t.describe())
	}
	if problem := p.scope(t.segs); problem != "" {
		return nil, p.fail(t, "%s", problem)
	}
	return pathOperand(t.segs), nil
}

func (p *parser) literal() (any, error) {
	t := p.next()
	switch {
	case t.kind == tokString:
		return t.text, nil
	case t.kind == tokNumber:
		return t.num, nil
	case t.keyword("TRUE"):
		return true, nil
	case t.keyword("FALSE"):
		return false, nil
	case t.keyword("NULL"):
		return nil, nil
	}
	return nil, p.fail(t, "expected a value, found %s", t.describe())
}

// literalList parses [v, …] with at least one value.
func (p *parser) literalList() ([]any, error) {
	if err := p.expectPunct("["); err != nil {
		return nil, err
	}
	var values []any
	for {
		v, err := p.literal()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		if t := p.next(); t.punct("]") {
			return values, nil
		} else if !t.punct(",") {
			return nil, p.fail(t, "expected \",\" or \"]\", found %s", t.describe())
		}
	}
}
