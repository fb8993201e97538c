package engine

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"
)

// OrchestrationContext is the orchestration's only door to the outside world.
// Everything it returns is recorded in, or derived from, the execution's
// history, so that a replay of the same history takes the same decisions.
// It must only be used from the orchestration's own goroutine.
type OrchestrationContext struct {
	x *Executor
}

// InstanceID returns the id of the orchestration instance.
func (c *OrchestrationContext) InstanceID() string { return c.x.info.InstanceID }

// ExecutionID returns the execution number, 1 for the first execution and one
// more after each continue-as-new.
func (c *OrchestrationContext) ExecutionID() int64 { return c.x.info.ExecutionID }

// Name returns the orchestration's registered name.
func (c *OrchestrationContext) Name() string { return c.x.info.Name }

// Version returns the orchestration version this execution runs.
func (c *OrchestrationContext) Version() string { return c.x.info.Version }

// IsReplaying reports whether the code is re-running a part of the execution
// that an earlier turn already ran. Side effects such as logging should be
// skipped while replaying; the Trace methods do so.
func (c *OrchestrationContext) IsReplaying() bool { return c.x.replaying() }

// Now returns the deterministic current time: the time at which the event
// that last woke the orchestration (its start, or a completion) was recorded.
func (c *OrchestrationContext) Now() time.Time { return time.UnixMilli(c.x.now) }

// NewGUID returns a deterministic random-looking UUID (version 5 form,
// derived from the instance, execution, start time and a call counter): the
// same on every replay, different for every call.
func (c *OrchestrationContext) NewGUID() string {
	x := c.x
	x.guids++
	var started int64
	if len(x.history) > 0 {
		started = x.history[0].Time
	}
	h := sha1.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00", x.info.InstanceID, x.info.ExecutionID, started)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(x.guids))
	h.Write(n[:])
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// TraceDebug logs at debug level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceDebug(msg string, args ...any) {
	c.trace(slog.LevelDebug, msg, args)
}

// TraceInfo logs at info level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceInfo(msg string, args ...any) { c.trace(slog.LevelInfo, msg, args) }

// TraceWarn logs at warn level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceWarn(msg string, args ...any) { c.trace(slog.LevelWarn, msg, args) }

// TraceError logs at error level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceError(msg string, args ...any) {
	c.trace(slog.LevelError, msg, args)
}

func (c *OrchestrationContext) trace(level slog.Level, msg string, args []any) {
	if c.IsReplaying() {
		return
	}
	x := c.x
	attrs := append([]any{
		slog.String("instance", x.info.InstanceID),
		slog.Int64("execution", x.info.ExecutionID),
		slog.String("orchestration", x.info.Name),
		slog.String("version", x.info.Version),
	}, args...)
	x.logger.Log(context.Background(), level, msg, attrs...)
}

// ScheduleTimer creates a durable timer that fires after d, measured from
// Now. The timer survives worker restarts.
func (c *OrchestrationContext) ScheduleTimer(d time.Duration) *Future[struct{}] {
	c.x.mustOwn()
	return &Future[struct{}]{s: c.x.scheduleTimer(d), x: c.x, decode: func(string) (struct{}, error) { return struct{}{}, nil }}
}

// WaitForEvent subscribes to the next external event raised with name and
// returns a future for its payload. Subscriptions of one name are served in
// the order they were made; an event raised while no subscription of its name
// is open is kept in history but delivered to nobody (use it with a
// subscription made before the event can be raised).
func (c *OrchestrationContext) WaitForEvent(name string) *Future[string] {
	ev, _ := c.x.emit(Event{Kind: EventExternalSubscribed, Name: name})
	s := &slot{id: ev.ID, completion: EventExternalEvent, name: name}
	c.x.waits[name] = append(c.x.waits[name], s)
	return &Future[string]{s: s, x: c.x, decode: decodeString}
}

// WaitForEventTyped is WaitForEvent with the payload decoded as T.
func WaitForEventTyped[T any](c *OrchestrationContext, name string) *Future[T] {
	f := c.WaitForEvent(name)
	return &Future[T]{s: f.s, x: c.x, decode: Decode[T]}
}

