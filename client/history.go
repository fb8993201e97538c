package client

import (
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
)

// HistoryEvent is one event of an execution's history, as ReadHistory
// returns it. Which fields are set depends on Kind; docs/protocol.md
// describes the stored form.
type HistoryEvent struct {
	// ID is the 1-based position of the event within its execution.
	ID int64
	// SourceID links a completion to the event that scheduled it.
	SourceID int64
	// Kind says what happened.
	Kind EventKind
	// Time is when the event was recorded (millisecond precision).
	Time time.Time
	// Engine is the version of the engine that wrote the event.
	Engine string
	// Name is the orchestration, activity or external event name.
	Name string
	// Version is the orchestration version (OrchestrationStarted).
	Version string
	// Input is the input of an orchestration or activity, or the input of
	// the next execution (OrchestrationContinuedAsNew).
	Input string
	// Result is an activity result, orchestration output or event payload.
	Result string
	// Error describes a failure (ActivityFailed, OrchestrationFailed,
	// SubOrchestrationFailed).
	Error *engine.ErrorDetails
	// FireAt is a timer's due time (TimerCreated, TimerFired).
	FireAt time.Time
	// ParentInstance is the instance that started this one as a child;
	// ParentExecution and ParentEventID say which execution and which
	// SubOrchestrationScheduled event of it wait for this child.
	ParentInstance  string
	ParentExecution int64
	ParentEventID   int64
	// Instance is the id of a child or detached orchestration.
	Instance string
	// Tag routes an activity to workers that serve the tag.
	Tag string
	// Session pins an activity to the worker that owns the session.
	Session string
	// Reason explains a cancellation.
	Reason string
	// Cleared marks a custom status reset (CustomStatusUpdated).
	Cleared bool
	// CarryForward holds the event-queue messages not yet dequeued when the
	// previous execution continued as new (OrchestrationStarted).
	CarryForward []QueuedEvent
	// CustomStatus is the custom status set by the event, or carried over
	// continue-as-new (OrchestrationStarted); nil when none.
	CustomStatus *string
	// Trace is the W3C trace context of the orchestration
	// (OrchestrationStarted).
	Trace string
}

// QueuedEvent is a message on an instance's event queue (see EnqueueEvent).
type QueuedEvent struct {
	// Queue is the name of the event queue.
	Queue string
	// Data is the message.
	Data string
}

// Ends reports whether e ends its execution: OrchestrationCompleted,
// OrchestrationFailed or OrchestrationContinuedAsNew.
func (e HistoryEvent) Ends() bool {
	switch e.Kind {
	case EventOrchestrationCompleted, EventOrchestrationFailed, EventOrchestrationContinuedAsNew:
		return true
	}
	return false
}

// EventKind names the kind of a history event. The strings are stored and
// never change.
type EventKind string

// History event kinds.
const (
	// EventOrchestrationStarted is always event 1 of an execution.
	EventOrchestrationStarted EventKind = "OrchestrationStarted"
	// EventOrchestrationCompleted ends an execution successfully.
	EventOrchestrationCompleted EventKind = "OrchestrationCompleted"
	// EventOrchestrationFailed ends an execution with an error.
	EventOrchestrationFailed EventKind = "OrchestrationFailed"
	// EventOrchestrationContinuedAsNew ends an execution that continues as a new one.
	EventOrchestrationContinuedAsNew EventKind = "OrchestrationContinuedAsNew"
	// EventActivityScheduled records that the orchestration scheduled an activity.
	EventActivityScheduled EventKind = "ActivityScheduled"
	// EventActivityCompleted records an activity's result.
	EventActivityCompleted EventKind = "ActivityCompleted"
	// EventActivityFailed records an activity's error.
	EventActivityFailed EventKind = "ActivityFailed"
	// EventTimerCreated records a durable timer.
	EventTimerCreated EventKind = "TimerCreated"
	// EventTimerFired records that a durable timer fired.
	EventTimerFired EventKind = "TimerFired"
	// EventExternalSubscribed records a wait for an external event.
	EventExternalSubscribed EventKind = "ExternalSubscribed"
	// EventExternalEvent records an event raised from outside (RaiseEvent).
	EventExternalEvent EventKind = "ExternalEvent"
	// EventExternalSubscribedCancelled records that a wait for an event lost a Select.
	EventExternalSubscribedCancelled EventKind = "ExternalSubscribedCancelled"
	// EventActivityCancelRequested records that a scheduled activity was
	// cancelled (it lost a Select, or the orchestration ended first).
	EventActivityCancelRequested EventKind = "ActivityCancelRequested"
	// EventSubOrchestrationScheduled records that a sub-orchestration was started.
	EventSubOrchestrationScheduled EventKind = "SubOrchestrationScheduled"
	// EventSubOrchestrationCompleted records a child's output.
	EventSubOrchestrationCompleted EventKind = "SubOrchestrationCompleted"
	// EventSubOrchestrationFailed records a child's failure.
	EventSubOrchestrationFailed EventKind = "SubOrchestrationFailed"
	// EventSubOrchestrationCancelRequested records that a child was cancelled.
	EventSubOrchestrationCancelRequested EventKind = "SubOrchestrationCancelRequested"
	// EventOrchestrationChained records that a detached orchestration was started.
	EventOrchestrationChained EventKind = "OrchestrationChained"
	// EventOrchestrationCancelRequested records a cancellation request (Cancel).
	EventOrchestrationCancelRequested EventKind = "OrchestrationCancelRequested"
	// EventQueueSubscribed records a wait for an event-queue message.
	EventQueueSubscribed EventKind = "QueueSubscribed"
	// EventQueueEventDelivered records a message put on an event queue (EnqueueEvent).
	EventQueueEventDelivered EventKind = "QueueEventDelivered"
	// EventQueueSubscriptionCancelled records that a wait for a queue message lost a Select.
	EventQueueSubscriptionCancelled EventKind = "QueueSubscriptionCancelled"
	// EventCustomStatusUpdated records that the custom status was set or reset.
	EventCustomStatusUpdated EventKind = "CustomStatusUpdated"
	// EventKeyValueSet records that a key of the key-value state was set.
	EventKeyValueSet EventKind = "KeyValueSet"
	// EventKeyValueCleared records that a key was cleared.
	EventKeyValueCleared EventKind = "KeyValueCleared"
	// EventKeyValuesCleared records that the whole key-value state was cleared.
	EventKeyValuesCleared EventKind = "KeyValuesCleared"
)

// historyEvent converts a decoded stored event.
func historyEvent(e replay.Event) HistoryEvent {
	h := HistoryEvent{ID: e.ID, SourceID: e.SourceID, Kind: EventKind(e.Kind), Engine: e.Engine,
		Name: e.Name, Version: e.Version, Input: e.Input, Result: e.Result, Error: (*engine.ErrorDetails)(e.Error),
		ParentInstance: e.ParentInstance, ParentExecution: e.ParentExecution, ParentEventID: e.ParentEventID,
		Instance: e.Instance, Tag: e.Tag, Session: e.Session, Reason: e.Reason, Cleared: e.Cleared,
		CustomStatus: e.CustomStatus, Trace: e.Trace}
	if e.Time != 0 {
		h.Time = time.UnixMilli(e.Time)
	}
	if e.FireAt != 0 {
		h.FireAt = time.UnixMilli(e.FireAt)
	}
	for _, q := range e.CarryForward {
		h.CarryForward = append(h.CarryForward, QueuedEvent{Queue: q.Name, Data: q.Data})
	}
	return h
}
