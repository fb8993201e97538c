package main

import (
	"context"
	"fmt"
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
