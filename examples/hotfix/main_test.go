package main

import (
	"bytes"
	"os"
	"testing"
)

// TestRun runs the scenario and expects exit code 0: on an in-process
// miniredis, or on the Redis at $DUROWORKER_EXAMPLES_REDIS when it is set
// (for example redis://localhost:6379/0).
func TestRun(t *testing.T) {
	var args []string
	if url := os.Getenv("DUROWORKER_EXAMPLES_REDIS"); url != "" {
		args = []string{"-redis", url}
	}
	var out bytes.Buffer
	if code := run(args, &out); code != 0 {
		t.Fatalf("exit code %d, output:\n%s", code, out.String())
	}
	t.Log("\n" + out.String())
}
