package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scheduleWork creates instance id, runs its first turn and schedules one
// work item per body in bucket; the instance then waits in "x:b".
func (e *env) scheduleWork(id, bucket string, bodies ...string) {
	e.t.Helper()
	e.create(id, "o:b", "start")
	it := e.fetchOne("o:b", longLock)
	var items []WorkItem
	for _, b := range bodies {
		items = append(items, WorkItem{Bucket: bucket, Body: b})
	}
	e.ack(OrchestrationAck{InstanceID: id, Token: it.Token, ReadyBucket: "x:b", Activities: items})
}

func (e *env) fetchWork(lock time.Duration, buckets ...string) FetchWorkResult {
	e.t.Helper()
	res, err := e.s.FetchWork(e.ctx, FetchWorkRequest{RequestID: fmt.Sprintf("w%d", reqSeq.Add(1)), Buckets: buckets, Max: 10, LockTimeout: lock})
	if err != nil {
		e.t.Fatalf("FetchWork: %v", err)
	}
	return res
}

func (e *env) fetchOneWork(lock time.Duration, bucket string) FetchedWork {
	e.t.Helper()
	res := e.fetchWork(lock, bucket)
	if len(res.Items) != 1 {
		e.t.Fatalf("FetchWork(%s): %d items, want 1", bucket, len(res.Items))
	}
	return res.Items[0]
}

func TestWorkLifecycle(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:SendEmail", "email-1")

		res := e.fetchWork(longLock, "a:SendEmail")
		if len(res.Items) != 1 {
			t.Fatalf("FetchWork: %d items, want 1", len(res.Items))
		}
		w := res.Items[0]
		if w.ID == "" || w.Token == "" || w.Bucket != "a:SendEmail" || w.Body != "email-1" || w.InstanceID != "i1" || w.Attempts != 1 {
			t.Errorf("work item = %+v", w)
		}
		if res.NextWake != 0 {
			t.Errorf("NextWake = %v, want 0 (nothing delayed; lock deadlines are not included)", res.NextWake)
		}
		if got := e.fetchWork(longLock, "a:SendEmail"); len(got.Items) != 0 {
			t.Fatalf("second FetchWork got %d items, want none", len(got.Items))
		}

		// The completion goes to the instance, which becomes fetchable.
		orch := e.subscribe(e.k.WakeOrchChannel())
		wantErr(t, "AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, "email-1-done"), nil)
		if m := receive(t, orch); m.Payload != "x:b" {
			t.Errorf("wake:orch payload = %q, want x:b", m.Payload)
		}
		if n, _ := e.rdb.XLen(e.ctx, e.k.WorkStreamKey("a:SendEmail")).Result(); e.exists(e.k.WorkItemKey(w.ID)) || n != 0 {
			t.Error("acked work item left keys behind")
		}
		it := e.fetchOne("x:b", longLock)
		wantEqual(t, "completion batch", []string{"email-1-done"}, it.Messages)

		wantErr(t, "retried AckWork", e.s.AckWork(e.ctx, w.ID, w.Token, "email-1-done"), ErrWorkNotFound)
		wantErr(t, "AckWork unknown", e.s.AckWork(e.ctx, "999", "t", ""), ErrWorkNotFound)
	})
}

func TestAckWorkWithoutCompletionOrToEndedInstance(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1", "w2")
		items := e.fetchWork(longLock, "a:x").Items
		if len(items) != 2 {
			t.Fatalf("got %d items, want 2", len(items))
		}
		// No completion: nothing delivered.
		wantErr(t, "AckWork", e.s.AckWork(e.ctx, items[0].ID, items[0].Token, ""), nil)
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("empty completion was delivered")
		}
		// End the instance; the second completion is dropped.
		e.enqueue("i1", "m")
		it := e.fetchOne("x:b", longLock)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, Status: StatusCompleted})
		wantErr(t, "AckWork to ended", e.s.AckWork(e.ctx, items[1].ID, items[1].Token, "late"), nil)
		if e.exists(e.k.InboxKey("i1")) || e.exists(e.k.WorkItemKey(items[1].ID)) {
			t.Error("completion to an ended instance was delivered or the item kept")
		}
	})
}

