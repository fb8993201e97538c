package replay

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// coroutine runs orchestration code on its own goroutine, one step at a time:
// the engine resumes it and waits until it yields (it must wait for a future
// that is not ready) or returns. Only one of the two runs at any moment, so
// orchestration code and engine state need no locks.
type coroutine struct {
	resume  chan struct{}
	yield   chan struct{}
	kill    chan struct{}
	running bool        // the coroutine holds control; handed over through the channels
	exited  atomic.Bool // the goroutine has returned
	killed  atomic.Bool // the engine has given up on it
}

func (x *Executor) startCoroutine(input string) {
	co := &coroutine{
		resume: make(chan struct{}),
		yield:  make(chan struct{}, 1),
		kill:   make(chan struct{}),
	}
	x.co = co
	go func() {
		defer func() {
			if r := recover(); r != nil && !co.killed.Load() {
				// The stack goes to the log, not to history: history must be
				// the same however often the code is replayed.
				x.logger.Error("orchestration panicked", "instance", x.info.InstanceID,
					"execution", x.info.ExecutionID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				x.abort = &Failure{Category: CategoryApplication, Kind: KindPanicked, Message: fmt.Sprint(r)}
			}
			co.exited.Store(true)
			select { // never blocks: after a step timeout nobody listens
			case co.yield <- struct{}{}:
			default:
			}
		}()
		co.wait()
		out, err := x.fn(x.ctx, input)
		if !co.killed.Load() {
			x.finish(out, err)
		}
	}()
}

// wait parks the coroutine until the engine resumes or stops it.
func (co *coroutine) wait() {
	select {
	case <-co.resume:
	case <-co.kill:
		runtime.Goexit()
	}
}

// stop ends a parked coroutine. Safe to call more than once.
func (co *coroutine) stop() {
	if co.killed.Swap(true) {
		return
	}
	close(co.kill)
}

// step hands control to the coroutine until it yields or exits. It returns
// ErrStepTimeout if the orchestration code does not yield in time.
func (x *Executor) step() error {
	co := x.co
	if co == nil || co.exited.Load() || co.killed.Load() {
		return nil
	}
	if x.misuse.Load() { // used from a foreign goroutine while parked
		x.fail(&Failure{Category: CategoryApplication, Kind: KindPanicked, Message: errMisuse})
		return nil
	}
	co.running = true
	co.resume <- struct{}{}
	select {
	case <-co.yield:
	case <-x.deadline:
		co.stop() // the goroutine exits at its next yield, if it ever yields
		return fmt.Errorf("instance %s execution %d: %w", x.info.InstanceID, x.info.ExecutionID, ErrStepTimeout)
	}
	co.running = false
	if x.misuse.Load() && x.abort == nil {
		x.abort = &Failure{Category: CategoryApplication, Kind: KindPanicked, Message: errMisuse}
	}
	if x.abort != nil {
		d := x.abort
		x.abort = nil
		x.fail(d)
		return nil
	}
	return nil
}

// await is called on the orchestration goroutine: it yields until cond holds.
func (x *Executor) await(cond func() bool) {
	x.mustOwn()
	for !cond() {
		co := x.co
		co.running = false
		select {
		case co.yield <- struct{}{}:
		default: // the engine gave up on this step (timeout); wait sees kill
		}
		co.wait()
	}
}

// errMisuse is recorded when the context is used from the wrong goroutine.
const errMisuse = "Context used outside the orchestration's goroutine (orchestration code must not start goroutines)"

// mustOwn stops the calling goroutine when the Context is used
// while the orchestration does not hold control, which means another
// goroutine is using it and determinism is lost. The execution then fails
// with a clear error at the end of the step; the process does not crash.
func (x *Executor) mustOwn() {
	if x.co == nil || !x.co.running {
		x.misuse.Store(true)
		runtime.Goexit()
	}
}
