package queue

import (
	"testing"
	"time"
)

// kvTurn runs one turn of id (waiting in "o:b" with something in its inbox
// or just created) that applies ops in execution exec with status, and
// returns the fetched item (whose KV is the snapshot the turn saw).
func (e *env) kvTurn(id string, exec uint64, status string, ops ...KVOp) OrchestrationItem {
	e.t.Helper()
	it := e.fetchOne("o:b", longLock)
	e.ack(OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: exec, Status: status, KV: ops})
	if status != StatusCompleted && status != StatusFailed {
		e.enqueue(id, "next")
	}
	return it
}

// kvView returns the client view as value by key.
func (e *env) kvView(id string) map[string]string {
	e.t.Helper()
	all, err := e.s.KVAll(e.ctx, id)
	if err != nil {
		e.t.Fatalf("KVAll(%s): %v", id, err)
	}
	out := make(map[string]string, len(all))
	for k, v := range all {
		out[k] = v.Value
	}
	return out
}

// kvSnapshot returns the committed snapshot a fetch of id sends, as value by key.
func (e *env) kvSnapshot(id string) map[string]string {
	e.t.Helper()
	it := e.fetchOne("o:b", longLock)
	wantErr(e.t, "abandon snapshot fetch", e.s.AbandonOrchestration(e.ctx, id, it.Token, 0, false), nil)
	return values(it.KV)
}

func values(m map[string]KVEntry) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v.Value
	}
	return out
}

func set(key, value string) KVOp { return KVOp{Op: KVSet, Key: key, Value: value} }
func clearKey(key string) KVOp   { return KVOp{Op: KVClear, Key: key} }
func clearAll() KVOp             { return KVOp{Op: KVClearAll} }

func TestKVDeltaAndMergedView(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		first := e.kvTurn("i1", 1, StatusRunning, set("a", "1"), set("b", "2"), set("a", "1b"))
		wantEqual(t, "snapshot of the first turn", map[string]string{}, values(first.KV))
		// The writes are in the delta only; the client view merges them.
		if e.exists(e.k.kvKey("i1")) {
			t.Errorf("kv:i1 written before the execution ended: %v", e.hgetall(e.k.kvKey("i1")))
		}
		wantEqual(t, "view", map[string]string{"a": "1b", "b": "2"}, e.kvView("i1"))
		v, ok, err := e.s.KV(e.ctx, "i1", "a")
		if err != nil || !ok || v != "1b" {
			t.Errorf(`KV(a) = %q, %v, %v; want "1b", true`, v, ok, err)
		}
		if _, ok, err := e.s.KV(e.ctx, "i1", "missing"); ok || err != nil {
			t.Errorf("KV(missing) = ok %v, err %v; want false, nil", ok, err)
		}
		// A fetch sends only the committed snapshot, not the running delta.
		wantEqual(t, "snapshot while running", map[string]string{}, e.kvSnapshot("i1"))

		// Continue-as-new merges; the next execution starts from the merge.
		e.kvTurn("i1", 1, StatusContinuedAsNew, set("c", "3"))
		if e.exists(e.k.kvDeltaKey("i1")) {
			t.Error("kvd:i1 left after the merge")
		}
		wantEqual(t, "snapshot after merge", map[string]string{"a": "1b", "b": "2", "c": "3"}, e.kvSnapshot("i1"))

		// Execution 2: a tombstone hides a committed value, from the view only.
		e.kvTurn("i1", 2, StatusRunning, clearKey("a"), set("d", "4"))
		wantEqual(t, "view with tombstone", map[string]string{"b": "2", "c": "3", "d": "4"}, e.kvView("i1"))
		if _, ok, _ := e.s.KV(e.ctx, "i1", "a"); ok {
			t.Error("KV(a) found a key hidden by a tombstone")
		}
		wantEqual(t, "snapshot during execution 2", map[string]string{"a": "1b", "b": "2", "c": "3"}, e.kvSnapshot("i1"))

		e.kvTurn("i1", 2, StatusContinuedAsNew)
		wantEqual(t, "store after second merge", map[string]string{"b": "2", "c": "3", "d": "4"}, e.kvSnapshot("i1"))
		wantEqual(t, "view after second merge", map[string]string{"b": "2", "c": "3", "d": "4"}, e.kvView("i1"))
	})
}

