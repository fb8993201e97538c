package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// ExecutionStatus is the state of an execution after a turn.
type ExecutionStatus string

// Execution statuses. The strings are stable and stored.
const (
	StatusRunning        ExecutionStatus = "Running"
	StatusCompleted      ExecutionStatus = "Completed"
	StatusFailed         ExecutionStatus = "Failed"
	StatusContinuedAsNew ExecutionStatus = "ContinuedAsNew"
)

// DefaultStepTimeout bounds how long orchestration code may run between two
// yields (a Get, Select or Join that must wait, or its return) before the turn
// is abandoned as blocked.
const DefaultStepTimeout = 30 * time.Second

// ExecutionInfo identifies an execution and the code that runs it.
type ExecutionInfo struct {
	InstanceID  string
	ExecutionID int64
	Name        string
	Version     string
}

// ExecutorOptions tunes an Executor. The zero value is usable.
type ExecutorOptions struct {
	// Logger receives the orchestration's replay-guarded traces. Nil means
	// slog.Default().
	Logger *slog.Logger
	// StepTimeout: see DefaultStepTimeout. Zero means the default.
	StepTimeout time.Duration
	// KV is the instance's key-value state as of the start of this
	// execution; the execution's own changes are replayed from history on
	// top of it, so reads are deterministic.
	KV map[string]KVEntry
	// MaxHistoryEvents bounds the events of one execution; an execution
	// that grows past it fails with an application error that suggests
	// ContinueAsNew. Zero means DefaultMaxHistoryEvents.
	MaxHistoryEvents int
}

// TimerRequest is a durable timer a turn created: Message is delivered to the
// instance at FireAt.
type TimerRequest struct {
	FireAt  time.Time
	Message Message
}

// TurnResult is what one turn decided: the events to append and the work to
// send, all of which the caller persists in one atomic step.
type TurnResult struct {
	// NewEvents are appended to the execution's history, in order.
	NewEvents []Event
	// Activities are the activities scheduled in this turn.
	Activities []ActivityRequest
	// Timers are the durable timers created in this turn.
	Timers []TimerRequest
	// Status is the execution's status after the turn.
	Status ExecutionStatus
	// Output is the orchestration's output (Completed) or the next
	// execution's input (ContinuedAsNew).
	Output string
	// Failure describes why the execution failed (Failed).
	Failure *Failure
	// Next is the start message of the next execution (ContinuedAsNew).
	Next *Message
	// Children are the sub-orchestrations and detached orchestrations
	// started in this turn.
	Children []ChildRequest
	// CancelActivities are scheduled activities to take away from workers
	// (select losers, or still open when the execution ended).
	CancelActivities []ActivityRef
	// Outbox are messages to other instances: cancellation of children, and
	// the completion of this instance for its parent.
	Outbox []OutboundMessage
	// CustomStatus is the last custom status change of the turn, if any.
	CustomStatus *CustomStatusUpdate
	// KV are the key-value changes of the turn, in order.
	KV []KVOp
	// Dropped describes messages the turn consumed without effect (stale or
	// duplicate completions, messages after the end), for logging.
	Dropped []string
	// Consumed is how many of the turn's messages were processed. After a
	// continue-as-new the rest belong to the next execution: the caller must
	// leave them in the inbox. After Completed or Failed every message is
	// consumed (the instance takes no more).
	Consumed int
}

// ChildRequest asks to start another instance: a sub-orchestration (Parent
// set) or a detached orchestration.
type ChildRequest struct {
	InstanceID string
	Name       string
	Version    string // empty: the registry policy of the worker that starts it
	Input      string
	// Parent is true for a sub-orchestration: its Start message carries the
	// parent's instance, execution and event id.
	Parent bool
	// Start is the child's start message.
	Start Message
	// Collision, for a sub-orchestration, is the message that tells this
	// instance its child id is already taken.
	Collision *Message
}

// ActivityRef identifies a scheduled activity.
type ActivityRef struct {
	Execution int64
	EventID   int64
}

// OutboundMessage is a message for another instance.
type OutboundMessage struct {
	InstanceID string
	Message    Message
}

// CustomStatusUpdate is a change of the custom status.
type CustomStatusUpdate struct {
	Value string
	Clear bool
}

