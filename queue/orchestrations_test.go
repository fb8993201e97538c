package queue

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"
)

func TestFetchLocksInstance(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:billing", "start")
		e.enqueue("i1", "m2")
		res := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:billing"}, LockTimeout: 30 * time.Second})
		if len(res.Items) != 1 {
			t.Fatalf("got %d items, want 1", len(res.Items))
		}
		it := res.Items[0]
		if it.InstanceID != "i1" || it.Token == "" || it.Attempts != 1 || it.Instance.Attempts != 1 || !it.Instance.Locked {
			t.Errorf("item = %+v, want i1 locked with a token and 1 attempt", it)
		}
		wantEqual(t, "messages", []string{"start", "m2"}, it.Messages)
		if len(it.History) != 0 || it.HistoryLen != 0 || it.HistoryOmitted {
			t.Errorf("history = %v (len %d, omitted %v), want empty and sent", it.History, it.HistoryLen, it.HistoryOmitted)
		}
		// The score is the lock deadline, so NextWake is about the lock timeout.
		if res.NextWake <= 29*time.Second || res.NextWake > 30*time.Second {
			t.Errorf("NextWake = %v, want about 30s (the lock deadline)", res.NextWake)
		}
		ldl, err := e.rdb.HGet(e.ctx, e.k.InstanceKey("i1"), "ldl").Result()
		wantErr(t, "HGET ldl", err, nil)
		score, _ := e.zscore(e.k.ReadyKey("o:billing"), "i1")
		if ldl != strconv.FormatInt(int64(score), 10) {
			t.Errorf("ready score %v != lock deadline %s", score, ldl)
		}

		// A second fetch gets nothing, and a message to the locked instance
		// does not make it fetchable.
		e.fetchNone("o:billing")
		e.enqueue("i1", "m3")
		e.fetchNone("o:billing")
	})
}

func TestFetchValidates(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for _, req := range []FetchOrchestrationsRequest{
			{Buckets: []string{"b"}, Max: 0, LockTimeout: time.Second},
			{Buckets: []string{"b"}, Max: 1, LockTimeout: 0},
		} {
			if _, err := e.s.FetchOrchestrations(e.ctx, req); err == nil {
				t.Errorf("FetchOrchestrations(%+v) succeeded, want an error", req)
			}
		}
	})
}

func TestFetchBatchCappedByMaxMessages(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "m1")
		for i := 2; i <= 5; i++ {
			e.enqueue("i1", fmt.Sprintf("m%d", i))
		}
		it := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:b"}, MaxMessages: 2}).Items[0]
		wantEqual(t, "batch", []string{"m1", "m2"}, it.Messages)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e1"}})
		wantEqual(t, "inbox after ack", []string{"m3", "m4", "m5"}, e.lrange(e.k.InboxKey("i1")))
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:b"}, MaxMessages: 2}).Items[0]
		wantEqual(t, "second batch", []string{"m3", "m4"}, it.Messages)
	})
}

func TestFetchOldestFirstAcrossBuckets(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		// Create in order with distinct enqueue times.
		order := []struct{ id, bucket string }{{"a1", "A"}, {"b1", "B"}, {"a2", "A"}, {"c1", "C"}, {"b2", "B"}}
		for _, o := range order {
			e.create(o.id, o.bucket, "start")
			if e.b.Real {
				// Make scores distinct: wait for the server clock to tick.
				now := e.serverNow()
				e.after(0, "clock tick", func() bool { return e.serverNow().UnixMilli() > now.UnixMilli() })
			} else {
				e.advance(time.Millisecond)
			}
		}
		res := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"A", "B", "A"}, Max: 3})
		var got []string
		for _, it := range res.Items {
			got = append(got, it.InstanceID)
		}
		wantEqual(t, "fetched", []string{"a1", "b1", "a2"}, got)
		// b2 is still due in a served bucket: NextWake says "now".
		if res.NextWake != time.Millisecond {
			t.Errorf("NextWake = %v, want 1ms (b2 is due)", res.NextWake)
		}
		res = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"A", "B"}, Max: 3})
		if len(res.Items) != 1 || res.Items[0].InstanceID != "b2" {
			t.Errorf("second fetch = %+v, want only b2", res.Items)
		}
		if _, ok := e.zscore(e.k.ReadyKey("C"), "c1"); !ok {
			t.Error("c1 left its unserved bucket")
		}
	})
}

