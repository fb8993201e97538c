package client

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/replay"
	"github.com/duroworker/duroworker/queue"
)

// TestOneStatusVocabulary: the client's states are spelled as the store
// stores them and as the engine reports a turn's outcome, so a state read
// from any of them compares equal to the client's constant.
func TestOneStatusVocabulary(t *testing.T) {
	for _, c := range []struct {
		client State
		store  string
	}{
		{StatePending, queue.StatusPending},
		{StateRunning, queue.StatusRunning},
		{StateCompleted, queue.StatusCompleted},
		{StateFailed, queue.StatusFailed},
		{StateContinuedAsNew, queue.StatusContinuedAsNew},
	} {
		if string(c.client) != c.store {
			t.Errorf("client %q, store %q", c.client, c.store)
		}
	}
	if DefaultBulkDeleteLimit != queue.DefaultBulkDeleteLimit {
		t.Errorf("DefaultBulkDeleteLimit %d, the store's %d", DefaultBulkDeleteLimit, queue.DefaultBulkDeleteLimit)
	}
	for _, c := range []struct {
		client State
		engine replay.ExecutionStatus
	}{
		{StateRunning, replay.StatusRunning},
		{StateCompleted, replay.StatusCompleted},
		{StateFailed, replay.StatusFailed},
		{StateContinuedAsNew, replay.StatusContinuedAsNew},
	} {
		if string(c.client) != string(c.engine) {
			t.Errorf("client %q, engine %q", c.client, c.engine)
		}
	}
}

// TestHistoryEventKindsMatchTheEngine: every kind the engine writes has a
// client constant of the same spelling.
func TestHistoryEventKindsMatchTheEngine(t *testing.T) {
	pairs := map[replay.EventKind]EventKind{
		replay.EventOrchestrationStarted:            EventOrchestrationStarted,
		replay.EventOrchestrationCompleted:          EventOrchestrationCompleted,
		replay.EventOrchestrationFailed:             EventOrchestrationFailed,
		replay.EventOrchestrationContinuedAsNew:     EventOrchestrationContinuedAsNew,
		replay.EventActivityScheduled:               EventActivityScheduled,
		replay.EventActivityCompleted:               EventActivityCompleted,
		replay.EventActivityFailed:                  EventActivityFailed,
		replay.EventTimerCreated:                    EventTimerCreated,
		replay.EventTimerFired:                      EventTimerFired,
		replay.EventExternalSubscribed:              EventExternalSubscribed,
		replay.EventExternalEvent:                   EventExternalEvent,
		replay.EventExternalSubscribedCancelled:     EventExternalSubscribedCancelled,
		replay.EventActivityCancelRequested:         EventActivityCancelRequested,
		replay.EventSubOrchestrationScheduled:       EventSubOrchestrationScheduled,
		replay.EventSubOrchestrationCompleted:       EventSubOrchestrationCompleted,
		replay.EventSubOrchestrationFailed:          EventSubOrchestrationFailed,
		replay.EventSubOrchestrationCancelRequested: EventSubOrchestrationCancelRequested,
		replay.EventOrchestrationChained:            EventOrchestrationChained,
		replay.EventOrchestrationCancelRequested:    EventOrchestrationCancelRequested,
		replay.EventQueueSubscribed:                 EventQueueSubscribed,
		replay.EventQueueEventDelivered:             EventQueueEventDelivered,
		replay.EventQueueSubscriptionCancelled:      EventQueueSubscriptionCancelled,
		replay.EventCustomStatusUpdated:             EventCustomStatusUpdated,
		replay.EventKeyValueSet:                     EventKeyValueSet,
		replay.EventKeyValueCleared:                 EventKeyValueCleared,
		replay.EventKeyValuesCleared:                EventKeyValuesCleared,
	}
	for e, c := range pairs {
		if string(e) != string(c) {
			t.Errorf("engine %q, client %q", e, c)
		}
		// The engine decodes exactly the kinds it knows: each of these.
		raw, err := replay.EncodeEvent(replay.Event{ID: 1, Kind: e, Engine: engine.Version})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := replay.DecodeEvent(raw); err != nil {
			t.Errorf("%s: %v", e, err)
		}
	}
}

