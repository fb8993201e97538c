package replay

import (
	"bytes"
	"encoding/json"
	"sync"
)

// Marshal is json.Marshal without HTML escaping: '<', '>' and '&' are stored
// as themselves, not as six-byte \u003c escapes, so the stored form of a
// payload is not three times its size. Every stored JSON form (inputs,
// messages, history events, activity requests) goes through it.
func Marshal(v any) ([]byte, error) {
	e := encoders.Get().(*encoder)
	defer e.put()
	if err := e.encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(e.trimmed()), nil
}

// marshalString is Marshal returning a string: the stored forms are strings,
// so this saves a copy.
func marshalString(v any) (string, error) {
	e := encoders.Get().(*encoder)
	defer e.put()
	if err := e.encode(v); err != nil {
		return "", err
	}
	return string(e.trimmed()), nil
}

// encoder is a reusable json.Encoder with its buffer. Reusing them saves an
// encoder and the growth of a buffer per encoded value; the output is the
// same bytes as a new encoder's.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoders = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

// maxPooledBuffer is the largest buffer put back in the pool: a rare big
// payload does not pin its buffer.
const maxPooledBuffer = 64 << 10

func (e *encoder) encode(v any) error {
	e.buf.Reset()
	return e.enc.Encode(v)
}

// trimmed is the encoded value without the newline Encode appends.
func (e *encoder) trimmed() []byte {
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))
}

func (e *encoder) put() {
	if e.buf.Cap() > maxPooledBuffer {
		return
	}
	encoders.Put(e)
}