// KVOpKind is a kind of key-value change.
type KVOpKind string

// Key-value change kinds.
const (
	KVSet      KVOpKind = "set"
	KVClear    KVOpKind = "clear"
	KVClearAll KVOpKind = "clear_all"
)

// KVOp is one key-value change.
type KVOp struct {
	Kind      KVOpKind
	Key       string
	Value     string
	UpdatedAt time.Time
}

// KVEntry is a stored key-value pair.
type KVEntry struct {
	Value     string
	UpdatedAt time.Time
}

// ErrStepTimeout is returned by Turn when orchestration code ran for longer
// than the step timeout without yielding, which usually means it blocked on
// something outside the Context (I/O, a channel, time.Sleep).
var ErrStepTimeout = errors.New("orchestration code did not yield within the step timeout (blocking outside the Context?)")

// Body is an orchestration bound to the replay engine: the engine package
// wraps the user's function (see BindOrchestration), which takes its public
// context, around the Context of an execution.
type Body func(ctx *Context, input string) (string, error)

// Executor replays one execution and runs its turns. It keeps the live
// orchestration between turns, so a worker that caches it pays only for new
// events. An Executor is not safe for concurrent use; call Close when it is no
// longer needed.
type Executor struct {
	fn          Body
	info        ExecutionInfo
	logger      *slog.Logger
	stepTimeout time.Duration
	ctx         *Context

	history       []Event
	committed     int   // events persisted before the current turn
	cursor        int   // next history event to replay or match
	lastDelivered int   // index of the last delivered start or completion, -1 before the start
	now           int64 // Time of the last delivered event (ms): Context.Now
	turnNow       int64 // time of the current turn (ms), stamped on new events
	guids         int

	open      map[int64]*Slot // schedules awaiting completion, by event id
	completed map[int64]bool  // schedules already completed or cancelled: late completions are dropped
	waits     map[string][]*Slot
	queueSubs map[string][]*Slot  // open DequeueEvent subscriptions, oldest first
	queued    map[string][]string // event-queue messages not yet dequeued, oldest first
	queueSeq  []string            // queue names in order of first use, for a deterministic carry-forward

	parent          string // parent instance of a sub-orchestration
	parentExecution int64
	parentEventID   int64
	cancelReason    *string
	customStatus    *string
	kv              map[string]KVEntry
	maxEvents       int

	co       *coroutine
	deadline <-chan time.Time

	finished bool
	status   ExecutionStatus
	output   string
	failure  *Failure
	next     *Message
	abort    *Failure // set by orchestration-side checks (nondeterminism) to end the execution
	// engineSide is true while the engine itself schedules work on the
	// orchestration's behalf (the next attempt of a retried activity):
	// emit then fails the execution on a mismatch instead of stopping the
	// orchestration's goroutine.
	engineSide bool
	misuse     atomic.Bool // the context was used from a foreign goroutine

	out TurnResult
}

// NewExecutor prepares an execution for replay. history is the execution's
// stored history (empty for a new execution, whose first turn must receive its
// start message). Nothing runs until the first Turn.
func NewExecutor(fn Body, info ExecutionInfo, history []Event, opts ExecutorOptions) (*Executor, error) {
	if fn == nil {
		return nil, errors.New("engine: nil orchestration function")
	}
	if len(history) > 0 && history[0].Kind != EventOrchestrationStarted {
		return nil, fmt.Errorf("corrupted history: first event is %s", history[0].Kind)
	}
	x := &Executor{
		fn:            fn,
		info:          info,
		logger:        opts.Logger,
		stepTimeout:   opts.StepTimeout,
		history:       append(make([]Event, 0, len(history)+8), history...),
		committed:     len(history),
		lastDelivered: -1,
		open:          map[int64]*Slot{},
		completed:     map[int64]bool{},
		waits:         map[string][]*Slot{},
		queueSubs:     map[string][]*Slot{},
		queued:        map[string][]string{},
		kv:            map[string]KVEntry{},
		maxEvents:     opts.MaxHistoryEvents,
	}
	for k, v := range opts.KV {
		x.kv[k] = v
	}
	if x.maxEvents <= 0 {
		x.maxEvents = DefaultMaxHistoryEvents
	}
	if x.logger == nil {
		x.logger = slog.Default()
	}
	if x.stepTimeout <= 0 {
		x.stepTimeout = DefaultStepTimeout
	}
	x.ctx = &Context{x: x}
	return x, nil
}

