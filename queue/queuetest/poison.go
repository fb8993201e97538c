package queuetest

import (
	"github.com/duroworker/duroworker/queue"
)

// refetch abandons it (keeping the attempt or not) and fetches the
// instance again from bucket.
func (e *env) refetch(bucket string, it queue.OrchestrationItem, keep bool) queue.OrchestrationItem {
	e.t.Helper()
	e.must("abandon", e.s.AbandonOrchestration(e.ctx, it.InstanceID, it.Token, 0, keep))
	return e.fetchOne(bucket)
}

var poisonCases = []testCase{
	{"first_delivery_counts_one", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		if it.Attempts != 1 || it.Instance.Attempts != 1 || e.instance("i1").Attempts != 1 {
			e.t.Fatalf("first delivery: item %d, record %d, stored %d; want 1", it.Attempts, it.Instance.Attempts, e.instance("i1").Attempts)
		}
	}},
	{"each_fetch_after_abandon_counts", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		for want := 2; want <= 5; want++ {
			it = e.refetch("o:b", it, true)
			if it.Attempts != want || e.instance("i1").Attempts != want {
				e.t.Fatalf("delivery %d counted %d (stored %d)", want, it.Attempts, e.instance("i1").Attempts)
			}
		}
	}},
	{"abandon_without_keeping_gives_the_attempt_back", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		it = e.refetch("o:b", it, true) // 2
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		if got := e.instance("i1").Attempts; got != 1 {
			e.t.Fatalf("stored attempts after a not-counted abandon = %d, want 1", got)
		}
		if got := e.fetchOne("o:b").Attempts; got != 2 {
			e.t.Fatalf("next delivery = %d, want 2", got)
		}
	}},
	{"attempts_never_go_negative", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		for range 3 {
			it = e.refetch("o:b", it, false)
			if it.Attempts != 1 {
				e.t.Fatalf("attempts after not-counted abandons = %d, want 1", it.Attempts)
			}
		}
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		if got := e.instance("i1").Attempts; got != 0 {
			e.t.Fatalf("stored attempts = %d, want 0", got)
		}
	}},
	{"lock_expiry_counts_an_attempt", func(e *env) {
		e.create("i1", "o:b", "start")
		e.fetchOneLock("o:b", e.shortLock())
		it := e.steal("o:b", e.shortLock())
		if it.Attempts != 2 {
			e.t.Fatalf("attempts after expiry = %d, want 2", it.Attempts)
		}
	}},
	{"ack_resets_attempts", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		it = e.refetch("o:b", it, true)
		it = e.refetch("o:b", it, true)
		if it.Attempts != 3 {
			e.t.Fatalf("attempts = %d, want 3", it.Attempts)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		if got := e.instance("i1").Attempts; got != 0 {
			e.t.Fatalf("stored attempts after ack = %d, want 0", got)
		}
		if got := e.turn("i1", "m").Attempts; got != 1 {
			e.t.Fatalf("next batch attempts = %d, want 1", got)
		}
	}},
	{"attempts_belong_to_the_batch_not_the_message", func(e *env) {
		// A message that arrives after failed deliveries joins the batch and
		// its attempt count: the count is the instance's, per delivery.
		e.create("i1", "o:b", "m1")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "m2")
		it = e.refetch("o:b", it, true)
		if it.Attempts != 2 {
			e.t.Fatalf("attempts = %d, want 2", it.Attempts)
		}
		wantEqual(e.t, "batch", []string{"m1", "m2"}, it.Messages)
	}},
	{"renew_does_not_count", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		it = e.refetch("o:b", it, true)
		if it.Attempts != 2 {
			e.t.Fatalf("attempts = %d, want 2", it.Attempts)
		}
	}},
	{"work_attempts_count_per_fetch", func(e *env) {
		e.startWork("a:x", "w")
		w := e.workOne("a:x")
		if w.Attempts != 1 {
			e.t.Fatalf("first delivery = %d", w.Attempts)
		}
		e.must("abandon keep", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, true))
		w = e.workOne("a:x")
		if w.Attempts != 2 {
			e.t.Fatalf("second delivery = %d, want 2", w.Attempts)
		}
		e.must("abandon give back", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false))
		w = e.workOne("a:x")
		if w.Attempts != 2 {
			e.t.Fatalf("delivery after a not-counted abandon = %d, want 2", w.Attempts)
		}
	}},
	{"work_attempts_never_go_negative", func(e *env) {
		e.startWork("a:x", "w")
		for range 3 {
			w := e.workOne("a:x")
			if w.Attempts != 1 {
				e.t.Fatalf("attempts = %d, want 1", w.Attempts)
			}
			e.must("abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false))
		}
	}},
	{"work_lock_expiry_counts_an_attempt", func(e *env) {
		e.startWork("a:x", "w")
		e.workOneLock(e.shortLock(), "a:x")
		if w := e.stealWork("a:x", e.shortLock()); w.Attempts != 2 {
			e.t.Fatalf("attempts after expiry = %d, want 2", w.Attempts)
		}
	}},
	{"attempts_are_per_work_item", func(e *env) {
		e.startWork("a:x", "w1", "w2")
		ws := e.work("a:x")
		if len(ws) != 2 {
			e.t.Fatalf("got %d items", len(ws))
		}
		for range 2 {
			e.must("abandon w1", e.s.AbandonWork(e.ctx, ws[0].ID, ws[0].Token, 0, true))
			ws[0] = e.workOne("a:x") // w2 is still locked
		}
		if ws[0].Attempts != 3 {
			e.t.Fatalf("w1 attempts = %d, want 3", ws[0].Attempts)
		}
		e.must("abandon w2", e.s.AbandonWork(e.ctx, ws[1].ID, ws[1].Token, 0, true))
		if w := e.workOne("a:x"); w.ID != ws[1].ID || w.Attempts != 2 {
			e.t.Fatalf("w2 = %+v, want 2 attempts", w)
		}
	}},
}
