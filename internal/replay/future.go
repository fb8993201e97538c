package replay

// Slot is the state behind a future: the schedule it waits for and, once
// delivered, its outcome. The engine package wraps it in typed futures.
type Slot struct {
	x          *Executor
	id         int64     // id of the scheduling event
	completion EventKind // the completion kind that resolves it
	name       string    // event or queue name (waits)
	child      string    // child instance id (sub-orchestrations)
	done       bool
	result     string
	err        *Failure

	// then, when set, runs on the engine side right after a completion from
	// history resolved the slot (a retried activity's next step).
	then func(*Slot)
	// onCancel, when set, replaces the default cancellation of a Select
	// loser (a call made of several schedules).
	onCancel func(reason string)
}

func (s *Slot) resolve(result string, err *Failure) {
	s.done, s.result, s.err = true, result, err
}

// Done reports whether the outcome is known, so Wait returns at once.
func (s *Slot) Done() bool { return s.done }

// Wait blocks the orchestration (durably: the worker may even restart) until
// the outcome is in history, and returns it.
func (s *Slot) Wait() (string, *Failure) {
	if !s.done {
		s.x.await(func() bool { return s.done })
	}
	return s.result, s.err
}

// FailedSlot is a slot already resolved with f, for calls whose arguments
// were invalid before anything could be scheduled.
func FailedSlot(f *Failure) *Slot {
	return &Slot{done: true, err: f}
}
