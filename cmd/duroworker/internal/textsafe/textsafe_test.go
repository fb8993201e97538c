package textsafe

import "testing"

func TestEscape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text: é, 日本, \\n <b>": "plain text: é, 日本, \\n <b>",
		"\x1b]0;owned\x07":           `\x1b]0;owned\x07`,
		"a\x1b[31mb":                 `a\x1b[31mb`,
		"a\u202eb\u2066c\u2069":      `a\u202eb\u2066c\u2069`,
		"c1\u0085\u009b31m":          `c1\u0085\u009b31m`,
		"bad\xffutf8":                `bad\xffutf8`,
		"del\x7f":                    `del\x7f`,
		"zero\u200bwidth\ufeff":      `zero\u200bwidth\ufeff`,
		"nbsp\u00a0":                 `nbsp\u00a0`,
		"line\nbreak\tok":            `line\x0abreak\x09ok`,
		"tag\U000e0041":              `tag\U000e0041`,
		"":                           "",
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
	if got := EscapeKeepLines("a\nb\tc\x07\u202e"); got != `a`+"\n"+`b`+"\t"+`c\x07\u202e` {
		t.Errorf("EscapeKeepLines: %q", got)
	}
}
