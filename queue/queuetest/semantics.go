package queuetest

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// timerTurn starts "i1" in "x:b" and acks a turn that sets timers due at
// base+offset each; it returns base (the server time of the start ack).
func (e *env) timerTurn(offsets []time.Duration, bodies []string) time.Time {
	e.t.Helper()
	e.start("i1", "x:b")
	base := e.now("i1")
	it := e.turn("i1", "set-timers")
	var ts []queue.Timer
	for i, off := range offsets {
		ts = append(ts, queue.Timer{DueAt: base.Add(off), Body: bodies[i]})
	}
	e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Timers: ts})
	return base
}

var semanticsCases = []testCase{
	{"inbox_is_fifo", func(e *env) {
		e.create("i1", "o:b", "m0")
		for i := 1; i < 6; i++ {
			e.enqueue("i1", fmt.Sprintf("m%d", i))
		}
		wantEqual(e.t, "batch", []string{"m0", "m1", "m2", "m3", "m4", "m5"}, e.fetchOne("o:b").Messages)
	}},
	{"head_messages_precede_messages_that_arrived_during_the_turn", func(e *env) {
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "late1")
		e.enqueue("i1", "late2")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, HeadMessages: []string{"h1", "h2"}})
		wantEqual(e.t, "next batch", []string{"h1", "h2", "late1", "late2"}, e.fetchOne("o:b").Messages)
	}},
	{"instance_is_ready_at_once_after_ack_when_messages_arrived", func(e *env) {
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "m2")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		d, _ := depth(e.depths().Orchestrations, "o:b")
		if d.Ready != 1 || d.Locked != 0 {
			e.t.Fatalf("depth after ack = %+v, want 1 ready", d)
		}
		if got := e.fetchOne("o:b"); got.Attempts != 1 {
			e.t.Fatalf("attempts of the new batch = %d, want 1", got.Attempts)
		}
	}},
	{"instance_without_messages_is_not_fetchable_after_ack", func(e *env) {
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		res := e.fetchNone("o:b")
		if res.NextWake != 0 {
			e.t.Fatalf("NextWake = %v with nothing waiting, want 0", res.NextWake)
		}
		if _, listed := depth(e.depths().Orchestrations, "o:b"); listed {
			e.t.Fatal("empty bucket listed in QueueDepths")
		}
	}},
	{"max_bounds_the_instances_locked", func(e *env) {
		for i := range 5 {
			e.create(fmt.Sprintf("i%d", i), "o:b", "start")
			e.tick()
		}
		res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 2})
		wantEqual(e.t, "first fetch", []string{"i0", "i1"}, itemIDs(res.Items))
		if res.NextWake != time.Millisecond {
			e.t.Fatalf("NextWake with due work left = %v, want 1ms", res.NextWake)
		}
		res = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 10})
		wantEqual(e.t, "second fetch", []string{"i2", "i3", "i4"}, itemIDs(res.Items))
	}},
	{"max_messages_bounds_the_batch", func(e *env) {
		e.create("i1", "o:b", "m0")
		for i := 1; i < 5; i++ {
			e.enqueue("i1", fmt.Sprintf("m%d", i))
		}
		it := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, MaxMessages: 2}).Items[0]
		wantEqual(e.t, "capped batch", []string{"m0", "m1"}, it.Messages)
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		wantEqual(e.t, "rest", []string{"m2", "m3", "m4"}, e.fetchOne("o:b").Messages)
	}},
	{"oldest_first_across_instances_and_buckets", func(e *env) {
		e.create("c", "o:b2", "start")
		e.tick()
		e.create("a", "o:b1", "start")
		e.tick()
		e.create("b", "o:b2", "start")
		e.tick()
		e.create("d", "o:b1", "start")
		var order []string
		for range 4 {
			res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b1", "o:b2"}, Max: 1})
			order = append(order, itemIDs(res.Items)...)
		}
		wantEqual(e.t, "fetch order", []string{"c", "a", "b", "d"}, order)
	}},
	{"running_instance_turn_goes_before_waiting_starts", func(e *env) {
		// "r" has run its first turn and waits for an activity; then starts
		// pile up in its bucket. Each way a running instance becomes
		// fetchable again (an activity completion, a message, a turn that
		// ends with messages waiting) puts it ahead of those starts.
		e.create("r", "o:b", "start")
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "r", Token: it.Token, NewEvents: []string{"started"},
			Activities: []queue.WorkItem{{Bucket: "a:x", Body: "act"}}})
		var starts []string
		for i := range 20 {
			id := fmt.Sprintf("s%02d", i)
			e.create(id, "o:b", "start")
			starts = append(starts, id)
			e.tick()
		}
		next := func() queue.OrchestrationItem {
			e.t.Helper()
			res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1})
			if len(res.Items) != 1 {
				e.t.Fatalf("fetch: %v, want one item", itemIDs(res.Items))
			}
			return res.Items[0]
		}
		runningNext := func(after string) queue.OrchestrationItem {
			e.t.Helper()
			it := next()
			if it.InstanceID != "r" {
				e.t.Fatalf("after %s the fetch took %s, want the running instance r", after, it.InstanceID)
			}
			return it
		}
		// an activity completion
		w := e.workOne("a:x")
		e.must("AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, "done"))
		d, _ := depth(e.depths().Orchestrations, "o:b")
		if d.Ready != 21 || d.Delayed != 0 || d.Locked != 0 {
			e.t.Fatalf("depth with 20 starts and a completion = %+v, want 21 ready", d)
		}
		it = runningNext("an activity completion")
		// a message that arrives during the turn: the ack readies r again
		e.enqueue("r", "during")
		e.ack(queue.OrchestrationAck{InstanceID: "r", Token: it.Token})
		it = runningNext("an ack with a message waiting")
		e.ack(queue.OrchestrationAck{InstanceID: "r", Token: it.Token})
		// a message to the idle instance
		e.enqueue("r", "event")
		it = runningNext("a message")
		// a lock given back without delay
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "r", it.Token, 0, false))
		it = runningNext("an abandon without delay")
		e.ack(queue.OrchestrationAck{InstanceID: "r", Token: it.Token})
		// the starts follow, oldest first
		var got []string
		for range starts {
			got = append(got, next().InstanceID)
		}
		wantEqual(e.t, "starts after the running instance", starts, got)
	}},
	{"start_that_waited_longer_than_the_turn_lead_goes_first", func(e *env) {
		// No starvation: a running instance's turn is served ahead of
		// starts made in the last queue.TurnLead only. The ordering is the
		// same Lua arithmetic on both backends; only the virtual clock can
		// skip the lead's minute.
		e.requireVirtualClock("the case waits out queue.TurnLead (60 s)")
		e.start("r", "o:b")
		e.create("old", "o:b", "start")
		e.pass(queue.TurnLead + 200*time.Millisecond)
		e.create("young", "o:b", "start")
		e.tick()
		e.enqueue("r", "event")
		var order []string
		for range 3 {
			res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1})
			order = append(order, itemIDs(res.Items)...)
		}
		wantEqual(e.t, "fetch order", []string{"old", "r", "young"}, order)
	}},
	{"running_instance_lead_keeps_locks_and_delays", func(e *env) {
		// The lead never makes a locked or delayed entry of a running
		// instance fetchable early.
		e.start("r", "o:b")
		it := e.turn("r", "m1")
		e.enqueue("r", "while locked")
		e.fetchNone("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "r", it.Token, e.hide(), true))
		e.enqueue("r", "while delayed")
		e.fetchNone("o:b")
		d, _ := depth(e.depths().Orchestrations, "o:b")
		if d.Ready != 0 || d.Delayed != 1 {
			e.t.Fatalf("depth of a delayed running instance = %+v, want 1 delayed", d)
		}
		e.after(e.hide(), "delayed running instance fetchable", func() bool { return len(e.fetchFrom("o:b")) == 1 })
	}},
	{"message_to_a_delayed_instance_does_not_pull_it_forward", func(e *env) {
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, e.hide(), true))
		e.enqueue("i1", "m2")
		e.fetchNone("o:b")
		e.after(e.hide(), "delayed instance fetchable", func() bool { return len(e.fetchFrom("o:b")) == 1 })
	}},
	{"timers_are_promoted_only_when_due", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{h, 3 * h}, []string{"t1", "t2"})
		e.fetchNone("x:b")
		if e.timers() != 2 {
			e.t.Fatalf("timers = %d, want 2", e.timers())
		}
		e.after(h, "first timer promoted", func() bool {
			items := e.fetchFrom("x:b")
			if len(items) != 1 {
				return false
			}
			wantEqual(e.t, "first timer batch", []string{"t1"}, items[0].Messages)
			e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: items[0].Token})
			return true
		})
		if e.timers() != 1 {
			e.t.Fatalf("timers after first promotion = %d, want 1", e.timers())
		}
		e.fetchNone("x:b")
	}},
	{"timer_promotion_is_bounded_per_fetch", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{h, h, h, h, h}, []string{"t", "t", "t", "t", "t"})
		e.pass(h)
		e.eventually("timers due", func() bool {
			// PromoteTimers -1 promotes nothing: only look.
			return e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"none"}, PromoteTimers: -1}).NextWake == time.Millisecond
		})
		if e.timers() != 5 {
			e.t.Fatalf("PromoteTimers -1 promoted timers: %d left, want 5", e.timers())
		}
		res := e.fetch(queue.FetchOrchestrationsRequest{PromoteTimers: 2})
		if e.timers() != 3 {
			e.t.Fatalf("timers after one bounded promotion = %d, want 3", e.timers())
		}
		if res.NextWake != time.Millisecond {
			e.t.Fatalf("NextWake with due timers left = %v, want 1ms", res.NextWake)
		}
		e.fetch(queue.FetchOrchestrationsRequest{PromoteTimers: 2})
		e.fetch(queue.FetchOrchestrationsRequest{PromoteTimers: 2})
		if e.timers() != 0 {
			e.t.Fatalf("timers left = %d, want 0", e.timers())
		}
		// Equal bodies stay distinct messages.
		wantEqual(e.t, "promoted", []string{"t", "t", "t", "t", "t"}, e.fetchOne("x:b").Messages)
	}},
	{"timer_of_an_ended_instance_is_dropped", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{h}, []string{"t1"})
		e.finish("i1", queue.StatusCompleted, "out")
		e.after(h, "timer consumed", func() bool {
			e.fetch(queue.FetchOrchestrationsRequest{})
			return e.timers() == 0
		})
		if r := e.instance("i1"); r.Status != queue.StatusCompleted || r.Locked {
			e.t.Fatalf("ended instance after its timer fell due: %+v", r)
		}
		e.fetchNone("x:b")
	}},
	{"outbox_delivers_to_live_instances_and_drops_others", func(e *env) {
		e.start("src", "o:s")
		e.create("live", "o:l", "start")
		e.start("ended", "o:e")
		e.finish("ended", queue.StatusFailed, "boom")
		it := e.turn("src", "go")
		e.ack(queue.OrchestrationAck{InstanceID: "src", Token: it.Token, Outbox: []queue.OutboundMessage{
			{InstanceID: "live", Body: "hi"}, {InstanceID: "ended", Body: "x"}, {InstanceID: "missing", Body: "x"}}})
		wantEqual(e.t, "live inbox", []string{"start", "hi"}, e.fetchOne("o:l").Messages)
		e.gone("missing")
		e.fetchNone("o:e")
	}},
	{"work_items_are_fetched_oldest_first", func(e *env) {
		e.start("p", "o:p")
		for i := range 3 {
			e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: fmt.Sprintf("w%d", i)})
			e.tick()
		}
		var got []string
		for range 3 {
			got = append(got, workBodies(e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1}).Items)...)
		}
		wantEqual(e.t, "work order", []string{"w0", "w1", "w2"}, got)
	}},
	{"abandon_keeps_the_messages_peek_lock", func(e *env) {
		e.create("i1", "o:b", "m1")
		e.enqueue("i1", "m2")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "m3")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		wantEqual(e.t, "batch after abandon", []string{"m1", "m2", "m3"}, e.fetchOne("o:b").Messages)
	}},
	{"enqueue_is_visible_at_once", func(e *env) {
		e.start("i1", "o:b")
		e.fetchNone("o:b")
		e.enqueue("i1", "now")
		wantEqual(e.t, "batch", []string{"now"}, e.fetchOne("o:b").Messages)
	}},
	{"ending_ack_drops_the_inbox_and_later_messages", func(e *env) {
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "late")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: queue.StatusCompleted,
			HeadMessages: []string{"ignored"}, Output: "res"})
		e.fetchNone("o:b")
		wantErr(e.t, "enqueue after completion", e.s.Enqueue(e.ctx, "i1", "x"), queue.ErrInstanceEnded)
		r := e.instance("i1")
		if r.Status != queue.StatusCompleted || r.Output != "res" || r.Locked {
			e.t.Fatalf("ended instance = %+v", r)
		}
	}},
}
