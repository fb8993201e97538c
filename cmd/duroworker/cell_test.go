package main

import "testing"

// TestCell: a table cell is one escaped line (textsafe.Escape after
// line breaks and tabs become spaces).
func TestCell(t *testing.T) {
	t.Parallel()
	if got := cell("a\nb\tc\x1b[2J"); got != `a b c\x1b[2J` {
		t.Errorf("cell: %q", got)
	}
	if got := cell(""); got != "-" {
		t.Errorf("cell of nothing: %q", got)
	}
}
