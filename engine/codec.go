package engine

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/duroworker/duroworker/internal/replay"
)

// Encode converts a typed value to the string payload form used for inputs
// and outputs. A string is passed through as is (not JSON-quoted), so typed
// and untyped callers interoperate; anything else becomes JSON, with '<',
// '>' and '&' as themselves. A value holding a string that is not valid
// UTF-8 is an error rather than a payload with U+FFFD in place of its bytes.
func Encode(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := replay.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding %T payload: %w", v, err)
	}
	if replacedInvalidUTF8(b) {
		return "", fmt.Errorf("encoding %T payload: a string in it is not valid UTF-8 (JSON would replace its invalid bytes with U+FFFD); use []byte for binary data", v)
	}
	return string(b), nil
}

// replacedInvalidUTF8 reports whether encoding/json replaced invalid UTF-8
// while encoding b: it writes each invalid byte as the escape \ufffd, while
// a genuine U+FFFD in a string is written as itself, and a backslash in a
// string as \\. (A json.Marshaler that writes \ufffd itself is reported too.)
func replacedInvalidUTF8(b []byte) bool {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] == 'u' && i+6 <= len(b) && string(b[i+2:i+6]) == "fffd" {
			return true
		}
		i++ // skip the escaped character
	}
	return false
}

// Decode converts a string payload to T. For a string T, a JSON string
// literal is unquoted and any other text is returned as is. For other types
// the payload must be valid JSON for T.
func Decode[T any](s string) (T, error) {
	var out T
	if p, ok := any(&out).(*string); ok {
		var unq string
		if len(s) > 0 && s[0] == '"' && json.Unmarshal([]byte(s), &unq) == nil {
			*p = unq
		} else {
			*p = s
		}
		return out, nil
	}
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return out, fmt.Errorf("decoding payload as %s: %w", reflect.TypeFor[T](), err)
	}
	return out, nil
}
