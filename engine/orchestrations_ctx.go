package engine

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/duroworker/duroworker/capability"
)

// SubOrchestrationMarker separates a parent id from the generated part of an
// automatic child id; client starts reject ids that contain it.
const SubOrchestrationMarker = "::sub::"

// SubOrchestrationOptions are per-call options of ScheduleSubOrchestrationWithOptions.
type SubOrchestrationOptions struct {
	// InstanceID is the child's id. Empty: generated as
	// "<parent>::sub::<execution>.<event id>", unique across continue-as-new
	// generations (upstream issue #32).
	InstanceID string
	// Version pins the child's version; empty uses the registry policy.
	Version string
}

// ScheduleSubOrchestration starts orchestration name as a child with a
// generated id and returns a future for its output. The child's parent link
// (instance, execution and event) is stored durably with it, so its result
// reaches this execution from any worker. If the child id is already taken,
// the future fails with an application error (upstream hangs, issue #40). A
// child that fails for a system reason (poison, nondeterminism) fails this
// orchestration too; an application failure is returned by Get.
func (c *OrchestrationContext) ScheduleSubOrchestration(name, input string) *Future[string] {
	return c.ScheduleSubOrchestrationWithOptions(name, input, SubOrchestrationOptions{})
}

// ScheduleSubOrchestrationWithID is ScheduleSubOrchestration with an explicit child id.
func (c *OrchestrationContext) ScheduleSubOrchestrationWithID(name, instanceID, input string) *Future[string] {
	return c.ScheduleSubOrchestrationWithOptions(name, input, SubOrchestrationOptions{InstanceID: instanceID})
}

// ScheduleSubOrchestrationVersioned is ScheduleSubOrchestration at an explicit version.
func (c *OrchestrationContext) ScheduleSubOrchestrationVersioned(name, version, input string) *Future[string] {
	return c.ScheduleSubOrchestrationWithOptions(name, input, SubOrchestrationOptions{Version: version})
}

// ScheduleSubOrchestrationWithOptions starts a child orchestration; see
// ScheduleSubOrchestration.
func (c *OrchestrationContext) ScheduleSubOrchestrationWithOptions(name, input string, opts SubOrchestrationOptions) *Future[string] {
	x := c.x
	x.mustOwn()
	if err := validateStartCall("sub-orchestration", name, opts.InstanceID, input); err != nil {
		return failedFuture[string](x, err)
	}
	version, verr := CanonicalVersion(opts.Version)
	if verr != nil {
		return failedFuture[string](x, ApplicationError(KindOrchestrationFailed, "sub-orchestration "+name+": "+verr.Error()))
	}
	opts.Version = version
	ev, isNew := x.emit(Event{Kind: EventSubOrchestrationScheduled, Name: name, Version: opts.Version, Instance: opts.InstanceID, Input: input})
	if isNew && ev.Instance == "" {
		ev.Instance = fmt.Sprintf("%s%s%d.%d", x.info.InstanceID, SubOrchestrationMarker, x.info.ExecutionID, ev.ID)
	}
	s := x.open_(ev, EventSubOrchestrationCompleted)
	s.child = ev.Instance
	if isNew {
		start := Message{Kind: MessageStart, Execution: 1, Name: name, Version: opts.Version, Input: input,
			ParentInstance: x.info.InstanceID, ParentExecution: x.info.ExecutionID, ParentEventID: ev.ID}
		collision := Message{Kind: MessageSubOrchestrationFailed, Execution: x.info.ExecutionID, EventID: ev.ID,
			Error: ApplicationError(KindOrchestrationFailed, fmt.Sprintf("sub-orchestration instance id %q is already in use", ev.Instance))}
		x.out.Children = append(x.out.Children, ChildRequest{InstanceID: ev.Instance, Name: name, Version: opts.Version,
			Input: input, Parent: true, Start: start, Collision: &collision})
	}
	return &Future[string]{s: s, x: x, decode: decodeString}
}

// ScheduleSubOrchestrationTyped is ScheduleSubOrchestration with the input
// encoded by Encode and the output decoded as Out.
func ScheduleSubOrchestrationTyped[Out any](c *OrchestrationContext, name string, input any, opts SubOrchestrationOptions) *Future[Out] {
	in, err := Encode(input)
	if err != nil {
		return failedFuture[Out](c.x, ApplicationError(KindOrchestrationFailed, err.Error()))
	}
	f := c.ScheduleSubOrchestrationWithOptions(name, in, opts)
	return &Future[Out]{s: f.s, x: c.x, decode: Decode[Out]}
}

