package hubsim

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The lexer of the IoT Hub query language as the simulator understands it.
// String literals take only the documented backslash escapes (\' \" \\ and
// \uXXXX): SQL-style doubling ('') is not documented for IoT Hub, so
// 'it''s' lexes as two adjacent strings and the parser refuses it. A
// client that quotes ids the SQL way fails its tests here instead of in
// production.

type tokenKind int

const (
	tokEOF    tokenKind = iota
	tokPath             // deviceId, tags.site, tags.[[group]], keywords (one segment)
	tokString           // '…' or "…", unescaped
	tokNumber           // 12, -3.5, 1e3, 0x1F
	tokPunct            // * ( ) [ ] , = != <> < > <= >=
)

type token struct {
	kind tokenKind
	pos  int      // byte offset in the source
	text string   // punctuation, unescaped string, or the source text
	segs []string // tokPath: the dot-separated segments
	num  float64  // tokNumber
}

// keyword reports whether t is the one-segment word kw, case-insensitively
// (the query language's keywords are case-insensitive).
func (t token) keyword(kw string) bool {
	return t.kind == tokPath && len(t.segs) == 1 && strings.EqualFold(t.segs[0], kw)
}

func (t token) punct(p string) bool { return t.kind == tokPunct && t.text == p }

// describe names a token in an error message.
func (t token) describe() string {
	if t.kind == tokEOF {
		return "end of input"
	}
	return strconv.Quote(t.text)
}

// QueryError is a query or condition the simulator refuses, with the
// 1-based character position the problem was found at.
type QueryError struct {
	Pos int // characters, 1-based
	Msg string
}

func (e *QueryError) Error() string { return fmt.Sprintf("%s at position %d", e.Msg, e.Pos) }

// errAt builds a QueryError at byte offset off of src.
func errAt(src string, off int, format string, args ...any) *QueryError {
	off = min(max(off, 0), len(src))
	return &QueryError{Pos: utf8.RuneCountInString(src[:off]) + 1, Msg: fmt.Sprintf(format, args...)}
}

// twoCharOps are the comparison operators of two characters.
var twoCharOps = []string{"!=", "<>", "<=", ">="}

func lex(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case i+1 < len(src) && containsOp(src[i:i+2]):
			toks = append(toks, token{kind: tokPunct, pos: i, text: src[i : i+2]})
			i += 2
		case c == '[' && i+1 < len(src) && src[i+1] == '[', isIdentStart(c):
			t, next, err := lexPath(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = next
		case strings.IndexByte("*()[],=<>", c) >= 0:
			toks = append(toks, token{kind: tokPunct, pos: i, text: string(c)})
			i++
		case c == '\'' || c == '"':
			t, next, err := lexString(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = next
		case c == '-' || c == '.' || isDigit(c):
			t, next, err := lexNumber(src, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i = next
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, errAt(src, i, "unexpected character %q", r)
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(src)}), nil
}

func containsOp(s string) bool {
	for _, op := range twoCharOps {
		if s == op {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}
func isIdentByte(c byte) bool { return isIdentStart(c) || isDigit(c) }

// lexPath reads segments separated by dots; a segment is an identifier or
// [[any text]] (the documented way to name a property such as "group"
// that is a keyword).
func lexPath(src string, start int) (token, int, error) {
	var segs []string
	i := start
	for {
		switch {
		case strings.HasPrefix(src[i:], "[["):
			end := strings.Index(src[i+2:], "]]")
			if end < 0 {
				return token{}, 0, errAt(src, i, "unterminated [[name]]")
			}
			if end == 0 {
				return token{}, 0, errAt(src, i, "empty [[name]]")
			}
			segs = append(segs, src[i+2:i+2+end])
			i += end + 4
		case i < len(src) && isIdentStart(src[i]):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			segs = append(segs, src[i:j])
			i = j
		default:
			return token{}, 0, errAt(src, i, "expected a property name")
		}
		if i >= len(src) || src[i] != '.' {
			return token{kind: tokPath, pos: start, text: src[start:i], segs: segs}, i, nil
		}
		i++
	}
}

// lexString reads a quoted literal with the documented escapes only.
func lexString(src string, start int) (token, int, error) {
	quote := src[start]
	var b strings.Builder
	for i := start + 1; i < len(src); {
		c := src[i]
		switch {
		case c == quote:
			return token{kind: tokString, pos: start, text: b.String()}, i + 1, nil
		case c != '\\':
			b.WriteByte(c)
			i++
		case i+1 >= len(src):
			return token{}, 0, errAt(src, i, "unterminated string literal")
		case src[i+1] == '\'' || src[i+1] == '"' || src[i+1] == '\\':
			b.WriteByte(src[i+1])
			i += 2
		case src[i+1] == 'u':
			if i+6 > len(src) {
				return token{}, 0, errAt(src, i, "invalid \\u escape")
			}
			n, err := strconv.ParseUint(src[i+2:i+6], 16, 16)
			if err != nil {
				return token{}, 0, errAt(src, i, "invalid \\u escape")
			}
			b.WriteRune(rune(n))
			i += 6
		default:
			return token{}, 0, errAt(src, i, "invalid escape \\%c (only \\' \\\" \\\\ and \\uXXXX are allowed)", src[i+1])
		}
	}
	return token{}, 0, errAt(src, start, "unterminated string literal")
}

// lexNumber reads a decimal (optionally signed, fractional, with exponent)
// or 0x hexadecimal number.
func lexNumber(src string, start int) (token, int, error) {
	i := start
	if src[i] == '-' {
		i++
	}
	var v float64
	if strings.HasPrefix(src[i:], "0x") || strings.HasPrefix(src[i:], "0X") {
		j := i + 2
		for j < len(src) && strings.IndexByte("0123456789abcdefABCDEF", src[j]) >= 0 {
			j++
		}
		n, err := strconv.ParseUint(src[i+2:j], 16, 64)
		if err != nil {
			return token{}, 0, errAt(src, start, "invalid hexadecimal number")
		}
		v, i = float64(n), j
	} else {
		j := i
		for j < len(src) && (isDigit(src[j]) || src[j] == '.') {
			j++
		}
		if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
			j++
			if j < len(src) && (src[j] == '+' || src[j] == '-') {
				j++
			}
			for j < len(src) && isDigit(src[j]) {
				j++
			}
		}
		f, err := strconv.ParseFloat(src[i:j], 64)
		if err != nil || i == j || !isDigit(src[i]) && src[i] != '.' {
			return token{}, 0, errAt(src, start, "invalid number %q", src[start:j])
		}
		v, i = f, j
	}
	if i < len(src) && isIdentByte(src[i]) {
		return token{}, 0, errAt(src, i, "unexpected character after a number")
	}
	if src[start] == '-' {
		v = -v
	}
	return token{kind: tokNumber, pos: start, text: src[start:i], num: v}, i, nil
}