// Info returns the execution the executor runs.
func (x *Executor) Info() ExecutionInfo { return x.info }

// Parent returns the parent of a sub-orchestration execution (its instance,
// execution and the event that waits for it), known once the history's start
// has been replayed; empty for a root instance.
func (x *Executor) Parent() (instance string, execution, eventID int64) {
	return x.parent, x.parentExecution, x.parentEventID
}

// Trace returns the W3C trace context the execution joined when it started
// ("" when none).
func (x *Executor) Trace() string {
	if len(x.history) == 0 {
		return ""
	}
	return x.history[0].Trace
}

// HistoryLen returns the number of events the executor holds, which equals
// the stored history length after a successful turn and commit.
func (x *Executor) HistoryLen() int { return len(x.history) }

// Finished reports whether the execution has ended.
func (x *Executor) Finished() bool { return x.finished }

// Turn replays any history not yet replayed, then applies msgs in order, and
// returns what the turn decided. now is the turn's time; it stamps new events.
// On a returned error the executor must be discarded (Close) and the turn
// retried from stored history.
func (x *Executor) Turn(now time.Time, msgs []Message) (*TurnResult, error) {
	x.turnNow = now.UnixMilli()
	x.out = TurnResult{}
	timer := time.NewTimer(x.stepTimeout)
	defer timer.Stop()
	x.deadline = timer.C

	if err := x.drive(); err != nil {
		return nil, err
	}
	consumed := len(msgs)
	for i, m := range msgs {
		if x.finished {
			if x.status == StatusContinuedAsNew {
				consumed = i // left for the next execution
				break
			}
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("%s message after the execution ended", m.Kind))
			continue
		}
		if err := x.apply(m); err != nil {
			return nil, err
		}
		if err := x.drive(); err != nil {
			return nil, err
		}
	}
	if len(x.history) == 0 {
		return nil, errors.New("engine: a new execution's first turn needs its start message")
	}

	res := x.out
	res.Consumed = consumed
	res.NewEvents = append([]Event(nil), x.history[x.committed:]...)
	x.committed = len(x.history)
	res.Status = StatusRunning
	if x.finished {
		res.Status, res.Output, res.Failure, res.Next = x.status, x.output, x.failure, x.next
		res.Timers = nil // nobody will wait for them
	}
	x.out = TurnResult{}
	return &res, nil
}

// Close stops the orchestration's goroutine, if any. It is safe to call more
// than once.
func (x *Executor) Close() {
	if x.co != nil {
		x.co.stop()
	}
}

// drive replays or processes history events from the cursor until it reaches
// the end of the history or the execution ends.
func (x *Executor) drive() error {
	for x.cursor < len(x.history) && !x.finished {
		idx := x.cursor
		ev := &x.history[idx]
		switch ev.Kind {
		case EventOrchestrationStarted:
			if idx != 0 || x.co != nil {
				x.fail(NondeterminismError("corrupted history: %s at position %d", ev.Kind, idx+1))
				return nil
			}
			x.cursor++
			x.deliverAt(idx)
			x.parent, x.parentExecution, x.parentEventID = ev.ParentInstance, ev.ParentExecution, ev.ParentEventID
			x.customStatus = ev.CustomStatus
			for _, q := range ev.CarryForward {
				x.enqueue(q.Name, q.Data)
			}
			x.startCoroutine(ev.Input)
		case EventOrchestrationCancelRequested:
			x.cursor++
			x.deliverAt(idx)
			reason := ev.Reason
			x.cancelReason = &reason
			x.fail(&Failure{Category: CategoryApplication, Kind: KindCancelled, Message: reason})
			return nil
		case EventActivityCompleted, EventActivityFailed, EventTimerFired, EventExternalEvent,
			EventSubOrchestrationCompleted, EventSubOrchestrationFailed, EventQueueEventDelivered:
			x.cursor++
			x.deliverAt(idx)
			if d := x.deliver(ev); d != nil {
				x.fail(d)
				return nil
			}
		case EventOrchestrationCompleted, EventOrchestrationFailed, EventOrchestrationContinuedAsNew:
			x.fail(NondeterminismError("history ends the execution with %s (event %d) but the orchestration has not returned", ev.Kind, ev.ID))
			return nil
		default:
			x.fail(NondeterminismError("history has %s %q (event %d) but the orchestration did not schedule it", ev.Kind, ev.Name, ev.ID))
			return nil
		}
		if err := x.step(); err != nil {
			return err
		}
		if len(x.history) > x.maxEvents && !x.finished {
			x.fail(ApplicationError(KindOrchestrationFailed, fmt.Sprintf(
				"history has %d events, more than the limit of %d: use ContinueAsNew to start a fresh history", len(x.history), x.maxEvents)))
		}
	}
	return nil
}