func TestWorkStaleTokens(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1")
		lock := e.shortLock()
		first := e.fetchOneWork(lock, "a:x")
		var second FetchedWork
		e.after(lock, "expired work lock is fetchable", func() bool {
			res := e.fetchWork(longLock, "a:x")
			if len(res.Items) == 1 {
				second = res.Items[0]
				return true
			}
			return false
		})
		if second.ID != first.ID || second.Token == first.Token || second.Attempts != 2 {
			t.Errorf("stolen work = %+v (first %+v), want same id, new token, 2 attempts", second, first)
		}
		wantErr(t, "stale AckWork", e.s.AckWork(e.ctx, first.ID, first.Token, "x"), ErrLockLost)
		wantErr(t, "stale RenewWork", e.s.RenewWork(e.ctx, first.ID, first.Token, time.Minute), ErrLockLost)
		wantErr(t, "stale AbandonWork", e.s.AbandonWork(e.ctx, first.ID, first.Token, 0, false), ErrLockLost)
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("stale ack delivered its completion")
		}
		wantErr(t, "AckWork", e.s.AckWork(e.ctx, second.ID, second.Token, "done"), nil)
		wantEqual(t, "inbox", []string{"done"}, e.lrange(e.k.InboxKey("i1")))
	})
}

func TestRenewWork(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1")
		lock := e.shortLock()
		w := e.fetchOneWork(lock, "a:x")
		for range 3 {
			wantErr(t, "RenewWork", e.s.RenewWork(e.ctx, w.ID, w.Token, 10*lock), nil)
		}
		start := e.serverNow()
		e.after(2*lock, "original lock would have expired", func() bool { return e.serverNow().Sub(start) >= 2*lock })
		if got := e.fetchWork(longLock, "a:x"); len(got.Items) != 0 {
			t.Fatalf("renewed work item was fetched again")
		}
		att, err := e.rdb.HGet(e.ctx, e.k.WorkItemKey(w.ID), "att").Result()
		wantErr(t, "HGET att", err, nil)
		if att != "1" {
			t.Errorf("attempts after renewals = %s, want 1", att)
		}
		wantErr(t, "RenewWork wrong token", e.s.RenewWork(e.ctx, w.ID, "nope", lock), ErrLockLost)
		wantErr(t, "RenewWork unknown", e.s.RenewWork(e.ctx, "999", w.Token, lock), ErrWorkNotFound)
		if err := e.s.RenewWork(e.ctx, w.ID, w.Token, 0); err == nil {
			t.Error("RenewWork with zero timeout succeeded")
		}
	})
}

func TestRenewExpiredWork(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1")
		lock := e.shortLock()
		w := e.fetchOneWork(lock, "a:x")
		start := e.serverNow()
		e.after(lock, "work lock expired", func() bool { return e.serverNow().Sub(start) >= lock })
		wantErr(t, "RenewWork after expiry", e.s.RenewWork(e.ctx, w.ID, w.Token, time.Minute), ErrLockLost)
		// Nobody took it: the ack still succeeds.
		wantErr(t, "AckWork after expiry", e.s.AckWork(e.ctx, w.ID, w.Token, "done"), nil)
	})
}

func TestAbandonWork(t *testing.T) {
	tests := []struct {
		name        string
		keepAttempt bool
		wantAtt     int
	}{
		{name: "give attempt back", keepAttempt: false, wantAtt: 1},
		{name: "keep attempt", keepAttempt: true, wantAtt: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.scheduleWork("i1", "a:x", "w1")
				w := e.fetchOneWork(longLock, "a:x")
				delay := 20 * time.Second
				if e.b.Real {
					delay = 500 * time.Millisecond
				}
				wantErr(t, "AbandonWork", e.s.AbandonWork(e.ctx, w.ID, w.Token, delay, tt.keepAttempt), nil)
				wantErr(t, "second AbandonWork", e.s.AbandonWork(e.ctx, w.ID, w.Token, delay, tt.keepAttempt), ErrLockLost)
				res := e.fetchWork(longLock, "a:x")
				if len(res.Items) != 0 {
					t.Fatal("abandoned work item visible before its delay")
				}
				if res.NextWake <= 0 || res.NextWake > delay {
					t.Errorf("NextWake = %v, want in (0, %v]", res.NextWake, delay)
				}
				var got FetchedWork
				e.after(delay, "work visible after the delay", func() bool {
					res := e.fetchWork(longLock, "a:x")
					if len(res.Items) == 1 {
						got = res.Items[0]
						return true
					}
					return false
				})
				if got.Attempts != tt.wantAtt || got.Body != "w1" {
					t.Errorf("refetched = %+v, want attempts %d", got, tt.wantAtt)
				}
				wantErr(t, "AbandonWork unknown", e.s.AbandonWork(e.ctx, "999", "t", 0, false), ErrWorkNotFound)
			})
		})
	}
}

