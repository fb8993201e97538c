package replay

import (
	"encoding/json"
	"fmt"
)

// EventKind names the kind of a history event. Its string form is part of the
// stored JSON and never changes once released.
type EventKind string

// History event kinds understood by this engine version. An event of any other
// kind fails decoding: that is how a history written by a newer engine is kept
// away from an older one (see DecodeEvent).
const (
	// EventOrchestrationStarted is always event 1 of an execution.
	EventOrchestrationStarted EventKind = "OrchestrationStarted"
	// EventOrchestrationCompleted ends an execution successfully.
	EventOrchestrationCompleted EventKind = "OrchestrationCompleted"
	// EventOrchestrationFailed ends an execution with an error.
	EventOrchestrationFailed EventKind = "OrchestrationFailed"
	// EventOrchestrationContinuedAsNew ends an execution that continues as a new one.
	EventOrchestrationContinuedAsNew EventKind = "OrchestrationContinuedAsNew"
	// EventActivityScheduled records a ScheduleActivity call.
	EventActivityScheduled EventKind = "ActivityScheduled"
	// EventActivityCompleted records an activity's result.
	EventActivityCompleted EventKind = "ActivityCompleted"
	// EventActivityFailed records an activity's error.
	EventActivityFailed EventKind = "ActivityFailed"
	// EventTimerCreated records a ScheduleTimer call.
	EventTimerCreated EventKind = "TimerCreated"
	// EventTimerFired records that a durable timer fired.
	EventTimerFired EventKind = "TimerFired"
	// EventExternalSubscribed records a WaitForEvent call.
	EventExternalSubscribed EventKind = "ExternalSubscribed"
	// EventExternalEvent records an event raised from outside.
	EventExternalEvent EventKind = "ExternalEvent"
	// EventExternalSubscribedCancelled records that a WaitForEvent lost a Select.
	EventExternalSubscribedCancelled EventKind = "ExternalSubscribedCancelled"
	// EventActivityCancelRequested records that a scheduled activity was
	// cancelled (it lost a Select, or the orchestration ended first).
	EventActivityCancelRequested EventKind = "ActivityCancelRequested"
	// EventSubOrchestrationScheduled records a ScheduleSubOrchestration call.
	EventSubOrchestrationScheduled EventKind = "SubOrchestrationScheduled"
	// EventSubOrchestrationCompleted records a child's output.
	EventSubOrchestrationCompleted EventKind = "SubOrchestrationCompleted"
	// EventSubOrchestrationFailed records a child's failure.
	EventSubOrchestrationFailed EventKind = "SubOrchestrationFailed"
	// EventSubOrchestrationCancelRequested records that a child was cancelled.
	EventSubOrchestrationCancelRequested EventKind = "SubOrchestrationCancelRequested"
	// EventOrchestrationChained records a detached StartOrchestration call.
	EventOrchestrationChained EventKind = "OrchestrationChained"
	// EventOrchestrationCancelRequested records a cancellation request.
	EventOrchestrationCancelRequested EventKind = "OrchestrationCancelRequested"
	// EventQueueSubscribed records a DequeueEvent call.
	EventQueueSubscribed EventKind = "QueueSubscribed"
	// EventQueueEventDelivered records a message put on an event queue.
	EventQueueEventDelivered EventKind = "QueueEventDelivered"
	// EventQueueSubscriptionCancelled records that a DequeueEvent lost a Select.
	EventQueueSubscriptionCancelled EventKind = "QueueSubscriptionCancelled"
	// EventCustomStatusUpdated records SetCustomStatus or ResetCustomStatus.
	EventCustomStatusUpdated EventKind = "CustomStatusUpdated"
	// EventKeyValueSet records SetKV.
	EventKeyValueSet EventKind = "KeyValueSet"
	// EventKeyValueCleared records ClearKV.
	EventKeyValueCleared EventKind = "KeyValueCleared"
	// EventKeyValuesCleared records ClearAllKV.
	EventKeyValuesCleared EventKind = "KeyValuesCleared"
)

var knownEventKinds = map[EventKind]bool{
	EventOrchestrationStarted:        true,
	EventOrchestrationCompleted:      true,
	EventOrchestrationFailed:         true,
	EventOrchestrationContinuedAsNew: true,
	EventActivityScheduled:           true,
	EventActivityCompleted:           true,
	EventActivityFailed:              true,
	EventTimerCreated:                true,
	EventTimerFired:                  true,
	EventExternalSubscribed:          true,
	EventExternalEvent:               true,

	EventExternalSubscribedCancelled:     true,
	EventActivityCancelRequested:         true,
	EventSubOrchestrationScheduled:       true,
	EventSubOrchestrationCompleted:       true,
	EventSubOrchestrationFailed:          true,
	EventSubOrchestrationCancelRequested: true,
	EventOrchestrationChained:            true,
	EventOrchestrationCancelRequested:    true,
	EventQueueSubscribed:                 true,
	EventQueueEventDelivered:             true,
	EventQueueSubscriptionCancelled:      true,
	EventCustomStatusUpdated:             true,
	EventKeyValueSet:                     true,
	EventKeyValueCleared:                 true,
	EventKeyValuesCleared:                true,
}