func TestKVClearAll(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		e.kvTurn("i1", 1, StatusContinuedAsNew, set("old1", "x"), set("old2", "y"))
		e.kvTurn("i1", 2, StatusRunning, set("early", "e"), clearAll())
		// The marker hides the store and drops the earlier delta fields.
		wantEqual(t, "kvd after clear-all", map[string]string{kvClearAllField: "1"}, e.hgetall(e.k.kvDeltaKey("i1")))
		wantEqual(t, "view after clear-all", map[string]string{}, e.kvView("i1"))
		if _, ok, _ := e.s.KV(e.ctx, "i1", "old1"); ok {
			t.Error("KV(old1) visible after clear-all")
		}
		// Later writes of the same execution show again.
		e.kvTurn("i1", 2, StatusRunning, set("new", "n"), clearKey("old2"))
		wantEqual(t, "view after a set", map[string]string{"new": "n"}, e.kvView("i1"))
		if v, ok, _ := e.s.KV(e.ctx, "i1", "new"); !ok || v != "n" {
			t.Errorf("KV(new) = %q, %v; want n", v, ok)
		}
		// Until the merge the committed store is intact.
		wantEqual(t, "snapshot before merge", map[string]string{"old1": "x", "old2": "y"}, e.kvSnapshot("i1"))
		e.kvTurn("i1", 2, StatusContinuedAsNew)
		wantEqual(t, "snapshot after merge", map[string]string{"new": "n"}, e.kvSnapshot("i1"))
		if e.exists(e.k.kvDeltaKey("i1")) {
			t.Error("kvd:i1 left after the merge")
		}
	})
}

// TestKVOpsInOrder: the ops of one ack apply in order.
func TestKVOpsInOrder(t *testing.T) {
	tests := []struct {
		name string
		ops  []KVOp
		want map[string]string
	}{
		{name: "set then clear", ops: []KVOp{set("k", "v"), clearKey("k")}, want: map[string]string{"base": "b"}},
		{name: "clear then set", ops: []KVOp{clearKey("k"), set("k", "v")}, want: map[string]string{"base": "b", "k": "v"}},
		{name: "set twice", ops: []KVOp{set("k", "1"), set("k", "2")}, want: map[string]string{"base": "b", "k": "2"}},
		{name: "clear committed key", ops: []KVOp{clearKey("base")}, want: map[string]string{}},
		{name: "clear all then set", ops: []KVOp{set("a", "1"), clearAll(), set("b", "2")}, want: map[string]string{"b": "2"}},
		{name: "set after clear all then clear", ops: []KVOp{clearAll(), set("b", "2"), clearKey("b")}, want: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("i1", "o:b", "start")
				e.kvTurn("i1", 1, StatusContinuedAsNew, set("base", "b"))
				e.kvTurn("i1", 2, StatusRunning, tt.ops...)
				want := tt.want
				wantEqual(t, "view", want, e.kvView("i1"))
				e.kvTurn("i1", 2, StatusContinuedAsNew)
				wantEqual(t, "merged", want, e.kvSnapshot("i1"))
			})
		})
	}
}

func TestKVMergeWhenExecutionEnds(t *testing.T) {
	tests := []struct {
		status    string
		wantMerge bool
	}{
		{StatusRunning, false},
		{StatusContinuedAsNew, true},
		{StatusCompleted, true},
		{StatusFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("i1", "o:b", "start")
				e.kvTurn("i1", 1, StatusRunning, set("a", "1"), set("gone", "x"))
				e.kvTurn("i1", 1, tt.status, clearKey("gone"), set("b", "2"))
				want := map[string]string{"a": "1", "b": "2"}
				if tt.wantMerge {
					got := map[string]string{}
					for k, v := range e.hgetall(e.k.kvKey("i1")) {
						entry, tomb, err := decodeKV(k, v)
						if err != nil || tomb {
							t.Fatalf("kv:i1 field %s = %s: %v, tombstone %v", k, v, err, tomb)
						}
						got[k] = entry.Value
					}
					wantEqual(t, "committed store", want, got)
					if e.exists(e.k.kvDeltaKey("i1")) {
						t.Error("kvd:i1 left after the merge")
					}
				} else if e.exists(e.k.kvKey("i1")) {
					t.Error("a Running ack merged the delta")
				}
				// The client view is the same either way, ended instance included.
				wantEqual(t, "view", want, e.kvView("i1"))
			})
		})
	}
}

