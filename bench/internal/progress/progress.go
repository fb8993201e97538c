// Package progress draws the single-line progress bar of a benchmark run on
// a terminal: the bench command's on its stderr, the peer program's on its
// own. Where the output is not a terminal the bar draws nothing, and only
// the final line (Finish) is written.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal: an *os.File whose descriptor
// is one.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Bar is a progress bar on one line of w. It is safe for concurrent use.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	start time.Time
	last  time.Time
	tty   bool
}

// New returns a bar labelled label that draws on w when w is a terminal.
// It draws nothing yet.
func New(w io.Writer, label string) *Bar {
	return &Bar{w: w, label: label, start: time.Now(), tty: IsTerminal(w)}
}

// Start draws "label ..." until the first Update.
func (b *Bar) Start() {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\r\033[K%s ...", b.label)
}

// Update draws done out of total, at most every 100 ms until done reaches
// total.
func (b *Bar) Update(done, total int64) {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := 0
	if total > 0 {
		filled = int(min(width, done*width/total))
	}
	fmt.Fprintf(b.w, "\r\033[K%s [%s%s] %d/%d %.1fs", b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled),
		done, total, time.Since(b.start).Seconds())
}

// Clear erases the bar.
func (b *Bar) Clear() {
	if !b.tty {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprint(b.w, "\r\033[K")
}

// Finish erases the bar and writes the label with the time since New, and
// summary indented on the next line, terminal or not.
func (b *Bar) Finish(summary string) {
	b.Clear()
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "%s (%.1fs)\n    %s\n", b.label, time.Since(b.start).Seconds(), summary)
}
