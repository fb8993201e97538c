package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// progress prints timestamped lines, relative to the start of the run. It
// is safe for concurrent use.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func newProgress(w io.Writer) *progress { return &progress{w: w, start: time.Now()} }

// Printf prints one line "[  +1.234s] message".
func (p *progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	stamp := fmt.Sprintf("+%.3fs", time.Since(p.start).Seconds())
	fmt.Fprintf(p.w, "[%9s] %s\n", stamp, fmt.Sprintf(format, args...))
}

// Locked calls fn with the output while no progress line can be printed,
// for a block of output such as the summary table.
func (p *progress) Locked(fn func(w io.Writer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.w)
}

// Elapsed is the time since the run started.
func (p *progress) Elapsed() time.Duration { return time.Since(p.start) }

// result is one row of the summary: what a scenario expected of one
// instance and what it got.
type result struct {
	Scenario string
	Instance string
	Expected string
	Got      string
	OK       bool
}

// summary is the results of a run, in the order they were recorded. It is
// safe for concurrent use.
type summary struct {
	mu   sync.Mutex
	rows []result
}

func (s *summary) add(r result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
}

func (s *summary) results() []result {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]result(nil), s.rows...)
}

// failed counts the rows that did not reach their expected state.
func (s *summary) failed() int {
	n := 0
	for _, r := range s.results() {
		if !r.OK {
			n++
		}
	}
	return n
}

// print writes the summary table and a verdict line.
func (s *summary) print(w io.Writer) {
	rows := s.results()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tINSTANCE\tEXPECTED\tGOT\tOK")
	for _, r := range rows {
		ok := "ok"
		if !r.OK {
			ok = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Instance, oneLine(r.Expected), oneLine(r.Got), ok)
	}
	_ = tw.Flush()
	if n := s.failed(); n > 0 || len(rows) == 0 {
		fmt.Fprintf(w, "FAIL: %d of %d checks did not reach their expected state\n", n, len(rows))
		return
	}
	fmt.Fprintf(w, "PASS: all %d checks reached their expected state\n", len(rows))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "\t", " ")
	if len(s) > 90 {
		s = s[:87] + "..."
	}
	return s
}