func TestFetchWorkOnlyServedBuckets(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:B", "b1", "b2", "b3")
		if got := e.fetchWork(longLock, "a:A"); len(got.Items) != 0 || got.NextWake != 0 {
			t.Errorf("fetch from a:A = %+v, want nothing", got)
		}
		if n, _ := e.rdb.XLen(e.ctx, e.k.WorkStreamKey("a:B")).Result(); n != 3 {
			t.Errorf("a:B has %d items, want 3", n)
		}
		res, err := e.s.FetchWork(e.ctx, FetchWorkRequest{Buckets: []string{"a:A", "a:B", "a:B"}, Max: 2, LockTimeout: longLock})
		wantErr(t, "FetchWork", err, nil)
		if len(res.Items) != 2 || res.NextWake != time.Millisecond {
			t.Errorf("FetchWork Max 2 = %d items, NextWake %v; want 2 and 1ms (one more due)", len(res.Items), res.NextWake)
		}
	})
}

func TestFetchWorkIdempotentByRequestID(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1", "w2", "w3")
		req := FetchWorkRequest{RequestID: "same", Buckets: []string{"a:x"}, Max: 2, LockTimeout: longLock}
		first, err := e.s.FetchWork(e.ctx, req)
		wantErr(t, "FetchWork", err, nil)
		second, err := e.s.FetchWork(e.ctx, req)
		wantErr(t, "replayed FetchWork", err, nil)
		if len(first.Items) != 2 {
			t.Fatalf("first fetch: %d items, want 2", len(first.Items))
		}
		wantEqual(t, "replayed items", first.Items, second.Items)
		for _, w := range first.Items {
			if att, _ := e.rdb.HGet(e.ctx, e.k.WorkItemKey(w.ID), "att").Result(); att != "1" {
				t.Errorf("work %s attempts = %s after replay, want 1", w.ID, att)
			}
		}
		// The same request id on an orchestration fetch is a different
		// request: it locks what is ready instead of replaying.
		e.enqueue("i1", "m")
		if res := e.fetch(FetchOrchestrationsRequest{RequestID: "same", Buckets: []string{"x:b"}}); len(res.Items) != 1 {
			t.Errorf("orchestration fetch reusing a work request id returned %d items, want 1", len(res.Items))
		}
		if res := e.fetchWork(longLock, "a:x"); len(res.Items) != 1 {
			t.Errorf("other request got %d items, want 1", len(res.Items))
		}
	})
}

func TestFetchWorkValidates(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, req := range []FetchWorkRequest{
			{Buckets: []string{"b"}, Max: 0, LockTimeout: time.Second},
			{Buckets: []string{"b"}, Max: 1},
		} {
			if _, err := e.s.FetchWork(e.ctx, req); err == nil {
				t.Errorf("FetchWork(%+v) succeeded, want an error", req)
			}
		}
	})
}

// TestWorkFenceIsThePEL: a token that is still the item's is refused when
// the item's stream entry is pending for another consumer (here moved there
// behind the store's back), and nothing changes.
func TestWorkFenceIsThePEL(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1")
		res, err := e.s.FetchWork(e.ctx, FetchWorkRequest{Buckets: []string{"a:x"}, Max: 1, LockTimeout: longLock, NodeID: "n1"})
		wantErr(t, "FetchWork", err, nil)
		if len(res.Items) != 1 {
			t.Fatalf("fetched %d items", len(res.Items))
		}
		w := res.Items[0]
		key := e.k.WorkStreamKey("a:x")
		eid, err := e.rdb.HGet(e.ctx, e.k.WorkItemKey(w.ID), "eid").Result()
		wantErr(t, "HGET eid", err, nil)
		p, err := e.rdb.XPendingExt(e.ctx, &redis.XPendingExtArgs{Stream: key, Group: WorkGroup, Start: eid, End: eid, Count: 1}).Result()
		wantErr(t, "XPENDING", err, nil)
		if len(p) != 1 || p[0].Consumer != "n1" || p[0].RetryCount != 1 {
			t.Fatalf("PEL entry = %+v, want pending for n1, delivered once", p)
		}
		wantErr(t, "XCLAIM", e.rdb.XClaimJustID(e.ctx, &redis.XClaimArgs{Stream: key, Group: WorkGroup, Consumer: "intruder", Messages: []string{eid}}).Err(), nil)
		before, _ := e.rdb.HGetAll(e.ctx, e.k.WorkItemKey(w.ID)).Result()
		wantErr(t, "ack", e.s.AckWork(e.ctx, w.ID, w.Token, "done"), ErrLockLost)
		wantErr(t, "renew", e.s.RenewWork(e.ctx, w.ID, w.Token, longLock), ErrLockLost)
		wantErr(t, "abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false), ErrLockLost)
		after, _ := e.rdb.HGetAll(e.ctx, e.k.WorkItemKey(w.ID)).Result()
		wantEqual(t, "work item after refused calls", before, after)
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("a refused ack delivered its completion")
		}
	})
}

