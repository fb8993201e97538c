package engine

import (
	"context"
	"log/slog"

	"github.com/duroworker/duroworker/internal/replay"
)

// ActivityContext is passed to activities. It embeds a context.Context that
// is cancelled when the worker loses the activity's lock (another worker may
// then run it) or shuts down, so activities should pass it to their I/O.
type ActivityContext struct {
	context.Context
	req      replay.ActivityRequest
	workerID string
	attempt  int
	logger   *slog.Logger
}

// newActivityContext builds the context of one activity attempt (the
// runtime reaches it through replay.NewActivityContext).
func newActivityContext(ctx context.Context, req replay.ActivityRequest, workerID string, attempt int, logger *slog.Logger) *ActivityContext {
	if logger == nil {
		logger = slog.Default()
	}
	return &ActivityContext{Context: ctx, req: req, workerID: workerID, attempt: attempt, logger: logger}
}

// InstanceID returns the id of the orchestration instance that scheduled the activity.
func (c *ActivityContext) InstanceID() string { return c.req.Instance }

// ExecutionID returns the execution that scheduled the activity.
func (c *ActivityContext) ExecutionID() int64 { return c.req.Execution }

// ActivityName returns the activity's registered name.
func (c *ActivityContext) ActivityName() string { return c.req.Name }

// ActivityID returns the id of the ActivityScheduled event, unique within the execution.
func (c *ActivityContext) ActivityID() int64 { return c.req.EventID }

// OrchestrationName returns the name of the orchestration that scheduled the activity.
func (c *ActivityContext) OrchestrationName() string { return c.req.OrchestrationName }

// OrchestrationVersion returns the version of that orchestration.
func (c *ActivityContext) OrchestrationVersion() string { return c.req.OrchestrationVersion }

// SessionID returns the session the activity was scheduled on, or "".
func (c *ActivityContext) SessionID() string { return c.req.Session }

// Tag returns the activity's tag, or "".
func (c *ActivityContext) Tag() string { return c.req.Tag }

// WorkerID identifies the worker running the activity.
func (c *ActivityContext) WorkerID() string { return c.workerID }

// Attempt is the delivery attempt of this work item, 1 on first delivery.
// Activities run at least once: a redelivery (after a crash or a lost lock)
// has a higher attempt.
func (c *ActivityContext) Attempt() int { return c.attempt }

// TraceDebug logs at debug level with the activity's identity.
func (c *ActivityContext) TraceDebug(msg string, args ...any) { c.trace(slog.LevelDebug, msg, args) }

// TraceInfo logs at info level with the activity's identity.
func (c *ActivityContext) TraceInfo(msg string, args ...any) { c.trace(slog.LevelInfo, msg, args) }

// TraceWarn logs at warn level with the activity's identity.
func (c *ActivityContext) TraceWarn(msg string, args ...any) { c.trace(slog.LevelWarn, msg, args) }

// TraceError logs at error level with the activity's identity.
func (c *ActivityContext) TraceError(msg string, args ...any) { c.trace(slog.LevelError, msg, args) }

func (c *ActivityContext) trace(level slog.Level, msg string, args []any) {
	attrs := append([]any{
		slog.String("instance", c.req.Instance),
		slog.Int64("execution", c.req.Execution),
		slog.String("activity", c.req.Name),
		slog.Int64("activity_id", c.req.EventID),
		slog.String("worker", c.workerID),
	}, args...)
	c.logger.Log(c.Context, level, msg, attrs...)
}