// Event is one entry of an execution's history. The JSON form is documented in
// docs/protocol.md; fields that a kind does not use are omitted.
type Event struct {
	// ID is the 1-based position of the event within its execution.
	ID int64 `json:"id"`
	// SourceID links a completion to the event that scheduled it.
	SourceID int64 `json:"source_id,omitempty"`
	// Kind says what happened.
	Kind EventKind `json:"kind"`
	// Time is when the event was recorded, in Unix milliseconds. It is the
	// source of Context.Now.
	Time int64 `json:"ts"`
	// Engine is the version of the engine that wrote the event.
	Engine string `json:"engine"`

	// Name is the orchestration, activity or external event name.
	Name string `json:"name,omitempty"`
	// Version is the orchestration version (OrchestrationStarted).
	Version string `json:"version,omitempty"`
	// Input is the input of an orchestration or activity, or the input of
	// the next execution (OrchestrationContinuedAsNew).
	Input string `json:"input,omitempty"`
	// Result is an activity result, orchestration output or event payload.
	Result string `json:"result,omitempty"`
	// Error describes a failure (ActivityFailed, OrchestrationFailed).
	Error *Failure `json:"error,omitempty"`
	// FireAt is a timer's due time in Unix milliseconds.
	FireAt int64 `json:"fire_at,omitempty"`
	// ParentInstance is the instance that started this one as a child.
	ParentInstance string `json:"parent_instance,omitempty"`
	// ParentExecution and ParentEventID say which execution and which
	// SubOrchestrationScheduled event of the parent wait for this child, so
	// that its completion reaches the parent from any worker, even after the
	// parent continued as new (upstream issues #28, #30).
	ParentExecution int64 `json:"parent_execution,omitempty"`
	ParentEventID   int64 `json:"parent_event_id,omitempty"`
	// Instance is the id of a child or detached orchestration.
	Instance string `json:"instance,omitempty"`
	// Tag routes an activity to workers that serve the tag.
	Tag string `json:"tag,omitempty"`
	// Session pins an activity to the worker that owns the session.
	Session string `json:"session,omitempty"`
	// Reason explains a cancellation.
	Reason string `json:"reason,omitempty"`
	// Cleared marks a custom status reset.
	Cleared bool `json:"cleared,omitempty"`
	// CarryForward holds event-queue messages not yet dequeued when the
	// previous execution continued as new (OrchestrationStarted).
	CarryForward []QueueItem `json:"carry_forward,omitempty"`
	// CustomStatus is the custom status carried over continue-as-new
	// (OrchestrationStarted); nil when none was set.
	CustomStatus *string `json:"custom_status,omitempty"`
	// Trace is the W3C trace context of the orchestration
	// (OrchestrationStarted), so that every turn and activity of it, on any
	// worker, joins one trace.
	Trace string `json:"trace,omitempty"`
}

// QueueItem is one event-queue message.
type QueueItem struct {
	Name string `json:"name"`
	Data string `json:"data,omitempty"`
}

// IsTerminal reports whether e ends its execution.
func (e *Event) IsTerminal() bool {
	switch e.Kind {
	case EventOrchestrationCompleted, EventOrchestrationFailed, EventOrchestrationContinuedAsNew:
		return true
	}
	return false
}

// EncodeEvent returns the stored JSON form of e.
func EncodeEvent(e Event) (string, error) {
	s, err := marshalString(e)
	if err != nil {
		return "", fmt.Errorf("encoding %s event %d: %w", e.Kind, e.ID, err)
	}
	return s, nil
}

// DecodeEvent parses one stored event. It fails on malformed JSON and on an
// event kind that this engine does not know, so that a history written by a
// newer engine is never replayed by an older one.
func DecodeEvent(s string) (Event, error) {
	var e Event
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		return Event{}, fmt.Errorf("decoding history event: %w", err)
	}
	if !knownEventKinds[e.Kind] {
		return Event{}, &UnknownKindError{What: "history event", Kind: string(e.Kind)}
	}
	return e, nil
}

// DecodeHistory decodes a stored history in order and checks its shape: dense
// ids from 1 and OrchestrationStarted first.
func DecodeHistory(raw []string) ([]Event, error) {
	events := make([]Event, 0, len(raw))
	for i, s := range raw {
		e, err := DecodeEvent(s)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		if e.ID != int64(i+1) {
			return nil, fmt.Errorf("event %d: corrupted history: id %d out of sequence", i+1, e.ID)
		}
		if i == 0 && e.Kind != EventOrchestrationStarted {
			return nil, fmt.Errorf("corrupted history: first event is %s, not %s", e.Kind, EventOrchestrationStarted)
		}
		events = append(events, e)
	}
	return events, nil
}

// UnknownKindError reports a stored event or message of a kind this engine
// version does not understand.
type UnknownKindError struct {
	What string // "history event" or "message"
	Kind string
}

func (e *UnknownKindError) Error() string {
	return fmt.Sprintf("unknown %s kind %q: written by a newer engine than %s?", e.What, e.Kind, Version)
}
