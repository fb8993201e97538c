package engine

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/duroworker/duroworker/capability"
)

// An ActivityOption configures one ScheduleActivity call.
type ActivityOption func(*activityOptions)

type activityOptions struct {
	tag     string
	session string
	retry   *RetryPolicy
	timeout time.Duration
}

// WithTag routes the activity to workers that serve tag (see the worker's
// TagFilter). Without it the activity goes to the default, untagged workers.
func WithTag(tag string) ActivityOption {
	return func(o *activityOptions) { o.tag = tag }
}

// WithSession pins the activity to the worker that owns session id: the first
// activity of a session claims it for the worker that fetches it, later ones
// go to that worker while it holds the session (until it is idle for the
// worker's session idle timeout, dies, or shuts down).
func WithSession(id string) ActivityOption {
	return func(o *activityOptions) { o.session = id }
}

// WithRetry retries a failed activity under policy. Each attempt is its own
// ActivityScheduled event and each delay a durable timer, so retries survive
// worker restarts; the future resolves with the first success or the last
// attempt's error. Options such as WithTag and WithSession apply to every
// attempt.
func WithRetry(policy RetryPolicy) ActivityOption {
	return func(o *activityOptions) { o.retry = &policy }
}

// WithTimeout bounds each attempt by a durable timer of d. An attempt that
// has not finished in time is cancelled (its worker sees its context
// cancelled) and the future fails with an error of kind KindTimeout at once,
// without further retries: a timeout means the activity is slow, not that it
// failed, and retrying slow work multiplies the load that made it slow.
func WithTimeout(d time.Duration) ActivityOption {
	return func(o *activityOptions) { o.timeout = d }
}

// ScheduleActivity schedules the activity name with input and returns a
// future for its result. An activity error is returned by Get as
// *ErrorDetails of category application; a poisoned activity fails the whole
// orchestration instead. An invalid call (bad name, tag or session, input over
// MaxPayloadBytes, a retry policy without attempts) returns a future that has
// already failed, and schedules nothing.
func (c *OrchestrationContext) ScheduleActivity(name, input string, opts ...ActivityOption) *Future[string] {
	x := c.x
	x.mustOwn()
	var o activityOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateActivityCall(name, input, &o); err != nil {
		return failedFuture[string](x, err)
	}
	if o.retry == nil && o.timeout <= 0 {
		return &Future[string]{s: x.scheduleAttempt(name, input, &o), x: x, decode: decodeString}
	}
	call := &activityCall{x: x, name: name, input: input, opts: o, result: &slot{}}
	call.result.onCancel = call.cancel
	call.next()
	return &Future[string]{s: call.result, x: x, decode: decodeString}
}

// ScheduleActivityTyped is ScheduleActivity with input encoded by Encode and
// the result decoded as Out by Decode. An input that cannot be encoded makes
// the future fail with an application error.
func ScheduleActivityTyped[Out any](c *OrchestrationContext, name string, input any, opts ...ActivityOption) *Future[Out] {
	in, err := Encode(input)
	if err != nil {
		return failedFuture[Out](c.x, ApplicationError(KindActivityFailed, err.Error()))
	}
	return retype[Out](c.ScheduleActivity(name, in, opts...))
}

func validateActivityCall(name, input string, o *activityOptions) *ErrorDetails {
	if err := capability.ValidateName("activity", name); err != nil {
		return ApplicationError(KindActivityFailed, err.Error())
	}
	switch {
	case len(input) > MaxPayloadBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("input of activity %s is %d bytes, more than the limit of %d", name, len(input), MaxPayloadBytes))
	case len(o.tag) > MaxTagBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("tag of activity %s is %d bytes, more than the limit of %d", name, len(o.tag), MaxTagBytes))
	case strings.ContainsAny(o.tag, "{}\n\r#"):
		return ApplicationError(KindActivityFailed, fmt.Sprintf("tag %q of activity %s contains '{', '}', '#' or a newline", o.tag, name))
	case len(o.session) > MaxSessionIDBytes:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("session id of activity %s is %d bytes, more than the limit of %d", name, len(o.session), MaxSessionIDBytes))
	case strings.ContainsAny(o.session, "{}\n\r"):
		return ApplicationError(KindActivityFailed, fmt.Sprintf("session id %q of activity %s contains '{', '}' or a newline", o.session, name))
	case o.retry != nil && o.retry.MaxAttempts < 1:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("retry policy of activity %s: MaxAttempts must be at least 1, got %d", name, o.retry.MaxAttempts))
	case o.timeout < 0:
		return ApplicationError(KindActivityFailed, fmt.Sprintf("timeout of activity %s is negative (%s)", name, o.timeout))
	}
	return nil
}

// scheduleAttempt records one ActivityScheduled event (or matches it while
// replaying) and returns the slot its completion resolves. It returns nil
// when the engine itself scheduled the attempt and history disagreed: the
// execution has then failed as nondeterministic.
func (x *Executor) scheduleAttempt(name, input string, o *activityOptions) *slot {
	ev, isNew := x.emit(Event{Kind: EventActivityScheduled, Name: name, Input: input, Tag: o.tag, Session: o.session})
	if ev == nil {
		return nil
	}
	if isNew {
		x.out.Activities = append(x.out.Activities, ActivityRequest{
			Instance: x.info.InstanceID, Execution: x.info.ExecutionID, EventID: ev.ID,
			Name: name, Input: input, Tag: o.tag, Session: o.session,
			OrchestrationName: x.info.Name, OrchestrationVersion: x.info.Version,
		})
	}
	return x.open_(ev, EventActivityCompleted)
}

