package main

import "testing"

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text: é, 日本, \\n": "plain text: é, 日本, \\n",
		"\x1b]0;owned\x07":       `\x1b]0;owned\x07`,
		"a\u202eb\u2066c\u2069":  `a\u202eb\u2066c\u2069`,
		"c1\u0085\u009b31m":      `c1\u0085\u009b31m`,
		"bad\xffutf8":            `bad\xffutf8`,
		"del\x7f":                `del\x7f`,
		"zero\u200bwidth\ufeff":  `zero\u200bwidth\ufeff`,
		"nbsp\u00a0":             `nbsp\u00a0`,
		"":                       "",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := cell("a\nb\tc\x1b[2J"); got != `a b c\x1b[2J` {
		t.Errorf("cell: %q", got)
	}
}
