package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestDevNullIsNoTerminal: /dev/null is a character device but no
// terminal; the bar must not draw escape sequences into it (the hand-made
// check on os.ModeCharDevice said it was one).
func TestDevNullIsNoTerminal(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Fatalf("%s reported as a terminal", os.DevNull)
	}
	if IsTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer reported as a terminal")
	}
}

// TestBarOffTerminalWritesOnlyTheFinalLine: off a terminal, Start, Update
// and Clear write nothing and Finish writes the label and the summary.
func TestBarOffTerminalWritesOnlyTheFinalLine(t *testing.T) {
	var b bytes.Buffer
	bar := New(&b, "[run 1/1] drain 5x1 · duroworker")
	bar.Start()
	bar.Update(1, 5)
	bar.Update(5, 5)
	bar.Clear()
	if b.Len() != 0 {
		t.Fatalf("wrote %q before Finish", b.String())
	}
	bar.Finish("orch/s=10  completed 5/5")
	got := b.String()
	if strings.Contains(got, "\033") || !strings.HasPrefix(got, "[run 1/1] drain 5x1 · duroworker (") ||
		!strings.HasSuffix(got, "s)\n    orch/s=10  completed 5/5\n") {
		t.Fatalf("final line %q", got)
	}
}