func TestFetchNoBucketsOrEmpty(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		res := e.fetch(FetchOrchestrationsRequest{})
		if len(res.Items) != 0 || res.NextWake != 0 {
			t.Errorf("fetch without buckets = %+v, want nothing", res)
		}
		res = e.fetchNone("o:empty")
		if res.NextWake != 0 {
			t.Errorf("NextWake on empty store = %v, want 0", res.NextWake)
		}
	})
}

func TestLockExpirySteal(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		lock := e.shortLock()
		first := e.fetchOne("o:b", lock)

		var second OrchestrationItem
		e.after(lock, "expired lock is fetchable", func() bool {
			items := e.fetchCount("o:b", longLock)
			if len(items) == 1 {
				second = items[0]
				return true
			}
			return false
		})
		if second.Token == first.Token || second.Attempts != 2 || second.Instance.Attempts != 2 {
			t.Errorf("stolen item: token %q (old %q), attempts %d/%d; want a new token and 2 attempts",
				second.Token, first.Token, second.Attempts, second.Instance.Attempts)
		}
		wantEqual(t, "stolen batch", []string{"start"}, second.Messages)

		// The old holder is fenced off everywhere and changes nothing.
		before := e.instance("i1")
		err := e.s.AckOrchestration(e.ctx, OrchestrationAck{InstanceID: "i1", Token: first.Token, ExecutionID: 1, Status: StatusRunning, NewEvents: []string{"stale"}})
		wantErr(t, "stale ack", err, ErrLockLost)
		wantErr(t, "stale renew", e.s.RenewOrchestrationLock(e.ctx, "i1", first.Token, time.Minute), ErrLockLost)
		wantErr(t, "stale abandon", e.s.AbandonOrchestration(e.ctx, "i1", first.Token, 0, false), ErrLockLost)
		wantEqual(t, "instance after stale calls", before, e.instance("i1"))
		if h := e.history("i1", 1); len(h) != 0 {
			t.Errorf("stale ack wrote history %v", h)
		}

		e.ack(OrchestrationAck{InstanceID: "i1", Token: second.Token, NewEvents: []string{"e1"}})
		wantEqual(t, "history", []string{"e1"}, e.history("i1", 1))
		if r := e.instance("i1"); r.Attempts != 0 || r.Locked {
			t.Errorf("after ack: attempts %d locked %v, want 0 and unlocked", r.Attempts, r.Locked)
		}
	})
}

// TestAckAfterExpiryWithoutSteal: an expired lock nobody took is still the
// current lock, so its ack succeeds.
func TestAckAfterExpiryWithoutSteal(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		lock := e.shortLock()
		it := e.fetchOne("o:b", lock)
		e.after(lock, "lock expired", func() bool {
			s, _ := e.zscore(e.k.ReadyKey("o:b"), "i1")
			return int64(s) <= e.serverNow().UnixMilli()
		})
		wantErr(t, "renew of expired lock", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, time.Minute), ErrLockLost)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e1"}})
		wantEqual(t, "history", []string{"e1"}, e.history("i1", 1))
	})
}

func TestRenewLock(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		lock := e.shortLock()
		it := e.fetchOne("o:b", lock)
		for range 3 {
			wantErr(t, "renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, 10*lock), nil)
		}
		if got := e.instance("i1").Attempts; got != 1 {
			t.Errorf("attempts after 3 renewals = %d, want 1", got)
		}
		// The renewed lock outlives the original timeout.
		e.advance(2 * lock)
		if e.b.Real {
			// Wait until the original deadline has certainly passed.
			deadline := e.serverNow().Add(2 * lock)
			e.after(2*lock, "original deadline passed", func() bool { return e.serverNow().After(deadline) })
		}
		e.fetchNone("o:b")
		score, _ := e.zscore(e.k.ReadyKey("o:b"), "i1")
		if d := time.Duration(int64(score)-e.serverNow().UnixMilli()) * time.Millisecond; d < 5*lock {
			t.Errorf("renewed deadline is %v away, want about %v", d, 8*lock)
		}
		wantErr(t, "renew with wrong token", e.s.RenewOrchestrationLock(e.ctx, "i1", "nope", time.Minute), ErrLockLost)
		wantErr(t, "renew unknown instance", e.s.RenewOrchestrationLock(e.ctx, "nope", it.Token, time.Minute), ErrInstanceNotFound)
		if got := e.instance("i1").Attempts; got != 1 {
			t.Errorf("attempts at the end = %d, want 1", got)
		}
	})
}

