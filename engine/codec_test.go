package engine

import (
	"strings"
	"testing"
)

// TestStoredJSONDoesNotEscapeHTML: '<', '>' and '&' are stored as
// themselves, so 4 MiB of '<' is stored as about 4 MiB, not 24 MiB, and
// every form decodes back to the same text.
func TestStoredJSONDoesNotEscapeHTML(t *testing.T) {
	big := strings.Repeat("<", MaxPayloadBytes)
	msg, err := EncodeMessage(Message{Kind: MessageExternalEvent, Name: "e", Result: big})
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > MaxPayloadBytes+100 {
		t.Fatalf("a message with 4 MiB of '<' is %d bytes", len(msg))
	}
	if m, err := DecodeMessage(msg); err != nil || m.Result != big {
		t.Fatalf("message round trip: %v", err)
	}
	ev, err := EncodeEvent(Event{ID: 1, Kind: EventExternalEvent, Name: "e", Result: "a<b>&c"})
	if err != nil || !strings.Contains(ev, `"a<b>&c"`) {
		t.Fatalf("event = %s, %v", ev, err)
	}
	if e, err := DecodeEvent(ev); err != nil || e.Result != "a<b>&c" {
		t.Fatalf("event round trip: %+v %v", e, err)
	}
	req, err := EncodeActivityRequest(ActivityRequest{Instance: "i", Name: "a", Execution: 1, EventID: 1, Input: "<&>"})
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
