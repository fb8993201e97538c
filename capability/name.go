package capability

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameLen is the longest orchestration or activity name, in bytes, that
// ValidateName accepts.
const MaxNameLen = 256

// ValidateName reports whether name can be used as an orchestration or
// activity name. kind says which ("orchestration", "activity") and appears
// in the error message.
//
// A name must be non-empty, at most MaxNameLen bytes long, valid UTF-8,
// and contain no '{', '}', control characters (line breaks, tabs, ESC, DEL,
// C1 controls) or bidirectional overrides and isolates (U+202A-U+202E,
// U+2066-U+2069, and the marks U+200E, U+200F, U+061C): names become part
// of Redis key names, where braces would change the cluster hash tag, and
// they are printed by tools and logs, where control characters would drive
// the terminal and bidi controls would show a name as another.
// Names may contain ':' and '@'. The returned error wraps ErrInvalidName.
//
// The engine registries, the orchestration context and the client call it
// for every orchestration and activity name they take.
func ValidateName(kind, name string) error {
	if kind == "" {
		kind = "handler"
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %s name %q... is %d bytes long, more than the limit of %d bytes",
			ErrInvalidName, kind, name[:32], len(name), MaxNameLen)
	}
	if i := strings.IndexAny(name, "{}"); i >= 0 {
		return fmt.Errorf("%w: %s name %q contains %q: names become part of Redis key names, where braces would change the cluster hash tag",
			ErrInvalidName, kind, name, name[i])
	}
	if strings.ContainsAny(name, "\n\r") {
		return fmt.Errorf("%w: %s name %q contains a line break", ErrInvalidName, kind, name)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s name %q is not valid UTF-8", ErrInvalidName, kind, name)
	}
	for _, r := range name {
		switch {
		case unicode.IsControl(r):
			return fmt.Errorf("%w: %s name %q contains the control character %U", ErrInvalidName, kind, name, r)
		case isBidiControl(r):
			return fmt.Errorf("%w: %s name %q contains the bidirectional text control %U, which makes it display as another text", ErrInvalidName, kind, name, r)
		}
	}
	return nil
}

// isBidiControl reports whether r is a bidirectional override, embedding,
// isolate or mark.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}
