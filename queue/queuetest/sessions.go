package queuetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duroworker/duroworker/queue"
)

// sworker is a session-aware work fetcher serving "a:x" and its node bucket.
type sworker struct {
	owner       string
	maxSessions int
	lease       time.Duration
	home        string // the ordinary bucket served, "a:x" unless set
}

func (e *env) worker(owner string) sworker {
	return sworker{owner: owner, maxSessions: 10, lease: longLock, home: "a:x"}
}

// sfetch fetches up to max items as w.
func (e *env) sfetch(w sworker, max int) []queue.FetchedWork {
	e.t.Helper()
	buckets := []string{w.home}
	if w.owner != "" {
		buckets = append(buckets, queue.NodeWorkBucket(w.owner))
	}
	return e.fetchWork(queue.FetchWorkRequest{Buckets: buckets, Max: max, SessionOwner: w.owner,
		SessionLease: w.lease, MaxSessions: w.maxSessions}).Items
}

func (e *env) sfetchOne(w sworker) queue.FetchedWork {
	e.t.Helper()
	got := e.sfetch(w, 10)
	if len(got) != 1 {
		e.t.Fatalf("%s fetched %v, want one item", w.owner, workBodies(got))
	}
	return got[0]
}

func (e *env) sfetchNone(w sworker) {
	e.t.Helper()
	if got := e.sfetch(w, 10); len(got) != 0 {
		e.t.Fatalf("%s fetched %v, want nothing", w.owner, workBodies(got))
	}
}

// sess schedules, from Running instance "p" (started if needed), one item
// per body on session sid with home bucket "a:x".
func (e *env) sess(sid string, bodies ...string) {
	e.t.Helper()
	if _, err := e.s.Instance(e.ctx, "p"); err != nil {
		e.start("p", "o:p")
	}
	var items []queue.WorkItem
	for _, b := range bodies {
		items = append(items, queue.WorkItem{Bucket: "a:x", Body: b, Session: sid})
	}
	e.schedule("p", items...)
}

func (e *env) session(sid string) (queue.SessionInfo, bool) {
	e.t.Helper()
	info, ok, err := e.s.Session(e.ctx, sid)
	e.must("Session "+sid, err)
	return info, ok
}

// owner requires session sid to be pinned to owner and returns its info.
func (e *env) owner(sid, owner string) queue.SessionInfo {
	e.t.Helper()
	info, ok := e.session(sid)
	if !ok || info.Owner != owner || info.SessionID != sid {
		e.t.Fatalf("session %s = %+v (pinned %v), want owner %s", sid, info, ok, owner)
	}
	return info
}

func (e *env) unpinned(sid string) {
	e.t.Helper()
	if info, ok := e.session(sid); ok {
		e.t.Fatalf("session %s still pinned: %+v", sid, info)
	}
}

// lapsedOwner pins session s1 to worker w1 (MaxSessions maxSessions) by its
// fetch of item "a" with a short lease, lets the lease lapse, and schedules
// item "b" of s1; it returns w1.
func (e *env) lapsedOwner(maxSessions int) sworker {
	e.t.Helper()
	e.sess("s1", "a")
	w1 := e.worker("w1")
	w1.lease = e.shortLock()
	w1.maxSessions = maxSessions
	e.sfetchOne(w1)
	e.pass(e.shortLock() + 50*time.Millisecond)
	e.sess("s1", "b")
	return w1
}

// takenOver is lapsedOwner followed by a fetch of "b" by worker w2, which
// claims s1: w1 (returned) holds nothing any more.
func (e *env) takenOver(maxSessions int) sworker {
	e.t.Helper()
	w1 := e.lapsedOwner(maxSessions)
	e.sfetchOne(e.worker("w2"))
	return w1
}

// sessionActivity pins session s1 to worker w1 by its fetch of item "a",
// runs act with that item 50 ms later and returns the session's info before
// and after act.
func (e *env) sessionActivity(act func(got queue.FetchedWork)) (before, after queue.SessionInfo) {
	e.t.Helper()
	e.sess("s1", "a")
	got := e.sfetchOne(e.worker("w1"))
	before = e.owner("s1", "w1")
	e.pass(50 * time.Millisecond)
	act(got)
	return before, e.owner("s1", "w1")
}

