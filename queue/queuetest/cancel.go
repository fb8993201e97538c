package queuetest

import (
	"fmt"

	"github.com/duroworker/duroworker/queue"
)

// refItem is a work item of execution 1 with event id ev, in "a:x".
func refItem(ev int64) queue.WorkItem {
	return queue.WorkItem{Bucket: "a:x", Body: fmt.Sprintf("ev%d", ev), ExecutionID: 1, EventID: ev}
}

func ref(exec uint64, ev int64) queue.ActivityRef {
	return queue.ActivityRef{ExecutionID: exec, EventID: ev}
}

// cancel runs a turn of Running instance id (execution 1) that cancels refs.
func (e *env) cancel(id string, refs ...queue.ActivityRef) {
	e.t.Helper()
	it := e.turn(id, "cancel")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: e.instance(id).ExecutionID, CancelActivities: refs})
}

var cancelCases = []testCase{
	{"cancel_removes_a_queued_item", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7), refItem(8))
		e.cancel("p", ref(1, 7))
		wantEqual(e.t, "left", []string{"ev8"}, workBodies(e.work("a:x")))
	}},
	{"cancelled_holder_cannot_ack", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		w := e.workOne("a:x")
		e.cancel("p", ref(1, 7))
		wantErr(e.t, "ack of a cancelled item", e.s.AckWork(e.ctx, w.ID, w.Token, "result"), queue.ErrWorkNotFound)
		wantEqual(e.t, "no completion delivered", []string{"x"}, e.turn("p", "x").Messages)
	}},
	{"cancelled_holder_cannot_renew", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		w := e.workOne("a:x")
		e.cancel("p", ref(1, 7))
		wantErr(e.t, "renew of a cancelled item", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock), queue.ErrWorkNotFound)
	}},
	{"cancelled_holder_cannot_abandon", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		w := e.workOne("a:x")
		e.cancel("p", ref(1, 7))
		wantErr(e.t, "abandon of a cancelled item", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false), queue.ErrWorkNotFound)
		e.workNone("a:x")
	}},
	{"schedule_and_cancel_in_one_ack_leaves_nothing", func(e *env) {
		e.start("p", "o:p")
		it := e.turn("p", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Activities: []queue.WorkItem{refItem(7), refItem(8)},
			CancelActivities: []queue.ActivityRef{ref(1, 7)}})
		wantEqual(e.t, "left", []string{"ev8"}, workBodies(e.work("a:x")))
	}},
	{"cancel_of_an_unknown_ref_is_a_no_op", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		e.cancel("p", ref(1, 99), ref(5, 7))
		wantEqual(e.t, "left", []string{"ev7"}, workBodies(e.work("a:x")))
	}},
	{"cancel_after_completion_is_a_no_op", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		w := e.workOne("a:x")
		e.must("ack", e.s.AckWork(e.ctx, w.ID, w.Token, "result"))
		it := e.fetchOne("o:p")
		wantEqual(e.t, "completion", []string{"result"}, it.Messages)
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, CancelActivities: []queue.ActivityRef{ref(1, 7)}})
		e.workNone("a:x")
	}},
	{"cancel_is_idempotent", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7), refItem(8))
		e.cancel("p", ref(1, 7), ref(1, 7))
		e.cancel("p", ref(1, 7))
		wantEqual(e.t, "left", []string{"ev8"}, workBodies(e.work("a:x")))
	}},
	{"cancel_many_in_one_ack", func(e *env) {
		e.start("p", "o:p")
		var items []queue.WorkItem
		var refs []queue.ActivityRef
		for ev := int64(1); ev <= 20; ev++ {
			items = append(items, refItem(ev))
			if ev%2 == 0 {
				refs = append(refs, ref(1, ev))
			}
		}
		e.schedule("p", items...)
		e.cancel("p", refs...)
		got := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 100}).Items
		if len(got) != 10 {
			e.t.Fatalf("left %d items, want 10", len(got))
		}
		for _, w := range got {
			var ev int
			fmt.Sscanf(w.Body, "ev%d", &ev)
			if ev%2 == 0 {
				e.t.Fatalf("cancelled item %s still there", w.Body)
			}
		}
	}},
	{"an_instance_cancels_only_its_own_items", func(e *env) {
		e.start("p", "o:p")
		e.start("q", "o:q")
		e.schedule("p", refItem(7))
		e.cancel("q", ref(1, 7))
		wantEqual(e.t, "p's item", []string{"ev7"}, workBodies(e.work("a:x")))
	}},
	{"items_without_a_reference_cannot_be_cancelled", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "noref", EventID: 7})
		e.cancel("p", ref(1, 7))
		wantEqual(e.t, "left", []string{"noref"}, workBodies(e.work("a:x")))
	}},
	{"reused_reference_cancels_the_latest_item", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "older", ExecutionID: 1, EventID: 7})
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "newer", ExecutionID: 1, EventID: 7})
		e.cancel("p", ref(1, 7))
		wantEqual(e.t, "left", []string{"older"}, workBodies(e.work("a:x")))
	}},
	{"ack_of_a_replaced_reference_keeps_the_new_mapping", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "older", ExecutionID: 1, EventID: 7})
		older := e.workOne("a:x")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "newer", ExecutionID: 1, EventID: 7})
		e.must("ack older", e.s.AckWork(e.ctx, older.ID, older.Token, ""))
		e.cancel("p", ref(1, 7))
		e.workNone("a:x")
	}},
	{"references_name_the_execution", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		it := e.turn("p", "can")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Status: queue.StatusContinuedAsNew, HeadMessages: []string{"start2"}})
		it = e.fetchOne("o:p")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: 2,
			Activities: []queue.WorkItem{{Bucket: "a:x", Body: "exec2", ExecutionID: 2, EventID: 7}}})
		e.cancel("p", ref(1, 7))
		wantEqual(e.t, "left", []string{"exec2"}, workBodies(e.work("a:x")))
	}},
	{"ack_work_without_completion_delivers_nothing", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		w := e.workOne("a:x")
		e.must("ack", e.s.AckWork(e.ctx, w.ID, w.Token, ""))
		e.fetchNone("o:p")
		e.workNone("a:x")
		wantErr(e.t, "second ack", e.s.AckWork(e.ctx, w.ID, w.Token, ""), queue.ErrWorkNotFound)
	}},
	{"cancelled_items_leave_queue_depths", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7), refItem(8))
		e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1}) // locks one
		e.cancel("p", ref(1, 7), ref(1, 8))
		if _, listed := depth(e.depths().Activities, "a:x"); listed {
			e.t.Fatalf("a:x still listed: %+v", e.depths().Activities)
		}
	}},
	{"ending_ack_can_cancel", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7))
		it := e.turn("p", "end")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Status: queue.StatusFailed, CancelActivities: []queue.ActivityRef{ref(1, 7)}})
		e.workNone("a:x")
	}},
	{"cancel_reaches_items_routed_to_a_session_owner", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "claim", Session: "s1"})
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "routed", Session: "s1", ExecutionID: 1, EventID: 9})
		e.cancel("p", ref(1, 9))
		e.sfetchNone(w1)
	}},
	{"force_delete_orphans_running_work", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", refItem(7), queue.WorkItem{Bucket: "a:x", Body: "noref"})
		ws := e.work("a:x")
		if len(ws) != 2 {
			e.t.Fatalf("got %v", workBodies(ws))
		}
		_, err := e.s.DeleteInstance(e.ctx, "p", true)
		e.must("delete", err)
		for _, w := range ws {
			err := e.s.AckWork(e.ctx, w.ID, w.Token, "done")
			if w.Body == "ev7" {
				wantErr(e.t, "ack of a referenced item after delete", err, queue.ErrWorkNotFound)
			} else {
				wantErr(e.t, "ack of an unreferenced item after delete", err, nil)
			}
		}
		e.gone("p") // the completion did not recreate it
		if m := e.metrics(); m.Instances != 0 {
			e.t.Fatalf("metrics = %+v", m)
		}
	}},
}