func TestAbandon(t *testing.T) {
	tests := []struct {
		name        string
		keepAttempt bool
		fetches     int // fetch+abandon cycles before the final fetch
		wantAtt     int // attempts reported by the final fetch
	}{
		{name: "give attempt back", keepAttempt: false, fetches: 2, wantAtt: 1},
		{name: "keep attempt", keepAttempt: true, fetches: 2, wantAtt: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("i1", "o:b", "start")
				for range tt.fetches {
					it := e.fetchOne("o:b", longLock)
					wantErr(t, "abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, tt.keepAttempt), nil)
					wantErr(t, "second abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, tt.keepAttempt), ErrLockLost)
				}
				it := e.fetchOne("o:b", longLock)
				if it.Attempts != tt.wantAtt {
					t.Errorf("attempts = %d, want %d", it.Attempts, tt.wantAtt)
				}
				wantEqual(t, "messages kept", []string{"start"}, it.Messages)
			})
		})
	}
}

func TestAbandonWithDelay(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		delay := 20 * time.Second
		if e.b.Real {
			delay = 500 * time.Millisecond
		}
		before := e.serverNow()
		wantErr(t, "abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, delay, true), nil)
		score, _ := e.zscore(e.k.ReadyKey("o:b"), "i1")
		if min := before.Add(delay).UnixMilli(); int64(score) < min {
			t.Errorf("score %v earlier than now+delay %d", score, min)
		}
		res := e.fetchNone("o:b")
		if res.NextWake <= 0 || res.NextWake > delay {
			t.Errorf("NextWake = %v, want in (0, %v]", res.NextWake, delay)
		}
		if r := e.instance("i1"); r.Locked {
			t.Error("instance still locked after abandon")
		}
		e.advance(delay - time.Millisecond)
		if !e.b.Real {
			e.fetchNone("o:b")
		}
		var got []OrchestrationItem
		e.after(time.Millisecond, "instance visible after the delay", func() bool {
			got = e.fetchCount("o:b", longLock)
			return len(got) == 1
		})
		if got[0].Attempts != 2 {
			t.Errorf("attempts = %d, want 2 (attempt kept)", got[0].Attempts)
		}
	})
}

func TestAckAppendsHistoryAndTrimsBatch(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ps := e.subscribe(e.k.WakeOrchChannel())
		e.create("i1", "o:billing", "start")
		receive(t, ps)
		it := e.fetchOne("o:billing", longLock)
		e.enqueue("i1", "during-1") // arrive during the turn: not in the batch
		receive(t, ps)
		e.enqueue("i1", "during-2")
		receive(t, ps)

		e.ack(OrchestrationAck{
			InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusRunning,
			NewEvents: []string{"e1", "e2"}, Name: "billing", Version: "1.0.2", EnginePin: "0.1.0",
			ReadyBucket: "x:billing@1.0.2@0.1.0", Output: "",
		})
		wantEqual(t, "history", []string{"e1", "e2"}, e.history("i1", 1))
		wantEqual(t, "inbox", []string{"during-1", "during-2"}, e.lrange(e.k.InboxKey("i1")))
		r := e.instance("i1")
		if r.Status != StatusRunning || r.ExecutionID != 1 || r.Version != "1.0.2" || r.EnginePin != "0.1.0" ||
			r.ReadyBucket != "x:billing@1.0.2@0.1.0" || r.Locked || r.Attempts != 0 {
			t.Errorf("instance after ack = %+v", r)
		}
		// Re-readied in its new bucket, now; gone from the old one.
		if _, ok := e.zscore(e.k.ReadyKey("o:billing"), "i1"); ok {
			t.Error("instance still in its old bucket")
		}
		if m := receive(t, ps); m.Payload != "x:billing@1.0.2@0.1.0" {
			t.Errorf("wake:orch payload = %q, want the new bucket", m.Payload)
		}
		it2 := e.fetchOne("x:billing@1.0.2@0.1.0", longLock)
		wantEqual(t, "second batch", []string{"during-1", "during-2"}, it2.Messages)
		wantEqual(t, "second history", []string{"e1", "e2"}, it2.History)
		if it2.HistoryLen != 2 || it2.Attempts != 1 {
			t.Errorf("HistoryLen %d attempts %d, want 2 and 1", it2.HistoryLen, it2.Attempts)
		}

		// Nothing left: the ack takes the instance out of the ready set.
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it2.Token, NewEvents: []string{"e3"}})
		if _, ok := e.zscore(e.k.ReadyKey("x:billing@1.0.2@0.1.0"), "i1"); ok {
			t.Error("instance with an empty inbox is still ready")
		}
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("inbox not empty")
		}
		wantEqual(t, "history", []string{"e1", "e2", "e3"}, e.history("i1", 1))
	})
}