func (x *Executor) deliverAt(idx int) {
	x.lastDelivered = idx
	x.now = x.history[idx].Time
}

// deliver resolves the future a completion event belongs to. It returns
// details when the completion must end the execution instead.
func (x *Executor) deliver(ev *Event) *Failure {
	if ev.Kind == EventExternalEvent {
		subs := x.waits[ev.Name]
		if len(subs) == 0 {
			return nil // arrived before any subscription: kept in history, delivered to nobody
		}
		s := subs[0]
		x.waits[ev.Name] = subs[1:]
		s.resolve(ev.Result, nil)
		return nil
	}
	if ev.Kind == EventQueueEventDelivered {
		x.enqueue(ev.Name, ev.Result)
		return nil
	}
	s := x.open[ev.SourceID]
	if s == nil {
		return NondeterminismError("history has %s for event %d, which is not an open schedule", ev.Kind, ev.SourceID)
	}
	if !completes(s.completion, ev.Kind) {
		return NondeterminismError("completion kind mismatch for event %d: expected %s, got %s", ev.SourceID, s.completion, ev.Kind)
	}
	delete(x.open, ev.SourceID)
	x.completed[ev.SourceID] = true
	if ev.Kind == EventActivityFailed && ev.Error != nil && ev.Error.Category == CategoryPoison {
		// A poisoned activity fails its orchestration; code cannot catch it.
		return ev.Error
	}
	if ev.Kind == EventSubOrchestrationFailed && ev.Error != nil && ev.Error.Category != CategoryApplication {
		// A child that failed for a system reason (poison, nondeterminism,
		// infrastructure) fails its parent with the same details.
		return ev.Error
	}
	s.resolve(ev.Result, ev.Error)
	if s.then != nil {
		x.engineSide = true
		s.then(s)
		x.engineSide = false
	}
	return nil
}

// replaying reports whether the event last delivered was already in history
// before this turn; see Context.IsReplaying.
func (x *Executor) replaying() bool { return x.lastDelivered < x.committed }

// completes reports whether an event of kind got answers a schedule that
// waits for want.
func completes(want, got EventKind) bool {
	switch want {
	case EventActivityCompleted:
		return got == EventActivityCompleted || got == EventActivityFailed
	case EventSubOrchestrationCompleted:
		return got == EventSubOrchestrationCompleted || got == EventSubOrchestrationFailed
	}
	return want == got
}

// enqueue hands an event-queue message to the oldest open subscription of
// its queue, or keeps it for the next one.
func (x *Executor) enqueue(name, data string) {
	if subs := x.queueSubs[name]; len(subs) > 0 {
		x.queueSubs[name] = subs[1:]
		subs[0].resolve(data, nil)
		return
	}
	if _, seen := x.queued[name]; !seen {
		x.queueSeq = append(x.queueSeq, name)
	}
	x.queued[name] = append(x.queued[name], data)
}

