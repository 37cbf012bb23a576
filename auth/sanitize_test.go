package auth

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// hiddenOrControl reports a rune that must never reach a page or a log from
// IdP text: controls, separators that break lines, and format characters
// (bidi embeddings, overrides, isolates and marks, zero-width characters).
func hiddenOrControl(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

func TestSanitizeIdPText(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{name: "PlainTextUnchanged", in: "User cancelled the sign-in.", n: 300, want: "User cancelled the sign-in."},
		{name: "RightToLeftOverride", in: "invoice\u202Egnp.exe", n: 300, want: "invoicegnp.exe"},
		{name: "EveryBidiControl", in: "a\u202Ab\u202Bc\u202Cd\u202De\u202Ef\u2066g\u2067h\u2068i\u2069j\u200Ek\u200Fl\u061Cm", n: 300, want: "abcdefghijklm"},
		{name: "ZeroWidthAndBOM", in: "ad\u200Bmin\u200C\u200D\u2060\uFEFF", n: 300, want: "admin"},
		{name: "SoftHyphenAndTagCharacters", in: "pay\u00ADpal\U000E0041\U000E007F", n: 300, want: "paypal"},
		{name: "ControlsBecomeSpaces", in: "line1\r\nX-Injected: 1\x00\x1b[31m\u0085\u2028\u2029end", n: 300, want: "line1  X-Injected: 1  [31m   end"},
		{name: "InvalidUTF8Replaced", in: "bad\xff\xfebytes", n: 300, want: "bad\uFFFD\uFFFDbytes"},
		{name: "CutAfterNRunes", in: strings.Repeat("é", 10), n: 4, want: "éééé…"},
		{name: "DroppedCharactersDoNotCount", in: strings.Repeat("\u202E", 50) + "abcdef", n: 4, want: "abcd…"},
		{name: "ExactlyNRunesNotCut", in: "abcd", n: 4, want: "abcd"},
		{name: "LegitimateRightToLeftTextKept", in: "שלום עולם", n: 300, want: "שלום עולם"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sanitizeIdPText(tt.in, tt.n)
			if got != tt.want {
				t.Errorf("sanitizeIdPText(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
			}
			if i := strings.IndexFunc(got, hiddenOrControl); i >= 0 {
				t.Errorf("result %q keeps a hidden or control character at byte %d", got, i)
			}
			if !utf8.ValidString(got) {
				t.Errorf("result %q is not valid UTF-8", got)
			}
		})
	}
}

// FuzzSanitizeIdPText: whatever the IdP (or whoever sends a browser to the
// callback) chooses, the result is short, valid and has nothing hidden.
func FuzzSanitizeIdPText(f *testing.F) {
	for _, s := range []string{"\u202Egnp.exe", "a\u2066b\u2069\r\n", "\xff", strings.Repeat("x", 400)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := sanitizeIdPText(in, maxIdPDescription)
		if utf8.RuneCountInString(got) > maxIdPDescription+1 || !utf8.ValidString(got) || strings.IndexFunc(got, hiddenOrControl) >= 0 {
			t.Fatalf("sanitizeIdPText(%q) = %q", in, got)
		}
	})
}