// TestUnlockedReadIsTakenBackAfterTheIdleTime: an entry a blocking read
// returned but no fetch locked (its reader crashed) is taken back once it
// has been idle for WQ_IDLE_MS (5 minutes; the test moves its delivery time
// back instead of waiting), counting the read as a delivery.
func TestUnlockedReadIsTakenBackAfterTheIdleTime(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1")
		read, err := e.s.ReadWork(e.ctx, ReadWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Count: 10, Block: time.Second})
		wantErr(t, "ReadWork", err, nil)
		if len(read) != 1 {
			t.Fatalf("read %+v", read)
		}
		if got := e.fetchWork(longLock, "a:x"); len(got.Items) != 0 {
			t.Fatalf("an entry pending for n1 was fetched by another: %+v", got.Items)
		}
		key := e.k.WorkStreamKey("a:x")
		idle := func(ms int64) {
			t.Helper()
			err := e.rdb.Do(e.ctx, "XCLAIM", key, WorkGroup, "n1", "0", read[0].EntryID,
				"TIME", e.serverNow().UnixMilli()-ms, "RETRYCOUNT", "1", "JUSTID").Err()
			wantErr(t, "XCLAIM TIME", err, nil)
		}
		idle(299_000)
		if got := e.fetchWork(longLock, "a:x"); len(got.Items) != 0 {
			t.Fatalf("taken back after 299 s of idle time: %+v", got.Items)
		}
		idle(300_001)
		got := e.fetchWork(longLock, "a:x")
		if len(got.Items) != 1 || got.Items[0].ID != read[0].WorkID || got.Items[0].Attempts != 2 {
			t.Fatalf("after 300 s of idle time: %+v, want %s at attempt 2", got.Items, read[0].WorkID)
		}
	})
}

// TestRecoverReadsLocksTheNodesUnlockedEntries: an entry a blocking read
// delivered to node n1 but that n1 never locked (the reply was lost, or the
// process stopped between read and lock) is locked at once by a fetch of n1
// with RecoverReads, at attempt 1 (it never ran), instead of after 5
// minutes of idle time; another node's unlocked entries and n1's live locks
// are left alone, and a fetch without RecoverReads does not look.
func TestRecoverReadsLocksTheNodesUnlockedEntries(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1", "w2", "w3")
		read := func(node string, n int) []ReadEntry {
			t.Helper()
			got, err := e.s.ReadWork(e.ctx, ReadWorkRequest{Buckets: []string{"a:x"}, NodeID: node, Count: n, Block: time.Second})
			wantErr(t, "ReadWork", err, nil)
			if len(got) != n {
				t.Fatalf("ReadWork(%s) read %+v, want %d", node, got, n)
			}
			return got
		}
		fetch := func(node string, recoverReads bool) []FetchedWork {
			t.Helper()
			res, err := e.s.FetchWork(e.ctx, FetchWorkRequest{RequestID: fmt.Sprintf("w%d", reqSeq.Add(1)),
				Buckets: []string{"a:x"}, Max: 1, LockTimeout: longLock, NodeID: node, RecoverReads: recoverReads})
			wantErr(t, "FetchWork", err, nil)
			return res.Items
		}
		// n1 locks w1 and runs it, then reads w2 but loses the reply; n2
		// reads w3 and keeps it.
		first := fetch("n1", false)
		if len(first) != 1 {
			t.Fatalf("first fetch: %+v", first)
		}
		lost := read("n1", 1)
		kept := read("n2", 1)
		if got := fetch("n1", false); len(got) != 0 {
			t.Fatalf("a fetch without RecoverReads took %+v", got)
		}
		got := fetch("n1", true)
		if len(got) != 1 || got[0].ID != lost[0].WorkID || got[0].Attempts != 1 {
			t.Fatalf("recovered %+v, want %s at attempt 1", got, lost[0].WorkID)
		}
		if got := fetch("n1", true); len(got) != 0 {
			t.Fatalf("a second recovery took %+v: the node's locks (%s, %s) are live", got, first[0].ID, lost[0].WorkID)
		}
		// The recovered lock is a lock like any other: acked with its token.
		wantErr(t, "AckWork", e.s.AckWork(e.ctx, got[0].ID, got[0].Token, "done"), nil)
		// n2's read is n2's to lock.
		res, err := e.s.FetchWork(e.ctx, FetchWorkRequest{RequestID: fmt.Sprintf("w%d", reqSeq.Add(1)),
			Buckets: []string{"a:x"}, Max: 10, LockTimeout: longLock, NodeID: "n2", Read: kept})
		wantErr(t, "FetchWork n2", err, nil)
		if len(res.Items) != 1 || res.Items[0].ID != kept[0].WorkID {
			t.Fatalf("n2 locked %+v, want %s", res.Items, kept[0].WorkID)
		}
	})
}

