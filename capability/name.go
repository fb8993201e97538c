package capability

import (
	"fmt"
	"strings"
)

// MaxNameLen is the longest orchestration or activity name, in bytes, that
// ValidateName accepts.
const MaxNameLen = 256

// ValidateName reports whether name can be used as an orchestration or
// activity name. kind says which ("orchestration", "activity") and appears
// in the error message.
//
// A name must be non-empty, at most MaxNameLen bytes long, and contain no
// '{', '}', '\n' or '\r': names become part of Redis key names, where braces
// would change the cluster hash tag, and line breaks would corrupt
// line-oriented tools and logs. Names may contain ':' and '@'.
// The returned error wraps ErrInvalidName.
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
	return nil
}
