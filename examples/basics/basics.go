// Package basics holds three small orchestrations that show duroworker's
// building blocks:
//
//   - [Hello] calls one activity and returns its result;
//   - [FanOut] runs n activities in parallel, waits for all of them with
//     Join, and sums their results (fan-out/fan-in);
//   - [Approval] waits for an external "approve" event or a durable timer,
//     whichever comes first, with Select (a human-in-the-loop step with a
//     deadline).
//
// Register adds the orchestrations to a registry and Activities their
// activities; `duroworker dev` runs them all.
package basics

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/engine"
)

// Orchestration names.
const (
	// HelloName is the registered name of Hello.
	HelloName = "examples::orchestration::hello"
	// FanOutName is the registered name of FanOut.
	FanOutName = "examples::orchestration::fan-out"
	// ApprovalName is the registered name of Approval.
	ApprovalName = "examples::orchestration::approval"
)

// Activity names.
const (
	// GreetActivity turns a name into a greeting.
	GreetActivity = "examples::activity::greet"
	// SquareActivity returns the square of its integer input.
	SquareActivity = "examples::activity::square"
)

// ApproveEvent is the name of the external event that approves an Approval.
const ApproveEvent = "approve"

// Approval outcomes.
const (
	// Approved is Approval's output when the event arrived in time.
	Approved = "approved"
	// TimedOut is Approval's output when the timer fired first.
	TimedOut = "timed out"
)

// DefaultApprovalTimeout is how long Approval waits when its input gives no
// timeout.
const DefaultApprovalTimeout = 24 * time.Hour

// Hello greets name with the GreetActivity activity: input "world", output
// "Hello, world!".
func Hello(ctx *engine.OrchestrationContext, name string) (string, error) {
	return ctx.ScheduleActivity(GreetActivity, name).Get()
}

// FanOut schedules SquareActivity for 1..n at once, waits for all of them
// with Join and returns the sum of the squares, n(n+1)(2n+1)/6 (385 for 10).
func FanOut(ctx *engine.OrchestrationContext, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("fan-out of %d activities", n)
	}
	futures := make([]*engine.Future[int], n)
	waits := make([]engine.Awaitable, n)
	for i := range futures {
		futures[i] = engine.ScheduleActivityTyped[int](ctx, SquareActivity, i+1)
		waits[i] = futures[i]
	}
	ctx.Join(waits...)
	sum := 0
	for _, f := range futures {
		v, err := f.Get()
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// ApprovalInput is Approval's input.
type ApprovalInput struct {
	// TimeoutMS is how long to wait for the approval, in milliseconds; not
	// positive means DefaultApprovalTimeout.
	TimeoutMS int64 `json:"timeout_ms"`
}

// Approval waits for the ApproveEvent external event or a durable timer of
// in.TimeoutMS, whichever comes first, and returns Approved or TimedOut.
// Raise the event once the instance is Running: the subscription is made in
// its first turn.
func Approval(ctx *engine.OrchestrationContext, in ApprovalInput) (string, error) {
	timeout := DefaultApprovalTimeout
	if in.TimeoutMS > 0 {
		timeout = time.Duration(in.TimeoutMS) * time.Millisecond
	}
	approve := ctx.WaitForEvent(ApproveEvent)
	deadline := ctx.ScheduleTimer(timeout)
	if ctx.Select(approve, deadline) == 0 {
		by, err := approve.Get()
		if err != nil {
			return "", err
		}
		ctx.TraceInfo("approval received", "by", by)
		return Approved, nil
	}
	ctx.TraceInfo("approval timed out", "after", timeout)
	return TimedOut, nil
}

// Register registers Hello, FanOut and Approval on b, each at version 1.0.0.
func Register(b *engine.OrchestrationRegistryBuilder) {
	engine.RegisterTyped(b, HelloName, Hello)
	engine.RegisterTyped(b, FanOutName, FanOut)
	engine.RegisterTyped(b, ApprovalName, Approval)
}

// Activities registers GreetActivity and SquareActivity on b.
func Activities(b *engine.ActivityRegistryBuilder) {
	engine.RegisterActivityTyped(b, GreetActivity, greet)
	engine.RegisterActivityTyped(b, SquareActivity, square)
}

func greet(_ *engine.ActivityContext, name string) (string, error) {
	return "Hello, " + name + "!", nil
}

func square(_ *engine.ActivityContext, n int) (int, error) {
	return n * n, nil
}
