package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisLogger routes go-redis's own log lines (connection pool messages
// such as "failed to dial") to a slog logger at debug level, instead of the
// plain "pool.go:NNN" lines go-redis prints on stderr by default. A nil
// logger drops them.
type redisLogger struct{ log *slog.Logger }

// Printf implements go-redis's logger interface.
func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	if l.log == nil {
		return
	}
	l.log.DebugContext(ctx, strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "), "component", "go-redis")
}

// setRedisLogger installs logger as go-redis's logger (process-wide); nil
// silences go-redis.
func setRedisLogger(logger *slog.Logger) {
	redis.SetLogger(redisLogger{log: logger})
}

// The values of --log-format.
const (
	logFormatText = "text"
	logFormatJSON = "json"
)

// newLogger returns a logger writing to w at level in format: "text"
// (slog's key=value lines; also the zero value "") or "json" (one JSON
// object a line, for log collectors). Any other format is an error naming
// the flag.
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case logFormatText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case logFormatJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want %s or %s", format, logFormatText, logFormatJSON)
	}
}
