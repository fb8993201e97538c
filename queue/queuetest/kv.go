package queuetest

import (
	"fmt"
	"strings"
	"time"

	"github.com/duroworker/duroworker/queue"
)

func set(k, v string) queue.KVOp { return queue.KVOp{Op: queue.KVSet, Key: k, Value: v} }
func clr(k string) queue.KVOp    { return queue.KVOp{Op: queue.KVClear, Key: k} }
func clrAll() queue.KVOp         { return queue.KVOp{Op: queue.KVClearAll} }

// kvTurn runs a Running turn of id (its current execution) with ops.
func (e *env) kvTurn(id string, ops ...queue.KVOp) {
	e.t.Helper()
	e.kvEnd(id, queue.StatusRunning, ops...)
}

// kvEnd runs a turn of id with status and ops; ContinuedAsNew puts a start
// message at the head so the next execution can be acked with execNext.
func (e *env) kvEnd(id, status string, ops ...queue.KVOp) {
	e.t.Helper()
	it := e.turn(id, "m")
	a := queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: e.instance(id).ExecutionID, Status: status, KV: ops}
	if status == queue.StatusContinuedAsNew {
		a.HeadMessages = []string{"start-next"}
	}
	e.ack(a)
}

// execNext acks the first turn of the next execution of id (after a
// continue-as-new) with ops and returns the fetched item.
func (e *env) execNext(id string, ops ...queue.KVOp) queue.OrchestrationItem {
	e.t.Helper()
	r := e.instance(id)
	it := e.fetchOne(r.ReadyBucket)
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: r.ExecutionID + 1, KV: ops})
	return it
}

func (e *env) kv(id, key string) (string, bool) {
	e.t.Helper()
	v, ok, err := e.s.KV(e.ctx, id, key)
	e.must("KV", err)
	return v, ok
}

// kvAll returns the merged view's values.
func (e *env) kvAll(id string) map[string]string {
	e.t.Helper()
	m, err := e.s.KVAll(e.ctx, id)
	e.must("KVAll", err)
	return values(m)
}

func (e *env) kvCommitted(id string) map[string]string {
	e.t.Helper()
	m, err := e.s.KVCommitted(e.ctx, id)
	e.must("KVCommitted", err)
	return values(m)
}

func values(m map[string]queue.KVEntry) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v.Value
	}
	return out
}

type kvm = map[string]string

