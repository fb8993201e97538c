package queuetest

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/queue"
)

func (e *env) bulk(f queue.BulkDeleteFilter) queue.DeleteResult {
	e.t.Helper()
	r, err := e.s.DeleteInstances(e.ctx, f)
	e.must("DeleteInstances", err)
	return r
}

// ended creates and completes (or fails) instance id.
func (e *env) ended(id, status string) {
	e.t.Helper()
	e.start(id, "o:"+id)
	e.finish(id, status, "out")
}

var bulkDeletionCases = []testCase{
	{"by_ids_deletes_ended_roots_and_skips_the_rest", func(e *env) {
		e.ended("done", queue.StatusCompleted)
		e.ended("failed", queue.StatusFailed)
		e.start("running", "o:r")
		e.create("pending", "o:p", "start")
		e.tree()
		e.endAll("g", "c1", "c2", "r")
		res := e.bulk(queue.BulkDeleteFilter{InstanceIDs: []string{"done", "failed", "running", "pending", "c1", "ghost"}})
		if res.Instances != 2 || res.Executions != 2 || res.Events != 4 {
			e.t.Fatalf("result = %+v, want done and failed", res)
		}
		e.gone("done")
		e.gone("failed")
		for _, id := range []string{"running", "pending", "c1", "r"} {
			e.instance(id)
		}
	}},
	{"scan_deletes_every_ended_root_with_its_tree", func(e *env) {
		e.ended("a", queue.StatusCompleted)
		e.tree()
		e.endAll("g", "c1", "c2", "r")
		e.start("live", "o:l")
		res := e.bulk(queue.BulkDeleteFilter{})
		if res.Instances != 5 {
			e.t.Fatalf("result = %+v, want a and the 4 of r's tree", res)
		}
		wantEqual(e.t, "left", []string{"d", "live"}, sorted(e.listAll("")))
	}},
	{"root_with_a_running_descendant_is_skipped", func(e *env) {
		e.tree()
		e.endAll("c1", "c2", "r") // g still runs
		res := e.bulk(queue.BulkDeleteFilter{InstanceIDs: []string{"r"}})
		wantEqual(e.t, "result", queue.DeleteResult{}, res)
		for _, id := range []string{"r", "c1", "c2", "g"} {
			e.instance(id)
		}
	}},
	{"completed_before_keeps_recent_instances", func(e *env) {
		e.ended("old", queue.StatusCompleted)
		cut := e.now("old").Add(time.Millisecond)
		e.pass(10 * time.Millisecond)
		e.ended("new", queue.StatusCompleted)
		if !e.now("new").After(cut) {
			e.t.Fatalf("clock did not move: new ended at %v, cut %v", e.now("new"), cut)
		}
		res := e.bulk(queue.BulkDeleteFilter{CompletedBefore: cut})
		if res.Instances != 1 {
			e.t.Fatalf("result = %+v", res)
		}
		e.gone("old")
		e.instance("new")
	}},
	{"limit_bounds_the_roots_deleted", func(e *env) {
		for i := range 5 {
			e.ended(fmt.Sprintf("i%d", i), queue.StatusCompleted)
			e.tick()
		}
		res := e.bulk(queue.BulkDeleteFilter{Limit: 2})
		if res.Instances != 2 {
			e.t.Fatalf("result = %+v", res)
		}
		wantEqual(e.t, "left", []string{"i2", "i3", "i4"}, e.listAll(""))
		res = e.bulk(queue.BulkDeleteFilter{InstanceIDs: []string{"i4", "i3", "i2"}, Limit: 1})
		if res.Instances != 1 {
			e.t.Fatalf("result = %+v", res)
		}
		wantEqual(e.t, "left", []string{"i2", "i3"}, e.listAll(""))
	}},
	{"bulk_delete_validates", func(e *env) {
		_, err := e.s.DeleteInstances(e.ctx, queue.BulkDeleteFilter{Limit: -1})
		wantPlainErr(e.t, "negative limit", err)
	}},
	{"orphaned_sub_orchestration_counts_as_a_root", func(e *env) {
		e.must("create", e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "o", Name: "sub", ParentInstanceID: "gone", Bucket: "o:o", Message: "m"}))
		it := e.fetchOne("o:o")
		e.ack(queue.OrchestrationAck{InstanceID: "o", Token: it.Token, Status: queue.StatusCompleted})
		if res := e.bulk(queue.BulkDeleteFilter{}); res.Instances != 1 {
			e.t.Fatalf("result = %+v", res)
		}
		e.gone("o")
	}},
}