func TestAckDuplicate(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		ack := OrchestrationAck{
			InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusRunning, NewEvents: []string{"e1"},
			Activities: []WorkItem{{Bucket: "a:x", Body: "w"}}, ReadyBucket: "x:b",
		}
		wantErr(t, "ack", e.s.AckOrchestration(e.ctx, ack), nil)
		after := e.instance("i1")
		wantErr(t, "retried ack", e.s.AckOrchestration(e.ctx, ack), nil)
		wantEqual(t, "instance after retried ack", after, e.instance("i1"))
		wantEqual(t, "history", []string{"e1"}, e.history("i1", 1))
		if n, _ := e.rdb.XLen(e.ctx, e.k.WorkStreamKey("a:x")).Result(); n != 1 {
			t.Errorf("work items after retried ack = %d, want 1", n)
		}
		// A token that never held the lock is still refused.
		ack.Token = "other"
		wantErr(t, "foreign ack", e.s.AckOrchestration(e.ctx, ack), ErrLockLost)
		ack.InstanceID = "nope"
		wantErr(t, "ack of unknown instance", e.s.AckOrchestration(e.ctx, ack), ErrInstanceNotFound)
	})
}

func TestAckValidates(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		good := OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusRunning}
		bad := map[string]func(a *OrchestrationAck){
			"no token":          func(a *OrchestrationAck) { a.Token = "" },
			"execution 0":       func(a *OrchestrationAck) { a.ExecutionID = 0 },
			"bad status":        func(a *OrchestrationAck) { a.Status = "Pending" },
			"work no bucket":    func(a *OrchestrationAck) { a.Activities = []WorkItem{{Body: "x"}} },
			"outbox no address": func(a *OrchestrationAck) { a.Outbox = []OutboundMessage{{Body: "x"}} },
		}
		for name, mutate := range bad {
			a := good
			mutate(&a)
			if err := e.s.AckOrchestration(e.ctx, a); err == nil {
				t.Errorf("%s: ack succeeded, want an error", name)
			}
		}
		e.ack(good)
		// Going back to an older execution is refused and changes nothing.
		it = func() OrchestrationItem { e.enqueue("i1", "m"); return e.fetchOne("o:b", longLock) }()
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 2})
		e.enqueue("i1", "m2")
		it = e.fetchOne("o:b", longLock)
		before := e.instance("i1")
		if err := e.s.AckOrchestration(e.ctx, OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusRunning}); err == nil {
			t.Error("ack of an older execution succeeded")
		}
		wantEqual(t, "instance after refused ack", before, e.instance("i1"))
	})
}

func TestHistoryOmittedIffCacheOwnerMatches(t *testing.T) {
	tests := []struct {
		name        string
		ackOwner    string
		fetchOwner  string
		wantOmitted bool
	}{
		{name: "same owner", ackOwner: "w1", fetchOwner: "w1", wantOmitted: true},
		{name: "other owner", ackOwner: "w1", fetchOwner: "w2", wantOmitted: false},
		{name: "fetch without owner", ackOwner: "w1", fetchOwner: "", wantOmitted: false},
		{name: "cache cleared", ackOwner: "", fetchOwner: "w1", wantOmitted: false},
		{name: "both empty", ackOwner: "", fetchOwner: "", wantOmitted: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("i1", "o:b", "start")
				it := e.fetchOne("o:b", longLock)
				e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: []string{"e1", "e2"}, ReadyBucket: "x:b", CacheOwner: tt.ackOwner})
				e.enqueue("i1", "m")
				got := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"x:b"}, CacheOwner: tt.fetchOwner}).Items[0]
				if got.HistoryOmitted != tt.wantOmitted || got.HistoryLen != 2 {
					t.Fatalf("HistoryOmitted %v HistoryLen %d, want %v and 2", got.HistoryOmitted, got.HistoryLen, tt.wantOmitted)
				}
				if tt.wantOmitted && got.History != nil {
					t.Errorf("History = %v, want nil when omitted", got.History)
				}
				if !tt.wantOmitted {
					wantEqual(t, "history", []string{"e1", "e2"}, got.History)
				}
			})
		})
	}
}

