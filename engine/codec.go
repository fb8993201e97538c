package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// marshal is json.Marshal without HTML escaping: '<', '>' and '&' are
// stored as themselves, not as six-byte \u003c escapes, so the stored form
// of a payload is not three times its size. Every stored JSON form (inputs,
// messages, history events, activity requests) goes through it.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Encode converts a typed value to the string payload form used for inputs
// and outputs. A string is passed through as is (not JSON-quoted), so typed
// and untyped callers interoperate; anything else becomes JSON.
func Encode(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, err := marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding %T payload: %w", v, err)
	}
	return string(b), nil
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