func (e *env) prune(id string, opts queue.PruneOptions) queue.PruneResult {
	e.t.Helper()
	r, err := e.s.PruneExecutions(e.ctx, id, opts)
	e.must("PruneExecutions", err)
	return r
}

func (e *env) execIDs(id string) []uint64 {
	e.t.Helper()
	ex, err := e.s.Executions(e.ctx, id)
	e.must("Executions", err)
	out := []uint64{}
	for _, r := range ex {
		out = append(out, r.ExecutionID)
	}
	return out
}

// generations runs n executions of "i1" (n-1 continue-as-new), the last
// one Running; each execution has 2 events except the last (1).
func (e *env) generations(n int) {
	e.t.Helper()
	e.start("i1", "o:b")
	for x := 1; x < n; x++ {
		e.continueAsNew("i1", uint64(x), "o:b", "", fmt.Sprintf("x%d", x+1))
	}
}

var pruneCases = []testCase{
	{"prune_keeps_only_the_current_execution", func(e *env) {
		e.generations(4)
		for _, keep := range []int{0, 1} {
			res := e.prune("i1", queue.PruneOptions{KeepLast: keep})
			if keep == 0 {
				wantEqual(e.t, "result", queue.PruneResult{Instances: 1, Executions: 3, Events: 6}, res)
			} else {
				wantEqual(e.t, "second prune", queue.PruneResult{Instances: 1}, res)
			}
		}
		wantEqual(e.t, "executions", []uint64{4}, e.execIDs("i1"))
		if h := e.history("i1", 1); len(h) != 0 {
			e.t.Fatalf("pruned history left: %v", h)
		}
		wantEqual(e.t, "current history", []string{"x4"}, e.history("i1", 4))
	}},
	{"prune_keeps_the_last_n", func(e *env) {
		e.generations(5)
		e.prune("i1", queue.PruneOptions{KeepLast: 3})
		wantEqual(e.t, "executions", []uint64{3, 4, 5}, e.execIDs("i1"))
	}},
	{"prune_never_deletes_a_running_execution", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		// Execution 1 is left Running: the next ack jumps to execution 2.
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2, NewEvents: []string{"x2"}})
		e.continueAsNew("i1", 2, "o:b", "", "x3")
		e.prune("i1", queue.PruneOptions{})
		wantEqual(e.t, "executions", []uint64{1, 3}, e.execIDs("i1"))
	}},
	{"prune_with_completed_before", func(e *env) {
		e.generations(2)
		cut := e.now("i1").Add(time.Millisecond)
		e.pass(10 * time.Millisecond)
		e.continueAsNew("i1", 2, "o:b", "", "x3")
		res := e.prune("i1", queue.PruneOptions{CompletedBefore: cut})
		if res.Executions != 1 {
			e.t.Fatalf("result = %+v, want execution 1 only", res)
		}
		wantEqual(e.t, "executions", []uint64{2, 3}, e.execIDs("i1"))
	}},
	{"prune_keeps_key_value_state_and_counts", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, KV: []queue.KVOp{{Op: queue.KVSet, Key: "k", Value: "v"}}})
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		before := e.metrics()
		res := e.prune("i1", queue.PruneOptions{})
		after := e.metrics()
		if after.Executions != before.Executions-int64(res.Executions) || after.Events != before.Events-int64(res.Events) || res.Executions != 1 {
			e.t.Fatalf("metrics %+v -> %+v after %+v", before, after, res)
		}
		if v, ok, err := e.s.KV(e.ctx, "i1", "k"); err != nil || !ok || v != "v" {
			e.t.Fatalf("KV after prune = %q %v %v", v, ok, err)
		}
	}},
	{"prune_validates", func(e *env) {
		_, err := e.s.PruneExecutions(e.ctx, "ghost", queue.PruneOptions{})
		wantErr(e.t, "prune missing", err, queue.ErrInstanceNotFound)
		e.start("i1", "o:b")
		_, err = e.s.PruneExecutions(e.ctx, "i1", queue.PruneOptions{KeepLast: -1})
		wantPlainErr(e.t, "negative KeepLast", err)
		if res := e.prune("i1", queue.PruneOptions{}); res.Executions != 0 {
			e.t.Fatalf("pruned the only execution: %+v", res)
		}
	}},
}
