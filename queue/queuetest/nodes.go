package queuetest

import (
	"time"

	"github.com/duroworker/duroworker/queue"
)

// reclaimRound runs what every live worker runs on its heartbeat, as the
// live node "n2": reclaim the locks of dead nodes, then list unserved
// buckets (which forgets dead nodes).
func (e *env) reclaimRound() {
	e.t.Helper()
	e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
	_, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
	e.must("ReclaimDeadNodes", err)
	_, err = e.s.UnservedBuckets(e.ctx, 100)
	e.must("UnservedBuckets", err)
}

// nodeTTL is the liveness a node advertises in these cases; locks are far
// longer, so only the node's death can free them.
func (e *env) nodeTTL() time.Duration { return e.shortLock() }

var nodeCases = []testCase{
	{"dead_node_orchestration_lock_is_reclaimed_and_fenced", func(e *env) {
		e.create("i1", "o:b", "start")
		// n2 is live before n1 lapses, however slow the machine: its own
		// liveness began before n1's ended, so n1's silence is a death.
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, longLock))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, longLock))
		old := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1"}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %v", itemIDs(old))
		}
		e.reclaimRound() // n1 is still live: nothing is reclaimed
		e.fetchNone("o:b")
		// n1's last heartbeat: its liveness now runs out soon.
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, e.nodeTTL()))
		var got []queue.OrchestrationItem
		e.after(e.nodeTTL()+time.Millisecond, "the dead node's lock taken over long before its deadline", func() bool {
			e.reclaimRound()
			got = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n2"}).Items
			return len(got) == 1
		})
		cur := got[0]
		if cur.Token == old[0].Token || cur.Attempts != 2 {
			e.t.Fatalf("reclaimed item = %+v (old token %s)", cur, old[0].Token)
		}
		wantEqual(e.t, "reclaimed batch", []string{"start"}, cur.Messages)
		// The dead node's late calls are fenced.
		wantErr(e.t, "dead node's renew", e.s.RenewOrchestrationLock(e.ctx, "i1", old[0].Token, longLock), queue.ErrLockLost)
		before := e.snap("i1")
		wantErr(e.t, "dead node's ack", e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: old[0].Token, NewEvents: []string{"late"}}), queue.ErrLockLost)
		wantSame(e.t, "a dead node's ack", before, e.snap("i1"))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: cur.Token, NewEvents: []string{"e"}})
		wantEqual(e.t, "history", []string{"e"}, e.history("i1", 1))
	}},
	{"dead_node_work_lock_is_reclaimed_and_fenced", func(e *env) {
		e.startWork("a:x", "w")
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{"a:x"}, e.nodeTTL()))
		old := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1"}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %d items", len(old))
		}
		var got []queue.FetchedWork
		e.after(e.nodeTTL()+time.Millisecond, "the dead node's work lock taken over long before its deadline", func() bool {
			e.reclaimRound()
			got = e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n2"}).Items
			return len(got) == 1
		})
		cur := got[0]
		if cur.ID != old[0].ID || cur.Token == old[0].Token || cur.Attempts != 2 {
			e.t.Fatalf("reclaimed item = %+v (old %+v)", cur, old[0])
		}
		wantErr(e.t, "dead node's renew", e.s.RenewWork(e.ctx, old[0].ID, old[0].Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "dead node's ack", e.s.AckWork(e.ctx, old[0].ID, old[0].Token, "late"), queue.ErrLockLost)
		wantErr(e.t, "dead node's abandon", e.s.AbandonWork(e.ctx, old[0].ID, old[0].Token, 0, false), queue.ErrLockLost)
		e.must("current ack", e.s.AckWork(e.ctx, cur.ID, cur.Token, "done"))
	}},
	{"a_dead_node_listed_as_unserving_first_is_still_reclaimed", func(e *env) {
		// Another worker's UnservedBuckets runs between n1's death and the
		// next reclaim: n1 must still be known to that reclaim.
		e.create("i1", "o:b", "start")
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, e.nodeTTL()))
		old := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1"}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %v", itemIDs(old))
		}
		e.pass(e.nodeTTL() + time.Millisecond)
		wantEqual(e.t, "unserved once n1 is dead", []string{"o:b"}, e.unserved(100))
		n, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
		e.must("ReclaimDeadNodes", err)
		got := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n2"}).Items
		if n != 1 || len(got) != 1 || got[0].Attempts != 2 {
			e.t.Fatalf("after UnservedBuckets, reclaim took %d locks and n2 fetched %+v", n, got)
		}
	}},
	{"live_withdrawn_or_unknown_nodes_keep_their_locks", func(e *env) {
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.create("live", "o:b", "start")
		e.create("gone", "o:c", "start")
		e.create("anon", "o:d", "start")
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "live", []string{"o:b"}, longLock))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "gone", []string{"o:c"}, longLock))
		lock := longLock // only a reclaim could free these locks early
		for b, node := range map[string]string{"o:b": "live", "o:c": "gone", "o:d": ""} {
			if n := len(e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{b}, NodeID: node, LockTimeout: lock}).Items); n != 1 {
				e.t.Fatalf("fetch from %s: %d items", b, n)
			}
		}
		// A graceful shutdown withdraws its node before its work finishes:
		// that work keeps its lock.
		e.must("withdraw", e.s.WithdrawNode(e.ctx, "gone"))
		e.pass(e.nodeTTL() + time.Millisecond)
		e.reclaimRound()
		e.fetchNone("o:b", "o:c", "o:d")
		for _, id := range []string{"live", "gone", "anon"} {
			if r := e.instance(id); !r.Locked || r.Attempts != 1 {
				e.t.Fatalf("%s lost its lock: %+v", id, r)
			}
		}
	}},
	{"a_node_dead_before_the_reclaimer_started_is_reclaimed_a_ttl_later", func(e *env) {
		// n1 dies and lapses before n2 (its replacement) comes up, so n2
		// never saw n1 lapse. Right away n1 could be a node silenced by an
		// outage of Redis; once n2 has been live for n1's ttl without n1
		// advertising again, n1 is dead and its locks are taken over.
		e.create("i1", "o:b", "start")
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, e.nodeTTL()))
		old := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1"}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %v", itemIDs(old))
		}
		e.pass(e.nodeTTL() + time.Millisecond) // n1 lapses
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, longLock))
		n, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
		e.must("ReclaimDeadNodes", err)
		if r := e.instance("i1"); n != 0 || !r.Locked {
			e.t.Fatalf("n1's lock was reclaimed by a node live for less than n1's ttl (%d reclaimed): %+v", n, r)
		}
		var got []queue.OrchestrationItem
		e.after(e.nodeTTL()+time.Millisecond, "the lock of a node dead before the reclaimer started taken over", func() bool {
			e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, longLock))
			_, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
			e.must("ReclaimDeadNodes", err)
			got = e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n2"}).Items
			return len(got) == 1
		})
		if got[0].Token == old[0].Token || got[0].Attempts != 2 {
			e.t.Fatalf("reclaimed item = %+v (old token %s)", got[0], old[0].Token)
		}
		wantErr(e.t, "dead node's renew", e.s.RenewOrchestrationLock(e.ctx, "i1", old[0].Token, longLock), queue.ErrLockLost)
	}},
	{"a_node_back_from_an_outage_within_its_ttl_keeps_its_locks", func(e *env) {
		// Every node lapsed in an outage; n2 is back first, n1 a moment
		// later (within its ttl of n2's return): n1 is alive and keeps its
		// lock however long n2 stays live.
		e.create("i1", "o:b", "start")
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, e.nodeTTL()))
		if n := len(e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1", LockTimeout: 10 * e.nodeTTL()}).Items); n != 1 {
			e.t.Fatalf("n1 fetched %d items", n)
		}
		e.pass(e.nodeTTL() + time.Millisecond) // the outage
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, longLock))
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, longLock))
		e.pass(e.nodeTTL() + time.Millisecond)
		n, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
		e.must("ReclaimDeadNodes", err)
		if r := e.instance("i1"); n != 0 || !r.Locked || r.Attempts != 1 {
			e.t.Fatalf("the lock of n1, live again, was reclaimed (%d reclaimed): %+v", n, r)
		}
	}},
	{"an_earlier_process_locks_are_reclaimed_by_its_successor", func(e *env) {
		// The process of node n1 locked a turn and an activity and read a
		// second activity, then was killed; a new process starts under the
		// same node id before n1's liveness lapses. ReclaimEarlierLocks
		// frees all three at once, fenced, with the lock attempts counted
		// and the read not counted.
		e.create("i1", "o:b", "start")
		e.startWork("a:x", "w1", "w2")
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b", "a:x"}, longLock))
		oldTurn := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1"}).Items
		oldWork := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Max: 1}).Items
		if len(oldTurn) != 1 || len(oldWork) != 1 {
			e.t.Fatalf("n1 locked %d turns and %d work items", len(oldTurn), len(oldWork))
		}
		read, err := e.s.ReadWork(e.ctx, queue.ReadWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Count: 1, Block: time.Second})
		e.must("ReadWork", err)
		if len(read) != 1 {
			e.t.Fatalf("n1 read %d entries", len(read))
		}
		n, err := e.s.ReclaimEarlierLocks(e.ctx, "n1", 0)
		e.must("ReclaimEarlierLocks", err)
		if n != 3 {
			e.t.Fatalf("reclaimed %d, want 2 locks and 1 read", n)
		}
		turn := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1"}).Items
		if len(turn) != 1 || turn[0].Token == oldTurn[0].Token || turn[0].Attempts != 2 {
			e.t.Fatalf("turn after the reclaim = %+v (old token %s)", turn, oldTurn[0].Token)
		}
		work := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1"}).Items
		attempts := map[string]int{}
		for _, w := range work {
			attempts[w.ID] = w.Attempts
		}
		wantEqual(e.t, "attempts after the reclaim", map[string]int{oldWork[0].ID: 2, read[0].WorkID: 1}, attempts)
		wantErr(e.t, "the earlier process's turn ack", e.ackErr(queue.OrchestrationAck{InstanceID: "i1", Token: oldTurn[0].Token}), queue.ErrLockLost)
		wantErr(e.t, "the earlier process's work ack", e.s.AckWork(e.ctx, oldWork[0].ID, oldWork[0].Token, "late"), queue.ErrLockLost)
	}},
	{"no_reclaim_after_an_outage_that_lapsed_every_node", func(e *env) {
		// Redis was unreachable for longer than the nodes' liveness: every
		// node lapsed, the survivors come back, and none of them takes the
		// others' locks (they are alive, just silent during the outage).
		e.create("i1", "o:b", "start")
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"o:b"}, e.nodeTTL()))
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, e.nodeTTL()))
		lock := 4 * e.nodeTTL()
		if n := len(e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, NodeID: "n1", LockTimeout: lock}).Items); n != 1 {
			e.t.Fatalf("n1 fetched %d items", n)
		}
		e.pass(e.nodeTTL() + time.Millisecond) // the outage
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", []string{"o:b"}, longLock))
		n, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
		e.must("ReclaimDeadNodes", err)
		if r := e.instance("i1"); n != 0 || !r.Locked || r.Attempts != 1 {
			e.t.Fatalf("n1's lock was reclaimed after an outage (%d reclaimed): %+v", n, r)
		}
	}},
}
