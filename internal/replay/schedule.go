package replay

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/duroworker/duroworker/capability"
)

// ActivityCall says how ScheduleActivity runs an activity.
type ActivityCall struct {
	Tag     string
	Session string
	// Retry, when set, retries failed attempts.
	Retry *Retry
	// Timeout, when positive, bounds each attempt by a durable timer.
	Timeout time.Duration
}

// Retry is a retry policy: MaxAttempts attempts in all, Delay(n) after the
// n-th failed one (a durable timer when positive).
type Retry struct {
	MaxAttempts int
	Delay       func(attempt int) time.Duration
}

// ScheduleActivity schedules the activity name with input, as o says (see
// engine.OrchestrationContext.ScheduleActivity). An invalid call returns a
// slot that has already failed, and schedules nothing.
func (c *Context) ScheduleActivity(name, input string, o ActivityCall) *Slot {
	x := c.x
	x.mustOwn()
	if err := validateActivityCall(name, input, &o); err != nil {
		return FailedSlot(err)
	}
	if o.Retry == nil && o.Timeout <= 0 {
		return x.scheduleAttempt(name, input, &o)
	}
	call := &activityCall{x: x, name: name, input: input, opts: o, result: &Slot{x: x}}
	call.result.onCancel = call.cancel
	call.next()
	return call.result
}

func validateActivityCall(name, input string, o *ActivityCall) *Failure {
	if err := capability.ValidateName("activity", name); err != nil {
		return ApplicationError(KindActivityFailed, err.Error())
	}
	switch {
	case len(input) > MaxPayloadBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("input of activity %s is %d bytes, more than the limit of %d", name, len(input), MaxPayloadBytes))
	case len(o.Tag) > MaxTagBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("tag of activity %s is %d bytes, more than the limit of %d", name, len(o.Tag), MaxTagBytes))
	case strings.ContainsAny(o.Tag, "{}\n\r#"):
		return ApplicationError(KindActivityFailed, fmt.Sprintf("tag %q of activity %s contains '{', '}', '#' or a newline", o.Tag, name))
	case len(o.Session) > MaxSessionIDBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("session id of activity %s is %d bytes, more than the limit of %d", name, len(o.Session), MaxSessionIDBytes))
	case strings.ContainsAny(o.Session, "{}\n\r"):
		return ApplicationError(KindActivityFailed, fmt.Sprintf("session id %q of activity %s contains '{', '}' or a newline", o.Session, name))
	case o.Retry != nil && o.Retry.MaxAttempts < 1:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("retry policy of activity %s: MaxAttempts must be at least 1, got %d", name, o.Retry.MaxAttempts))
	case o.Timeout < 0:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("timeout of activity %s is negative (%s)", name, o.Timeout))
	}
	return nil
}

// scheduleAttempt records one ActivityScheduled event (or matches it while
// replaying) and returns the slot its completion resolves. It returns nil
// when the engine itself scheduled the attempt and history disagreed: the
// execution has then failed as nondeterministic.
func (x *Executor) scheduleAttempt(name, input string, o *ActivityCall) *Slot {
	ev, isNew := x.emit(Event{Kind: EventActivityScheduled, Name: name, Input: input, Tag: o.Tag, Session: o.Session})
	if ev == nil {
		return nil
	}
	if isNew {
		x.out.Activities = append(x.out.Activities, ActivityRequest{
			Instance: x.info.InstanceID, Execution: x.info.ExecutionID, EventID: ev.ID,
			Name: name, Input: input, Tag: o.Tag, Session: o.Session,
			OrchestrationName: x.info.Name, OrchestrationVersion: x.info.Version,
		})
	}
	return x.open_(ev, EventActivityCompleted)
}

// scheduleTimer records one TimerCreated event and returns its slot (nil as
// for scheduleAttempt).
func (x *Executor) scheduleTimer(d time.Duration) *Slot {
	ev, isNew := x.emit(Event{Kind: EventTimerCreated, FireAt: x.now + d.Milliseconds()})
	if ev == nil {
		return nil
	}
	if isNew {
		x.out.Timers = append(x.out.Timers, TimerRequest{
			FireAt:  time.UnixMilli(ev.FireAt),
			Message: Message{Kind: MessageTimerFired, Execution: x.info.ExecutionID, EventID: ev.ID, FireAt: ev.FireAt},
		})
	}
	return x.open_(ev, EventTimerFired)
}

// activityCall drives one ScheduleActivity call that has a retry policy or a
// timeout. Its steps run when the completions they wait for are delivered,
// in history order, so a replay takes the same steps; the events they record
// are the ones the earlier sequential form (ScheduleActivityWithRetry)
// recorded, in the same order, which keeps histories written by it
// replayable.
type activityCall struct {
	x       *Executor
	name    string
	input   string
	opts    ActivityCall
	attempt int
	current *Slot // the running attempt; nil while backing off
	result  *Slot // what the caller's future waits for
}

func (a *activityCall) maxAttempts() int {
	if a.opts.Retry == nil {
		return 1
	}
	return a.opts.Retry.MaxAttempts
}

// next schedules the next attempt and, with a timeout, its timer.
func (a *activityCall) next() {
	a.attempt++
	act := a.x.scheduleAttempt(a.name, a.input, &a.opts)
	if act == nil {
		return
	}
	a.current = act
	act.then = a.finished
	if a.opts.Timeout > 0 {
		timer := a.x.scheduleTimer(a.opts.Timeout)
		if timer == nil {
			return
		}
		timer.then = func(*Slot) { a.timedOut(act) }
	}
}