// TestDelayedDueHash: wqdue holds the earliest due time of each bucket's
// delayed set, so that a fetch reads one hash instead of every delayed set;
// a fetch that promotes moves it on, and drops it when the set is empty.
func TestDelayedDueHash(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.scheduleWork("i1", "a:x", "w1", "w2")
		got := e.fetchWork(longLock, "a:x").Items
		if len(got) != 2 {
			t.Fatalf("fetched %d", len(got))
		}
		d := 20 * time.Second
		if e.b.Real {
			d = 300 * time.Millisecond
		}
		due := func() (int64, bool) {
			v, err := e.rdb.HGet(e.ctx, e.k.workDueKey(), "a:x").Int64()
			return v, err == nil
		}
		start := e.serverNow().UnixMilli()
		wantErr(t, "abandon w2", e.s.AbandonWork(e.ctx, got[1].ID, got[1].Token, 2*d, true), nil)
		wantErr(t, "abandon w1", e.s.AbandonWork(e.ctx, got[0].ID, got[0].Token, d, true), nil)
		if v, ok := due(); !ok || v < start+d.Milliseconds() || v >= start+2*d.Milliseconds() {
			t.Fatalf("wqdue a:x = %d (%v), want the first due time, about %d", v, ok, start+d.Milliseconds())
		}
		var first []FetchedWork
		e.after(d, "w1 back", func() bool {
			first = e.fetchWork(longLock, "a:x").Items
			return len(first) == 1
		})
		if first[0].ID != got[0].ID {
			t.Fatalf("first back = %s, want %s", first[0].ID, got[0].ID)
		}
		if v, ok := due(); !ok || v < start+2*d.Milliseconds() {
			t.Fatalf("wqdue a:x after the first promotion = %d (%v), want w2's due time", v, ok)
		}
		e.after(d, "w2 back", func() bool { return len(e.fetchWork(longLock, "a:x").Items) == 1 })
		if v, ok := due(); ok {
			t.Fatalf("wqdue a:x = %d after the delayed set emptied, want no field", v)
		}
	})
}

// TestWorkReaderIsCutShort: a WorkReader's blocked read ends when its
// context does (CLIENT UNBLOCK), long before its Block, and reads nothing;
// the next Read works.
func TestWorkReaderIsCutShort(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// A real server unblocks the read (CLIENT UNBLOCK); miniredis has
		// no CLIENT ID, so the reader reads on its own client and closes
		// its socket.
		r := e.s.NewWorkReader()
		defer r.Close()
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() {
			got, err := r.Read(ctx, ReadWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Count: 1, Block: time.Hour})
			if err == nil && len(got) != 0 {
				err = fmt.Errorf("read %+v", got)
			}
			done <- err
		}()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				wantErr(t, "cut-short Read", err, nil)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Read did not return when its context ended")
		}
		e.scheduleWork("i1", "a:x", "w1")
		got, err := r.Read(e.ctx, ReadWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Count: 1, Block: time.Second})
		wantErr(t, "Read", err, nil)
		if len(got) != 1 {
			t.Fatalf("Read after the cut = %+v", got)
		}
	})
}