// StartOrchestration starts a detached orchestration: fire and forget, with
// no parent link; instanceID is used as is. If the id is taken the start is
// ignored. The version is resolved by the registry policy.
func (c *OrchestrationContext) StartOrchestration(name, instanceID, input string) {
	c.StartOrchestrationVersioned(name, "", instanceID, input)
}

// StartOrchestrationVersioned is StartOrchestration at an explicit version.
func (c *OrchestrationContext) StartOrchestrationVersioned(name, version, instanceID, input string) {
	x := c.x
	x.mustOwn()
	version, verr := CanonicalVersion(version)
	if err := validateStartCall("orchestration", name, instanceID, input); err != nil || instanceID == "" || verr != nil {
		msg := "instance id is empty"
		if err != nil {
			msg = err.Error()
		} else if verr != nil {
			msg = verr.Error()
		}
		c.TraceError("detached start rejected: "+msg, "orchestration", name)
		return
	}
	_, isNew := x.emit(Event{Kind: EventOrchestrationChained, Name: name, Version: version, Instance: instanceID, Input: input})
	if isNew {
		x.out.Children = append(x.out.Children, ChildRequest{InstanceID: instanceID, Name: name, Version: version, Input: input,
			Start: Message{Kind: MessageStart, Execution: 1, Name: name, Version: version, Input: input}})
	}
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

// DequeueEvent takes the next message from the event queue name (strict
// FIFO per queue), waiting for one if the queue is empty. Unlike
// WaitForEvent, messages that arrive before anyone dequeues are kept, and
// carried into the next execution by ContinueAsNew (up to MaxCarryForward).
func (c *OrchestrationContext) DequeueEvent(name string) *Future[string] {
	x := c.x
	ev, _ := x.emit(Event{Kind: EventQueueSubscribed, Name: name})
	s := &slot{id: ev.ID, completion: EventQueueEventDelivered, name: name}
	if q := x.queued[name]; len(q) > 0 {
		x.queued[name] = q[1:]
		s.resolve(q[0], nil)
	} else {
		x.queueSubs[name] = append(x.queueSubs[name], s)
	}
	return &Future[string]{s: s, x: x, decode: decodeString}
}

// DequeueEventTyped is DequeueEvent with the message decoded as T.
func DequeueEventTyped[T any](c *OrchestrationContext, name string) *Future[T] {
	f := c.DequeueEvent(name)
	return &Future[T]{s: f.s, x: c.x, decode: Decode[T]}
}

// cancelSlot cancels a pending schedule (a Select loser) and records it.
func (x *Executor) cancelSlot(s *slot, reason string) {
	if s.done || s.id == 0 || x.completed[s.id] {
		return
	}
	var kind EventKind
	switch s.completion {
	case EventActivityCompleted:
		kind = EventActivityCancelRequested
	case EventSubOrchestrationCompleted:
		kind = EventSubOrchestrationCancelRequested
	case EventExternalEvent:
		kind = EventExternalSubscribedCancelled
		x.waits[s.name] = removeSlot(x.waits[s.name], s)
	case EventQueueEventDelivered:
		kind = EventQueueSubscriptionCancelled
		x.queueSubs[s.name] = removeSlot(x.queueSubs[s.name], s)
	default:
		return // timers fire unobserved
	}
	delete(x.open, s.id)
	x.completed[s.id] = true
	// A later Get or Join on the loser returns at once with this error.
	s.resolve("", &ErrorDetails{Category: CategoryApplication, Kind: KindCancelled, Message: reason})
	_, isNew := x.emit(Event{Kind: kind, SourceID: s.id, Reason: reason})
	if !isNew {
		return
	}
	switch kind {
	case EventActivityCancelRequested:
		x.out.CancelActivities = append(x.out.CancelActivities, ActivityRef{Execution: x.info.ExecutionID, EventID: s.id})
	case EventSubOrchestrationCancelRequested:
		x.out.Outbox = append(x.out.Outbox, OutboundMessage{InstanceID: s.child, Message: Message{Kind: MessageCancel,
			Reason: "parent dropped the sub-orchestration (" + reason + ")", ParentInstance: x.info.InstanceID}})
	}
}

func removeSlot(list []*slot, s *slot) []*slot {
	for i, e := range list {
		if e == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}
