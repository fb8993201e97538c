package engine

// slot is the state behind a future: the schedule it waits for and, once
// delivered, its outcome.
type slot struct {
	id         int64     // id of the scheduling event
	completion EventKind // the completion kind that resolves it
	name       string    // event or queue name (waits)
	child      string    // child instance id (sub-orchestrations)
	done       bool
	result     string
	err        *ErrorDetails

	// then, when set, runs on the engine side right after a completion from
	// history resolved the slot (a retried activity's next step).
	then func(*slot)
	// onCancel, when set, replaces the default cancellation of a Select
	// loser (a call made of several schedules).
	onCancel func(reason string)
}

func (s *slot) resolve(result string, err *ErrorDetails) {
	s.done, s.result, s.err = true, result, err
}

// Awaitable is anything Select and Join can wait on: a *Future of any type.
type Awaitable interface {
	awaitSlot() *slot
}

// Future is the result of a scheduled activity, timer or event wait. Get
// blocks the orchestration (durably: the worker may even restart) until the
// result is in history.
type Future[T any] struct {
	s      *slot
	x      *Executor
	decode func(string) (T, error)
}

func (f *Future[T]) awaitSlot() *slot { return f.s }

// IsReady reports whether Get would return without waiting.
func (f *Future[T]) IsReady() bool { return f.s.done }

// Get waits for the result. A failed activity returns *ErrorDetails; a result
// that cannot be decoded as T returns an application error.
func (f *Future[T]) Get() (T, error) {
	if !f.s.done {
		f.x.await(func() bool { return f.s.done })
	}
	var zero T
	if f.s.err != nil {
		return zero, f.s.err
	}
	v, err := f.decode(f.s.result)
	if err != nil {
		return zero, ApplicationError(KindActivityFailed, err.Error())
	}
	return v, nil
}

// failedFuture is a future that is already resolved with an error, for calls
// whose arguments were invalid before anything could be scheduled.
func failedFuture[T any](x *Executor, d *ErrorDetails) *Future[T] {
	return &Future[T]{s: &slot{done: true, err: d}, x: x, decode: func(string) (T, error) { var z T; return z, nil }}
}

// retype gives a string future a decoder to T.
func retype[T any](f *Future[string]) *Future[T] {
	return &Future[T]{s: f.s, x: f.x, decode: Decode[T]}
}