func TestContinueAsNew(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:billing", "start-1")
		it := e.fetchOne("o:billing", longLock)
		e.ack(OrchestrationAck{
			InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusRunning, Name: "billing", Version: "1.0.0",
			EnginePin: "0.1.0", NewEvents: []string{"x1-e1"}, ReadyBucket: "x:billing@1.0.0@0.1.0", CacheOwner: "w1",
		})
		e.enqueue("i1", "event-a")
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"x:billing@1.0.0@0.1.0"}, CacheOwner: "w1"}).Items[0]
		e.enqueue("i1", "event-b") // arrives during the turn: must survive continue-as-new

		// Execution 1 continues as new: its start message goes to the head
		// of the inbox and the instance moves back to the start bucket.
		e.ack(OrchestrationAck{
			InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: StatusContinuedAsNew, Output: "carry",
			NewEvents: []string{"x1-can"}, ReadyBucket: "o:billing", HeadMessages: []string{"start-2", "start-2b"},
		})
		r := e.instance("i1")
		if r.Status != StatusRunning || r.ExecutionID != 1 || r.ReadyBucket != "o:billing" || r.Output != "carry" {
			t.Errorf("instance after continue-as-new ack = %+v", r)
		}
		wantEqual(t, "inbox", []string{"start-2", "start-2b", "event-b"}, e.lrange(e.k.InboxKey("i1")))
		if _, ok := e.zscore(e.k.ReadyKey("x:billing@1.0.0@0.1.0"), "i1"); ok {
			t.Error("instance still in the old execution's bucket")
		}
		e.fetchNone("x:billing@1.0.0@0.1.0")

		// The next fetch comes from the start bucket; the cache was cleared.
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"o:billing"}, CacheOwner: "w1"}).Items[0]
		wantEqual(t, "new execution's batch", []string{"start-2", "start-2b", "event-b"}, it.Messages)
		if it.HistoryOmitted {
			t.Error("history omitted after continue-as-new cleared the cache owner")
		}
		wantEqual(t, "history of execution 1", []string{"x1-e1", "x1-can"}, it.History)

		e.ack(OrchestrationAck{
			InstanceID: "i1", Token: it.Token, ExecutionID: 2, Status: StatusRunning, Name: "billing", Version: "1.1.0",
			EnginePin: "0.2.0", NewEvents: []string{"x2-e1"}, ReadyBucket: "x:billing@1.1.0@0.2.0", CacheOwner: "w1",
		})
		r = e.instance("i1")
		if r.ExecutionID != 2 || r.Version != "1.1.0" || r.EnginePin != "0.2.0" || r.ReadyBucket != "x:billing@1.1.0@0.2.0" {
			t.Errorf("instance after first ack of execution 2 = %+v", r)
		}
		wantEqual(t, "history 1", []string{"x1-e1", "x1-can"}, e.history("i1", 1))
		wantEqual(t, "history 2", []string{"x2-e1"}, e.history("i1", 2))
		if e.exists(e.k.InboxKey("i1")) {
			t.Error("inbox not consumed")
		}

		// A new execution without an engine pin resets the old pin.
		e.enqueue("i1", "m")
		it = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"x:billing@1.1.0@0.2.0"}, CacheOwner: "w1"}).Items[0]
		if it.HistoryLen != 1 || !it.HistoryOmitted {
			t.Errorf("execution 2 fetch: HistoryLen %d omitted %v, want 1 and true", it.HistoryLen, it.HistoryOmitted)
		}
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ExecutionID: 3, Status: StatusRunning})
		if r := e.instance("i1"); r.EnginePin != "" || r.Version != "" || r.Name != "billing" {
			t.Errorf("after new execution without pin: %+v", r)
		}
	})
}

