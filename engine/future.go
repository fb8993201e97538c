package engine

import "github.com/duroworker/duroworker/internal/replay"

// Awaitable is anything Select and Join can wait on: a *Future of any type.
type Awaitable interface {
	slot() *replay.Slot
}

// Future is the result of a scheduled activity, timer, event wait or
// sub-orchestration. Get blocks the orchestration (durably: the worker may
// even restart) until the result is in history.
type Future[T any] struct {
	s      *replay.Slot
	decode func(string) (T, error)
}

func (f *Future[T]) slot() *replay.Slot { return f.s }

// IsReady reports whether Get would return without waiting.
func (f *Future[T]) IsReady() bool { return f.s.Done() }

// Get waits for the result. A failure is returned as *ErrorDetails; a result
// that cannot be decoded as T returns an application error.
func (f *Future[T]) Get() (T, error) {
	out, failure := f.s.Wait()
	var zero T
	if failure != nil {
		return zero, (*ErrorDetails)(failure)
	}
	v, err := f.decode(out)
	if err != nil {
		return zero, ApplicationError(KindActivityFailed, err.Error())
	}
	return v, nil
}

func stringFuture(s *replay.Slot) *Future[string] {
	return &Future[string]{s: s, decode: func(s string) (string, error) { return s, nil }}
}

func typedFuture[T any](s *replay.Slot) *Future[T] {
	return &Future[T]{s: s, decode: Decode[T]}
}

// failedFuture is a future already resolved with d, for calls whose
// arguments were invalid before anything could be scheduled.
func failedFuture[T any](d *ErrorDetails) *Future[T] {
	return typedFuture[T](replay.FailedSlot((*replay.Failure)(d)))
}
