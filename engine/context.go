package engine

import (
	"time"

	"github.com/duroworker/duroworker/internal/replay"
)

// OrchestrationContext is the orchestration's only door to the outside world.
// Everything it returns is recorded in, or derived from, the execution's
// history, so that a replay of the same history takes the same decisions.
// It must only be used from the orchestration's own goroutine.
type OrchestrationContext struct {
	c *replay.Context
}

// InstanceID returns the id of the orchestration instance.
func (c *OrchestrationContext) InstanceID() string { return c.c.InstanceID() }

// ExecutionID returns the execution number, 1 for the first execution and one
// more after each continue-as-new.
func (c *OrchestrationContext) ExecutionID() int64 { return c.c.ExecutionID() }

// Name returns the orchestration's registered name.
func (c *OrchestrationContext) Name() string { return c.c.Name() }

// Version returns the orchestration version this execution runs.
func (c *OrchestrationContext) Version() string { return c.c.Version() }

// IsReplaying reports whether the code is re-running a part of the execution
// that an earlier turn already ran. Side effects such as logging should be
// skipped while replaying; the Trace methods do so.
func (c *OrchestrationContext) IsReplaying() bool { return c.c.IsReplaying() }

// Now returns the deterministic current time: the time at which the event
// that last woke the orchestration (its start, or a completion) was recorded.
func (c *OrchestrationContext) Now() time.Time { return c.c.Now() }

// NewGUID returns a deterministic random-looking UUID (version 5 form,
// derived from the instance, execution, start time and a call counter): the
// same on every replay, different for every call.
func (c *OrchestrationContext) NewGUID() string { return c.c.NewGUID() }

// TraceDebug logs at debug level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceDebug(msg string, args ...any) { c.c.TraceDebug(msg, args...) }

// TraceInfo logs at info level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceInfo(msg string, args ...any) { c.c.TraceInfo(msg, args...) }

// TraceWarn logs at warn level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceWarn(msg string, args ...any) { c.c.TraceWarn(msg, args...) }

// TraceError logs at error level unless the orchestration is replaying.
func (c *OrchestrationContext) TraceError(msg string, args ...any) { c.c.TraceError(msg, args...) }

// ScheduleTimer creates a durable timer that fires after d, measured from
// Now. The timer survives worker restarts.
func (c *OrchestrationContext) ScheduleTimer(d time.Duration) *Future[struct{}] {
	return &Future[struct{}]{s: c.c.ScheduleTimer(d), decode: func(string) (struct{}, error) { return struct{}{}, nil }}
}

// WaitForEvent subscribes to the next external event raised with name and
// returns a future for its payload. Subscriptions of one name are served in
// the order they were made; an event raised while no subscription of its name
// is open is kept in history but delivered to nobody (use it with a
// subscription made before the event can be raised, or use DequeueEvent).
func (c *OrchestrationContext) WaitForEvent(name string) *Future[string] {
	return stringFuture(c.c.WaitForEvent(name))
}

// WaitForEventTyped is WaitForEvent with the payload decoded as T.
func WaitForEventTyped[T any](c *OrchestrationContext, name string) *Future[T] {
	return typedFuture[T](c.c.WaitForEvent(name))
}

// DequeueEvent takes the next message from the event queue name (strict
// FIFO per queue), waiting for one if the queue is empty. Unlike
// WaitForEvent, messages that arrive before anyone dequeues are kept, and
// carried into the next execution by ContinueAsNew (up to MaxCarryForward).
func (c *OrchestrationContext) DequeueEvent(name string) *Future[string] {
	return stringFuture(c.c.DequeueEvent(name))
}

// DequeueEventTyped is DequeueEvent with the message decoded as T.
func DequeueEventTyped[T any](c *OrchestrationContext, name string) *Future[T] {
	return typedFuture[T](c.c.DequeueEvent(name))
}

// ContinueAsNew ends this execution and starts a new one of the same
// orchestration with input, its version resolved by the registry's policy
// (so Latest upgrades at this point). Use it as
//
//	return ctx.ContinueAsNew(input)
func (c *OrchestrationContext) ContinueAsNew(input string) (string, error) {
	return c.c.ContinueAsNew(input)
}

// ContinueAsNewVersioned is ContinueAsNew with an explicit version for the
// next execution. A version that is not MAJOR.MINOR.PATCH fails the
// orchestration with an application error instead.
func (c *OrchestrationContext) ContinueAsNewVersioned(version, input string) (string, error) {
	out, err := c.c.ContinueAsNewVersioned(version, input)
	return out, asPublic(err)
}

// ContinueAsNewTyped is ContinueAsNew with an input encoded by Encode.
func ContinueAsNewTyped(c *OrchestrationContext, input any) (string, error) {
	in, err := Encode(input)
	if err != nil {
		return "", err
	}
	return c.ContinueAsNew(in)
}

// Select waits until at least one of fs is ready and returns the index of the
// first ready one in argument order. Because completions are delivered one at
// a time in history order, the winner is the same on every replay.
//
// The losers that are still pending are cancelled, and the cancellation is
// recorded in history (and so enforced on replay): an activity is taken away
// from the workers (a running one sees its context cancelled, a retried one
// makes no further attempt), a sub-orchestration is cancelled, an event or
// queue wait stops consuming arrivals. A losing timer just fires unobserved.
// Get on a loser returns an error of kind KindCancelled.
func (c *OrchestrationContext) Select(fs ...Awaitable) int {
	return c.c.Select(slots(fs))
}

// Join waits until every one of fs is ready. Read each result with Get.
func (c *OrchestrationContext) Join(fs ...Awaitable) {
	c.c.Join(slots(fs))
}

// JoinAll waits until every future of fs is ready and returns their results
// in order. The error is the first failure in the order of fs (every future
// is still waited for), so it is the same on every replay.
func JoinAll[T any](c *OrchestrationContext, fs []*Future[T]) ([]T, error) {
	c.c.Join(slotsOf(fs))
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
	return c.c.Select(slotsOf(fs))
}

func slots(fs []Awaitable) []*replay.Slot {
	out := make([]*replay.Slot, len(fs))
	for i, f := range fs {
		out[i] = f.slot()
	}
	return out
}

func slotsOf[T any](fs []*Future[T]) []*replay.Slot {
	out := make([]*replay.Slot, len(fs))
	for i, f := range fs {
		out[i] = f.s
	}
	return out
}
