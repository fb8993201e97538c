package queuetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// unserved returns UnservedBuckets sorted.
func (e *env) unserved(limit int) []string {
	e.t.Helper()
	b, err := e.s.UnservedBuckets(e.ctx, limit)
	e.must("UnservedBuckets", err)
	return sorted(b)
}

// pinnedTurn acks a turn of Running instance id with an engine pin and a
// ready bucket.
func (e *env) pinnedTurn(id string, exec uint64, pin, bucket string) {
	e.t.Helper()
	it := e.turn(id, "m")
	e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: exec, EnginePin: pin, ReadyBucket: bucket})
}

var capabilityCases = []testCase{
	{"fetch_returns_only_served_buckets", func(e *env) {
		e.create("a", "o:a", "start")
		e.create("b", "o:b", "start")
		wantEqual(e.t, "fetch o:a", []string{"a"}, itemIDs(e.fetchFrom("o:a")))
		wantEqual(e.t, "fetch o:a again", []string{}, itemIDs(e.fetchFrom("o:a")))
	}},
	{"fetch_neither_locks_nor_counts_unserved_instances", func(e *env) {
		e.create("a", "o:a", "start")
		e.create("b", "o:b", "start")
		e.fetchFrom("o:a")
		if r := e.instance("b"); r.Locked || r.Attempts != 0 {
			e.t.Fatalf("unserved instance touched: %+v", r)
		}
		if got := e.fetchOne("o:b"); got.Attempts != 1 {
			e.t.Fatalf("first delivery of b = %d attempts, want 1", got.Attempts)
		}
	}},
	{"ten_thousand_instances_in_another_bucket_are_untouched", func(e *env) {
		const n = 10000
		e.start("root", "o:root")
		it := e.turn("root", "spawn")
		kids := make([]queue.ChildStart, n)
		for i := range kids {
			kids[i] = queue.ChildStart{InstanceID: fmt.Sprintf("k%05d", i), Name: "kid", Bucket: "o:other", Message: "start"}
		}
		e.ack(queue.OrchestrationAck{InstanceID: "root", Token: it.Token, Children: kids})
		e.tick()
		e.create("mine", "o:mine", "start")
		res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:mine"}, Max: 100})
		wantEqual(e.t, "fetch o:mine", []string{"mine"}, itemIDs(res.Items))
		e.wantWake("NextWake (only the served bucket's lock)", res.NextWake, longLock)
		d, _ := depth(e.depths().Orchestrations, "o:other")
		if d.Ready != n || d.Locked != 0 || d.Delayed != 0 {
			e.t.Fatalf("o:other depth = %+v, want %d ready", d, n)
		}
		if r := e.instance("k09999"); r.Locked || r.Attempts != 0 || r.Status != queue.StatusPending {
			e.t.Fatalf("unserved instance touched: %+v", r)
		}
		got := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:other"}, Max: 1}).Items
		if len(got) != 1 || got[0].Attempts != 1 {
			e.t.Fatalf("first of o:other = %+v", got)
		}
	}},
	{"ten_thousand_work_items_in_another_bucket_are_untouched", func(e *env) {
		const n = 10000
		e.start("p", "o:p")
		items := make([]queue.WorkItem, n)
		for i := range items {
			items[i] = queue.WorkItem{Bucket: "a:other", Body: fmt.Sprintf("o%05d", i)}
		}
		e.schedule("p", items...)
		e.tick()
		e.schedule("p", queue.WorkItem{Bucket: "a:mine", Body: "mine"})
		res := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:mine"}, Max: 100})
		wantEqual(e.t, "fetch a:mine", []string{"mine"}, workBodies(res.Items))
		// A work fetch's NextWake covers delayed items only (a blocked read
		// wakes on new entries; every fetch takes back expired locks).
		if res.NextWake != 0 {
			e.t.Fatalf("work NextWake = %v, want 0: nothing delayed in a:mine", res.NextWake)
		}
		d, _ := depth(e.depths().Activities, "a:other")
		if d.Ready != n || d.Locked != 0 {
			e.t.Fatalf("a:other depth = %+v, want %d ready", d, n)
		}
		if w := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:other"}, Max: 1}).Items; len(w) != 1 || w[0].Bucket != "a:other" || w[0].Attempts != 1 {
			e.t.Fatalf("first of a:other = %+v", w)
		}
	}},
	{"fetch_without_buckets_locks_nothing", func(e *env) {
		e.create("a", "o:a", "start")
		res := e.fetch(queue.FetchOrchestrationsRequest{})
		if len(res.Items) != 0 || e.instance("a").Locked {
			e.t.Fatalf("fetch without buckets locked %v", itemIDs(res.Items))
		}
		if w := e.fetchWork(queue.FetchWorkRequest{}); len(w.Items) != 0 {
			e.t.Fatalf("work fetch without buckets got %v", workBodies(w.Items))
		}
	}},
	{"several_buckets_are_served_together", func(e *env) {
		e.create("a", "o:a", "start")
		e.create("b", "o:b", "start")
		e.create("c", "o:c", "start")
		got := itemIDs(e.fetchFrom("o:a", "o:b", "o:a", ""))
		wantEqual(e.t, "fetch o:a+o:b", []string{"a", "b"}, sorted(got))
	}},
	{"ack_moves_the_instance_to_its_ready_bucket", func(e *env) {
		e.create("i1", "o:orch", "start")
		it := e.fetchOne("o:orch")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:orch@1.0@0.1"})
		if r := e.instance("i1"); r.ReadyBucket != "x:orch@1.0@0.1" {
			e.t.Fatalf("ReadyBucket = %q", r.ReadyBucket)
		}
		e.enqueue("i1", "m")
		e.fetchNone("o:orch")
		e.fetchOne("x:orch@1.0@0.1")
	}},
	{"empty_ready_bucket_keeps_the_current_one", func(e *env) {
		e.create("i1", "o:orch", "start")
		it := e.fetchOne("o:orch")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:v1"})
		it = e.turn("i1", "m")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		if r := e.instance("i1"); r.ReadyBucket != "x:v1" {
			e.t.Fatalf("ReadyBucket = %q, want x:v1", r.ReadyBucket)
		}
	}},
	{"moving_with_messages_waiting_readies_in_the_new_bucket", func(e *env) {
		e.create("i1", "o:orch", "start")
		it := e.fetchOne("o:orch")
		e.enqueue("i1", "during")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:v2"})
		e.fetchNone("o:orch")
		wantEqual(e.t, "batch in new bucket", []string{"during"}, e.fetchOne("x:v2").Messages)
	}},
	{"pending_instance_has_no_engine_pin", func(e *env) {
		e.create("i1", "o:a", "start")
		if r := e.instance("i1"); r.EnginePin != "" || r.ExecutionID != 0 {
			e.t.Fatalf("pending instance = %+v", r)
		}
		pins, err := e.s.EnginePins(e.ctx)
		e.must("EnginePins", err)
		if len(pins) != 0 {
			e.t.Fatalf("pins = %v, want none", pins)
		}
	}},
	{"engine_pin_is_stored_and_listed", func(e *env) {
		e.create("i1", "o:a", "start")
		it := e.fetchOne("o:a")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, EnginePin: "0.3.1", ReadyBucket: "x:a@1@0.3.1"})
		if r := e.instance("i1"); r.EnginePin != "0.3.1" {
			e.t.Fatalf("pin = %q", r.EnginePin)
		}
		pins, err := e.s.EnginePins(e.ctx)
		e.must("EnginePins", err)
		wantEqual(e.t, "pins", []string{"0.3.1"}, pins)
	}},
	{"pin_is_kept_when_a_later_ack_omits_it", func(e *env) {
		e.create("i1", "o:a", "start")
		it := e.fetchOne("o:a")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, EnginePin: "0.3.1"})
		e.pinnedTurn("i1", 1, "", "")
		if r := e.instance("i1"); r.EnginePin != "0.3.1" {
			e.t.Fatalf("pin after a turn without one = %q", r.EnginePin)
		}
	}},
	{"new_execution_resets_the_pin", func(e *env) {
		e.create("i1", "o:a", "start")
		it := e.fetchOne("o:a")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, EnginePin: "0.3.1"})
		e.pinnedTurn("i1", 2, "", "")
		if r := e.instance("i1"); r.EnginePin != "" || r.ExecutionID != 2 {
			e.t.Fatalf("after a new execution without a pin: %+v", r)
		}
		e.pinnedTurn("i1", 3, "0.4.0", "")
		if r := e.instance("i1"); r.EnginePin != "0.4.0" {
			e.t.Fatalf("after a new execution with a pin: %+v", r)
		}
	}},
	{"engine_pins_only_grow", func(e *env) {
		for i, pin := range []string{"0.1.0", "0.2.0", "0.1.0"} {
			id := fmt.Sprintf("i%d", i)
			e.create(id, "o:a", "start")
			it := e.fetchOne("o:a")
			e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, EnginePin: pin, Status: queue.StatusCompleted})
		}
		_, err := e.s.DeleteInstance(e.ctx, "i1", false)
		e.must("delete", err)
		pins, err := e.s.EnginePins(e.ctx)
		e.must("EnginePins", err)
		wantEqual(e.t, "pins", []string{"0.1.0", "0.2.0"}, sorted(pins))
	}},
	{"unserved_buckets_lists_nonempty_buckets_nobody_serves", func(e *env) {
		e.create("a", "o:a", "start")
		e.create("b", "v:b@1", "start")
		e.startWork("a:x", "w")
		e.create("gone", "o:empty", "start")
		it := e.fetchOne("o:empty")
		e.ack(queue.OrchestrationAck{InstanceID: "gone", Token: it.Token, Status: queue.StatusCompleted})
		// o:p holds p's lock-free entry only while it has messages: it has none.
		wantEqual(e.t, "unserved", []string{"a:x", "o:a", "v:b@1"}, e.unserved(100))
	}},
	{"advertised_buckets_are_served", func(e *env) {
		e.create("a", "o:a", "start")
		e.create("b", "o:b", "start")
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:a", "a:x"}, longLock))
		wantEqual(e.t, "unserved", []string{"o:b"}, e.unserved(100))
		d := e.depths()
		da, _ := depth(d.Orchestrations, "o:a")
		db, _ := depth(d.Orchestrations, "o:b")
		if da.Unserved || !db.Unserved {
			e.t.Fatalf("depth flags: o:a %+v, o:b %+v", da, db)
		}
		// A new advertisement replaces the node's bucket set.
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, longLock))
		wantEqual(e.t, "unserved after re-advertising", []string{"o:a"}, e.unserved(100))
	}},
	{"withdrawn_node_no_longer_serves", func(e *env) {
		e.create("a", "o:a", "start")
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:a"}, longLock))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:a"}, longLock))
		e.must("withdraw", e.s.WithdrawNode(e.ctx, "n1"))
		wantEqual(e.t, "unserved with n2 left", []string{}, e.unserved(100))
		e.must("withdraw", e.s.WithdrawNode(e.ctx, "n2"))
		wantEqual(e.t, "unserved", []string{"o:a"}, e.unserved(100))
	}},
	{"expired_node_no_longer_serves", func(e *env) {
		e.create("a", "o:a", "start")
		ttl := e.shortLock()
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:a"}, ttl))
		e.after(ttl+time.Millisecond, "expired node forgotten", func() bool {
			return len(e.unserved(100)) == 1
		})
		wantEqual(e.t, "unserved", []string{"o:a"}, e.unserved(100))
		if d, _ := depth(e.depths().Orchestrations, "o:a"); !d.Unserved {
			e.t.Fatalf("depth of o:a = %+v, want unserved", d)
		}
	}},
	{"unserved_buckets_respects_the_limit", func(e *env) {
		for i := range 5 {
			e.create(fmt.Sprintf("i%d", i), fmt.Sprintf("o:b%d", i), "start")
		}
		if got := e.unserved(3); len(got) != 3 {
			e.t.Fatalf("UnservedBuckets(3) = %v", got)
		}
		if got := e.unserved(0); len(got) != 5 {
			e.t.Fatalf("UnservedBuckets(0) (default limit) = %v", got)
		}
	}},
	{"advertise_validates", func(e *env) {
		wantPlainErr(e.t, "advertise without id", e.s.AdvertiseNode(e.ctx, "", []string{"o:a"}, time.Second))
		wantPlainErr(e.t, "advertise without ttl", e.s.AdvertiseNode(e.ctx, "n", []string{"o:a"}, 0))
		e.must("advertise without buckets", e.s.AdvertiseNode(e.ctx, "n", nil, time.Second))
		e.must("withdraw unknown", e.s.WithdrawNode(e.ctx, "unknown"))
	}},
	{"concurrent_fetchers_of_different_buckets_stay_apart", func(e *env) {
		for i := range 6 {
			e.create(fmt.Sprintf("a%d", i), "o:a", "start")
			e.create(fmt.Sprintf("b%d", i), "o:b", "start")
		}
		var mu sync.Mutex
		got := map[string]string{}
		var wg sync.WaitGroup
		for _, bucket := range []string{"o:a", "o:b", "o:a", "o:b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{Buckets: []string{bucket}, Max: 3, LockTimeout: longLock})
				if err != nil {
					e.t.Errorf("fetch: %v", err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				for _, it := range res.Items {
					if prev, dup := got[it.InstanceID]; dup {
						e.t.Errorf("%s locked twice (%s, %s)", it.InstanceID, prev, bucket)
					}
					got[it.InstanceID] = bucket
					if it.InstanceID[:1] != bucket[2:] {
						e.t.Errorf("%s fetched from %s", it.InstanceID, bucket)
					}
				}
			}()
		}
		wg.Wait()
		if len(got) != 12 {
			e.t.Fatalf("%d instances locked, want 12", len(got))
		}
	}},
	{"work_fetch_neither_locks_nor_counts_unserved_items", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "x"}, queue.WorkItem{Bucket: "a:y", Body: "y"})
		wantEqual(e.t, "a:x", []string{"x"}, workBodies(e.work("a:x")))
		if w := e.workOne("a:y"); w.Attempts != 1 {
			e.t.Fatalf("a:y attempts = %d, want 1", w.Attempts)
		}
	}},
	{"bucket_names_are_opaque", func(e *env) {
		names := []string{"x:my orch@1.0.0+build.5@0.1.0", "o:ünïcode/名前", "v:a:b:c@1", "o:with\nnewline"}
		for i, b := range names {
			e.create(fmt.Sprintf("i%d", i), b, "start")
		}
		for i, b := range names {
			if it := e.fetchOne(b); it.InstanceID != fmt.Sprintf("i%d", i) || it.Instance.ReadyBucket != b {
				e.t.Fatalf("bucket %q gave %+v", b, it)
			}
		}
	}},
}