// apply turns one inbox message into a history event, or drops it.
func (x *Executor) apply(m Message) error {
	ev := Event{Kind: "", Time: x.turnNow, Engine: Version}
	switch m.Kind {
	case MessageStart, MessageContinueAsNew:
		if len(x.history) > 0 {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("%s message for a running execution", m.Kind))
			return nil
		}
		ev.Kind = EventOrchestrationStarted
		ev.Name, ev.Version, ev.Input = x.info.Name, x.info.Version, m.Input
		ev.ParentInstance, ev.ParentExecution, ev.ParentEventID = m.ParentInstance, m.ParentExecution, m.ParentEventID
		ev.CarryForward, ev.CustomStatus, ev.Trace = m.CarryForward, m.CustomStatus, m.Trace
	case MessageActivityCompleted, MessageActivityFailed, MessageTimerFired,
		MessageSubOrchestrationCompleted, MessageSubOrchestrationFailed:
		if len(x.history) == 0 {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("%s message before the execution started", m.Kind))
			return nil
		}
		if m.Execution != x.info.ExecutionID {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("%s for event %d of execution %d (current %d)", m.Kind, m.EventID, m.Execution, x.info.ExecutionID))
			return nil
		}
		if x.completed[m.EventID] {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("duplicate %s for event %d", m.Kind, m.EventID))
			return nil
		}
		if x.open[m.EventID] == nil {
			x.fail(NondeterminismError("no matching schedule for %s of event %d", m.Kind, m.EventID))
			return nil
		}
		ev.SourceID = m.EventID
		switch m.Kind {
		case MessageActivityCompleted:
			ev.Kind, ev.Result = EventActivityCompleted, m.Result
		case MessageActivityFailed:
			ev.Kind, ev.Error = EventActivityFailed, m.Error
		case MessageTimerFired:
			ev.Kind, ev.FireAt = EventTimerFired, m.FireAt
		case MessageSubOrchestrationCompleted:
			ev.Kind, ev.Result = EventSubOrchestrationCompleted, m.Result
		case MessageSubOrchestrationFailed:
			ev.Kind, ev.Error = EventSubOrchestrationFailed, m.Error
		}
	case MessageExternalEvent:
		if len(x.history) == 0 {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("event %q before the execution started", m.Name))
			return nil
		}
		ev.Kind, ev.Name, ev.Result = EventExternalEvent, m.Name, m.Result
	case MessageQueueEvent:
		if len(x.history) == 0 {
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("queue event %q before the execution started", m.Name))
			return nil
		}
		ev.Kind, ev.Name, ev.Result = EventQueueEventDelivered, m.Name, m.Result
	case MessageCancel:
		if len(x.history) == 0 {
			// Unreachable through the store: a start message is always first.
			x.out.Dropped = append(x.out.Dropped, "cancel before the execution started")
			return nil
		}
		if m.ParentInstance != "" && m.ParentInstance != x.parent {
			// A parent cancels only its own child: the id may belong to an
			// unrelated instance if the child's creation collided.
			x.out.Dropped = append(x.out.Dropped, fmt.Sprintf("cancel from %s, which is not this instance's parent", m.ParentInstance))
			return nil
		}
		if x.cancelReason != nil {
			x.out.Dropped = append(x.out.Dropped, "duplicate cancel")
			return nil
		}
		ev.Kind, ev.Reason = EventOrchestrationCancelRequested, m.Reason
	default:
		return &UnknownKindError{What: "message", Kind: string(m.Kind)}
	}
	x.appendEvent(ev)
	return nil
}

func (x *Executor) appendEvent(ev Event) int64 {
	ev.ID = int64(len(x.history) + 1)
	x.history = append(x.history, ev)
	return ev.ID
}

// emit is called by orchestration code (on its goroutine) for every schedule
// action. While replaying it matches the action against the next history event
// and ends the execution as nondeterministic on a mismatch; past the end of
// history it appends a new event. It returns the event of the action and
// whether it is new in this turn (and so needs its side effect sent).
//
// On the engine side (engineSide) a mismatch fails the execution at once and
// emit returns nil.
func (x *Executor) emit(action Event) (*Event, bool) {
	if !x.engineSide {
		x.mustOwn()
	}
	if x.cursor < len(x.history) {
		h := &x.history[x.cursor]
		if !actionMatches(h, &action) {
			d := NondeterminismError("schedule mismatch at event %d: orchestration did %s, history has %s", h.ID, describe(&action), describe(h))
			if x.engineSide {
				x.fail(d)
				return nil, false
			}
			x.abort = d
			runtime.Goexit()
		}
		x.cursor++
		return h, false
	}
	action.Time, action.Engine = x.turnNow, Version
	x.appendEvent(action)
	x.cursor++
	return &x.history[len(x.history)-1], true
}

