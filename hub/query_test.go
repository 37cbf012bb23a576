package hub

import (
	"errors"
	"strings"
	"testing"
)

// TestQuoteString pins the documented escapes: a backslash before every
// backslash and single quote, never SQL's doubled quote.
func TestQuoteString(t *testing.T) {
	for in, want := range map[string]string{
		"":            `''`,
		"dev-1":       `'dev-1'`,
		"it's":        `'it\'s'`,
		`back\slash`:  `'back\\slash'`,
		`\'`:          `'\\\''`,
		`x' OR 1=1 -`: `'x\' OR 1=1 -'`,
		`"double"`:    `'"double"'`,
		"jöb":         `'jöb'`,
	} {
		if got := QuoteString(in); got != want {
			t.Errorf("QuoteString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestCheckQueryLength(t *testing.T) {
	for _, tc := range []struct {
		q    string
		fail bool
	}{
		{"", false},
		{strings.Repeat("x", MaxQueryLength), false},
		{strings.Repeat("ü", MaxQueryLength), false}, // characters, not bytes
		{strings.Repeat("x", MaxQueryLength+1), true},
	} {
		err := CheckQueryLength("query", tc.q)
		if (err != nil) != tc.fail || tc.fail && (!errors.Is(err, ErrInvalidRequest) || !errors.Is(err, ErrQueryTooLong) || !strings.Contains(err.Error(), "8193 characters")) {
			t.Errorf("CheckQueryLength(%d bytes) = %v, want failure %v", len(tc.q), err, tc.fail)
		}
	}
}