// ContinueAsNew ends this execution and starts a new one of the same
// orchestration with input, its version resolved by the registry's policy
// (so Latest upgrades at this point). Use it as
//
//	return ctx.ContinueAsNew(input)
func (c *OrchestrationContext) ContinueAsNew(input string) (string, error) {
	return "", &ContinueAsNewError{Input: input}
}

// ContinueAsNewVersioned is ContinueAsNew with an explicit version for the
// next execution. A version that is not MAJOR.MINOR.PATCH fails the
// orchestration with an application error instead.
func (c *OrchestrationContext) ContinueAsNewVersioned(version, input string) (string, error) {
	v, err := CanonicalVersion(version)
	if err != nil {
		return "", ApplicationError(KindOrchestrationFailed, "continue as new: "+err.Error())
	}
	return "", &ContinueAsNewError{Input: input, Version: v}
}

// ContinueAsNewTyped is ContinueAsNew with an input encoded by Encode.
func ContinueAsNewTyped(c *OrchestrationContext, input any) (string, error) {
	in, err := Encode(input)
	if err != nil {
		return "", err
	}
	return c.ContinueAsNew(in)
}

// ContinueAsNewError is returned by ContinueAsNew; the orchestration must
// return it unchanged.
type ContinueAsNewError struct {
	Input   string
	Version string // empty: resolve by policy
}

func (e *ContinueAsNewError) Error() string {
	if e.Version != "" {
		return "continue as new at version " + e.Version
	}
	return "continue as new"
}

// Select waits until at least one of fs is ready and returns the index of the
// first ready one in argument order. Because completions are delivered one at
// a time in history order, the winner is the same on every replay.
//
// The losers that are still pending are cancelled, and the cancellation is
// recorded in history (and so enforced on replay): an activity is taken away
// from the workers (a running one sees its context cancelled), a
// sub-orchestration is cancelled, an event or queue wait stops consuming
// arrivals. A losing timer just fires unobserved.
func (c *OrchestrationContext) Select(fs ...Awaitable) int {
	if len(fs) == 0 {
		panic("engine: Select needs at least one future")
	}
	winner := -1
	c.x.await(func() bool {
		for i, f := range fs {
			if f.awaitSlot().done {
				winner = i
				return true
			}
		}
		return false
	})
	for i, f := range fs {
		if i != winner {
			c.x.cancelSlot(f.awaitSlot(), "select_loser")
		}
	}
	return winner
}

// Join waits until every one of fs is ready. Read each result with Get.
func (c *OrchestrationContext) Join(fs ...Awaitable) {
	c.x.await(func() bool {
		for _, f := range fs {
			if !f.awaitSlot().done {
				return false
			}
		}
		return true
	})
}

// JoinAll waits until every future of fs is ready and returns their results
// in order. The error is the first failure in the order of fs (every future
// is still waited for), so it is the same on every replay.
func JoinAll[T any](c *OrchestrationContext, fs []*Future[T]) ([]T, error) {
	c.Join(awaitables(fs)...)
	out := make([]T, len(fs))
	var first error
	for i, f := range fs {
		v, err := f.Get()
		if err != nil && first == nil {
			first = err
		}
		out[i] = v
	}
	return out, first
}

// SelectFirst is Select over a slice of futures of one type: it waits until
// one of fs is ready, cancels the others, and returns the index of the winner.
func SelectFirst[T any](c *OrchestrationContext, fs []*Future[T]) int {
	return c.Select(awaitables(fs)...)
}

func awaitables[T any](fs []*Future[T]) []Awaitable {
	out := make([]Awaitable, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// open_ registers the schedule event ev as awaiting a completion of kind.
func (x *Executor) open_(ev *Event, completion EventKind) *slot {
	s := &slot{id: ev.ID, completion: completion}
	x.open[ev.ID] = s
	return s
}

func decodeString(s string) (string, error) { return s, nil }
