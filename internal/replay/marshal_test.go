package replay

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// reference is the stored JSON form as a new encoder writes it: what
// Marshal wrote before its encoders were pooled.
func reference(t *testing.T, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Error(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// TestPooledEncodingIsByteIdentical: events, messages and activity requests
// encode to exactly the bytes of a new encoder, over the stored histories of
// engine/testdata/compat and payloads with HTML characters, escapes, invalid
// UTF-8 and sizes past the pooled buffer limit, also from many goroutines
// sharing the pool.
func TestPooledEncodingIsByteIdentical(t *testing.T) {
	files, err := filepath.Glob("../../engine/testdata/compat/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no compat corpus: %v", err)
	}
	var events []Event
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			History []string `json:"history"`
		}
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		for _, s := range rec.History {
			e, err := DecodeEvent(s)
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, e)
		}
	}
	payloads := []string{"", `"<a href='x'>&amp;</a>"`, "line\nbreak\ttab\"quote\\", "\u2028\u2029 é 日本", "bad \xff utf8", strings.Repeat("x<&>", 40<<10)}
	status := "custom <status>"
	var messages []Message
	var requests []ActivityRequest
	for i, p := range payloads {
		events = append(events, Event{ID: int64(i + 1), Kind: EventActivityCompleted, Result: p})
		messages = append(messages,
			Message{Kind: MessageStart, Name: "Orch<1>", Version: "1.0.0", Input: p, CustomStatus: &status},
			Message{Kind: MessageActivityFailed, Execution: 2, EventID: int64(i), Error: &Failure{Message: p, Attempts: 3}})
		requests = append(requests, ActivityRequest{Instance: "i&" + p, Execution: 1, EventID: int64(i), Name: "A", Input: p, OrchestrationName: "O"})
	}
	check := func(t *testing.T) {
		for _, e := range events {
			got, err := EncodeEvent(e)
			if err != nil {
				t.Error(err)
				return
			}
			if want := reference(t, e); got != want {
				t.Errorf("event encodes as\n%.200s\nwant\n%.200s", got, want)
				return
			}
		}
		for _, m := range messages {
			got, err := EncodeMessage(m)
			if err != nil {
				t.Error(err)
				return
			}
			if want := reference(t, m); got != want {
				t.Errorf("message encodes as\n%.200s\nwant\n%.200s", got, want)
				return
			}
		}
		for _, r := range requests {
			got, err := EncodeActivityRequest(r)
			if err != nil {
				t.Error(err)
				return
			}
			b, err := Marshal(r)
			if err != nil {
				t.Error(err)
				return
			}
			if want := reference(t, r); got != want || string(b) != want {
				t.Errorf("activity request encodes as\n%.200s\nand\n%.200s\nwant\n%.200s", got, b, want)
				return
			}
		}
	}
	check(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				check(t)
			}
		}()
	}
	wg.Wait()
}
