package queuetest

import (
	"strings"

	"github.com/duroworker/duroworker/queue"
)

func (e *env) del(id string, force bool) queue.DeleteResult {
	e.t.Helper()
	r, err := e.s.DeleteInstance(e.ctx, id, force)
	e.must("DeleteInstance "+id, err)
	return r
}

// tree starts root "r" with children "c1", "c2" and grandchild "g" (child
// of c1), all Running, plus a detached "d".
func (e *env) tree() {
	e.t.Helper()
	e.start("r", "o:r")
	e.spawn("r", child("c1", "r"), child("c2", "r"), child("d", ""))
	for _, it := range e.fetchFrom("o:sub") {
		e.ack(queue.OrchestrationAck{InstanceID: it.InstanceID, Token: it.Token, NewEvents: []string{"started"}})
	}
	e.spawn("c1", queue.ChildStart{InstanceID: "g", Name: "leaf", ParentInstanceID: "c1", Bucket: "o:leaf", Message: "start"})
}

// endAll completes the given Running or Pending instances.
func (e *env) endAll(ids ...string) {
	e.t.Helper()
	for _, id := range ids {
		r := e.instance(id)
		if r.Status == queue.StatusPending {
			it := e.fetchOne(r.ReadyBucket)
			e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, NewEvents: []string{"started"}})
		}
		e.finish(id, queue.StatusCompleted, "ok")
	}
}

