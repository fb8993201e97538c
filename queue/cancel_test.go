package queue

import (
	"testing"
)

// scheduleRefs runs a turn of id (created in "o:b") that schedules one work
// item per ref in bucket, each with that ref; the instance then waits in
// "x:b". It returns the work ids by ref.
func (e *env) scheduleRefs(id, bucket string, refs ...ActivityRef) map[ActivityRef]string {
	e.t.Helper()
	it := e.startTurn(id)
	var items []WorkItem
	for _, r := range refs {
		items = append(items, WorkItem{Bucket: bucket, Body: "body-" + r.String(), ExecutionID: r.ExecutionID, EventID: r.EventID})
	}
	e.ack(OrchestrationAck{InstanceID: id, Token: it.Token, ReadyBucket: "x:b", Activities: items})
	wm := e.hgetall(e.k.WorkMapKey(id))
	out := make(map[ActivityRef]string, len(refs))
	for _, r := range refs {
		wid, ok := wm[r.String()]
		if !ok {
			e.t.Fatalf("wimap:%s has no field %s: %v", id, r, wm)
		}
		if got, _ := e.rdb.HGet(e.ctx, e.k.WorkItemKey(wid), "ref").Result(); got != r.String() {
			e.t.Fatalf("wi:%s ref = %q, want %q", wid, got, r.String())
		}
		out[r] = wid
	}
	return out
}

// cancelTurn runs a turn of id (waiting in "x:b") that cancels refs.
func (e *env) cancelTurn(id string, refs ...ActivityRef) {
	e.t.Helper()
	e.enqueue(id, "cancel")
	it := e.fetchOne("x:b", longLock)
	e.ack(OrchestrationAck{InstanceID: id, Token: it.Token, CancelActivities: refs})
}

// wantWorkGone fails unless work item wid is gone from everywhere.
func (e *env) wantWorkGone(wid, bucket string, ref ActivityRef, instanceID string) {
	e.t.Helper()
	if e.exists(e.k.WorkItemKey(wid)) {
		e.t.Errorf("wi:%s still exists", wid)
	}
	entries, _ := e.rdb.XRange(e.ctx, e.k.WorkStreamKey(bucket), "-", "+").Result()
	for _, m := range entries {
		if m.Values["w"] == wid {
			e.t.Errorf("work item %s still in %s (entry %s)", wid, bucket, m.ID)
		}
	}
	if n, _ := e.rdb.ZScore(e.ctx, e.k.WorkDelayKey(bucket), wid).Result(); n != 0 {
		e.t.Errorf("work item %s still delayed in %s", wid, bucket)
	}
	if ok, _ := e.rdb.HExists(e.ctx, e.k.WorkMapKey(instanceID), ref.String()).Result(); ok {
		e.t.Errorf("wimap:%s still has %s", instanceID, ref)
	}
}

func TestCancelQueuedActivity(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		r1, r2 := ActivityRef{ExecutionID: 1, EventID: 5}, ActivityRef{ExecutionID: 1, EventID: 6}
		wids := e.scheduleRefs("i1", "a:x", r1, r2)
		e.cancelTurn("i1", r1)
		e.wantWorkGone(wids[r1], "a:x", r1, "i1")
		// The other item is untouched and is the only one fetched.
		w := e.fetchOneWork(longLock, "a:x")
		if w.ID != wids[r2] {
			t.Errorf("fetched %s, want the uncancelled %s", w.ID, wids[r2])
		}
	})
}

func TestCancelLockedActivity(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		r := ActivityRef{ExecutionID: 1, EventID: 3}
		wids := e.scheduleRefs("i1", "a:x", r)
		w := e.fetchOneWork(longLock, "a:x")
		if w.ID != wids[r] {
			t.Fatalf("fetched %s, want %s", w.ID, wids[r])
		}
		e.cancelTurn("i1", r)
		e.wantWorkGone(w.ID, "a:x", r, "i1")
		// The worker running it learns on its next renew or ack.
		wantErr(t, "RenewWork of a cancelled item", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock), ErrWorkNotFound)
		wantErr(t, "AckWork of a cancelled item", e.s.AckWork(e.ctx, w.ID, w.Token, "done"), ErrWorkNotFound)
		wantErr(t, "AbandonWork of a cancelled item", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false), ErrWorkNotFound)
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("completion of a cancelled item was delivered")
		}
		if got := e.fetchWork(longLock, "a:x"); len(got.Items) != 0 {
			t.Errorf("fetch after cancel got %d items", len(got.Items))
		}
	})
}