// scheduleTimer records one TimerCreated event and returns its slot (nil as
// for scheduleAttempt).
func (x *Executor) scheduleTimer(d time.Duration) *slot {
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
	opts    activityOptions
	attempt int
	current *slot // the running attempt; nil while backing off
	result  *slot // what the caller's future waits for
}

func (a *activityCall) maxAttempts() int {
	if a.opts.retry == nil {
		return 1
	}
	return a.opts.retry.MaxAttempts
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
	if a.opts.timeout > 0 {
		timer := a.x.scheduleTimer(a.opts.timeout)
		if timer == nil {
			return
		}
		timer.then = func(*slot) { a.timedOut(act) }
	}
}

// finished handles the completion of an attempt.
func (a *activityCall) finished(act *slot) {
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
	d := a.opts.retry.Backoff.Delay(a.attempt)
	if d <= 0 {
		a.next()
		return
	}
	if timer := x.scheduleTimer(d); timer != nil {
		timer.then = func(*slot) {
			if !a.result.done {
				a.next()
			}
		}
	}
}

// timedOut handles the timeout timer of attempt act.
func (a *activityCall) timedOut(act *slot) {
	if a.result.done || act != a.current || act.done {
		return // the attempt finished first: the timer fires unobserved
	}
	a.current = nil
	a.x.cancelSlot(act, "timeout")
	a.result.resolve("", &ErrorDetails{Category: CategoryApplication, Kind: KindTimeout,
		Message: fmt.Sprintf("activity %s timed out after %s", a.name, a.opts.timeout)})
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

// A SubOrchestrationOption configures one ScheduleSubOrchestration call.
type SubOrchestrationOption func(*subOptions)

type subOptions struct {
	instanceID string
	version    string
	detached   bool
}

// WithInstanceID gives the child instance id. Without it the id is generated
// as "<parent>::sub::<execution>.<event id>" (or "::detached::" for a
// detached start), unique across continue-as-new generations.
func WithInstanceID(id string) SubOrchestrationOption {
	return func(o *subOptions) { o.instanceID = id }
}

// WithVersion starts the child at version v (MAJOR.MINOR.PATCH) instead of
// the version the registry's policy picks.
func WithVersion(v string) SubOrchestrationOption {
	return func(o *subOptions) { o.version = v }
}

// Detached starts the orchestration without a parent link: fire and forget.
// Its future resolves at once with the started instance id; the orchestration
// does not wait for it, does not receive its result and does not cancel it. If
// the id is taken the start is ignored.
func Detached() SubOrchestrationOption {
	return func(o *subOptions) { o.detached = true }
}

// ScheduleSubOrchestration starts orchestration name as a child and returns
// a future for its output. The child's parent link (instance, execution and
// event) is stored durably with it, so its result reaches this execution from
// any worker. If the child id is already taken, the future fails with an
// application error. A child that fails for a system reason (poison,
// nondeterminism) fails this orchestration too; an application failure is
// returned by Get. With Detached the child is started without a link.
func (c *OrchestrationContext) ScheduleSubOrchestration(name, input string, opts ...SubOrchestrationOption) *Future[string] {
	x := c.x
	x.mustOwn()
	var o subOptions
	for _, opt := range opts {
		opt(&o)
	}
	what := "sub-orchestration"
	if o.detached {
		what = "detached orchestration"
	}
	if err := validateStartCall(what, name, o.instanceID, input); err != nil {
		return failedFuture[string](x, err)
	}
	version, verr := CanonicalVersion(o.version)
	if verr != nil {
		return failedFuture[string](x, ApplicationError(KindOrchestrationFailed, what+" "+name+": "+verr.Error()))
	}
	if o.detached {
		ev, isNew := x.emit(Event{Kind: EventOrchestrationChained, Name: name, Version: version, Instance: o.instanceID, Input: input})
		if isNew {
			if ev.Instance == "" {
				ev.Instance = fmt.Sprintf("%s::detached::%d.%d", x.info.InstanceID, x.info.ExecutionID, ev.ID)
			}
			x.out.Children = append(x.out.Children, ChildRequest{InstanceID: ev.Instance, Name: name, Version: version, Input: input,
				Start: Message{Kind: MessageStart, Execution: 1, Name: name, Version: version, Input: input}})
		}
		return &Future[string]{s: &slot{done: true, result: ev.Instance}, x: x, decode: decodeString}
	}
	ev, isNew := x.emit(Event{Kind: EventSubOrchestrationScheduled, Name: name, Version: version, Instance: o.instanceID, Input: input})
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
	return &Future[string]{s: s, x: x, decode: decodeString}
}

// ScheduleSubOrchestrationTyped is ScheduleSubOrchestration with input
// encoded by Encode and the output decoded as Out.
func ScheduleSubOrchestrationTyped[Out any](c *OrchestrationContext, name string, input any, opts ...SubOrchestrationOption) *Future[Out] {
	in, err := Encode(input)
	if err != nil {
		return failedFuture[Out](c.x, ApplicationError(KindOrchestrationFailed, err.Error()))
	}
	return retype[Out](c.ScheduleSubOrchestration(name, in, opts...))
}

func validateStartCall(what, name, instanceID, input string) *ErrorDetails {
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
