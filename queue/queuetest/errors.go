package queuetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// wantSentinel requires errors.Is(err, want) and that the message names what.
func (e *env) wantSentinel(call string, err, want error, names string) {
	e.t.Helper()
	wantErr(e.t, call, err, want)
	if names != "" && !strings.Contains(err.Error(), names) {
		e.t.Fatalf("%s: error %q does not name %q", call, err, names)
	}
}

var errorCases = []testCase{
	{"instance_exists", func(e *env) {
		e.create("dup", "o:b", "start")
		err := e.s.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "dup", Bucket: "o:b", Message: "m"})
		e.wantSentinel("CreateInstance", err, queue.ErrInstanceExists, "dup")
	}},
	{"instance_not_found_from_every_call", func(e *env) {
		const id = "ghost-1"
		calls := map[string]error{}
		calls["Enqueue"] = e.s.Enqueue(e.ctx, id, "m")
		_, calls["Instance"] = e.s.Instance(e.ctx, id)
		calls["AckOrchestration"] = e.s.AckOrchestration(e.ctx, queue.OrchestrationAck{InstanceID: id, Token: "t", ExecutionID: 1, Status: queue.StatusRunning})
		calls["AbandonOrchestration"] = e.s.AbandonOrchestration(e.ctx, id, "t", 0, false)
		calls["RenewOrchestrationLock"] = e.s.RenewOrchestrationLock(e.ctx, id, "t", time.Second)
		_, _, calls["KV"] = e.s.KV(e.ctx, id, "k")
		_, calls["KVAll"] = e.s.KVAll(e.ctx, id)
		_, calls["Executions"] = e.s.Executions(e.ctx, id)
		_, calls["Children"] = e.s.Children(e.ctx, id)
		_, calls["DeleteInstance"] = e.s.DeleteInstance(e.ctx, id, true)
		_, calls["PruneExecutions"] = e.s.PruneExecutions(e.ctx, id, queue.PruneOptions{})
		for call, err := range calls {
			e.wantSentinel(call, err, queue.ErrInstanceNotFound, id)
		}
	}},
	{"instance_ended", func(e *env) {
		e.ended("done", queue.StatusCompleted)
		e.ended("failed", queue.StatusFailed)
		for _, id := range []string{"done", "failed"} {
			e.wantSentinel("Enqueue "+id, e.s.Enqueue(e.ctx, id, "m"), queue.ErrInstanceEnded, id)
		}
	}},
	{"lock_lost_from_every_lock_call", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.wantSentinel("AckOrchestration", e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: "bad"}), queue.ErrLockLost, "i1")
		e.wantSentinel("AbandonOrchestration", e.s.AbandonOrchestration(e.ctx, "i1", "bad", 0, false), queue.ErrLockLost, "i1")
		e.wantSentinel("RenewOrchestrationLock", e.s.RenewOrchestrationLock(e.ctx, "i1", "bad", time.Second), queue.ErrLockLost, "i1")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		e.wantSentinel("retried abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false), queue.ErrLockLost, "i1")
		e.startWork("a:x", "w")
		w := e.workOne("a:x")
		e.wantSentinel("AckWork", e.s.AckWork(e.ctx, w.ID, "bad", ""), queue.ErrLockLost, w.ID)
		e.wantSentinel("AbandonWork", e.s.AbandonWork(e.ctx, w.ID, "bad", 0, false), queue.ErrLockLost, w.ID)
		e.wantSentinel("RenewWork", e.s.RenewWork(e.ctx, w.ID, "bad", time.Second), queue.ErrLockLost, w.ID)
		e.must("abandon work", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false))
		e.wantSentinel("retried work abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false), queue.ErrLockLost, w.ID)
	}},
	{"work_not_found_from_every_work_call", func(e *env) {
		e.wantSentinel("AckWork", e.s.AckWork(e.ctx, "999", "t", ""), queue.ErrWorkNotFound, "999")
		e.wantSentinel("AbandonWork", e.s.AbandonWork(e.ctx, "999", "t", 0, false), queue.ErrWorkNotFound, "999")
		e.wantSentinel("RenewWork", e.s.RenewWork(e.ctx, "999", "t", time.Second), queue.ErrWorkNotFound, "999")
		e.startWork("a:x", "w")
		w := e.workOne("a:x")
		e.must("AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, ""))
		e.wantSentinel("retried AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, ""), queue.ErrWorkNotFound, w.ID)
	}},
	{"retried_ack_succeeds_without_writing", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		a := queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e"}}
		e.ack(a)
		e.enqueue("i1", "m") // the instance moves on and is locked again...
		next := e.fetchOne("o:b")
		e.ack(a) // ...and a late resend of the old ack is still harmless
		wantEqual(e.t, "history", []string{"e"}, e.history("i1", 1))
		if r := e.instance("i1"); !r.Locked || r.Attempts != 1 {
			e.t.Fatalf("the new lock was disturbed: %+v", r)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: next.Token, NewEvents: []string{"e2"}})
		wantEqual(e.t, "history", []string{"e", "e2"}, e.history("i1", 1))
	}},
	{"late_resent_ack_after_later_turns_is_already_applied", func(e *env) {
		// go-redis resends an ack whose reply it lost; the resend may arrive
		// after the instance already ran further turns.
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		first := queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e1"}}
		e.ack(first)
		want := []string{"e1"}
		for i := 2; i <= 4; i++ {
			next := e.turn("i1", "m")
			ev := "e" + string(rune('0'+i))
			e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: next.Token, NewEvents: []string{ev}})
			want = append(want, ev)
		}
		locked := e.turn("i1", "m5")
		before := e.snap("i1")
		e.must("late resent ack", e.ackErr(first))
		wantSame(e.t, "a late resent ack", before, e.snap("i1"))
		wantEqual(e.t, "history", want, e.history("i1", 1))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: locked.Token, NewEvents: []string{"e5"}})
	}},
	{"ack_too_large", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		err := e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, Outbox: make([]queue.OutboundMessage, queue.MaxAckEntries+1)})
		e.wantSentinel("oversized ack", err, queue.ErrAckTooLarge, "i1")
		if r := e.instance("i1"); !r.Locked || r.Status != queue.StatusPending {
			e.t.Fatalf("after a refused ack: %+v", r)
		}
	}},
	{"management_sentinels", func(e *env) {
		e.start("r", "o:r")
		e.spawn("r", child("c", "r"))
		_, err := e.s.DeleteInstance(e.ctx, "r", false)
		e.wantSentinel("delete running", err, queue.ErrInstanceRunning, "r")
		_, err = e.s.DeleteInstance(e.ctx, "c", true)
		e.wantSentinel("delete child", err, queue.ErrCannotDeleteSubOrchestration, "c")
	}},
	{"tree_too_large", func(e *env) {
		e.start("r", "o:r")
		kids := make([]queue.ChildStart, queue.MaxTreeSize)
		for i := range kids {
			kids[i] = queue.ChildStart{InstanceID: fmt.Sprintf("c%05d", i), Name: "kid", ParentInstanceID: "r", Bucket: "o:kids", Message: "m"}
		}
		it := e.turn("r", "spawn")
		e.ack(queue.OrchestrationAck{InstanceID: "r", Token: it.Token, Children: kids})
		m := e.metrics()
		_, err := e.s.DeleteInstance(e.ctx, "r", true)
		e.wantSentinel("delete a tree of MaxTreeSize+1", err, queue.ErrTreeTooLarge, "r")
		if after := e.metrics(); after != m {
			e.t.Fatalf("metrics changed by a refused delete: %+v -> %+v", m, after)
		}
		e.instance("c09999")
	}},
	{"invalid_requests_are_plain_errors", func(e *env) {
		checks := map[string]error{}
		_, checks["fetch Max 0"] = e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, LockTimeout: time.Second})
		_, checks["fetch no lock timeout"] = e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1})
		_, checks["work Max 0"] = e.s.FetchWork(e.ctx, queue.FetchWorkRequest{Buckets: []string{"a:x"}, LockTimeout: time.Second})
		_, checks["work no lock timeout"] = e.s.FetchWork(e.ctx, queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1})
		checks["renew 0"] = e.s.RenewOrchestrationLock(e.ctx, "i1", "t", 0)
		checks["renew work 0"] = e.s.RenewWork(e.ctx, "1", "t", 0)
		for what, err := range checks {
			wantPlainErr(e.t, what, err)
		}
	}},
	{"scripts_recover_after_the_script_cache_is_flushed", func(e *env) {
		e.requireReal("recovery from NOSCRIPT is a property of Redis's script cache and is checked on a real server; miniredis's cache does not behave like it (it survives Restart, redis-notes §2.4)")
		if e.f.FlushScripts == nil {
			e.t.Skip("Factory.FlushScripts is nil")
		}
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "w"})
		e.f.FlushScripts(e.t)
		// Every script runs again (EVALSHA answers NOSCRIPT, the store falls back to EVAL).
		e.create("i1", "o:b", "start")
		e.enqueue("i1", "m")
		it := e.fetchOne("o:b")
		wantEqual(e.t, "batch", []string{"start", "m"}, it.Messages)
		e.f.FlushScripts(e.t)
		e.wantSentinel("ack with a wrong token after flush", e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: "bad"}), queue.ErrLockLost, "i1")
		e.f.FlushScripts(e.t)
		e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e"}})
		e.f.FlushScripts(e.t)
		w := e.workOne("a:x")
		e.f.FlushScripts(e.t)
		e.must("AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, "done"))
		e.f.FlushScripts(e.t)
		wantEqual(e.t, "kv", kvm{}, e.kvAll("i1"))
		e.f.FlushScripts(e.t)
		e.wantMetrics("metrics", queue.SystemMetrics{Running: 2, Instances: 2, Executions: 2, Events: 2})
		e.f.FlushScripts(e.t)
		wantEqual(e.t, "listed", []string{"i1", "p"}, sorted(e.listAll("")))
		e.f.FlushScripts(e.t)
		e.depths()
		e.f.FlushScripts(e.t)
		_, err := e.s.DeleteInstance(e.ctx, "i1", false)
		e.wantSentinel("delete after flush", err, queue.ErrInstanceRunning, "i1")
	}},
	{"fetch_retried_with_the_same_request_id_returns_the_same_items", func(e *env) {
		for i := range 3 {
			e.create(fmt.Sprintf("i%d", i), "o:b", "start")
			e.tick()
		}
		req := queue.FetchOrchestrationsRequest{RequestID: "same", Buckets: []string{"o:b"}, Max: 2, LockTimeout: longLock}
		first, err := e.s.FetchOrchestrations(e.ctx, req)
		e.must("first fetch", err)
		e.enqueue("i0", "during")
		second, err := e.s.FetchOrchestrations(e.ctx, req)
		e.must("replayed fetch", err)
		wantEqual(e.t, "replayed items", first.Items, second.Items)
		for _, it := range first.Items {
			if got := e.instance(it.InstanceID).Attempts; got != 1 {
				e.t.Fatalf("%s attempts = %d after a replay, want 1", it.InstanceID, got)
			}
		}
		wantEqual(e.t, "left for others", []string{"i2"}, itemIDs(e.fetchFrom("o:b")))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: first.Items[1].Token})
		third, err := e.s.FetchOrchestrations(e.ctx, req)
		e.must("replay after ack", err)
		wantEqual(e.t, "replay after ack", []string{"i0"}, itemIDs(third.Items))
	}},
	{"work_fetch_retried_with_the_same_request_id_returns_the_same_items", func(e *env) {
		e.startWork("a:x", "w1", "w2", "w3")
		req := queue.FetchWorkRequest{RequestID: "same", Buckets: []string{"a:x"}, Max: 2, LockTimeout: longLock}
		first, err := e.s.FetchWork(e.ctx, req)
		e.must("first", err)
		second, err := e.s.FetchWork(e.ctx, req)
		e.must("replay", err)
		wantEqual(e.t, "replayed items", first.Items, second.Items)
		left := e.workOne("a:x")
		if left.Attempts != 1 {
			e.t.Fatalf("third item = %+v", left)
		}
		e.must("abandon", e.s.AbandonWork(e.ctx, first.Items[0].ID, first.Items[0].Token, 0, true))
		third, err := e.s.FetchWork(e.ctx, req)
		e.must("replay after abandon", err)
		if len(third.Items) != 1 || third.Items[0].ID != first.Items[1].ID || third.Items[0].Attempts != 1 {
			e.t.Fatalf("replay after abandon = %+v", third.Items)
		}
	}},
	{"replay_after_the_locks_expired_is_a_new_fetch", func(e *env) {
		e.create("i1", "o:b", "start")
		req := queue.FetchOrchestrationsRequest{RequestID: "late", Buckets: []string{"o:b"}, Max: 1, LockTimeout: e.shortLock()}
		first, err := e.s.FetchOrchestrations(e.ctx, req)
		e.must("first", err)
		if len(first.Items) != 1 {
			e.t.Fatal("nothing fetched")
		}
		e.after(e.shortLock()+time.Millisecond, "late replay takes the instance over", func() bool {
			res, err := e.s.FetchOrchestrations(e.ctx, req)
			e.must("late replay", err)
			return len(res.Items) == 1 && res.Items[0].Attempts == 2
		})
	}},
	{"fetch_that_locked_nothing_leaves_no_record", func(e *env) {
		req := queue.FetchOrchestrationsRequest{RequestID: "empty", Buckets: []string{"o:b"}, Max: 1, LockTimeout: longLock}
		res, err := e.s.FetchOrchestrations(e.ctx, req)
		e.must("empty fetch", err)
		if len(res.Items) != 0 {
			e.t.Fatal("fetched from an empty bucket")
		}
		e.create("i1", "o:b", "start")
		res, err = e.s.FetchOrchestrations(e.ctx, req)
		e.must("same request again", err)
		if len(res.Items) != 1 || res.Items[0].Attempts != 1 {
			e.t.Fatalf("second run = %+v, want a normal fetch", res.Items)
		}
	}},
	{"cancelled_context_is_reported", func(e *env) {
		ctx, cancel := context.WithCancel(e.ctx)
		cancel()
		_, err := e.s.FetchOrchestrations(ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: time.Second})
		if !errors.Is(err, context.Canceled) {
			e.t.Fatalf("fetch with a cancelled context: %v", err)
		}
		err = e.s.CreateInstance(ctx, queue.CreateRequest{InstanceID: "i1", Bucket: "o:b", Message: "m"})
		if !errors.Is(err, context.Canceled) {
			e.t.Fatalf("create with a cancelled context: %v", err)
		}
		e.gone("i1")
	}},
}