func TestTerminalAck(t *testing.T) {
	for _, status := range []string{StatusCompleted, StatusFailed} {
		t.Run(status, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				e.create("parent", "o:p", "start")
				e.create("i1", "o:b", "start")
				ended := e.subscribe(e.k.EndedChannel())
				it := e.fetchOne("o:b", longLock)
				e.enqueue("i1", "late") // arrives during the final turn

				e.ack(OrchestrationAck{
					InstanceID: "i1", Token: it.Token, ExecutionID: 1, Status: status, Output: "result",
					NewEvents: []string{"done"}, HeadMessages: []string{"ignored"},
					Outbox: []OutboundMessage{{InstanceID: "parent", Body: "child-done"}, {InstanceID: "missing", Body: "x"}},
				})
				if m := receive(t, ended); m.Payload != "i1" {
					t.Errorf("ended payload = %q, want i1", m.Payload)
				}
				r := e.instance("i1")
				if r.Status != status || r.Output != "result" || r.Locked {
					t.Errorf("instance = %+v", r)
				}
				if e.exists(e.k.InboxKey("i1")) {
					t.Error("ended instance kept its inbox")
				}
				if _, ok := e.zscore(e.k.ReadyKey("o:b"), "i1"); ok {
					t.Error("ended instance still ready")
				}
				wantEqual(t, "parent inbox", []string{"start", "child-done"}, e.lrange(e.k.InboxKey("parent")))
				if e.exists(e.k.InstanceKey("missing")) || e.exists(e.k.InboxKey("missing")) {
					t.Error("message to a missing instance created keys")
				}
				wantErr(t, "enqueue after end", e.s.Enqueue(e.ctx, "i1", "later"), ErrInstanceEnded)
				e.fetchNone("o:b")
			})
		})
	}
}

func TestOutboxToWaitingAndLockedInstances(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("sender", "o:s", "start")
		e.create("waiting", "o:w", "start")
		e.create("busy", "o:busy", "start")
		wit := e.fetchOne("o:w", longLock)
		e.ack(OrchestrationAck{InstanceID: "waiting", Token: wit.Token, ReadyBucket: "x:w"})
		busy := e.fetchOne("o:busy", longLock)
		busyScore, _ := e.zscore(e.k.ReadyKey("o:busy"), "busy")

		sit := e.fetchOne("o:s", longLock)
		e.ack(OrchestrationAck{InstanceID: "sender", Token: sit.Token, Outbox: []OutboundMessage{
			{InstanceID: "waiting", Body: "to-waiting"}, {InstanceID: "busy", Body: "to-busy"},
		}})
		wit = e.fetchOne("x:w", longLock)
		wantEqual(t, "waiting batch", []string{"to-waiting"}, wit.Messages)
		if s, _ := e.zscore(e.k.ReadyKey("o:busy"), "busy"); s != busyScore {
			t.Errorf("locked target's score changed from %v to %v", busyScore, s)
		}
		wantEqual(t, "busy inbox", []string{"start", "to-busy"}, e.lrange(e.k.InboxKey("busy")))
		// The busy instance's batch was only "start"; its ack re-readies it for "to-busy".
		e.ack(OrchestrationAck{InstanceID: "busy", Token: busy.Token})
		it := e.fetchOne("o:busy", longLock)
		wantEqual(t, "busy second batch", []string{"to-busy"}, it.Messages)
	})
}