// finished handles the completion of an attempt.
func (a *activityCall) finished(act *Slot) {
	if a.result.done || act != a.current {
		return
	}
	a.current = nil
	if act.err == nil || a.attempt >= a.maxAttempts() {
		a.result.resolve(act.result, act.err)
		return
	}
	x := a.x
	if !x.replaying() {
		x.logger.Warn(fmt.Sprintf("activity %s attempt %d/%d failed: %v; retrying", a.name, a.attempt, a.maxAttempts(), act.err),
			"instance", x.info.InstanceID, "execution", x.info.ExecutionID)
	}
	d := a.opts.Retry.Delay(a.attempt)
	if d <= 0 {
		a.next()
		return
	}
	if timer := x.scheduleTimer(d); timer != nil {
		timer.then = func(*Slot) {
			if !a.result.done {
				a.next()
			}
		}
	}
}

// timedOut handles the timeout timer of attempt act.
func (a *activityCall) timedOut(act *Slot) {
	if a.result.done || act != a.current || act.done {
		return // the attempt finished first: the timer fires unobserved
	}
	a.current = nil
	a.x.cancelSlot(act, "timeout")
	a.result.resolve("", &Failure{Category: CategoryApplication, Kind: KindTimeout,
		Message: fmt.Sprintf("activity %s timed out after %s", a.name, a.opts.Timeout)})
}

// cancel takes the call away (it lost a Select): the running attempt is
// cancelled and no further attempt is made.
func (a *activityCall) cancel(reason string) {
	if act := a.current; act != nil {
		a.current = nil
		a.x.cancelSlot(act, reason)
	}
}

// SubOrchestrationMarker separates a parent id from the generated part of an
// automatic child id; client starts reject ids that contain it.
const SubOrchestrationMarker = "::sub::"

// SubCall says how ScheduleSubOrchestration starts a child.
type SubCall struct {
	InstanceID string // empty: generated
	Version    string // empty: the registry policy
	Detached   bool   // no parent link: fire and forget
}

// ScheduleSubOrchestration starts orchestration name as a child, or detached,
// as o says (see engine.OrchestrationContext.ScheduleSubOrchestration).
func (c *Context) ScheduleSubOrchestration(name, input string, o SubCall) *Slot {
	x := c.x
	x.mustOwn()
	what := "sub-orchestration"
	if o.Detached {
		what = "detached orchestration"
	}
	if err := validateStartCall(what, name, o.InstanceID, input); err != nil {
		return FailedSlot(err)
	}
	version, verr := capability.CanonicalVersion(o.Version)
	if verr != nil {
		return FailedSlot(ApplicationError(KindOrchestrationFailed, what+" "+name+": "+verr.Error()))
	}
	if o.Detached {
		ev, isNew := x.emit(Event{Kind: EventOrchestrationChained, Name: name, Version: version, Instance: o.InstanceID, Input: input})
		if isNew {
			if ev.Instance == "" {
				ev.Instance = fmt.Sprintf("%s::detached::%d.%d", x.info.InstanceID, x.info.ExecutionID, ev.ID)
			}
			x.out.Children = append(x.out.Children, ChildRequest{InstanceID: ev.Instance, Name: name, Version: version, Input: input,
				Start: Message{Kind: MessageStart, Execution: 1, Name: name, Version: version, Input: input}})
		}
		return &Slot{x: x, done: true, result: ev.Instance}
	}
	ev, isNew := x.emit(Event{Kind: EventSubOrchestrationScheduled, Name: name, Version: version, Instance: o.InstanceID, Input: input})
	if isNew && ev.Instance == "" {
		ev.Instance = fmt.Sprintf("%s%s%d.%d", x.info.InstanceID, SubOrchestrationMarker, x.info.ExecutionID, ev.ID)
	}
	s := x.open_(ev, EventSubOrchestrationCompleted)
	s.child = ev.Instance
	if isNew {
		start := Message{Kind: MessageStart, Execution: 1, Name: name, Version: version, Input: input,
			ParentInstance: x.info.InstanceID, ParentExecution: x.info.ExecutionID, ParentEventID: ev.ID}
		collision := Message{Kind: MessageSubOrchestrationFailed, Execution: x.info.ExecutionID, EventID: ev.ID,
			Error: ApplicationError(KindOrchestrationFailed, fmt.Sprintf("sub-orchestration instance id %q is already in use", ev.Instance))}
		x.out.Children = append(x.out.Children, ChildRequest{InstanceID: ev.Instance, Name: name, Version: version,
			Input: input, Parent: true, Start: start, Collision: &collision})
	}
	return s
}

func validateStartCall(what, name, instanceID, input string) *Failure {
	if err := capability.ValidateName("orchestration", name); err != nil {
		return ApplicationError(KindOrchestrationFailed, what+": "+err.Error())
	}
	switch {
	case len(input) > MaxPayloadBytes:
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("input of %s %s is %d bytes, more than the limit of %d", what, name, len(input), MaxPayloadBytes))
	case len(instanceID) > 512:
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("instance id of %s %s is longer than 512 bytes", what, name))
	case strings.IndexFunc(instanceID, unicode.IsControl) >= 0:
		return ApplicationError(KindOrchestrationFailed, fmt.Sprintf("instance id %q contains a control character", instanceID))
	}
	return nil
}