func actionMatches(h, a *Event) bool {
	if h.Kind != a.Kind {
		return false
	}
	switch a.Kind {
	case EventActivityScheduled:
		return h.Name == a.Name && h.Input == a.Input && h.Tag == a.Tag && h.Session == a.Session
	case EventExternalSubscribed, EventQueueSubscribed:
		return h.Name == a.Name
	case EventSubOrchestrationScheduled:
		// An auto-generated child id is not compared: it derives from the
		// event id, which already matched by position.
		return h.Name == a.Name && h.Version == a.Version && h.Input == a.Input && (a.Instance == "" || h.Instance == a.Instance)
	case EventOrchestrationChained:
		return h.Name == a.Name && h.Version == a.Version && h.Input == a.Input && (a.Instance == "" || h.Instance == a.Instance)
	case EventActivityCancelRequested, EventSubOrchestrationCancelRequested,
		EventExternalSubscribedCancelled, EventQueueSubscriptionCancelled:
		return h.SourceID == a.SourceID
	case EventKeyValueSet:
		return h.Name == a.Name && h.Result == a.Result
	case EventKeyValueCleared:
		return h.Name == a.Name
	}
	return true // timers, custom status and clear-all match by position and kind
}

func describe(e *Event) string {
	switch e.Kind {
	case EventActivityScheduled:
		return fmt.Sprintf("%s %q with input %q", e.Kind, e.Name, truncate(e.Input, 64))
	case EventExternalSubscribed, EventQueueSubscribed, EventKeyValueCleared:
		return fmt.Sprintf("%s %q", e.Kind, e.Name)
	case EventSubOrchestrationScheduled, EventOrchestrationChained:
		return fmt.Sprintf("%s %q (instance %q) with input %q", e.Kind, e.Name, e.Instance, truncate(e.Input, 64))
	case EventKeyValueSet:
		return fmt.Sprintf("%s %q = %q", e.Kind, e.Name, truncate(e.Result, 64))
	case EventActivityCancelRequested, EventSubOrchestrationCancelRequested,
		EventExternalSubscribedCancelled, EventQueueSubscriptionCancelled:
		return fmt.Sprintf("%s of event %d", e.Kind, e.SourceID)
	}
	return string(e.Kind)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// finish records how the orchestration function returned.
func (x *Executor) finish(out string, err error) {
	var can *ContinueAsNewError
	switch {
	case errors.As(err, &can) && len(can.Input) > MaxPayloadBytes:
		d := ApplicationError(KindOrchestrationFailed, fmt.Sprintf("continue-as-new input is %d bytes, more than the limit of %d", len(can.Input), MaxPayloadBytes))
		x.end(StatusFailed, Event{Kind: EventOrchestrationFailed, Error: d}, "", d, true)
	case errors.As(err, &can):
		x.next = &Message{Kind: MessageContinueAsNew, Execution: x.info.ExecutionID + 1, Name: x.info.Name, Version: can.Version, Input: can.Input,
			PreviousVersion: x.info.Version,
			ParentInstance:  x.parent, ParentExecution: x.parentExecution, ParentEventID: x.parentEventID,
			CustomStatus: x.customStatus, CarryForward: x.carryForward(), Trace: x.Trace()}
		x.end(StatusContinuedAsNew, Event{Kind: EventOrchestrationContinuedAsNew, Input: can.Input}, can.Input, nil, true)
	case err != nil:
		d := DetailsOf(err, KindOrchestrationFailed)
		x.end(StatusFailed, Event{Kind: EventOrchestrationFailed, Error: d}, "", d, true)
	case len(out) > MaxPayloadBytes:
		d := ApplicationError(KindOrchestrationFailed, fmt.Sprintf("output is %d bytes, more than the limit of %d", len(out), MaxPayloadBytes))
		x.end(StatusFailed, Event{Kind: EventOrchestrationFailed, Error: d}, "", d, true)
	default:
		x.end(StatusCompleted, Event{Kind: EventOrchestrationCompleted, Result: out}, out, nil, true)
	}
}

// fail ends the execution with details, whatever the code does.
func (x *Executor) fail(d *Failure) {
	if x.finished {
		return
	}
	x.Close()
	x.next = nil
	x.end(StatusFailed, Event{Kind: EventOrchestrationFailed, Error: d}, "", d, false)
}

// end appends the terminal event. When the orchestration returned by itself
// while history still holds unreplayed events, the code has diverged from its
// history: the execution fails as nondeterministic instead.
func (x *Executor) end(status ExecutionStatus, ev Event, output string, failure *Failure, byCode bool) {
	x.finished = true
	x.status, x.output, x.failure = status, output, failure
	if byCode && x.cursor < len(x.history) {
		h := &x.history[x.cursor]
		if h.Kind == ev.Kind {
			x.cursor++ // replaying an execution that already ended this way
			return
		}
		x.status, x.output, x.next = StatusFailed, "", nil
		x.failure = NondeterminismError("orchestration returned but history has %s (event %d)", describe(h), h.ID)
		ev = Event{Kind: EventOrchestrationFailed, Error: x.failure}
	}
	x.cancelOpenWork()
	ev.Time, ev.Engine = x.turnNow, Version
	x.appendEvent(ev)
	x.cursor = len(x.history)
	x.notifyParent()
}

// cancelOpenWork takes back what the ending execution still waits for:
// activities leave the worker queue, children are cancelled. Each gets a
// breadcrumb in history, before the terminal event.
func (x *Executor) cancelOpenWork() {
	ids := make([]int64, 0, len(x.open))
	for id, s := range x.open {
		if s.completion == EventActivityCompleted || s.completion == EventSubOrchestrationCompleted {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	reason := "orchestration_terminal"
	for _, id := range ids {
		s := x.open[id]
		delete(x.open, id)
		x.completed[id] = true
		switch s.completion {
		case EventActivityCompleted:
			x.appendEvent(Event{Kind: EventActivityCancelRequested, SourceID: id, Reason: reason, Time: x.turnNow, Engine: Version})
			x.out.CancelActivities = append(x.out.CancelActivities, ActivityRef{Execution: x.info.ExecutionID, EventID: id})
		case EventSubOrchestrationCompleted:
			x.appendEvent(Event{Kind: EventSubOrchestrationCancelRequested, SourceID: id, Reason: reason, Time: x.turnNow, Engine: Version})
			why := "parent ended"
			if x.cancelReason != nil {
				why = "parent cancelled: " + *x.cancelReason
			}
			x.out.Outbox = append(x.out.Outbox, OutboundMessage{InstanceID: s.child, Message: Message{Kind: MessageCancel, Reason: why, ParentInstance: x.info.InstanceID}})
		}
	}
}

// notifyParent tells the parent of a sub-orchestration how it ended.
func (x *Executor) notifyParent() {
	if x.parent == "" || x.status == StatusContinuedAsNew {
		return
	}
	m := Message{Kind: MessageSubOrchestrationCompleted, Execution: x.parentExecution, EventID: x.parentEventID, Result: x.output}
	if x.status == StatusFailed {
		m = Message{Kind: MessageSubOrchestrationFailed, Execution: x.parentExecution, EventID: x.parentEventID, Error: x.failure}
	}
	x.out.Outbox = append(x.out.Outbox, OutboundMessage{InstanceID: x.parent, Message: m})
}

// carryForward returns the event-queue messages not yet dequeued, queue by
// queue in order of first use, keeping at most MaxCarryForward (the newest).
func (x *Executor) carryForward() []QueueItem {
	var items []QueueItem
	for _, name := range x.queueSeq {
		for _, d := range x.queued[name] {
			items = append(items, QueueItem{Name: name, Data: d})
		}
	}
	if len(items) > MaxCarryForward {
		x.logger.Warn("dropping event-queue messages over the carry-forward limit at continue-as-new",
			"instance", x.info.InstanceID, "dropped", len(items)-MaxCarryForward, "limit", MaxCarryForward)
		items = items[len(items)-MaxCarryForward:]
	}
	return items
}

// Hooks the engine package installs when it is initialised (every program
// that registers orchestrations imports it). They build the engine's public
// contexts, whose fields only the engine can set, so that the runtime can
// drive user code without the engine exporting its machinery.
var (
	// BindOrchestration turns an engine.OrchestrationFunc into a Body.
	BindOrchestration func(fn any) Body
	// NewActivityContext builds the *engine.ActivityContext of one attempt
	// of the activity req.
	NewActivityContext func(ctx context.Context, req ActivityRequest, workerID string, attempt int, logger *slog.Logger) any
)
