package replay

import (
	"context"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/duroworker/duroworker/capability"
)

// Context is an execution's untyped orchestration context, which
// engine.OrchestrationContext wraps. Everything it returns is recorded in, or
// derived from, the execution's history, so that a replay of the same history
// takes the same decisions. It must only be used from the orchestration's own
// goroutine.
type Context struct {
	x *Executor
}

// InstanceID returns the id of the orchestration instance.
func (c *Context) InstanceID() string { return c.x.info.InstanceID }

// ExecutionID returns the execution number, 1 for the first execution and one
// more after each continue-as-new.
func (c *Context) ExecutionID() int64 { return c.x.info.ExecutionID }

// Name returns the orchestration's registered name.
func (c *Context) Name() string { return c.x.info.Name }

// Version returns the orchestration version this execution runs.
func (c *Context) Version() string { return c.x.info.Version }

// IsReplaying reports whether the code is re-running a part of the execution
// that an earlier turn already ran. Side effects such as logging should be
// skipped while replaying; the Trace methods do so.
func (c *Context) IsReplaying() bool { return c.x.replaying() }

// Now returns the deterministic current time: the time at which the event
// that last woke the orchestration (its start, or a completion) was recorded.
func (c *Context) Now() time.Time { return time.UnixMilli(c.x.now) }

// NewGUID returns a deterministic random-looking UUID (version 5 form,
// derived from the instance, execution, start time and a call counter): the
// same on every replay, different for every call.
func (c *Context) NewGUID() string {
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
func (c *Context) TraceDebug(msg string, args ...any) {
	c.trace(slog.LevelDebug, msg, args)
}

// TraceInfo logs at info level unless the orchestration is replaying.
func (c *Context) TraceInfo(msg string, args ...any) { c.trace(slog.LevelInfo, msg, args) }

// TraceWarn logs at warn level unless the orchestration is replaying.
func (c *Context) TraceWarn(msg string, args ...any) { c.trace(slog.LevelWarn, msg, args) }

// TraceError logs at error level unless the orchestration is replaying.
func (c *Context) TraceError(msg string, args ...any) {
	c.trace(slog.LevelError, msg, args)
}

func (c *Context) trace(level slog.Level, msg string, args []any) {
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

// ScheduleTimer records a durable timer that fires d after Now.
func (c *Context) ScheduleTimer(d time.Duration) *Slot {
	c.x.mustOwn()
	return c.x.scheduleTimer(d)
}

// WaitForEvent subscribes to the next external event raised with name.
// Subscriptions of one name are served in the order they were made; an event
// raised while none is open is kept in history but delivered to nobody.
func (c *Context) WaitForEvent(name string) *Slot {
	ev, _ := c.x.emit(Event{Kind: EventExternalSubscribed, Name: name})
	s := &Slot{x: c.x, id: ev.ID, completion: EventExternalEvent, name: name}
	c.x.waits[name] = append(c.x.waits[name], s)
	return s
}

// ContinueAsNew ends this execution and starts a new one of the same
// orchestration with input, its version resolved by the registry's policy
// (so Latest upgrades at this point). Use it as
//
//	return ctx.ContinueAsNew(input)
func (c *Context) ContinueAsNew(input string) (string, error) {
	return "", &ContinueAsNewError{Input: input}
}

// ContinueAsNewVersioned is ContinueAsNew with an explicit version for the
// next execution. A version that is not MAJOR.MINOR.PATCH fails the
// orchestration with an application error instead.
func (c *Context) ContinueAsNewVersioned(version, input string) (string, error) {
	v, err := capability.CanonicalVersion(version)
	if err != nil {
		return "", ApplicationError(KindOrchestrationFailed, "continue as new: "+err.Error())
	}
	return "", &ContinueAsNewError{Input: input, Version: v}
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

// Select waits until at least one of ss is done and returns the index of the
// first done one in argument order. Because completions are delivered one at
// a time in history order, the winner is the same on every replay. The losers
// still pending are cancelled, and the cancellation is recorded in history.
func (c *Context) Select(ss []*Slot) int {
	if len(ss) == 0 {
		panic("engine: Select needs at least one future")
	}
	winner := -1
	c.x.await(func() bool {
		for i, s := range ss {
			if s.done {
				winner = i
				return true
			}
		}
		return false
	})
	for i, s := range ss {
		if i != winner {
			c.x.cancelSlot(s, "select_loser")
		}
	}
	return winner
}

// Join waits until every one of ss is done.
func (c *Context) Join(ss []*Slot) {
	c.x.await(func() bool {
		for _, s := range ss {
			if !s.done {
				return false
			}
		}
		return true
	})
}

// open_ registers the schedule event ev as awaiting a completion of kind.
func (x *Executor) open_(ev *Event, completion EventKind) *Slot {
	s := &Slot{x: x, id: ev.ID, completion: completion}
	x.open[ev.ID] = s
	return s
}
