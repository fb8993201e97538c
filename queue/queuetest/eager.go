package queuetest

import (
	"slices"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// Eager dispatch: an orchestration ack may claim the work items it
// creates for its caller (AckOrchestrationClaim), and a work ack may lock
// the turn its completion readies (AckWorkClaim). A claim is a fetch in
// everything but the round trip: the same lock, the same redelivery after
// a crash, the same fencing of the old token, the same replay of a resent
// request.

// eagerOwner is the cache owner the eager cases ack and claim with.
const eagerOwner = "cache:w1"

// claim is a work claim on buckets for up to max items.
func (e *env) claim(lock time.Duration, max int, buckets ...string) queue.WorkClaim {
	return queue.WorkClaim{RequestID: e.reqID(), Buckets: buckets, Max: max, LockTimeout: lock, NodeID: "n1"}
}

// ackClaim runs a turn of Running instance "p" (started if needed) that
// schedules items, acked with claim and cache owner eagerOwner.
func (e *env) ackClaim(claim queue.WorkClaim, items ...queue.WorkItem) queue.AckOrchestrationResult {
	e.t.Helper()
	if _, err := e.s.Instance(e.ctx, "p"); err != nil {
		e.start("p", "o:p")
	}
	it := e.turn("p", "schedule")
	res, err := e.s.AckOrchestrationClaim(e.ctx, queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: 1,
		Status: queue.StatusRunning, CacheOwner: eagerOwner, Activities: items}, claim)
	e.must("AckOrchestrationClaim", err)
	if !res.Applied {
		e.t.Fatal("AckOrchestrationClaim: not applied")
	}
	return res
}

// turnClaim is a claim of p's next turn in o:p by eagerOwner.
func (e *env) turnClaim(lock time.Duration) queue.TurnClaim {
	return queue.TurnClaim{RequestID: e.reqID(), CacheOwner: eagerOwner, ReadyBucket: "o:p", LockTimeout: lock, NodeID: "n1"}
}

// eagerTurn schedules one item in a:x from "p" (acked with cache owner
// eagerOwner), fetches it and acks it with claim; it returns the claimed
// turn (nil if none).
func (e *env) eagerTurn(claim queue.TurnClaim) *queue.OrchestrationItem {
	e.t.Helper()
	e.ackClaim(queue.WorkClaim{}, queue.WorkItem{Bucket: "a:x", Body: "w"})
	w := e.workOne("a:x")
	it, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", claim)
	e.must("AckWorkClaim", err)
	return it
}

func workIDs(items []queue.FetchedWork) []string {
	out := make([]string, len(items))
	for i, w := range items {
		out[i] = w.ID + "/" + w.Token
	}
	return out
}

