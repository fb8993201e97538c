package engine

import (
	"strings"
	"testing"

	"github.com/duroworker/duroworker/internal/replay"
)

// TestStoredJSONDoesNotEscapeHTML: '<', '>' and '&' are stored as
// themselves, so 4 MiB of '<' is stored as about 4 MiB, not 24 MiB, and
// every form decodes back to the same text.
func TestStoredJSONDoesNotEscapeHTML(t *testing.T) {
	big := strings.Repeat("<", MaxPayloadBytes)
	msg, err := replay.EncodeMessage(replay.Message{Kind: replay.MessageExternalEvent, Name: "e", Result: big})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > MaxPayloadBytes+100 {
		t.Fatalf("a message with 4 MiB of '<' is %d bytes", len(msg))
	}
	if m, err := replay.DecodeMessage(msg); err != nil || m.Result != big {
		t.Fatalf("message round trip: %v", err)
	}
	ev, err := replay.EncodeEvent(replay.Event{ID: 1, Kind: replay.EventExternalEvent, Name: "e", Result: "a<b>&c"})
	if err != nil || !strings.Contains(ev, `"a<b>&c"`) {
		t.Fatalf("event = %s, %v", ev, err)
	}
	if e, err := replay.DecodeEvent(ev); err != nil || e.Result != "a<b>&c" {
		t.Fatalf("event round trip: %+v %v", e, err)
	}
	req, err := replay.EncodeActivityRequest(replay.ActivityRequest{Instance: "i", Name: "a", Execution: 1, EventID: 1, Input: "<&>"})
	if err != nil || !strings.Contains(req, `"<&>"`) || strings.HasSuffix(req, "\n") {
		t.Fatalf("activity request = %q, %v", req, err)
	}
	typed, err := Encode(map[string]string{"html": "<p>&</p>"})
	if err != nil || typed != `{"html":"<p>&</p>"}` {
		t.Fatalf("Encode = %q, %v", typed, err)
	}
	if back, err := Decode[map[string]string](typed); err != nil || back["html"] != "<p>&</p>" {
		t.Fatalf("Decode = %v, %v", back, err)
	}
}

// TestEncodeRefusesInvalidUTF8: a typed payload holding a string that is
// not valid UTF-8 is an error, not a payload with U+FFFD in its place;
// genuine U+FFFD characters and escaped backslashes are not mistaken for it.
func TestEncodeRefusesInvalidUTF8(t *testing.T) {
	type order struct {
		ID   string            `json:"id"`
		Tags map[string]string `json:"tags"`
	}
	for name, v := range map[string]any{
		"field":   order{ID: "a\xffb"},
		"map key": order{ID: "a", Tags: map[string]string{"\xc3\x28": "x"}},
		"slice":   []string{"ok", "\xed\xa0\x80"},
	} {
		if s, err := Encode(v); err == nil || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%s: Encode = %q, %v; want an error about UTF-8", name, s, err)
		}
	}
	for name, v := range map[string]any{
		"U+FFFD":            order{ID: "a\ufffdb"},
		"escaped backslash": order{ID: `a\ufffd`},
		"both":              []string{`\\ufffd`, "\ufffd", `\`},
		"bytes":             []byte{0xff, 0xfe},
	} {
		s, err := Encode(v)
		if err != nil {
			t.Errorf("%s: Encode: %v", name, err)
			continue
		}
		if _, err := Decode[any](s); err != nil {
			t.Errorf("%s: %q does not decode: %v", name, s, err)
		}
	}
	if s, err := Encode("raw \xff string"); err != nil || s != "raw \xff string" {
		t.Errorf("a string payload is passed through as is: %q, %v", s, err)
	}
}