// TestKVNewExecutionCommitsLeftoverDelta: an ack that starts a new execution
// without a continue-as-new ack before it first commits the delta the
// previous execution left, so the snapshot is the state at execution start.
func TestKVNewExecutionCommitsLeftoverDelta(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		e.kvTurn("i1", 1, StatusRunning, set("a", "1"))
		e.kvTurn("i1", 2, StatusRunning, set("b", "2"))
		wantEqual(t, "snapshot of execution 2", map[string]string{"a": "1"}, e.kvSnapshot("i1"))
		wantEqual(t, "view", map[string]string{"a": "1", "b": "2"}, e.kvView("i1"))
	})
}

func TestKVEntriesRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		at := time.UnixMilli(1_650_000_000_123)
		odd := []string{"", `{"v":"not json"}`, "quote \" backslash \\ newline \n tab \t", "ünïcødé ✓ \u2028", "<&>", "\x00nul"}
		var ops []KVOp
		for i, v := range odd {
			ops = append(ops, KVOp{Op: KVSet, Key: string(rune('a' + i)), Value: v, UpdatedAt: at})
		}
		ops = append(ops, KVOp{Op: KVSet, Key: "server-time", Value: "x"}, KVOp{Op: KVSet, Key: "key with spaces:and{braces}", Value: "y", UpdatedAt: at})
		before := e.serverNow().Truncate(time.Millisecond)
		e.kvTurn("i1", 1, StatusRunning, ops...)
		after := e.serverNow()
		check := func(what string, got map[string]KVEntry) {
			t.Helper()
			for i, v := range odd {
				k := string(rune('a' + i))
				if g := got[k]; g.Value != v || !g.UpdatedAt.Equal(at) {
					t.Errorf("%s: %s = %+v, want %q at %v", what, k, g, v, at)
				}
			}
			if g := got["server-time"]; g.UpdatedAt.Before(before) || g.UpdatedAt.After(after) {
				t.Errorf("%s: zero UpdatedAt stored as %v, want the server clock in [%v, %v]", what, g.UpdatedAt, before, after)
			}
			if g := got["key with spaces:and{braces}"]; g.Value != "y" {
				t.Errorf("%s: odd key = %+v", what, g)
			}
		}
		all, err := e.s.KVAll(e.ctx, "i1")
		wantErr(t, "KVAll", err, nil)
		check("view", all)
		for i, v := range odd {
			got, ok, err := e.s.KV(e.ctx, "i1", string(rune('a'+i)))
			if err != nil || !ok || got != v {
				t.Errorf("KV(%c) = %q, %v, %v; want %q", 'a'+i, got, ok, err, v)
			}
		}
		e.kvTurn("i1", 1, StatusContinuedAsNew)
		it := e.fetchOne("o:b", longLock)
		check("snapshot", it.KV)
	})
}

// TestKVOmittedWithHistory: the snapshot travels with the history; when the
// caller's cache holds the history, neither is sent.
func TestKVOmittedWithHistory(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusContinuedAsNew, KV: []KVOp{set("a", "1")}})
		e.enqueue("i1", "m")
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:b"}, CacheOwner: "w1"}).Items[0]
		wantEqual(t, "snapshot", map[string]string{"a": "1"}, values(it.KV))
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2, Status: StatusRunning, CacheOwner: "w1"})
		e.enqueue("i1", "m")
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:b"}, CacheOwner: "w1"}).Items[0]
		if !it.HistoryOmitted || it.KV != nil {
			t.Errorf("HistoryOmitted %v, KV %v; want true and nil", it.HistoryOmitted, it.KV)
		}
	})
}

func TestKVUnknownInstance(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		_, _, err := e.s.KV(e.ctx, "nope", "k")
		wantErr(t, "KV", err, ErrInstanceNotFound)
		_, err = e.s.KVAll(e.ctx, "nope")
		wantErr(t, "KVAll", err, ErrInstanceNotFound)
		// A fresh instance has an empty state, not an error.
		e.create("i1", "o:b", "start")
		wantEqual(t, "view of a new instance", map[string]string{}, e.kvView("i1"))
		if _, ok, err := e.s.KV(e.ctx, "i1", "k"); ok || err != nil {
			t.Errorf("KV on a new instance = %v, %v; want false, nil", ok, err)
		}
	})
}
