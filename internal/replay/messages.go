package replay

import (
	"encoding/json"
	"fmt"
)

// MessageKind names the kind of a message in an instance's inbox.
type MessageKind string

// Message kinds. Their string forms are part of the wire protocol
// (docs/protocol.md): a service in any language may write Start,
// ExternalEvent, QueueEvent and Cancel messages with plain Redis commands.
const (
	// MessageStart starts the first execution of an instance.
	MessageStart MessageKind = "Start"
	// MessageContinueAsNew starts the next execution of an instance.
	MessageContinueAsNew MessageKind = "ContinueAsNew"
	// MessageActivityCompleted carries an activity's result.
	MessageActivityCompleted MessageKind = "ActivityCompleted"
	// MessageActivityFailed carries an activity's error.
	MessageActivityFailed MessageKind = "ActivityFailed"
	// MessageTimerFired says a durable timer is due.
	MessageTimerFired MessageKind = "TimerFired"
	// MessageExternalEvent carries an event raised from outside.
	MessageExternalEvent MessageKind = "ExternalEvent"
	// MessageQueueEvent carries a message for an event queue (EnqueueEvent).
	MessageQueueEvent MessageKind = "QueueEvent"
	// MessageSubOrchestrationCompleted carries a child's output to its parent.
	MessageSubOrchestrationCompleted MessageKind = "SubOrchestrationCompleted"
	// MessageSubOrchestrationFailed carries a child's failure to its parent.
	MessageSubOrchestrationFailed MessageKind = "SubOrchestrationFailed"
	// MessageCancel asks the instance to end as cancelled.
	MessageCancel MessageKind = "Cancel"
)

var knownMessageKinds = map[MessageKind]bool{
	MessageStart:             true,
	MessageContinueAsNew:     true,
	MessageActivityCompleted: true,
	MessageActivityFailed:    true,
	MessageTimerFired:        true,
	MessageExternalEvent:     true,

	MessageQueueEvent:                true,
	MessageSubOrchestrationCompleted: true,
	MessageSubOrchestrationFailed:    true,
	MessageCancel:                    true,
}

// Message is one entry of an instance's inbox: the input of an orchestration
// turn. Fields a kind does not use are omitted from its JSON form.
type Message struct {
	Kind MessageKind `json:"kind"`
	// Execution is the execution a completion belongs to (completions for an
	// older execution are dropped), or the execution a start message begins.
	Execution int64 `json:"execution,omitempty"`
	// EventID is the id of the scheduling event a completion answers.
	EventID int64 `json:"event_id,omitempty"`
	// Name is the orchestration name (Start, ContinueAsNew) or event name.
	Name string `json:"name,omitempty"`
	// Version is an explicit orchestration version; empty means "resolve by
	// the registry's policy when the execution starts".
	Version string `json:"version,omitempty"`
	// Input is the orchestration input (Start, ContinueAsNew).
	Input string `json:"input,omitempty"`
	// Result is an activity result or an event payload.
	Result string `json:"result,omitempty"`
	// Error describes an activity failure.
	Error *Failure `json:"error,omitempty"`
	// FireAt is a timer's due time in Unix milliseconds.
	FireAt int64 `json:"fire_at,omitempty"`
	// ParentInstance is the parent of a child orchestration (Start,
	// ContinueAsNew); ParentExecution and ParentEventID say which of its
	// executions and events wait for the child.
	ParentInstance  string `json:"parent_instance,omitempty"`
	ParentExecution int64  `json:"parent_execution,omitempty"`
	ParentEventID   int64  `json:"parent_event_id,omitempty"`
	// PreviousVersion is the version of the execution that continued as new
	// (ContinueAsNew without an explicit version). A worker whose Latest
	// version is older does not start the next execution: instances never
	// move back to an older version during a rolling upgrade.
	PreviousVersion string `json:"previous_version,omitempty"`
	// Reason explains a cancellation (Cancel). A Cancel sent by a parent to
	// its child carries the parent in ParentInstance, and is ignored by an
	// instance whose parent is another one.
	Reason string `json:"reason,omitempty"`
	// CarryForward and CustomStatus carry state into the next execution
	// (ContinueAsNew).
	CarryForward []QueueItem `json:"carry_forward,omitempty"`
	CustomStatus *string     `json:"custom_status,omitempty"`
	// Trace is the W3C trace context (traceparent) the execution joins
	// (Start, ContinueAsNew).
	Trace string `json:"trace,omitempty"`
}