// TestCancelNoop: cancelling a reference that is not there changes nothing.
func TestCancelNoop(t *testing.T) {
	tests := []struct {
		name   string
		cancel ActivityRef
	}{
		{name: "completed", cancel: ActivityRef{ExecutionID: 1, EventID: 1}},
		{name: "unknown event", cancel: ActivityRef{ExecutionID: 1, EventID: 99}},
		{name: "other execution", cancel: ActivityRef{ExecutionID: 2, EventID: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				done, live := ActivityRef{ExecutionID: 1, EventID: 1}, ActivityRef{ExecutionID: 1, EventID: 2}
				wids := e.scheduleRefs("i1", "a:x", done, live)
				res := e.fetchWork(longLock, "a:x")
				for _, w := range res.Items {
					if w.ID == wids[done] {
						wantErr(t, "AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, ""), nil)
					}
				}
				wm := e.hgetall(e.k.WorkMapKey("i1"))
				item := e.hgetall(e.k.WorkItemKey(wids[live]))
				e.cancelTurn("i1", tt.cancel)
				wantEqual(t, "wimap", wm, e.hgetall(e.k.WorkMapKey("i1")))
				wantEqual(t, "live item", item, e.hgetall(e.k.WorkItemKey(wids[live])))
			})
		})
	}
}

// TestScheduleAndCancelInOneAck: a turn that schedules and cancels the same
// activity leaves nothing behind.
func TestScheduleAndCancelInOneAck(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		it := e.startTurn("i1")
		r := ActivityRef{ExecutionID: 1, EventID: 7}
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:b",
			Activities:       []WorkItem{{Bucket: "a:x", Body: "w", ExecutionID: 1, EventID: 7}, {Bucket: "a:x", Body: "kept"}},
			CancelActivities: []ActivityRef{r}})
		if e.exists(e.k.WorkMapKey("i1")) {
			t.Errorf("wimap left behind: %v", e.hgetall(e.k.WorkMapKey("i1")))
		}
		w := e.fetchOneWork(longLock, "a:x")
		if w.Body != "kept" {
			t.Errorf("fetched %q, want only the uncancelled item", w.Body)
		}
		if n, _ := e.rdb.Keys(e.ctx, e.k.WorkItemKey("*")).Result(); len(n) != 1 {
			t.Errorf("work item hashes = %v, want only the kept one", n)
		}
	})
}

func TestAckWorkClearsWorkMap(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		r1, r2 := ActivityRef{ExecutionID: 1, EventID: 1}, ActivityRef{ExecutionID: 1, EventID: 2}
		wids := e.scheduleRefs("i1", "a:x", r1, r2)
		items := e.fetchWork(longLock, "a:x").Items
		if len(items) != 2 {
			t.Fatalf("fetched %d items, want 2", len(items))
		}
		for _, w := range items {
			if w.ID == wids[r1] {
				wantErr(t, "AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, "done"), nil)
			}
		}
		wantEqual(t, "wimap after AckWork", map[string]string{r2.String(): wids[r2]}, e.hgetall(e.k.WorkMapKey("i1")))

		// An item without a ref is not mapped, and its ack leaves the map alone.
		e.enqueue("i1", "m")
		it := e.fetchOne("x:b", longLock)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Activities: []WorkItem{{Bucket: "a:y", Body: "plain"}}})
		w := e.fetchOneWork(longLock, "a:y")
		if ok, _ := e.rdb.HExists(e.ctx, e.k.WorkItemKey(w.ID), "ref").Result(); ok {
			t.Error("item without ExecutionID got a ref")
		}
		wantErr(t, "AckWork plain", e.s.AckWork(e.ctx, w.ID, w.Token, ""), nil)
		wantEqual(t, "wimap after plain AckWork", map[string]string{r2.String(): wids[r2]}, e.hgetall(e.k.WorkMapKey("i1")))
	})
}

// TestAckWorkKeepsRemappedRef: when a later item took over a ref, acking the
// older item does not remove the newer one's mapping.
func TestAckWorkKeepsRemappedRef(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		r := ActivityRef{ExecutionID: 1, EventID: 1}
		old := e.scheduleRefs("i1", "a:x", r)[r]
		w := e.fetchOneWork(longLock, "a:x")
		e.enqueue("i1", "m")
		it := e.fetchOne("x:b", longLock)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Activities: []WorkItem{{Bucket: "a:x", Body: "again", ExecutionID: 1, EventID: 1}}})
		newer := e.hgetall(e.k.WorkMapKey("i1"))[r.String()]
		if newer == old || newer == "" {
			t.Fatalf("wimap ref = %q, want the new item (old %s)", newer, old)
		}
		wantErr(t, "AckWork old", e.s.AckWork(e.ctx, w.ID, w.Token, ""), nil)
		wantEqual(t, "wimap", map[string]string{r.String(): newer}, e.hgetall(e.k.WorkMapKey("i1")))
	})
}
