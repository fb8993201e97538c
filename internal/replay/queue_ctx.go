package replay

// DequeueEvent takes the next message from the event queue name (strict
// FIFO per queue), waiting for one if the queue is empty. Unlike
// WaitForEvent, messages that arrive before anyone dequeues are kept, and
// carried into the next execution by ContinueAsNew (up to MaxCarryForward).
func (c *Context) DequeueEvent(name string) *Slot {
	x := c.x
	ev, _ := x.emit(Event{Kind: EventQueueSubscribed, Name: name})
	s := &Slot{x: x, id: ev.ID, completion: EventQueueEventDelivered, name: name}
	if q := x.queued[name]; len(q) > 0 {
		x.queued[name] = q[1:]
		s.resolve(q[0], nil)
	} else {
		x.queueSubs[name] = append(x.queueSubs[name], s)
	}
	return s
}

// cancelSlot cancels a pending schedule (a Select loser) and records it.
func (x *Executor) cancelSlot(s *Slot, reason string) {
	if s.done {
		return
	}
	if s.onCancel != nil {
		s.onCancel(reason)
		// A later Get or Join on the loser returns at once with this error.
		s.resolve("", &Failure{Category: CategoryApplication, Kind: KindCancelled, Message: reason})
		return
	}
	if s.id == 0 || x.completed[s.id] {
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
	s.resolve("", &Failure{Category: CategoryApplication, Kind: KindCancelled, Message: reason})
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

func removeSlot(list []*Slot, s *Slot) []*Slot {
	for i, e := range list {
		if e == s {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}