var deletionCases = []testCase{
	{"delete_removes_a_completed_instance", func(e *env) {
		e.start("i1", "o:b")
		e.create("other", "o:b2", "start")
		e.finish("i1", queue.StatusCompleted, "ok")
		res := e.del("i1", false)
		wantEqual(e.t, "result", queue.DeleteResult{Instances: 1, Executions: 1, Events: 2}, res)
		e.gone("i1")
		if h := e.history("i1", 1); len(h) != 0 {
			e.t.Fatalf("history left: %v", h)
		}
		_, err := e.s.Executions(e.ctx, "i1")
		wantErr(e.t, "Executions", err, queue.ErrInstanceNotFound)
		wantEqual(e.t, "listed", []string{"other"}, e.listAll(""))
		e.wantMetrics("after delete", queue.SystemMetrics{Pending: 1, Instances: 1})
	}},
	{"delete_of_a_running_instance_needs_force", func(e *env) {
		e.start("i1", "o:b")
		before := e.snap("i1")
		_, err := e.s.DeleteInstance(e.ctx, "i1", false)
		wantErr(e.t, "delete running", err, queue.ErrInstanceRunning)
		if !strings.Contains(err.Error(), "i1") {
			e.t.Fatalf("error %q does not name the instance", err)
		}
		wantSame(e.t, "a refused delete", before, e.snap("i1"))
		if res := e.del("i1", true); res.Instances != 1 {
			e.t.Fatalf("forced delete = %+v", res)
		}
		e.gone("i1")
	}},
	{"delete_of_a_pending_instance_needs_force", func(e *env) {
		e.create("i1", "o:b", "start")
		_, err := e.s.DeleteInstance(e.ctx, "i1", false)
		wantErr(e.t, "delete pending", err, queue.ErrInstanceRunning)
		res := e.del("i1", true)
		wantEqual(e.t, "result", queue.DeleteResult{Instances: 1, QueueMessages: 1}, res)
		e.fetchNone("o:b")
	}},
	{"delete_of_a_missing_instance", func(e *env) {
		_, err := e.s.DeleteInstance(e.ctx, "ghost", true)
		wantErr(e.t, "delete missing", err, queue.ErrInstanceNotFound)
	}},
	{"sub_orchestration_cannot_be_deleted_alone", func(e *env) {
		e.tree()
		e.endAll("g", "c1", "c2", "r")
		before := e.snap("r", "c1", "c2", "g")
		for _, id := range []string{"c1", "g"} {
			_, err := e.s.DeleteInstance(e.ctx, id, true)
			wantErr(e.t, "delete sub-orchestration "+id, err, queue.ErrCannotDeleteSubOrchestration)
		}
		wantSame(e.t, "refused deletes", before, e.snap("r", "c1", "c2", "g"))
	}},
	{"delete_cascades_to_the_whole_tree", func(e *env) {
		e.tree()
		e.endAll("g", "c1", "c2", "r")
		m := e.metrics()
		res := e.del("r", false)
		if res.Instances != 4 {
			e.t.Fatalf("deleted %+v, want 4 instances", res)
		}
		for _, id := range []string{"r", "c1", "c2", "g"} {
			e.gone(id)
		}
		if r := e.instance("d"); r.Status != queue.StatusRunning {
			e.t.Fatalf("detached instance = %+v", r)
		}
		after := e.metrics()
		if after.Instances != m.Instances-4 || after.Executions != m.Executions-int64(res.Executions) || after.Events != m.Events-int64(res.Events) {
			e.t.Fatalf("metrics %+v -> %+v after deleting %+v", m, after, res)
		}
	}},
	{"running_descendant_blocks_delete_without_force", func(e *env) {
		e.tree()
		e.endAll("c1", "c2", "r")
		_, err := e.s.DeleteInstance(e.ctx, "r", false)
		wantErr(e.t, "delete with a running grandchild", err, queue.ErrInstanceRunning)
		if !strings.Contains(err.Error(), "g") {
			e.t.Fatalf("error %q does not name the running instance g", err)
		}
		if res := e.del("r", true); res.Instances != 4 {
			e.t.Fatalf("forced = %+v", res)
		}
	}},
	{"delete_cleans_inbox_buckets_work_and_state", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Activities: []queue.WorkItem{refItem(7), refItem(8)},
			KV: []queue.KVOp{{Op: queue.KVSet, Key: "k", Value: "v"}}, CustomStatus: &queue.CustomStatusUpdate{Value: "s"}})
		e.enqueue("i1", "waiting1")
		e.enqueue("i1", "waiting2")
		res := e.del("i1", true)
		wantEqual(e.t, "result", queue.DeleteResult{Instances: 1, Executions: 1, Events: 1, QueueMessages: 4}, res)
		e.fetchNone("o:b")
		e.workNone("a:x")
		_, err := e.s.KVAll(e.ctx, "i1")
		wantErr(e.t, "KVAll", err, queue.ErrInstanceNotFound)
		if kv, err := e.s.KVCommitted(e.ctx, "i1"); err != nil || len(kv) != 0 {
			e.t.Fatalf("KVCommitted = %v, %v", kv, err)
		}
		for _, d := range append(e.depths().Orchestrations, e.depths().Activities...) {
			e.t.Fatalf("bucket left after delete: %+v", d)
		}
	}},
	{"in_flight_ack_after_delete_fails_and_recreates_nothing", func(e *env) {
		it := e.fullSetup()
		a := e.fullAck("p", it.Token)
		e.del("p", true)
		before := e.snap("p", "child")
		err := e.s.AckOrchestration(e.ctx, a)
		wantErr(e.t, "ack after delete", err, queue.ErrInstanceNotFound)
		wantSame(e.t, "an ack after delete", before, e.snap("p", "child"))
		e.gone("p")
		e.gone("child")
	}},
	{"in_flight_renew_and_abandon_after_delete_fail", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.del("i1", true)
		wantErr(e.t, "renew after delete", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock), queue.ErrInstanceNotFound)
		wantErr(e.t, "abandon after delete", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false), queue.ErrInstanceNotFound)
		e.gone("i1")
		e.fetchNone("o:b")
	}},
	{"recreated_instance_starts_fresh", func(e *env) {
		e.start("i1", "x:b")
		base := e.now("i1")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"old"},
			Timers: []queue.Timer{{DueAt: base.Add(e.hide()), Body: "old-timer"}}, KV: []queue.KVOp{{Op: queue.KVSet, Key: "k", Value: "old"}}})
		e.del("i1", true)
		e.create("i1", "x:b", "new-start")
		if h := e.history("i1", 1); len(h) != 0 {
			e.t.Fatalf("history of the new instance = %v", h)
		}
		if kv, err := e.s.KVAll(e.ctx, "i1"); err != nil || len(kv) != 0 {
			e.t.Fatalf("kv of the new instance = %v, %v", kv, err)
		}
		it = e.fetchOne("x:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"new"}})
		e.after(e.hide(), "old timer consumed", func() bool {
			e.fetch(queue.FetchOrchestrationsRequest{})
			return e.timers() == 0
		})
		e.fetchNone("x:b") // the old instance's timer was not delivered to the new one
		wantEqual(e.t, "history", []string{"new"}, e.history("i1", 1))
	}},
	{"orphan_whose_parent_is_gone_can_be_deleted", func(e *env) {
		e.must("create", e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "c", Name: "sub", ParentInstanceID: "gone", Bucket: "o:c", Message: "m"}))
		if res := e.del("c", true); res.Instances != 1 {
			e.t.Fatalf("result = %+v", res)
		}
		e.gone("c")
	}},
	{"messages_to_a_deleted_instance_are_dropped", func(e *env) {
		e.start("src", "o:s")
		e.start("dst", "o:d")
		e.del("dst", true)
		wantErr(e.t, "enqueue", e.s.Enqueue(e.ctx, "dst", "m"), queue.ErrInstanceNotFound)
		it := e.turn("src", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "src", Token: it.Token, Outbox: []queue.OutboundMessage{{InstanceID: "dst", Body: "x"}}})
		e.gone("dst")
		e.fetchNone("o:d")
	}},
	{"delete_during_a_turn_of_a_child_blocks_its_ack", func(e *env) {
		e.tree()
		e.enqueue("g", "m")
		it := e.fetchOne("o:leaf")
		e.del("r", true)
		err := e.ackErr(queue.OrchestrationAck{InstanceID: "g", Token: it.Token, Status: queue.StatusCompleted,
			Outbox: []queue.OutboundMessage{{InstanceID: "c1", Body: "done"}}})
		wantErr(e.t, "child ack after delete", err, queue.ErrInstanceNotFound)
		for _, id := range []string{"r", "c1", "c2", "g"} {
			e.gone(id)
		}
		if m := e.metrics(); m.Instances != 1 {
			e.t.Fatalf("metrics = %+v, want only the detached instance", m)
		}
	}},
}
