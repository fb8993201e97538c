package worker

import (
	"context"
	"log/slog"
	"runtime"
	"time"
)

// itemLog logs for one turn or activity. Unlike slog.Logger.With, it
// attaches the item's attributes only when a record is emitted, so an item
// that logs nothing (the common case) costs no attribute work. Records
// carry the same attributes, in the same order, and the caller's source
// position, as a logger made With them.
type itemLog struct {
	base  *slog.Logger
	attrs [6]slog.Attr
	n     int
}

// newItemLog returns an itemLog of base with attrs (at most six).
func newItemLog(base *slog.Logger, attrs ...slog.Attr) *itemLog {
	l := &itemLog{base: base}
	l.add(attrs...)
	return l
}

// add appends attrs; only before l is shared with other goroutines.
func (l *itemLog) add(attrs ...slog.Attr) {
	l.n += copy(l.attrs[l.n:], attrs)
}

// Debug logs at slog.LevelDebug.
func (l *itemLog) Debug(msg string, args ...any) { l.log(slog.LevelDebug, msg, args) }

// Info logs at slog.LevelInfo.
func (l *itemLog) Info(msg string, args ...any) { l.log(slog.LevelInfo, msg, args) }

// Warn logs at slog.LevelWarn.
func (l *itemLog) Warn(msg string, args ...any) { l.log(slog.LevelWarn, msg, args) }

// Error logs at slog.LevelError.
func (l *itemLog) Error(msg string, args ...any) { l.log(slog.LevelError, msg, args) }

func (l *itemLog) log(level slog.Level, msg string, args []any) {
	ctx := context.Background()
	h := l.base.Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	var pcs [1]uintptr
	runtime.Callers(3, pcs[:]) // skip Callers, log and Debug/Info/Warn/Error
	r := slog.NewRecord(time.Now(), level, msg, pcs[0])
	r.AddAttrs(l.attrs[:l.n]...)
	r.Add(args...)
	_ = h.Handle(ctx, r)
}
