package queuetest

import (
	"github.com/duroworker/duroworker/queue"
)

// setStatus runs a turn of Running instance id with a custom status update.
func (e *env) setStatus(id string, cs *queue.CustomStatusUpdate) {
	e.t.Helper()
	it := e.turn(id, "m")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: e.instance(id).ExecutionID, CustomStatus: cs})
}

func (e *env) wantStatus(id, value string, set bool, version int64) {
	e.t.Helper()
	r := e.instance(id)
	if r.CustomStatus != value || r.CustomStatusSet != set || r.CustomStatusVersion != version {
		e.t.Fatalf("custom status = (%q, set %v, version %d), want (%q, %v, %d)",
			r.CustomStatus, r.CustomStatusSet, r.CustomStatusVersion, value, set, version)
	}
}

var customStatusCases = []testCase{
	{"no_custom_status_by_default", func(e *env) {
		e.create("i1", "o:b", "start")
		e.wantStatus("i1", "", false, 0)
		e.start("i2", "o:c")
		e.wantStatus("i2", "", false, 0)
	}},
	{"set_stores_the_value_and_counts", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: `{"step":1}`})
		e.wantStatus("i1", `{"step":1}`, true, 1)
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: `{"step":2}`})
		e.wantStatus("i1", `{"step":2}`, true, 2)
	}},
	{"clear_removes_it_and_counts", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: "busy"})
		e.setStatus("i1", &queue.CustomStatusUpdate{Clear: true})
		e.wantStatus("i1", "", false, 2)
		e.setStatus("i1", &queue.CustomStatusUpdate{Clear: true})
		e.wantStatus("i1", "", false, 3)
	}},
	{"no_update_preserves_it", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: "busy"})
		e.setStatus("i1", nil)
		e.wantStatus("i1", "busy", true, 1)
	}},
	{"empty_value_is_a_set_status", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: ""})
		e.wantStatus("i1", "", true, 1)
	}},
	{"version_is_monotonic_across_executions", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: "gen1"})
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		e.wantStatus("i1", "gen1", true, 1)
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: "gen2"})
		e.wantStatus("i1", "gen2", true, 2)
		e.finish("i1", queue.StatusCompleted, "ok")
		e.wantStatus("i1", "gen2", true, 2)
	}},
	{"failed_and_retried_acks_do_not_count", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		a := queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, CustomStatus: &queue.CustomStatusUpdate{Value: "v"}}
		bad := a
		bad.Token = "stale"
		wantErr(e.t, "stale ack", e.ackErr(bad), queue.ErrLockLost)
		e.wantStatus("i1", "", false, 0)
		e.ack(a)
		e.ack(a)
		e.wantStatus("i1", "v", true, 1)
	}},
	{"fetched_record_carries_the_custom_status", func(e *env) {
		e.start("i1", "o:b")
		e.setStatus("i1", &queue.CustomStatusUpdate{Value: "shown"})
		it := e.turn("i1", "m")
		if it.Instance.CustomStatus != "shown" || !it.Instance.CustomStatusSet || it.Instance.CustomStatusVersion != 1 {
			e.t.Fatalf("fetched record = %+v", it.Instance)
		}
	}},
	{"status_set_in_the_final_turn_is_kept", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: queue.StatusFailed, CustomStatus: &queue.CustomStatusUpdate{Value: "last words"}})
		e.wantStatus("i1", "last words", true, 1)
	}},
}