// IsStart reports whether m begins a new execution.
func (m *Message) IsStart() bool {
	return m.Kind == MessageStart || m.Kind == MessageContinueAsNew
}

// EncodeMessage returns the stored JSON form of m.
func EncodeMessage(m Message) (string, error) {
	s, err := marshalString(m)
	if err != nil {
		return "", fmt.Errorf("encoding %s message: %w", m.Kind, err)
	}
	return s, nil
}

// DecodeMessage parses one stored inbox message and rejects unknown kinds and
// messages missing the fields their kind needs.
func DecodeMessage(s string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return Message{}, fmt.Errorf("decoding message: %w", err)
	}
	if !knownMessageKinds[m.Kind] {
		return Message{}, &UnknownKindError{What: "message", Kind: string(m.Kind)}
	}
	switch m.Kind {
	case MessageStart, MessageContinueAsNew:
		if m.Name == "" {
			return Message{}, fmt.Errorf("decoding %s message: orchestration name is empty", m.Kind)
		}
	case MessageActivityCompleted, MessageActivityFailed, MessageTimerFired,
		MessageSubOrchestrationCompleted, MessageSubOrchestrationFailed:
		if m.EventID <= 0 || m.Execution <= 0 {
			return Message{}, fmt.Errorf("decoding %s message: execution and event_id must be positive", m.Kind)
		}
	case MessageExternalEvent, MessageQueueEvent:
		if m.Name == "" {
			return Message{}, fmt.Errorf("decoding %s message: event name is empty", m.Kind)
		}
	}
	if (m.Kind == MessageActivityFailed || m.Kind == MessageSubOrchestrationFailed) && m.Error == nil {
		return Message{}, fmt.Errorf("decoding %s message: error is missing", m.Kind)
	}
	return m, nil
}

// ActivityRequest is the body of an activity work item: everything a worker
// needs to run the activity and route its result back.
type ActivityRequest struct {
	Instance  string `json:"instance"`
	Execution int64  `json:"execution"`
	// EventID is the id of the ActivityScheduled event.
	EventID int64  `json:"event_id"`
	Name    string `json:"name"`
	Input   string `json:"input,omitempty"`
	// Tag routes the activity to workers that serve the tag ("" = default).
	Tag string `json:"tag,omitempty"`
	// Session pins the activity to the worker owning the session ("" = none).
	Session string `json:"session,omitempty"`
	// Trace is the W3C trace context of the turn that scheduled it.
	Trace string `json:"trace,omitempty"`
	// OrchestrationName and OrchestrationVersion describe the caller.
	OrchestrationName    string `json:"orchestration"`
	OrchestrationVersion string `json:"orchestration_version"`
}

// EncodeActivityRequest returns the stored JSON form of r.
func EncodeActivityRequest(r ActivityRequest) (string, error) {
	s, err := marshalString(r)
	if err != nil {
		return "", fmt.Errorf("encoding activity request: %w", err)
	}
	return s, nil
}

// DecodeActivityRequest parses a stored activity work item.
func DecodeActivityRequest(s string) (ActivityRequest, error) {
	var r ActivityRequest
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return ActivityRequest{}, fmt.Errorf("decoding activity request: %w", err)
	}
	if r.Instance == "" || r.Name == "" || r.EventID <= 0 || r.Execution <= 0 {
		return ActivityRequest{}, fmt.Errorf("decoding activity request: instance, name, execution and event_id are required")
	}
	return r, nil
}

// Completion returns the message that reports result (or failure) of r to its
// orchestration.
func (r ActivityRequest) Completion(result string, failure *Failure) Message {
	m := Message{Execution: r.Execution, EventID: r.EventID}
	if failure != nil {
		m.Kind = MessageActivityFailed
		m.Error = failure
	} else {
		m.Kind = MessageActivityCompleted
		m.Result = result
	}
	return m
}