func TestTimers(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		e.create("gone", "o:g", "start")
		it := e.fetchOne("o:b", longLock)
		base := e.serverNow()
		step := 10 * time.Second
		if e.b.Real {
			step = 300 * time.Millisecond
		}
		timers := []Timer{
			{DueAt: base.Add(step), Body: "t1"},
			{DueAt: base.Add(step), Body: "t1"}, // equal bodies stay distinct
			{DueAt: base.Add(step), Body: "t2"},
			{DueAt: base.Add(3 * step), Body: "t3"},
		}
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:b", Timers: timers})
		if n, _ := e.rdb.ZCard(e.ctx, e.k.timersKey()).Result(); n != 4 {
			t.Fatalf("timers = %d, want 4", n)
		}
		// A timer for an instance that ends before it fires is dropped.
		git := e.fetchOne("o:g", longLock)
		e.ack(OrchestrationAck{InstanceID: "gone", Token: git.Token, Timers: []Timer{{DueAt: base.Add(step), Body: "tg"}}})
		e.ack(func() OrchestrationAck {
			e.enqueue("gone", "m")
			g := e.fetchOne("o:g", longLock)
			return OrchestrationAck{InstanceID: "gone", Token: g.Token, Status: StatusCompleted}
		}())

		// Not due yet: nothing promoted, NextWake points at the first timer.
		res := e.fetch(FetchOrchestrationsRequest{Buckets: []string{"x:b"}})
		if len(res.Items) != 0 || e.exists(e.k.InboxKey("i1")) {
			t.Fatalf("timers promoted before they were due")
		}
		if res.NextWake <= 0 || res.NextWake > step {
			t.Errorf("NextWake = %v, want in (0, %v]", res.NextWake, step)
		}

		// Due: at most PromoteTimers per call.
		e.after(step, "timers due", func() bool { return !e.serverNow().Before(base.Add(step)) })
		res = e.fetch(FetchOrchestrationsRequest{Buckets: []string{"other"}, PromoteTimers: 2})
		if got := len(e.lrange(e.k.InboxKey("i1"))); got != 2 {
			t.Errorf("promoted %d timers in one call, want 2 (the bound)", got)
		}
		if res.NextWake != time.Millisecond {
			t.Errorf("NextWake with due timers left = %v, want 1ms", res.NextWake)
		}
		e.fetch(FetchOrchestrationsRequest{Buckets: []string{"other"}, PromoteTimers: -1}) // promotes none
		if got := len(e.lrange(e.k.InboxKey("i1"))); got != 2 {
			t.Errorf("PromoteTimers -1 promoted timers: inbox has %d messages, want 2", got)
		}
		e.fetch(FetchOrchestrationsRequest{Buckets: []string{"other"}, PromoteTimers: 2})
		if got := len(e.lrange(e.k.InboxKey("i1"))); got != 3 {
			t.Errorf("inbox after promotions = %d messages, want 3", got)
		}
		if e.exists(e.k.InboxKey("gone")) {
			t.Error("timer of an ended instance was delivered")
		}
		if n, _ := e.rdb.ZCard(e.ctx, e.k.timersKey()).Result(); n != 1 {
			t.Errorf("timers left = %d, want 1 (t3)", n)
		}
		got := e.fetchOne("x:b", longLock)
		wantEqual(t, "timer batch", []string{"t1", "t1", "t2"}, got.Messages)
		e.ack(OrchestrationAck{InstanceID: "i1", Token: got.Token})

		e.after(2*step, "t3 due", func() bool {
			items := e.fetchCount("x:b", longLock)
			return len(items) == 1 && len(items[0].Messages) == 1 && items[0].Messages[0] == "t3"
		})
	})
}

func TestFetchIdempotentByRequestID(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		for i := range 3 {
			e.create(fmt.Sprintf("i%d", i), "o:b", "start")
		}
		req := FetchOrchestrationsRequest{RequestID: "same", Buckets: []string{"o:b"}, Max: 2, LockTimeout: longLock}
		first, err := e.s.FetchOrchestrations(e.ctx, req)
		wantErr(t, "first fetch", err, nil)
		if len(first.Items) != 2 {
			t.Fatalf("first fetch: %d items, want 2", len(first.Items))
		}
		e.enqueue(first.Items[0].InstanceID, "during") // not part of the locked batch
		second, err := e.s.FetchOrchestrations(e.ctx, req)
		wantErr(t, "replayed fetch", err, nil)
		wantEqual(t, "replayed items", first.Items, second.Items)
		for _, it := range first.Items {
			if got := e.instance(it.InstanceID).Attempts; got != 1 {
				t.Errorf("%s attempts = %d after a replayed fetch, want 1", it.InstanceID, got)
			}
		}
		// The third instance is still there for another request.
		if items := e.fetchCount("o:b", longLock); len(items) != 1 {
			t.Errorf("other request got %d items, want 1", len(items))
		}

		// After one item is acked, a replay returns only what it still holds.
		e.ack(OrchestrationAck{InstanceID: first.Items[1].InstanceID, Token: first.Items[1].Token})
		third, err := e.s.FetchOrchestrations(e.ctx, req)
		wantErr(t, "replay after ack", err, nil)
		if len(third.Items) != 1 || third.Items[0].InstanceID != first.Items[0].InstanceID {
			t.Errorf("replay after ack = %+v, want only %s", third.Items, first.Items[0].InstanceID)
		}
	})
}

