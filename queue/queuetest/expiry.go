package queuetest

import (
	"sync"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// steal waits until the lock of the instance in bucket has expired and a
// new fetch takes it over; it returns the new item.
func (e *env) steal(bucket string, lock time.Duration) queue.OrchestrationItem {
	e.t.Helper()
	var got []queue.OrchestrationItem
	e.after(lock+time.Millisecond, "expired lock taken over", func() bool {
		got = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{bucket}}).Items
		return len(got) == 1
	})
	return got[0]
}

// stealWork is steal for a work item.
func (e *env) stealWork(bucket string, lock time.Duration) queue.FetchedWork {
	e.t.Helper()
	var got []queue.FetchedWork
	e.after(lock+time.Millisecond, "expired work lock taken over", func() bool {
		got = e.work(bucket)
		return len(got) == 1
	})
	return got[0]
}

// startWork starts instance "p" and schedules one work item per body in
// bucket.
func (e *env) startWork(bucket string, bodies ...string) {
	e.t.Helper()
	e.start("p", "o:p")
	var items []queue.WorkItem
	for _, b := range bodies {
		items = append(items, queue.WorkItem{Bucket: bucket, Body: b})
	}
	e.schedule("p", items...)
}

var expiryCases = []testCase{
	{"expired_lock_is_taken_over_with_one_more_attempt", func(e *env) {
		e.create("i1", "o:b", "start")
		old := e.fetchOneLock("o:b", e.shortLock())
		it := e.steal("o:b", e.shortLock())
		if it.Token == old.Token || it.Attempts != 2 || it.Instance.Attempts != 2 {
			e.t.Fatalf("stolen item = %+v (old token %s)", it, old.Token)
		}
		wantEqual(e.t, "stolen batch", []string{"start"}, it.Messages)
	}},
	{"stale_ack_after_takeover_fails_and_writes_nothing", func(e *env) {
		it := e.fullSetup()
		// Re-lock p with a short lock: ack the long turn, take a short one.
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token})
		e.enqueue("p", "m2")
		old := e.fetchOneLock("o:p", e.shortLock())
		cur := e.steal("o:p", e.shortLock())
		before := e.snap("p", "target", "child")
		err := e.s.AckOrchestration(e.ctx, e.fullAck("p", old.Token))
		wantErr(e.t, "stale ack", err, queue.ErrLockLost)
		wantSame(e.t, "a stale ack", before, e.snap("p", "target", "child"))
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: cur.Token})
	}},
	{"stale_renew_after_takeover_fails", func(e *env) {
		e.create("i1", "o:b", "start")
		old := e.fetchOneLock("o:b", e.shortLock())
		cur := e.steal("o:b", e.shortLock())
		wantErr(e.t, "stale renew", e.s.RenewOrchestrationLock(e.ctx, "i1", old.Token, longLock), queue.ErrLockLost)
		e.must("current renew", e.s.RenewOrchestrationLock(e.ctx, "i1", cur.Token, longLock))
	}},
	{"stale_abandon_after_takeover_fails_and_keeps_the_new_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		old := e.fetchOneLock("o:b", e.shortLock())
		cur := e.steal("o:b", e.shortLock())
		wantErr(e.t, "stale abandon", e.s.AbandonOrchestration(e.ctx, "i1", old.Token, 0, false), queue.ErrLockLost)
		if r := e.instance("i1"); !r.Locked || r.Attempts != 2 {
			e.t.Fatalf("after stale abandon: %+v", r)
		}
		e.fetchNone("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: cur.Token})
	}},
	{"renew_never_changes_attempts", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		for range 3 {
			e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		}
		if r := e.instance("i1"); r.Attempts != 1 || !r.Locked {
			e.t.Fatalf("after renewals: %+v", r)
		}
	}},
	{"renew_extends_the_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		first := time.Second // real time: long enough to renew before it expires
		if e.virtual {
			first = e.shortLock()
		}
		it := e.fetchOneLock("o:b", first)
		e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		e.pass(first + 100*time.Millisecond)
		e.fetchNone("o:b") // the renewed lock outlives the first deadline
		e.must("renew again", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
	}},
	{"renew_after_expiry_fails_even_without_takeover", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOneLock("o:b", e.shortLock())
		e.after(e.shortLock()+time.Millisecond, "lock expired (counted ready)", func() bool {
			d, _ := depth(e.depths().Orchestrations, "o:b")
			return d.Ready == 1
		})
		wantErr(e.t, "renew after expiry", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock), queue.ErrLockLost)
	}},
	{"ack_after_expiry_without_takeover_succeeds", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOneLock("o:b", e.shortLock())
		e.pass(e.shortLock() + 50*time.Millisecond)
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e"}})
		wantEqual(e.t, "history", []string{"e"}, e.history("i1", 1))
		e.fetchNone("o:b")
	}},
	{"abandon_after_expiry_without_takeover_succeeds", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOneLock("o:b", e.shortLock())
		e.pass(e.shortLock() + 50*time.Millisecond)
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		if got := e.fetchOne("o:b"); got.Attempts != 1 {
			e.t.Fatalf("attempts after abandon = %d, want 1", got.Attempts)
		}
	}},
	{"expired_lock_is_taken_by_exactly_one_fetcher", func(e *env) {
		e.create("i1", "o:b", "start")
		e.fetchOneLock("o:b", e.shortLock())
		e.pass(e.shortLock() + 50*time.Millisecond)
		var mu sync.Mutex
		var got []queue.OrchestrationItem
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1, LockTimeout: longLock})
				if err != nil {
					e.t.Errorf("fetch: %v", err)
					return
				}
				mu.Lock()
				got = append(got, res.Items...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		if len(got) != 1 || got[0].Attempts != 2 {
			e.t.Fatalf("after expiry, fetchers got %d items (%+v), want exactly one with 2 attempts", len(got), got)
		}
	}},
	{"work_lock_expires_and_is_taken_over", func(e *env) {
		e.startWork("a:x", "w")
		old := e.workOneLock(e.shortLock(), "a:x")
		cur := e.stealWork("a:x", e.shortLock())
		if cur.ID != old.ID || cur.Token == old.Token || cur.Attempts != 2 {
			e.t.Fatalf("stolen work = %+v, old %+v", cur, old)
		}
		wantErr(e.t, "stale work ack", e.s.AckWork(e.ctx, old.ID, old.Token, "done"), queue.ErrLockLost)
		wantErr(e.t, "stale work renew", e.s.RenewWork(e.ctx, old.ID, old.Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "stale work abandon", e.s.AbandonWork(e.ctx, old.ID, old.Token, 0, false), queue.ErrLockLost)
		e.workNone("a:x")
		e.must("current ack", e.s.AckWork(e.ctx, cur.ID, cur.Token, "done"))
		wantEqual(e.t, "completion delivered once", []string{"done", "x"}, e.turn("p", "x").Messages)
	}},
	{"work_renew_extends_without_counting", func(e *env) {
		e.startWork("a:x", "w")
		first := time.Second
		if e.virtual {
			first = e.shortLock()
		}
		w := e.workOneLock(first, "a:x")
		e.must("renew", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock))
		e.pass(first + 100*time.Millisecond)
		e.workNone("a:x")
		e.must("renew again", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock))
		e.must("abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, true))
		if again := e.workOne("a:x"); again.Attempts != 2 {
			e.t.Fatalf("attempts after renewals, abandon and refetch = %d, want 2", again.Attempts)
		}
	}},
	{"work_renew_after_expiry_fails", func(e *env) {
		e.startWork("a:x", "w")
		w := e.workOneLock(e.shortLock(), "a:x")
		e.after(e.shortLock()+time.Millisecond, "work lock expired (counted ready)", func() bool {
			d, _ := depth(e.depths().Activities, "a:x")
			return d.Ready == 1
		})
		wantErr(e.t, "renew after expiry", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock), queue.ErrLockLost)
	}},
	{"work_ack_after_expiry_without_takeover_succeeds", func(e *env) {
		e.startWork("a:x", "w")
		w := e.workOneLock(e.shortLock(), "a:x")
		e.pass(e.shortLock() + 50*time.Millisecond)
		e.must("late ack", e.s.AckWork(e.ctx, w.ID, w.Token, "done"))
		e.workNone("a:x")
		wantEqual(e.t, "completion", []string{"done", "x"}, e.turn("p", "x").Messages)
	}},
	{"abandon_with_delay_hides_the_instance", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, e.hide(), true))
		e.fetchNone("o:b")
		e.after(e.hide(), "delayed instance fetchable again", func() bool {
			items := e.fetchFrom("o:b")
			return len(items) == 1 && items[0].Attempts == 2
		})
	}},
}
