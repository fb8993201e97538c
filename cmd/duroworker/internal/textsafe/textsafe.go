// Package textsafe shows untrusted text (stored payloads, ids, names,
// reasons) so that it can neither act on a terminal nor hide or reorder
// itself on a page: the CLI's human output and the dashboard escape with it.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with what a terminal would interpret or a reader could
// not see escaped: control characters (C0 with ESC, newline and tab, DEL,
// C1) as \xNN or \uNNNN, bidirectional overrides and isolates and other
// invisible format characters (zero-width ones) and spaces other than
// ' ' as \uNNNN (\UNNNNNNNN above U+FFFF), and invalid UTF-8 bytes as
// \xNN. Printable text, ' ' and backslashes are left as they are.
func Escape(s string) string { return escape(s, false) }

// EscapeKeepLines is Escape that keeps newlines and tabs, for multi-line
// text such as payloads.
func EscapeKeepLines(s string) string { return escape(s, true) }

func escape(s string, keepLines bool) string {
	shown := func(r rune) bool { return showable(r) || keepLines && (r == '\n' || r == '\t') }
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !shown(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case shown(r):
			b.WriteString(s[i : i+size])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}

// showable reports whether r prints as itself: a graphic character or a
// space, not a control or format character.
func showable(r rune) bool {
	return r == ' ' || (unicode.IsGraphic(r) && !unicode.Is(unicode.Cf, r) && !unicode.IsSpace(r))
}