var eagerCases = []testCase{
	{"claimed_work_is_locked_like_a_fetch", func(e *env) {
		res := e.ackClaim(e.claim(longLock, 2, "a:x"),
			queue.WorkItem{Bucket: "a:x", Body: "w1"}, queue.WorkItem{Bucket: "a:x", Body: "w2"},
			queue.WorkItem{Bucket: "a:x", Body: "w3"}, queue.WorkItem{Bucket: "a:y", Body: "w4"})
		wantEqual(e.t, "claimed bodies", []string{"w1", "w2"}, workBodies(res.Work))
		for _, w := range res.Work {
			if w.Attempts != 1 || w.InstanceID != "p" || w.Bucket != "a:x" || w.Token == "" {
				e.t.Fatalf("claimed item = %+v", w)
			}
		}
		wantEqual(e.t, "unclaimed", []string{"w3"}, workBodies(e.work("a:x")))
		wantEqual(e.t, "other bucket", []string{"w4"}, workBodies(e.work("a:y")))
		e.must("ack claimed", e.s.AckWork(e.ctx, res.Work[0].ID, res.Work[0].Token, "done"))
		e.must("renew claimed", e.s.RenewWork(e.ctx, res.Work[1].ID, res.Work[1].Token, longLock))
		wantEqual(e.t, "completion", []string{"done", "x"}, e.turn("p", "x").Messages)
	}},
	{"claim_takes_the_oldest_ready_work_first", func(e *env) {
		// A claim is a fetch of the buckets where the ack added work: work
		// that waited there before goes first, the ack's own is left to
		// the next fetch.
		e.ackClaim(queue.WorkClaim{}, queue.WorkItem{Bucket: "a:x", Body: "w0"})
		res := e.ackClaim(e.claim(longLock, 1, "a:x"), queue.WorkItem{Bucket: "a:x", Body: "w1"})
		wantEqual(e.t, "claimed", []string{"w0"}, workBodies(res.Work))
		wantEqual(e.t, "left for fetches", []string{"w1"}, workBodies(e.work("a:x")))
	}},
	{"claimed_work_after_a_crash_is_redelivered_and_fenced", func(e *env) {
		res := e.ackClaim(e.claim(e.shortLock(), 1, "a:x"), queue.WorkItem{Bucket: "a:x", Body: "w"})
		if len(res.Work) != 1 {
			e.t.Fatalf("claimed %v, want one item", workBodies(res.Work))
		}
		old := res.Work[0]
		cur := e.stealWork("a:x", e.shortLock())
		if cur.ID != old.ID || cur.Token == old.Token || cur.Attempts != 2 {
			e.t.Fatalf("redelivered = %+v, claimed %+v", cur, old)
		}
		before := e.snap("p")
		wantErr(e.t, "stale ack", e.s.AckWork(e.ctx, old.ID, old.Token, "stale"), queue.ErrLockLost)
		wantErr(e.t, "stale renew", e.s.RenewWork(e.ctx, old.ID, old.Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "stale abandon", e.s.AbandonWork(e.ctx, old.ID, old.Token, 0, false), queue.ErrLockLost)
		wantSame(e.t, "refused stale calls", before, e.snap("p"))
		e.workNone("a:x")
		e.must("current ack", e.s.AckWork(e.ctx, cur.ID, cur.Token, "done"))
		wantEqual(e.t, "completion delivered once", []string{"done", "x"}, e.turn("p", "x").Messages)
	}},
	{"resent_claiming_ack_returns_the_same_work", func(e *env) {
		e.start("p", "o:p")
		it := e.turn("p", "schedule")
		ack := queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: 1, Status: queue.StatusRunning,
			Activities: []queue.WorkItem{{Bucket: "a:x", Body: "w1"}, {Bucket: "a:x", Body: "w2"}}}
		claim := e.claim(longLock, 2, "a:x")
		first, err := e.s.AckOrchestrationClaim(e.ctx, ack, claim)
		e.must("ack", err)
		again, err := e.s.AckOrchestrationClaim(e.ctx, ack, claim)
		e.must("resent ack", err)
		if !first.Applied || again.Applied {
			e.t.Fatalf("applied: first %v, resent %v; want true, false", first.Applied, again.Applied)
		}
		wantEqual(e.t, "resent claims", workIDs(first.Work), workIDs(again.Work))
		e.workNone("a:x")
		e.must("ack w1", e.s.AckWork(e.ctx, first.Work[0].ID, first.Work[0].Token, "done"))
		third, err := e.s.AckOrchestrationClaim(e.ctx, ack, claim)
		e.must("third ack", err)
		wantEqual(e.t, "claims still held", workIDs(first.Work[1:]), workIDs(third.Work))
	}},
	{"no_claim_for_unserved_bucket_zero_slots_or_session", func(e *env) {
		res := e.ackClaim(e.claim(longLock, 5, "a:other"), queue.WorkItem{Bucket: "a:x", Body: "w1"})
		if len(res.Work) != 0 {
			e.t.Fatalf("claimed %v from a bucket the caller does not serve", workBodies(res.Work))
		}
		res = e.ackClaim(e.claim(longLock, 0, "a:x"), queue.WorkItem{Bucket: "a:x", Body: "w2"})
		if len(res.Work) != 0 {
			e.t.Fatalf("claimed %v with no free slot", workBodies(res.Work))
		}
		res = e.ackClaim(e.claim(longLock, 5, "a:x", queue.NodeWorkBucket("w1")),
			queue.WorkItem{Bucket: "a:x", Body: "s1", Session: "s1"})
		if len(res.Work) != 0 {
			e.t.Fatalf("claimed session items %v", workBodies(res.Work))
		}
		wantEqual(e.t, "left for fetches", []string{"w1", "w2"}, workBodies(e.work("a:x")))
		w := e.sfetchOne(e.worker("w1"))
		if w.Body != "s1" {
			e.t.Fatalf("session fetch got %+v", w)
		}
		e.owner("s1", "w1")
	}},
	{"completion_locks_the_next_turn_for_the_cache_owner", func(e *env) {
		e.ackClaim(queue.WorkClaim{}, queue.WorkItem{Bucket: "a:x", Body: "w"})
		w := e.workOne("a:x")
		ps := e.subscribe(e.k.WakeOrchChannel())
		it, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", e.turnClaim(longLock))
		e.must("AckWorkClaim", err)
		if it == nil {
			e.t.Fatal("no turn claimed")
		}
		if it.InstanceID != "p" || it.Attempts != 1 || !it.HistoryOmitted || it.Token == "" ||
			it.HistoryLen != 1 || it.Instance.ExecutionID != 1 {
			e.t.Fatalf("claimed turn = %+v", it)
		}
		wantEqual(e.t, "batch", []string{"done"}, it.Messages)
		if got := drain(ps); slices.Contains(got, e.k.WakeOrchChannel()+"=o:p") {
			e.t.Fatalf("claimed turn announced: %v", got)
		}
		e.fetchNone("o:p")
		e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "p", it.Token, longLock))
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, NewEvents: []string{"e"}})
		wantEqual(e.t, "history", []string{"started", "e"}, e.history("p", 1))
	}},
	{"no_turn_claim_unless_owner_bucket_and_unlocked", func(e *env) {
		c := e.turnClaim(longLock)
		c.CacheOwner = "cache:other"
		if it := e.eagerTurn(c); it != nil {
			e.t.Fatalf("turn claimed by another cache owner: %+v", it)
		}
		c = e.turnClaim(longLock)
		c.ReadyBucket = "o:elsewhere"
		if it := e.eagerTurn(c); it != nil {
			e.t.Fatalf("turn claimed for another bucket: %+v", it)
		}
		// locked: a turn of p runs while its activity completes
		e.ackClaim(queue.WorkClaim{}, queue.WorkItem{Bucket: "a:x", Body: "w"})
		w := e.workOne("a:x")
		running := e.turn("p", "other")
		it, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "late", e.turnClaim(longLock))
		e.must("AckWorkClaim", err)
		if it != nil {
			e.t.Fatalf("turn claimed while p is locked: %+v", it)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: running.Token})
		wantEqual(e.t, "completion waits for a fetch", []string{"late"}, e.fetchOne("o:p").Messages)
	}},
	{"eager_turn_after_a_crash_is_redelivered_and_fenced", func(e *env) {
		old := e.eagerTurn(e.turnClaim(e.shortLock()))
		if old == nil {
			e.t.Fatal("no turn claimed")
		}
		cur := e.steal("o:p", e.shortLock())
		if cur.Token == old.Token || cur.Attempts != 2 {
			e.t.Fatalf("redelivered = %+v, claimed token %s", cur, old.Token)
		}
		wantEqual(e.t, "redelivered batch", []string{"done"}, cur.Messages)
		before := e.snap("p")
		err := e.s.AckOrchestration(e.ctx, queue.OrchestrationAck{InstanceID: "p", Token: old.Token, ExecutionID: 1,
			Status: queue.StatusRunning, NewEvents: []string{"stale"}})
		wantErr(e.t, "stale ack", err, queue.ErrLockLost)
		wantErr(e.t, "stale renew", e.s.RenewOrchestrationLock(e.ctx, "p", old.Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "stale abandon", e.s.AbandonOrchestration(e.ctx, "p", old.Token, 0, false), queue.ErrLockLost)
		wantSame(e.t, "refused stale calls", before, e.snap("p"))
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: cur.Token, NewEvents: []string{"e"}})
		wantEqual(e.t, "history", []string{"started", "e"}, e.history("p", 1))
	}},
	{"resent_claiming_work_ack_returns_the_same_turn", func(e *env) {
		e.ackClaim(queue.WorkClaim{}, queue.WorkItem{Bucket: "a:x", Body: "w"})
		w := e.workOne("a:x")
		c := e.turnClaim(longLock)
		first, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", c)
		e.must("ack", err)
		again, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", c)
		e.must("resent ack", err)
		if first == nil || again == nil || again.Token != first.Token || again.InstanceID != "p" || again.Attempts != 1 {
			e.t.Fatalf("claimed %+v, resent got %+v", first, again)
		}
		wantEqual(e.t, "same batch", first.Messages, again.Messages)
		e.fetchNone("o:p")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: first.Token})
		late, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", c)
		if late != nil || err != nil {
			e.t.Fatalf("resent ack after the claimed turn was acked: %+v, %v; want nothing", late, err)
		}
		wantErr(e.t, "resent ack without a claim", e.s.AckWork(e.ctx, w.ID, w.Token, "done"), queue.ErrWorkNotFound)
	}},
	{"eager_claims_of_a_dead_node_are_reclaimed", func(e *env) {
		e.start("p", "o:p")
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"a:x", "o:p"}, e.nodeTTL()))
		// n1 claims w1 with the ack of p's turn, and p's next turn with the
		// ack of w2 (run by an anonymous worker); locks far longer than n1 lives
		res := e.ackClaim(e.claim(longLock, 1, "a:x"), queue.WorkItem{Bucket: "a:x", Body: "w1"}, queue.WorkItem{Bucket: "a:y", Body: "w2"})
		if len(res.Work) != 1 {
			e.t.Fatalf("claimed %v", workBodies(res.Work))
		}
		w2 := e.workOne("a:y")
		turn, err := e.s.AckWorkClaim(e.ctx, w2.ID, w2.Token, "done", e.turnClaim(longLock))
		e.must("AckWorkClaim", err)
		if turn == nil {
			e.t.Fatal("no turn claimed")
		}
		var work []queue.FetchedWork
		e.after(e.nodeTTL()+time.Millisecond, "the dead node's eager claims taken over long before their deadline", func() bool {
			e.reclaimRound()
			work = e.work("a:x")
			return len(work) == 1
		})
		if work[0].ID != res.Work[0].ID || work[0].Attempts != 2 {
			e.t.Fatalf("reclaimed work = %+v, claimed %+v", work[0], res.Work[0])
		}
		cur := e.fetchOne("o:p")
		if cur.Attempts != 2 || cur.Token == turn.Token {
			e.t.Fatalf("reclaimed turn = %+v, claimed token %s", cur, turn.Token)
		}
		wantErr(e.t, "dead node's work ack", e.s.AckWork(e.ctx, res.Work[0].ID, res.Work[0].Token, "late"), queue.ErrLockLost)
		wantErr(e.t, "dead node's turn renew", e.s.RenewOrchestrationLock(e.ctx, "p", turn.Token, longLock), queue.ErrLockLost)
	}},
	{"consecutive_eager_turns_are_bounded", func(e *env) {
		e.start("p", "o:p")
		token := e.turn("p", "go").Token
		// step acks the turn holding token with one activity, runs it and
		// acks it with a turn claim: the claimed turn, or nil.
		step := func() *queue.OrchestrationItem {
			e.ack(queue.OrchestrationAck{InstanceID: "p", Token: token, CacheOwner: eagerOwner,
				Activities: []queue.WorkItem{{Bucket: "a:x", Body: "w"}}})
			w := e.workOne("a:x")
			it, err := e.s.AckWorkClaim(e.ctx, w.ID, w.Token, "done", e.turnClaim(longLock))
			e.must("AckWorkClaim", err)
			return it
		}
		for i := range queue.EagerTurnsMax {
			it := step()
			if it == nil {
				e.t.Fatalf("eager turn %d not claimed", i+1)
			}
			token = it.Token
		}
		if it := step(); it != nil {
			e.t.Fatalf("eager turn %d claimed, the bound is %d", queue.EagerTurnsMax+1, queue.EagerTurnsMax)
		}
		token = e.fetchOne("o:p").Token // through the shared ready set: resets the count
		if it := step(); it == nil {
			e.t.Fatal("no eager turn after a fetched one")
		}
	}},
}