// TestHistoryEventCarriesEveryField: ReadHistory converts every field of a
// stored event, times included.
func TestHistoryEventCarriesEveryField(t *testing.T) {
	cs := "custom"
	at := time.UnixMilli(1_700_000_000_123)
	e := replay.Event{ID: 3, SourceID: 2, Kind: replay.EventOrchestrationStarted, Time: at.UnixMilli(), Engine: "1.2.3",
		Name: "n", Version: "1.0.0", Input: "in", Result: "res", Error: &replay.Failure{Category: replay.CategoryApplication, Message: "m"},
		FireAt: at.Add(time.Hour).UnixMilli(), ParentInstance: "p", ParentExecution: 4, ParentEventID: 5, Instance: "child",
		Tag: "gpu", Session: "s", Reason: "why", Cleared: true, CarryForward: []replay.QueueItem{{Name: "q", Data: "d"}},
		CustomStatus: &cs, Trace: "00-trace"}
	want := HistoryEvent{ID: 3, SourceID: 2, Kind: EventOrchestrationStarted, Time: at, Engine: "1.2.3",
		Name: "n", Version: "1.0.0", Input: "in", Result: "res", Error: (*engine.ErrorDetails)(e.Error),
		FireAt: at.Add(time.Hour), ParentInstance: "p", ParentExecution: 4, ParentEventID: 5, Instance: "child",
		Tag: "gpu", Session: "s", Reason: "why", Cleared: true, CarryForward: []QueuedEvent{{Queue: "q", Data: "d"}},
		CustomStatus: &cs, Trace: "00-trace"}
	got := historyEvent(e)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("converted\n%+v\nwant\n%+v", got, want)
	}
	// Every field of the engine's event has a counterpart.
	if n, m := reflect.TypeOf(replay.Event{}).NumField(), reflect.TypeOf(HistoryEvent{}).NumField(); n != m {
		t.Errorf("replay.Event has %d fields, HistoryEvent %d: convert the new ones", n, m)
	}
	if (historyEvent(replay.Event{Kind: replay.EventTimerFired})).Time != (time.Time{}) {
		t.Error("an event without a time has a non-zero Time")
	}
}

// TestManagementResultsAreConverted: the management calls return the
// client's own types with the store's numbers.
func TestManagementResultsAreConverted(t *testing.T) {
	c, s := newTestClient(t)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if err := s.CreateInstance(ctx, queue.CreateRequest{InstanceID: id, Name: "n", Bucket: "o:" + id, Message: "start"}); err != nil {
			t.Fatal(err)
		}
	}
	turn(t, s, "a", queue.OrchestrationAck{Status: queue.StatusCompleted, Output: "done",
		NewEvents: []string{event(t, 1, replay.EventOrchestrationStarted), event(t, 2, replay.EventOrchestrationCompleted)}})
	m, err := c.GetSystemMetrics(ctx)
	if err != nil || m != (SystemMetrics{Pending: 1, Completed: 1, Instances: 2, Executions: 1, Events: 2}) {
		t.Fatalf("metrics %+v %v", m, err)
	}
	d, err := c.GetQueueDepths(ctx)
	if err != nil || len(d.Orchestrations) != 1 || d.Orchestrations[0] != (BucketDepth{Bucket: "o:b", Ready: 1, Unserved: true}) {
		t.Fatalf("queue depths %+v %v", d, err)
	}
	res, err := c.DeleteInstances(ctx, BulkDeleteFilter{CompletedBefore: time.Now().Add(time.Hour)})
	if err != nil || res != (DeleteResult{Instances: 1, Executions: 1, Events: 2}) {
		t.Fatalf("bulk delete %+v %v", res, err)
	}
	res, err = c.DeleteInstance(ctx, "b", true)
	if err != nil || res != (DeleteResult{Instances: 1, QueueMessages: 1}) {
		t.Fatalf("delete %+v %v", res, err)
	}
	if dls, err := c.ListDeadLetters(ctx, "", 0); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters %+v %v", dls, err)
	}
}
