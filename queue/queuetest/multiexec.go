package queuetest

import (
	"strings"

	"github.com/duroworker/duroworker/queue"
)

// continueAsNew runs a continue-as-new turn of Running instance id from
// execution exec: its start message goes to the head of the inbox and the
// instance moves to bucket; then the first turn of exec+1 is acked with
// events and version.
func (e *env) continueAsNew(id string, exec uint64, bucket, version string, events ...string) {
	e.t.Helper()
	it := e.turn(id, "can")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: exec, Status: queue.StatusContinuedAsNew,
		Output: "next-input", NewEvents: []string{"can"}, HeadMessages: []string{"start-next"}, ReadyBucket: bucket})
	it = e.fetchOne(bucket)
	if it.Messages[0] != "start-next" {
		e.t.Fatalf("batch after continue-as-new = %v", it.Messages)
	}
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: exec + 1, Version: version, NewEvents: events})
}

var multiExecCases = []testCase{
	{"higher_execution_starts_a_new_history", func(e *env) {
		e.start("i1", "o:b")
		e.continueAsNew("i1", 1, "o:b", "2.0", "x2-e1", "x2-e2")
		wantEqual(e.t, "history 1", []string{"started", "can"}, e.history("i1", 1))
		wantEqual(e.t, "history 2", []string{"x2-e1", "x2-e2"}, e.history("i1", 2))
		r := e.instance("i1")
		if r.ExecutionID != 2 || r.Version != "2.0" || r.Status != queue.StatusRunning {
			e.t.Fatalf("instance = %+v", r)
		}
		it := e.turn("i1", "m")
		if it.HistoryLen != 2 || !equalStrings(it.History, []string{"x2-e1", "x2-e2"}) {
			e.t.Fatalf("fetch returns the current execution's history: %+v", it)
		}
	}},
	{"continue_as_new_shape", func(e *env) {
		e.start("i1", "x:orch@1")
		it := e.turn("i1", "m1")
		e.enqueue("i1", "arrived-during-turn")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: queue.StatusContinuedAsNew, Output: "input-2",
			NewEvents: []string{"can"}, HeadMessages: []string{"start-2", "start-2b"}, ReadyBucket: "o:orch"})
		r := e.instance("i1")
		if r.Status != queue.StatusRunning || r.ExecutionID != 1 || r.ReadyBucket != "o:orch" || r.Output != "input-2" || r.Locked {
			e.t.Fatalf("instance after continue-as-new = %+v", r)
		}
		e.fetchNone("x:orch@1")
		next := e.fetchOne("o:orch")
		wantEqual(e.t, "next batch", []string{"start-2", "start-2b", "arrived-during-turn"}, next.Messages)
		ex, err := e.s.Executions(e.ctx, "i1")
		e.must("Executions", err)
		if len(ex) != 1 || ex[0].Status != queue.StatusContinuedAsNew || ex[0].Output != "input-2" || ex[0].EndedAt.IsZero() {
			e.t.Fatalf("executions = %+v", ex)
		}
	}},
	{"stale_execution_is_refused_and_writes_nothing", func(e *env) {
		e.start("i1", "o:b")
		e.continueAsNew("i1", 1, "o:b", "2.0", "x2")
		it := e.turn("i1", "m")
		before := e.snap("i1")
		err := e.s.AckOrchestration(e.ctx, queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 1,
			Status: queue.StatusCompleted, NewEvents: []string{"late"}, Activities: []queue.WorkItem{{Bucket: "a:x"}}})
		wantPlainErr(e.t, "ack of an older execution", err)
		if !strings.Contains(err.Error(), "STALE_EXECUTION") {
			e.t.Fatalf("error %q does not say STALE_EXECUTION", err)
		}
		wantSame(e.t, "a stale ack", before, e.snap("i1"))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2})
	}},
	{"new_execution_takes_its_version_and_pin", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Version: "1.0", EnginePin: "0.1.0", Name: "orch"})
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		r := e.instance("i1")
		if r.Version != "" || r.EnginePin != "" || r.Name != "orch" || r.ExecutionID != 2 {
			e.t.Fatalf("a new execution without version or pin: %+v", r)
		}
	}},
	{"executions_list_every_execution", func(e *env) {
		e.start("i1", "o:b")
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		e.continueAsNew("i1", 2, "o:b", "", "x3a", "x3b")
		e.finish("i1", queue.StatusCompleted, "done")
		ex, err := e.s.Executions(e.ctx, "i1")
		e.must("Executions", err)
		if len(ex) != 3 {
			e.t.Fatalf("executions = %+v", ex)
		}
		want := []struct {
			status string
			events int
		}{{queue.StatusContinuedAsNew, 2}, {queue.StatusContinuedAsNew, 2}, {queue.StatusCompleted, 3}}
		for i, w := range want {
			if ex[i].ExecutionID != uint64(i+1) || ex[i].Status != w.status || ex[i].Events != w.events || ex[i].EndedAt.IsZero() {
				e.t.Fatalf("execution %d = %+v, want %s with %d events", i+1, ex[i], w.status, w.events)
			}
		}
		if ex[2].Output != "done" {
			e.t.Fatalf("last output = %q", ex[2].Output)
		}
	}},
	{"histories_persist_per_execution", func(e *env) {
		e.start("i1", "o:b")
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2, NewEvents: []string{"x2b"}})
		wantEqual(e.t, "history 1", []string{"started", "can"}, e.history("i1", 1))
		wantEqual(e.t, "history 2", []string{"x2", "x2b"}, e.history("i1", 2))
		wantEqual(e.t, "history 3", []string{}, e.history("i1", 3))
	}},
	{"execution_ids_may_skip", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 5, NewEvents: []string{"x5"}})
		if r := e.instance("i1"); r.ExecutionID != 5 {
			e.t.Fatalf("execution = %d, want 5", r.ExecutionID)
		}
		wantEqual(e.t, "history 5", []string{"x5"}, e.history("i1", 5))
	}},
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