// TestFetchIgnoresUnservedBuckets: 10,000 instances waiting in bucket B do
// not affect a fetch that serves only bucket A.
func TestFetchIgnoresUnservedBuckets(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		const n = 10000
		// Seed with plain commands (running create.lua 10,000 times is slow
		// on miniredis under -race), writing what CreateInstance writes.
		e.create("b00000", "B", "start")
		tmpl, err := e.rdb.HGetAll(e.ctx, e.k.InstanceKey("b00000")).Result()
		wantErr(t, "HGETALL template", err, nil)
		now := float64(e.serverNow().UnixMilli())
		for start := 1; start < n; start += 1000 {
			pipe := e.rdb.Pipeline()
			for i := start; i < min(start+1000, n); i++ {
				id := fmt.Sprintf("b%05d", i)
				pipe.HSet(e.ctx, e.k.InstanceKey(id), tmpl)
				pipe.RPush(e.ctx, e.k.InboxKey(id), "start")
				pipe.ZAdd(e.ctx, e.k.ReadyKey("B"), redisZ(now-float64(n-i), id))
			}
			_, err := pipe.Exec(e.ctx)
			wantErr(t, "seed bucket B", err, nil)
		}
		snapshot := func() []string {
			t.Helper()
			z, err := e.rdb.ZRangeWithScores(e.ctx, e.k.ReadyKey("B"), 0, -1).Result()
			wantErr(t, "ZRANGE B", err, nil)
			var out []string
			for _, m := range z {
				out = append(out, fmt.Sprintf("%v=%d", m.Member, int64(m.Score)))
			}
			return out
		}
		before := snapshot()
		if len(before) != n {
			t.Fatalf("bucket B has %d entries, want %d", len(before), n)
		}
		ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
		defer cancel()
		res, err := e.s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{RequestID: "a1", Buckets: []string{"A"}, Max: 100, LockTimeout: longLock})
		wantErr(t, "fetch A", err, nil)
		if len(res.Items) != 0 || res.NextWake != 0 {
			t.Fatalf("fetch serving only A = %+v, want nothing", res)
		}
		e.create("a", "A", "start")
		res, err = e.s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{RequestID: "a2", Buckets: []string{"A"}, Max: 100, LockTimeout: longLock})
		wantErr(t, "fetch A", err, nil)
		if len(res.Items) != 1 || res.Items[0].InstanceID != "a" {
			t.Fatalf("fetch serving only A returned %d items, want only a", len(res.Items))
		}
		wantEqual(t, "bucket B", before, snapshot())
		for _, id := range []string{"b00000", "b05000", "b09999"} {
			if r := e.instance(id); r.Locked || r.Attempts != 0 {
				t.Errorf("%s touched: %+v", id, r)
			}
		}
		// B's items were real candidates all along: serving B finds the oldest.
		res, err = e.s.FetchOrchestrations(ctx, FetchOrchestrationsRequest{RequestID: "b1", Buckets: []string{"B"}, Max: 2, LockTimeout: longLock})
		wantErr(t, "fetch B", err, nil)
		if len(res.Items) != 2 || res.Items[0].InstanceID != "b00001" || res.Items[1].InstanceID != "b00002" {
			t.Errorf("fetch serving B = %d items, want b00001 and b00002", len(res.Items))
		}
	})
}

func TestFetchRepairsBrokenEntries(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ready := e.k.ReadyKey("o:b")
		now := float64(e.serverNow().UnixMilli())
		// An entry without an instance, and one for an instance with nothing to do.
		e.create("empty", "o:b", "start")
		wantErr(t, "DEL inbox", e.rdb.Del(e.ctx, e.k.InboxKey("empty")).Err(), nil)
		wantErr(t, "ZADD orphan", e.rdb.ZAdd(e.ctx, ready, redisZ(now-1, "orphan")).Err(), nil)
		// An entry in a bucket the instance does not wait in.
		e.create("moved", "o:real", "start")
		wantErr(t, "ZADD stale", e.rdb.ZAdd(e.ctx, ready, redisZ(now-1, "moved")).Err(), nil)

		e.fetchNone("o:b")
		if n, _ := e.rdb.ZCard(e.ctx, ready).Result(); n != 0 {
			t.Errorf("ready:o:b has %d entries after repair, want 0", n)
		}
		it := e.fetchOne("o:real", longLock)
		if it.InstanceID != "moved" {
			t.Errorf("got %s, want moved", it.InstanceID)
		}
	})
}

// TestAckLargeTurn appends more events than one RPUSH chunk of the script.
func TestAckLargeTurn(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b", longLock)
		var events, head []string
		for i := range 250 {
			events = append(events, fmt.Sprintf("e%03d", i))
		}
		for i := range 120 {
			head = append(head, fmt.Sprintf("h%03d", i))
		}
		e.ack(OrchestrationAck{InstanceID: "i1", Token: it.Token, NewEvents: events, HeadMessages: head})
		wantEqual(t, "history", events, e.history("i1", 1))
		wantEqual(t, "inbox", head, e.lrange(e.k.InboxKey("i1")))
	})
}