// pinnedWithWork pins session s1 to worker w1 (lease e.hide()) by its fetch
// and ack of item "a", then schedules items "b" and "c" of s1, which go to
// w1's node bucket; it returns w1.
func (e *env) pinnedWithWork() sworker {
	e.t.Helper()
	e.sess("s1", "a")
	w1 := e.worker("w1")
	w1.lease = e.hide()
	first := e.sfetchOne(w1)
	e.must("ack", e.s.AckWork(e.ctx, first.ID, first.Token, ""))
	e.sess("s1", "b", "c")
	return w1
}

func (e *env) owned(owner string) []string {
	e.t.Helper()
	ids, err := e.s.OwnedSessions(e.ctx, owner)
	e.must("OwnedSessions", err)
	return sorted(ids)
}

var sessionCases = []testCase{
	{"node_work_bucket_is_s_owner", func(e *env) {
		if got := queue.NodeWorkBucket("w1"); got != "s:w1" {
			e.t.Fatalf("NodeWorkBucket(w1) = %q", got)
		}
	}},
	{"first_fetch_claims_the_session", func(e *env) {
		e.sess("s1", "w-1")
		w := e.worker("w1")
		got := e.sfetchOne(w)
		if got.Body != "w-1" || got.Bucket != "a:x" || got.Attempts != 1 {
			e.t.Fatalf("fetched %+v", got)
		}
		info := e.owner("s1", "w1")
		if info.LeaseUntil.Sub(info.LastActivity) != w.lease {
			e.t.Fatalf("lease %v after last activity, want %v", info.LeaseUntil.Sub(info.LastActivity), w.lease)
		}
		wantEqual(e.t, "owned", []string{"s1"}, e.owned("w1"))
	}},
	{"items_without_a_session_need_no_owner", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "plain1"}, queue.WorkItem{Bucket: "a:x", Body: "plain2"})
		a := e.sfetch(sworker{home: "a:x"}, 1)
		b := e.sfetch(e.worker("w1"), 1)
		if len(a) != 1 || len(b) != 1 {
			e.t.Fatalf("plain items: %v / %v", workBodies(a), workBodies(b))
		}
		wantEqual(e.t, "owned", []string{}, e.owned("w1"))
	}},
	{"fetcher_without_owner_leaves_unclaimed_session_items", func(e *env) {
		e.sess("s1", "w-1")
		e.sfetchNone(sworker{home: "a:x"})
		e.unpinned("s1")
		if got := e.sfetchOne(e.worker("w1")); got.Attempts != 1 {
			e.t.Fatalf("attempts = %d: the skipped fetch counted", got.Attempts)
		}
	}},
	{"ack_routes_new_items_to_the_owner", func(e *env) {
		e.sess("s1", "first")
		w1, w2 := e.worker("w1"), e.worker("w2")
		e.sfetchOne(w1)
		e.sess("s1", "second")
		wantEqual(e.t, "work buckets", []string{"a:x", "s:w1"}, e.workBuckets())
		e.sfetchNone(w2)
		got := e.sfetchOne(w1)
		if got.Body != "second" || got.Bucket != "s:w1" {
			e.t.Fatalf("owner got %+v", got)
		}
	}},
	{"fetch_routes_queued_items_to_the_owner", func(e *env) {
		e.sess("s1", "first", "second")
		w1, w2 := e.worker("w1"), e.worker("w2")
		if got := e.sfetch(w1, 1); len(got) != 1 || got[0].Body != "first" {
			e.t.Fatalf("w1 got %v", workBodies(got))
		}
		e.sfetchNone(w2) // "second" is moved to w1's node bucket, not handed to w2
		got := e.sfetchOne(w1)
		if got.Body != "second" || got.Bucket != "s:w1" || got.Attempts != 1 {
			e.t.Fatalf("owner got %+v", got)
		}
	}},
	{"fetcher_without_owner_routes_owned_items_too", func(e *env) {
		e.sess("s1", "first", "second")
		w1 := e.worker("w1")
		e.sfetch(w1, 1)
		e.sfetchNone(sworker{home: "a:x"})
		if got := e.sfetchOne(w1); got.Bucket != "s:w1" {
			e.t.Fatalf("owner got %+v", got)
		}
	}},
	{"max_sessions_bounds_new_claims", func(e *env) {
		e.sess("s1", "one")
		e.tick()
		e.sess("s2", "two")
		w1 := e.worker("w1")
		w1.maxSessions = 1
		got := e.sfetch(w1, 10)
		if len(got) != 1 || got[0].Body != "one" {
			e.t.Fatalf("w1 at capacity 1 got %v", workBodies(got))
		}
		e.unpinned("s2")
		if got := e.sfetchOne(e.worker("w2")); got.Body != "two" {
			e.t.Fatalf("w2 got %+v", got)
		}
		e.owner("s2", "w2")
	}},
	{"owner_at_capacity_still_gets_its_own_sessions", func(e *env) {
		e.sess("s1", "one")
		w1 := e.worker("w1")
		w1.maxSessions = 1
		e.sfetchOne(w1)
		e.sess("s1", "again")
		e.sess("s2", "other")
		got := e.sfetchOne(w1)
		if got.Body != "again" {
			e.t.Fatalf("w1 got %+v", got)
		}
	}},
	{"max_sessions_zero_claims_nothing", func(e *env) {
		e.sess("s1", "one")
		w1 := e.worker("w1")
		w1.maxSessions = 0
		e.sfetchNone(w1)
		e.unpinned("s1")
	}},
	{"worker_at_capacity_reaches_work_behind_unclaimed_session_items", func(e *env) {
		// More unclaimed session items than the worker fetches at once wait
		// at the head of the bucket; the worker cannot claim any of them.
		e.sess("held", "mine")
		w1 := e.worker("w1")
		w1.maxSessions = 1
		e.sfetchOne(w1)
		e.tick()
		e.start("q", "o:q")
		var ahead []queue.WorkItem
		for i := range 25 {
			ahead = append(ahead, queue.WorkItem{Bucket: "a:x", Body: fmt.Sprintf("s%d", i), Session: fmt.Sprintf("s%d", i)})
		}
		e.schedule("q", ahead...)
		e.tick()
		e.schedule("q", queue.WorkItem{Bucket: "a:x", Body: "plain"})
		if got := e.sfetch(w1, 10); len(got) != 1 || got[0].Body != "plain" {
			e.t.Fatalf("w1 at capacity fetched %v, want the plain item behind the session items", workBodies(got))
		}
		e.unpinned("s0")
		// The session items were left alone: another worker claims one at
		// once, on its first attempt.
		if got := e.sfetch(e.worker("w2"), 1); len(got) != 1 || !strings.HasPrefix(got[0].Body, "s") || got[0].Attempts != 1 {
			e.t.Fatalf("w2 fetched %+v, want a session item on its first attempt", got)
		}
	}},
	{"a_long_run_of_unclaimed_session_items_is_handed_back", func(e *env) {
		// More unclaimed session items than one fetch looks at: a worker
		// without sessions still gets, within a few fetches, the work
		// queued behind them, and never claims or counts them.
		e.start("q", "o:q")
		var ahead []queue.WorkItem
		for i := range 300 {
			ahead = append(ahead, queue.WorkItem{Bucket: "a:x", Body: fmt.Sprintf("s%03d", i), Session: fmt.Sprintf("s%03d", i)})
		}
		e.schedule("q", ahead...)
		e.tick()
		e.schedule("q", queue.WorkItem{Bucket: "a:x", Body: "plain"})
		none := sworker{home: "a:x"}
		var got []queue.FetchedWork
		for range 10 {
			if got = e.sfetch(none, 10); len(got) > 0 {
				break
			}
		}
		if len(got) != 1 || got[0].Body != "plain" {
			e.t.Fatalf("worker without sessions fetched %v within 10 fetches, want the plain item", workBodies(got))
		}
		e.unpinned("s000")
		// Handed back, not lost: a worker with room claims every one of
		// them once they are visible again, each on its first attempt.
		w1 := e.worker("w1")
		w1.maxSessions = len(ahead)
		fetched := map[string]bool{}
		e.after(2*time.Second, "every session item is fetched again", func() bool {
			for got := e.sfetch(w1, 100); len(got) > 0; got = e.sfetch(w1, 100) {
				for _, it := range got {
					if it.Attempts != 1 {
						e.t.Fatalf("w1 fetched %+v, want its first attempt", it)
					}
					fetched[it.Body] = true
				}
			}
			return len(fetched) == len(ahead)
		})
	}},
	{"every_item_of_a_session_goes_to_one_owner", func(e *env) {
		e.sess("s1", "i0", "i1", "i2", "i3", "i4")
		workers := []sworker{e.worker("w1"), e.worker("w2"), e.worker("w3")}
		byOwner := map[string][]string{}
		for round := 0; round < 10; round++ {
			for _, w := range workers {
				for _, it := range e.sfetch(w, 1) {
					byOwner[w.owner] = append(byOwner[w.owner], it.Body)
				}
			}
		}
		if len(byOwner) != 1 || len(byOwner["w1"]) != 5 {
			e.t.Fatalf("items by owner = %v, want all five with w1", byOwner)
		}
	}},
	{"different_sessions_may_have_different_owners", func(e *env) {
		e.sess("s1", "a")
		e.tick()
		e.sess("s2", "b")
		w1, w2 := e.worker("w1"), e.worker("w2")
		w1.maxSessions = 1
		e.sfetch(w1, 10)
		e.sfetch(w2, 10)
		e.owner("s1", "w1")
		e.owner("s2", "w2")
		e.sess("s1", "a2")
		e.sess("s2", "b2")
		if got := e.sfetchOne(w1); got.Body != "a2" {
			e.t.Fatalf("w1 got %+v", got)
		}
		if got := e.sfetchOne(w2); got.Body != "b2" {
			e.t.Fatalf("w2 got %+v", got)
		}
	}},
	{"sessions_are_shared_across_instances", func(e *env) {
		e.sess("s1", "from-p")
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		e.start("q", "o:q")
		e.schedule("q", queue.WorkItem{Bucket: "a:x", Body: "from-q", Session: "s1"})
		e.sfetchNone(e.worker("w2"))
		if got := e.sfetchOne(w1); got.Body != "from-q" || got.InstanceID != "q" {
			e.t.Fatalf("w1 got %+v", got)
		}
	}},
	{"session_survives_a_new_execution", func(e *env) {
		e.sess("s1", "exec1")
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		it := e.turn("p", "continue")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: 1, Status: queue.StatusContinuedAsNew, HeadMessages: []string{"start2"}})
		it = e.fetchOne("o:p")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: 2,
			Activities: []queue.WorkItem{{Bucket: "a:x", Body: "exec2", Session: "s1"}}})
		if got := e.sfetchOne(w1); got.Body != "exec2" || got.Bucket != "s:w1" {
			e.t.Fatalf("w1 got %+v", got)
		}
	}},
	{"fetching_a_session_item_extends_the_lease", func(e *env) {
		e.sess("s1", "a", "b")
		w1 := e.worker("w1")
		e.sfetch(w1, 1)
		before := e.owner("s1", "w1")
		e.pass(50 * time.Millisecond)
		e.sfetchOne(w1)
		after := e.owner("s1", "w1")
		if !after.LastActivity.After(before.LastActivity) || after.LeaseUntil.Sub(after.LastActivity) != w1.lease {
			e.t.Fatalf("session before %+v, after %+v", before, after)
		}
	}},
	{"ack_work_records_session_activity", func(e *env) {
		before, after := e.sessionActivity(func(got queue.FetchedWork) {
			e.must("AckWork", e.s.AckWork(e.ctx, got.ID, got.Token, "done"))
		})
		if !after.LastActivity.After(before.LastActivity) || !after.LeaseUntil.Equal(before.LeaseUntil) {
			e.t.Fatalf("session before %+v, after %+v", before, after)
		}
	}},
	{"renew_work_records_session_activity", func(e *env) {
		before, after := e.sessionActivity(func(got queue.FetchedWork) {
			e.must("RenewWork", e.s.RenewWork(e.ctx, got.ID, got.Token, longLock))
		})
		if !after.LastActivity.After(before.LastActivity) {
			e.t.Fatalf("session before %+v, after %+v", before, after)
		}
	}},
	{"routing_ack_records_session_activity", func(e *env) {
		before, after := e.sessionActivity(func(queue.FetchedWork) { e.sess("s1", "b") })
		if !after.LastActivity.After(before.LastActivity) {
			e.t.Fatalf("session before %+v, after %+v", before, after)
		}
	}},
	{"renew_sessions_extends_active_leases", func(e *env) {
		e.sess("s1", "a")
		e.sess("s2", "b")
		w1 := e.worker("w1")
		e.sfetch(w1, 10)
		renewed, unpinned, err := e.s.RenewSessions(e.ctx, "w1", 2*longLock, time.Hour)
		e.must("RenewSessions", err)
		if renewed != 2 || unpinned != 0 {
			e.t.Fatalf("RenewSessions = %d renewed %d unpinned, want 2, 0", renewed, unpinned)
		}
		if info := e.owner("s1", "w1"); info.LeaseUntil.Sub(info.LastActivity) < 2*longLock {
			e.t.Fatalf("lease not extended: %+v", info)
		}
	}},
	{"renew_sessions_unpins_idle_sessions", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		got := e.sfetchOne(w1)
		e.must("AckWork", e.s.AckWork(e.ctx, got.ID, got.Token, ""))
		idle := e.shortLock()
		e.pass(idle + 50*time.Millisecond)
		renewed, unpinned, err := e.s.RenewSessions(e.ctx, "w1", longLock, idle)
		e.must("RenewSessions", err)
		if renewed != 0 || unpinned != 1 {
			e.t.Fatalf("RenewSessions = %d renewed %d unpinned, want 0, 1", renewed, unpinned)
		}
		e.unpinned("s1")
		wantEqual(e.t, "owned", []string{}, e.owned("w1"))
		e.sess("s1", "b") // no owner now: waits in its home bucket
		if got := e.sfetchOne(e.worker("w2")); got.Body != "b" || got.Bucket != "a:x" {
			e.t.Fatalf("w2 got %+v", got)
		}
		e.owner("s1", "w2")
	}},
	{"renew_sessions_of_an_unknown_owner_does_nothing", func(e *env) {
		renewed, unpinned, err := e.s.RenewSessions(e.ctx, "nobody", longLock, time.Hour)
		e.must("RenewSessions", err)
		if renewed != 0 || unpinned != 0 {
			e.t.Fatalf("RenewSessions = %d, %d", renewed, unpinned)
		}
	}},
	{"lapsed_lease_lets_another_owner_claim", func(e *env) {
		e.lapsedOwner(10) // the owner lapsed: the item stays home
		w2 := e.worker("w2")
		got := e.sfetchOne(w2)
		if got.Body != "b" || got.Bucket != "a:x" {
			e.t.Fatalf("w2 got %+v", got)
		}
		e.owner("s1", "w2")
	}},
	{"renew_sessions_forgets_sessions_taken_over", func(e *env) {
		e.takenOver(10)
		renewed, unpinned, err := e.s.RenewSessions(e.ctx, "w1", longLock, time.Hour)
		e.must("RenewSessions", err)
		if renewed != 0 || unpinned != 0 {
			e.t.Fatalf("RenewSessions(w1) = %d, %d, want 0, 0", renewed, unpinned)
		}
		wantEqual(e.t, "owned by w1", []string{}, e.owned("w1"))
		e.owner("s1", "w2")
	}},
	{"owned_sessions_excludes_sessions_taken_over", func(e *env) {
		e.takenOver(10)
		wantEqual(e.t, "owned by w2", []string{"s1"}, e.owned("w2"))
		if got := e.owned("w1"); len(got) != 0 {
			e.t.Fatalf("OwnedSessions(w1) = %v after w2 took s1 over (w1's lease lapsed), want none", got)
		}
	}},
	{"capacity_counts_only_sessions_still_held", func(e *env) {
		w1 := e.takenOver(1) // w2 now holds s1; w1 holds nothing
		e.sess("s2", "c")
		got := e.sfetch(w1, 10)
		if len(got) != 1 {
			e.t.Fatalf("a worker with MaxSessions 1 whose only session was taken over could not claim a new one (fetched %v)", workBodies(got))
		}
		e.owner("s2", "w1")
	}},
	{"release_sessions_moves_waiting_work_home", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		e.sess("s1", "b", "c")
		n, err := e.s.ReleaseSessions(e.ctx, "w1")
		e.must("ReleaseSessions", err)
		if n != 2 {
			e.t.Fatalf("ReleaseSessions moved %d, want 2", n)
		}
		e.unpinned("s1")
		wantEqual(e.t, "owned", []string{}, e.owned("w1"))
		got := e.sfetch(e.worker("w2"), 10)
		if !slices.Equal(workBodies(got), []string{"b", "c"}) || got[0].Bucket != "a:x" {
			e.t.Fatalf("w2 got %+v", got)
		}
		e.owner("s1", "w2")
	}},
	{"release_sessions_keeps_locks_of_moved_items", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		first := e.sfetchOne(w1)
		e.sess("s1", "b")
		held := e.sfetchOne(w1)
		n, err := e.s.ReleaseSessions(e.ctx, "w1")
		e.must("ReleaseSessions", err)
		// A locked item stays in s:w1 (its stream entry is pending there);
		// its abandon goes home, an expired lock is moved by a reclaim.
		if n != 0 {
			e.t.Fatalf("ReleaseSessions moved %d, want 0 (the item in s:w1 is locked)", n)
		}
		e.sfetchNone(e.worker("w2")) // both items are still locked
		e.must("ack moved item", e.s.AckWork(e.ctx, held.ID, held.Token, ""))
		e.must("ack first item", e.s.AckWork(e.ctx, first.ID, first.Token, ""))
		e.sfetchNone(e.worker("w2"))
		e.sfetchNone(w1)
	}},
	{"release_sessions_of_an_unknown_owner_moves_nothing", func(e *env) {
		n, err := e.s.ReleaseSessions(e.ctx, "nobody")
		e.must("ReleaseSessions", err)
		if n != 0 {
			e.t.Fatalf("moved %d", n)
		}
	}},
	{"reclaim_waits_for_the_lease", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1") // never advertised: not a live node
		e.sfetchOne(w1)
		e.sess("s1", "b")
		n, err := e.s.ReclaimSessions(e.ctx)
		e.must("ReclaimSessions", err)
		if n != 0 {
			e.t.Fatalf("ReclaimSessions moved %d while the lease is live", n)
		}
		e.owner("s1", "w1")
		e.sfetchNone(e.worker("w2"))
	}},
	{"reclaim_waits_for_a_live_node", func(e *env) {
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "w1", []string{"a:x", "s:w1"}, longLock))
		e.sess("s1", "a")
		w1 := e.worker("w1")
		w1.lease = e.hide()
		e.sfetchOne(w1)
		e.sess("s1", "b")
		e.pass(e.hide() + 50*time.Millisecond)
		n, err := e.s.ReclaimSessions(e.ctx)
		e.must("ReclaimSessions", err)
		if n != 0 {
			e.t.Fatalf("ReclaimSessions moved %d from a live node", n)
		}
		if got := e.sfetchOne(w1); got.Body != "b" {
			e.t.Fatalf("w1 got %+v", got)
		}
	}},
	{"reclaim_moves_work_after_node_and_lease_lapse", func(e *env) {
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "w1", []string{"a:x", "s:w1"}, e.hide()))
		e.pinnedWithWork()
		e.pass(e.hide() + 50*time.Millisecond)
		n, err := e.s.ReclaimSessions(e.ctx)
		e.must("ReclaimSessions", err)
		if n != 2 {
			e.t.Fatalf("ReclaimSessions moved %d, want 2", n)
		}
		e.unpinned("s1")
		got := e.sfetch(e.worker("w2"), 10)
		if !slices.Equal(workBodies(got), []string{"b", "c"}) {
			e.t.Fatalf("w2 got %v", workBodies(got))
		}
		e.owner("s1", "w2")
	}},
	{"reclaim_leaves_locked_items_with_their_holder", func(e *env) {
		w1 := e.pinnedWithWork()
		held := e.sfetch(w1, 1)[0]
		e.pass(e.hide() + 50*time.Millisecond)
		n, err := e.s.ReclaimSessions(e.ctx)
		e.must("ReclaimSessions", err)
		if n != 1 {
			e.t.Fatalf("ReclaimSessions moved %d, want 1 (the unlocked one)", n)
		}
		if got := e.sfetchOne(e.worker("w2")); got.Body != "c" {
			e.t.Fatalf("w2 got %+v", got)
		}
		e.must("holder acks", e.s.AckWork(e.ctx, held.ID, held.Token, ""))
	}},
	{"session_reads_of_unknown_ids", func(e *env) {
		e.unpinned("nope")
		wantEqual(e.t, "owned", []string{}, e.owned("nobody"))
	}},
	{"abandoned_session_item_stays_with_the_owner", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		got := e.sfetchOne(w1)
		e.must("abandon", e.s.AbandonWork(e.ctx, got.ID, got.Token, 0, true))
		e.sfetchNone(e.worker("w2"))
		again := e.sfetchOne(w1)
		if again.ID != got.ID || again.Attempts != 2 || again.Bucket != "s:w1" {
			e.t.Fatalf("w1 got %+v", again)
		}
	}},
	{"expired_session_item_goes_back_to_the_owner", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		got := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x", "s:w1"}, SessionOwner: "w1",
			SessionLease: longLock, MaxSessions: 10, LockTimeout: e.shortLock()}).Items
		if len(got) != 1 {
			e.t.Fatalf("w1 got %v", workBodies(got))
		}
		e.pass(e.shortLock() + 50*time.Millisecond)
		e.sfetchNone(e.worker("w2"))
		again := e.sfetchOne(w1)
		if again.ID != got[0].ID || again.Attempts != 2 {
			e.t.Fatalf("w1 got %+v", again)
		}
	}},
	{"concurrent_claims_have_one_winner", func(e *env) {
		e.sess("s1", "i0", "i1", "i2", "i3", "i4")
		var mu sync.Mutex
		byOwner := map[string]int{}
		var wg sync.WaitGroup
		for i := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := fmt.Sprintf("w%d", i)
				res, err := e.s.FetchWork(e.ctx, queue.FetchWorkRequest{Buckets: []string{"a:x", "s:" + owner}, Max: 1,
					LockTimeout: longLock, SessionOwner: owner, SessionLease: longLock, MaxSessions: 10})
				if err != nil {
					e.t.Errorf("fetch: %v", err)
					return
				}
				mu.Lock()
				byOwner[owner] += len(res.Items)
				mu.Unlock()
			}()
		}
		wg.Wait()
		info, ok := e.session("s1")
		if !ok {
			e.t.Fatal("session not claimed")
		}
		for owner, n := range byOwner {
			if n > 0 && owner != info.Owner {
				e.t.Fatalf("%s got %d items of a session owned by %s", owner, n, info.Owner)
			}
		}
		w := e.worker(info.Owner)
		total := byOwner[info.Owner]
		for range 5 {
			total += len(e.sfetch(w, 10))
		}
		if total != 5 {
			e.t.Fatalf("owner received %d items, want 5", total)
		}
	}},
	{"routed_items_keep_their_order", func(e *env) {
		e.sess("s1", "first")
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		for i := range 4 {
			e.sess("s1", fmt.Sprintf("n%d", i))
			e.tick()
		}
		var got []string
		for range 4 {
			got = append(got, workBodies(e.sfetch(w1, 1))...)
		}
		wantEqual(e.t, "order", []string{"n0", "n1", "n2", "n3"}, got)
	}},
	{"items_without_a_session_are_never_routed", func(e *env) {
		e.sess("s1", "a")
		w1 := e.worker("w1")
		e.sfetchOne(w1)
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "plain"})
		if got := e.sfetchOne(e.worker("w2")); got.Body != "plain" || got.Bucket != "a:x" {
			e.t.Fatalf("w2 got %+v", got)
		}
	}},
}
