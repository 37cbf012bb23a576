package hub

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxQueryLength is IoT Hub's documented limit on a query expression, in
// characters. The docs state it for device queries; the hub also refuses
// longer job conditions (as 412 PreconditionFailed, reportedly), so the
// client applies it to both before anything is sent.
const MaxQueryLength = 8192

// CheckQueryLength refuses a query or condition over MaxQueryLength
// characters, naming what (e.g. "queryCondition") and how long it is. The
// error matches ErrInvalidRequest (nothing was sent) and ErrQueryTooLong
// (the same class as the hub's own refusal).
func CheckQueryLength(what, q string) error {
	if n := utf8.RuneCountInString(q); n > MaxQueryLength {
		return fmt.Errorf("%w: %w: %s is %d characters, over IoT Hub's limit of %d", ErrInvalidRequest, ErrQueryTooLong, what, n, MaxQueryLength)
	}
	return nil
}

// QuoteString writes s as a string literal of the IoT Hub query language:
// in single quotes, with a backslash before every backslash and single
// quote, which are the escapes the query-language docs define. SQL's
// doubled quote (”) is not documented for IoT Hub and must not be relied
// on. Every device or job id put into a query or a job condition goes
// through here, so a device id holding a quote stays one literal.
func QuoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}
