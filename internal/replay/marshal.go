package replay

import (
	"bytes"
	"encoding/json"
)

// Marshal is json.Marshal without HTML escaping: '<', '>' and '&' are stored
// as themselves, not as six-byte \u003c escapes, so the stored form of a
// payload is not three times its size. Every stored JSON form (inputs,
// messages, history events, activity requests) goes through it.
func Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
