package worker

import (
	"bytes"
	"log/slog"
	"regexp"
	"testing"
)

// TestItemLogWritesWhatWithWrites: an itemLog's records equal those of a
// logger made With the same attributes (attributes, order, level filter),
// and name the caller's line as their source.
func TestItemLogWritesWhatWithWrites(t *testing.T) {
	var a, b bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, AddSource: true}
	base := func(buf *bytes.Buffer) *slog.Logger {
		return slog.New(slog.NewTextHandler(buf, opts)).With("worker", "n1")
	}
	with := base(&a).With("instance", "i1", "attempt", 2).With("activity", "A", "activity_id", int64(7))
	lazy := newItemLog(base(&b), slog.String("instance", "i1"), slog.Int("attempt", 2))
	lazy.add(slog.String("activity", "A"), slog.Int64("activity_id", 7))

	with.Debug("hidden", "k", 1)
	with.Info("shown", "k", 1)
	with.Warn("warned", "err", "boom")
	with.Error("failed")
	lazy.Debug("hidden", "k", 1)
	lazy.Info("shown", "k", 1)
	lazy.Warn("warned", "err", "boom")
	lazy.Error("failed")

	// Equal but for time and source line (the two loggers are called from different lines).
	norm := regexp.MustCompile(`time=\S+ |source=\S+:\d+ `)
	if got, want := norm.ReplaceAllString(b.String(), ""), norm.ReplaceAllString(a.String(), ""); got != want {
		t.Fatalf("itemLog wrote\n%s\nWith wrote\n%s", got, want)
	}
	if !regexp.MustCompile(`source=\S+itemlog_test.go:\d+ `).MatchString(b.String()) {
		t.Fatalf("records do not name the caller as their source:\n%s", b.String())
	}
	if n := bytes.Count(b.Bytes(), []byte("\n")); n != 3 {
		t.Fatalf("%d records, want 3 (debug filtered out)", n)
	}
}