var kvCases = []testCase{
	{"set_is_visible_in_the_merged_view_at_once", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		if v, ok := e.kv("i1", "a"); !ok || v != "1" {
			e.t.Fatalf("KV a = %q %v", v, ok)
		}
		wantEqual(e.t, "KVAll", kvm{"a": "1"}, e.kvAll("i1"))
	}},
	{"set_is_committed_only_when_the_execution_ends", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		wantEqual(e.t, "committed while running", kvm{}, e.kvCommitted("i1"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed after completion", kvm{"a": "1"}, e.kvCommitted("i1"))
		wantEqual(e.t, "merged after completion", kvm{"a": "1"}, e.kvAll("i1"))
	}},
	{"failure_commits_the_delta", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		e.kvEnd("i1", queue.StatusFailed, set("b", "2"))
		wantEqual(e.t, "committed", kvm{"a": "1", "b": "2"}, e.kvCommitted("i1"))
	}},
	{"continue_as_new_commits_the_delta", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		wantEqual(e.t, "committed", kvm{"a": "1"}, e.kvCommitted("i1"))
	}},
	{"overwrite_within_an_execution", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		e.kvTurn("i1", set("a", "2"))
		wantEqual(e.t, "merged", kvm{"a": "2"}, e.kvAll("i1"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{"a": "2"}, e.kvCommitted("i1"))
	}},
	{"overwrite_across_executions", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		e.execNext("i1", set("a", "2"))
		wantEqual(e.t, "merged", kvm{"a": "2"}, e.kvAll("i1"))
		wantEqual(e.t, "committed", kvm{"a": "1"}, e.kvCommitted("i1"))
	}},
	{"clear_hides_a_committed_key", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"), set("b", "2"))
		e.execNext("i1", clr("a"))
		if _, ok := e.kv("i1", "a"); ok {
			e.t.Fatal("cleared key still visible")
		}
		wantEqual(e.t, "merged", kvm{"b": "2"}, e.kvAll("i1"))
		wantEqual(e.t, "committed", kvm{"a": "1", "b": "2"}, e.kvCommitted("i1"))
	}},
	{"clear_is_committed_at_the_end", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"), set("b", "2"))
		e.execNext("i1", clr("a"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{"b": "2"}, e.kvCommitted("i1"))
	}},
	{"clear_of_a_missing_key_is_harmless", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", clr("never"), set("a", "1"))
		e.kvEnd("i1", queue.StatusCompleted, clr("also-never"))
		wantEqual(e.t, "committed", kvm{"a": "1"}, e.kvCommitted("i1"))
	}},
	{"clear_all_hides_everything_committed", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"), set("b", "2"))
		e.execNext("i1", clrAll())
		wantEqual(e.t, "merged", kvm{}, e.kvAll("i1"))
		if _, ok := e.kv("i1", "a"); ok {
			e.t.Fatal("key visible after clear-all")
		}
		wantEqual(e.t, "committed until the end", kvm{"a": "1", "b": "2"}, e.kvCommitted("i1"))
	}},
	{"set_after_clear_all_adds_keys_again", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"), set("b", "2"))
		e.execNext("i1", clrAll(), set("c", "3"))
		e.kvTurn("i1", set("a", "new"))
		wantEqual(e.t, "merged", kvm{"a": "new", "c": "3"}, e.kvAll("i1"))
		if v, ok := e.kv("i1", "b"); ok {
			e.t.Fatalf("b = %q after clear-all", v)
		}
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{"a": "new", "c": "3"}, e.kvCommitted("i1"))
	}},
	{"clear_all_in_the_final_turn_commits_an_empty_store", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		e.execNext("i1", set("b", "2"))
		e.kvEnd("i1", queue.StatusCompleted, clrAll())
		wantEqual(e.t, "committed", kvm{}, e.kvCommitted("i1"))
		wantEqual(e.t, "merged", kvm{}, e.kvAll("i1"))
	}},
	{"ops_of_one_ack_apply_in_order", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"), clr("a"), set("b", "1"), set("b", "2"), clrAll(), set("c", "3"), clr("d"), set("d", "4"))
		wantEqual(e.t, "merged", kvm{"c": "3", "d": "4"}, e.kvAll("i1"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{"c": "3", "d": "4"}, e.kvCommitted("i1"))
	}},
	{"ops_of_successive_acks_apply_in_order", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		e.kvTurn("i1", clr("a"))
		e.kvTurn("i1", set("a", "3"))
		e.kvTurn("i1", set("b", "x"))
		e.kvTurn("i1", clr("b"))
		wantEqual(e.t, "merged", kvm{"a": "3"}, e.kvAll("i1"))
	}},
	{"fetch_sends_the_committed_snapshot_not_the_delta", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		e.execNext("i1", set("b", "2"), clr("a"))
		it := e.turn("i1", "m")
		wantEqual(e.t, "snapshot", kvm{"a": "1"}, values(it.KV))
		wantEqual(e.t, "KVCommitted", kvm{"a": "1"}, e.kvCommitted("i1"))
		wantEqual(e.t, "merged", kvm{"b": "2"}, e.kvAll("i1"))
	}},
	{"fetch_omits_the_snapshot_with_the_history", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		if it.KV == nil || len(it.KV) != 0 || it.HistoryOmitted {
			e.t.Fatalf("first fetch: KV %v omitted %v, want an empty non-nil snapshot", it.KV, it.HistoryOmitted)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: queue.StatusContinuedAsNew, HeadMessages: []string{"s"},
			KV: []queue.KVOp{set("a", "1")}})
		it = e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2, CacheOwner: "w1"})
		e.enqueue("i1", "m")
		it = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, CacheOwner: "w1"}).Items[0]
		if !it.HistoryOmitted || it.KV != nil || it.History != nil {
			e.t.Fatalf("cached fetch: omitted %v KV %v history %v", it.HistoryOmitted, it.KV, it.History)
		}
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		it = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, CacheOwner: "w2"}).Items[0]
		wantEqual(e.t, "snapshot for another owner", kvm{"a": "1"}, values(it.KV))
	}},
	{"reads_of_a_missing_instance", func(e *env) {
		_, _, err := e.s.KV(e.ctx, "ghost", "a")
		wantErr(e.t, "KV", err, queue.ErrInstanceNotFound)
		_, err = e.s.KVAll(e.ctx, "ghost")
		wantErr(e.t, "KVAll", err, queue.ErrInstanceNotFound)
		wantEqual(e.t, "KVCommitted", kvm{}, e.kvCommitted("ghost"))
	}},
	{"missing_key_is_not_set", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		if v, ok := e.kv("i1", "b"); ok || v != "" {
			e.t.Fatalf("KV b = %q %v", v, ok)
		}
	}},
	{"given_update_time_is_stored_in_milliseconds", func(e *env) {
		e.start("i1", "o:b")
		at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
		e.kvTurn("i1", queue.KVOp{Op: queue.KVSet, Key: "a", Value: "1", UpdatedAt: at})
		m, err := e.s.KVAll(e.ctx, "i1")
		e.must("KVAll", err)
		if !m["a"].UpdatedAt.Equal(at.Truncate(time.Millisecond)) {
			e.t.Fatalf("UpdatedAt = %v, want %v", m["a"].UpdatedAt, at.Truncate(time.Millisecond))
		}
		e.kvEnd("i1", queue.StatusCompleted)
		c, err := e.s.KVCommitted(e.ctx, "i1")
		e.must("KVCommitted", err)
		if !c["a"].UpdatedAt.Equal(at.Truncate(time.Millisecond)) {
			e.t.Fatalf("committed UpdatedAt = %v", c["a"].UpdatedAt)
		}
	}},
	{"update_time_defaults_to_the_server_clock", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		m, err := e.s.KVAll(e.ctx, "i1")
		e.must("KVAll", err)
		if want := e.now("i1"); !m["a"].UpdatedAt.Equal(want) {
			e.t.Fatalf("UpdatedAt = %v, want the ack's server time %v", m["a"].UpdatedAt, want)
		}
	}},
	{"empty_value_is_a_value", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", ""))
		if v, ok := e.kv("i1", "a"); !ok || v != "" {
			e.t.Fatalf("KV a = %q %v", v, ok)
		}
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{"a": ""}, e.kvCommitted("i1"))
	}},
	{"large_value_round_trips", func(e *env) {
		e.start("i1", "o:b")
		big := strings.Repeat("0123456789abcdef", 16*1024) // 256 KiB
		e.kvTurn("i1", set("big", big))
		e.kvEnd("i1", queue.StatusContinuedAsNew)
		if v, _ := e.kv("i1", "big"); v != big {
			e.t.Fatalf("value of %d bytes came back with %d", len(big), len(v))
		}
		if c := e.kvCommitted("i1"); c["big"] != big {
			e.t.Fatal("committed large value differs")
		}
	}},
	{"special_characters_round_trip", func(e *env) {
		e.start("i1", "o:b")
		pairs := kvm{
			"with space":      "quote \" backslash \\ slash /",
			"ключ:ü/名前":       "unicode ✓ 名前 \u2028 \u2029",
			"json":            `{"v":1,"t":2}`,
			"tombstone-like":  `{"d":1,"t":5}`,
			"newline\nkey":    "line1\nline2\ttab\r\n",
			"html":            "<script>&amp;</script>",
			"all":             "not the clear-all marker",
			"{braces}:colons": "\x01\x02 control",
		}
		var ops []queue.KVOp
		for k, v := range pairs {
			ops = append(ops, set(k, v))
		}
		e.kvTurn("i1", ops...)
		wantEqual(e.t, "merged", pairs, e.kvAll("i1"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", pairs, e.kvCommitted("i1"))
		for k, v := range pairs {
			if got, ok := e.kv("i1", k); !ok || got != v {
				e.t.Fatalf("KV %q = %q %v, want %q", k, got, ok, v)
			}
		}
	}},
	{"invalid_ops_are_refused_and_write_nothing", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		it := e.turn("i1", "m")
		before := e.snap("i1")
		for what, op := range map[string]queue.KVOp{
			"empty key": set("", "v"), "NUL key": clr("\x00all"), "invalid UTF-8": set("k", "bad\xc3\x28"),
			"zero kind": {Key: "k"}, "unknown kind": {Op: queue.KVOpKind(42), Key: "k"},
		} {
			err := e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, KV: []queue.KVOp{set("b", "2"), op}})
			wantPlainErr(e.t, "ack with "+what, err)
		}
		wantSame(e.t, "refused kv ops", before, e.snap("i1"))
	}},
	{"instances_are_isolated", func(e *env) {
		e.start("i1", "o:b")
		e.start("i2", "o:c")
		e.kvTurn("i1", set("a", "1"))
		e.kvTurn("i2", set("a", "2"), set("b", "x"))
		e.kvEnd("i1", queue.StatusCompleted, clrAll())
		wantEqual(e.t, "i1", kvm{}, e.kvAll("i1"))
		wantEqual(e.t, "i2", kvm{"a": "2", "b": "x"}, e.kvAll("i2"))
	}},
	{"new_execution_commits_a_leftover_delta", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		it := e.turn("i1", "m")
		// Execution 2 starts without an ending ack of execution 1.
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2, KV: []queue.KVOp{set("b", "2")}})
		wantEqual(e.t, "committed", kvm{"a": "1"}, e.kvCommitted("i1"))
		wantEqual(e.t, "merged", kvm{"a": "1", "b": "2"}, e.kvAll("i1"))
	}},
	{"delete_removes_the_state", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		e.execNext("i1", set("b", "2"))
		e.del("i1", true)
		_, err := e.s.KVAll(e.ctx, "i1")
		wantErr(e.t, "KVAll after delete", err, queue.ErrInstanceNotFound)
		e.create("i1", "o:b", "start")
		wantEqual(e.t, "recreated merged", kvm{}, e.kvAll("i1"))
		wantEqual(e.t, "recreated committed", kvm{}, e.kvCommitted("i1"))
	}},
	{"failed_ack_writes_no_state", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		err := e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: "stale", Status: queue.StatusCompleted, KV: []queue.KVOp{set("a", "1")}})
		wantErr(e.t, "stale ack", err, queue.ErrLockLost)
		wantEqual(e.t, "merged", kvm{}, e.kvAll("i1"))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
	}},
	{"retried_ack_applies_once", func(e *env) {
		e.start("i1", "o:b")
		it := e.turn("i1", "m")
		a := queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, KV: []queue.KVOp{set("a", "1")}}
		e.ack(a)
		first, err := e.s.KVAll(e.ctx, "i1")
		e.must("KVAll", err)
		e.pass(20 * time.Millisecond)
		e.ack(a)
		again, err := e.s.KVAll(e.ctx, "i1")
		e.must("KVAll", err)
		wantEqual(e.t, "after retry", first, again)
	}},
	{"many_keys_in_one_ack", func(e *env) {
		e.start("i1", "o:b")
		want := kvm{}
		var ops []queue.KVOp
		for i := range 1000 {
			k, v := fmt.Sprintf("k%04d", i), fmt.Sprintf("v%d", i)
			want[k] = v
			ops = append(ops, set(k, v))
		}
		e.kvTurn("i1", ops...)
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", want, e.kvCommitted("i1"))
	}},
	{"children_have_their_own_state", func(e *env) {
		e.start("p", "o:p")
		e.kvTurn("p", set("a", "parent"))
		e.spawn("p", child("c", "p"))
		it := e.fetchOne("o:sub")
		if len(it.KV) != 0 {
			e.t.Fatalf("child snapshot = %v", it.KV)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "c", Token: it.Token, KV: []queue.KVOp{set("a", "child")}})
		wantEqual(e.t, "parent", kvm{"a": "parent"}, e.kvAll("p"))
		wantEqual(e.t, "child", kvm{"a": "child"}, e.kvAll("c"))
	}},
	{"final_state_stays_readable_after_the_end", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"), set("b", "2"))
		e.execNext("i1", clr("b"), set("c", "3"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "merged", kvm{"a": "1", "c": "3"}, e.kvAll("i1"))
		wantEqual(e.t, "committed", kvm{"a": "1", "c": "3"}, e.kvCommitted("i1"))
		if v, ok := e.kv("i1", "a"); !ok || v != "1" {
			e.t.Fatalf("KV a = %q %v", v, ok)
		}
	}},
	{"snapshot_follows_each_execution", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("g", "1"))
		it := e.execNext("i1", set("g", "2"))
		wantEqual(e.t, "snapshot of execution 2's first fetch", kvm{"g": "1"}, values(it.KV))
		e.kvEnd("i1", queue.StatusContinuedAsNew)
		it = e.execNext("i1")
		wantEqual(e.t, "snapshot of execution 3's first fetch", kvm{"g": "2"}, values(it.KV))
	}},
	{"kv_entries_carry_their_update_times", func(e *env) {
		e.start("i1", "o:b")
		t1 := time.UnixMilli(1_600_000_000_000)
		t2 := time.UnixMilli(1_600_000_001_000)
		e.kvTurn("i1", queue.KVOp{Op: queue.KVSet, Key: "a", Value: "1", UpdatedAt: t1})
		e.kvEnd("i1", queue.StatusContinuedAsNew)
		e.execNext("i1", queue.KVOp{Op: queue.KVSet, Key: "b", Value: "2", UpdatedAt: t2})
		m, err := e.s.KVAll(e.ctx, "i1")
		e.must("KVAll", err)
		if !m["a"].UpdatedAt.Equal(t1) || !m["b"].UpdatedAt.Equal(t2) {
			e.t.Fatalf("entries = %+v", m)
		}
	}},
	{"clear_all_then_clear_in_one_execution", func(e *env) {
		e.start("i1", "o:b")
		e.kvEnd("i1", queue.StatusContinuedAsNew, set("a", "1"))
		e.execNext("i1", clrAll(), set("b", "2"), clr("b"))
		wantEqual(e.t, "merged", kvm{}, e.kvAll("i1"))
		e.kvEnd("i1", queue.StatusCompleted)
		wantEqual(e.t, "committed", kvm{}, e.kvCommitted("i1"))
	}},
	{"state_is_readable_while_locked", func(e *env) {
		e.start("i1", "o:b")
		e.kvTurn("i1", set("a", "1"))
		e.turn("i1", "m") // locked now
		if v, ok := e.kv("i1", "a"); !ok || v != "1" {
			e.t.Fatalf("KV a during a turn = %q %v", v, ok)
		}
	}},
}
