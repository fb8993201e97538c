package queuetest

import (
	"time"

	"github.com/duroworker/duroworker/queue"
)

// Work streams: each work bucket is a Redis stream read through one
// consumer group; the pending entries list (PEL) holds the locked items
// under the consumer (node) that locked them, with a delivery count.

var streamCases = []testCase{
	{"delivery_count_across_reclaims_drives_attempts_and_poison", func(e *env) {
		const maxAttempts = 3
		e.startWork("a:x", "w")
		lock := e.shortLock()
		var last queue.FetchedWork
		for want := 1; want <= maxAttempts+1; want++ {
			var got []queue.FetchedWork
			if want == 1 {
				got = e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", LockTimeout: lock}).Items
			} else {
				e.after(lock, "the expired lock is taken back", func() bool {
					got = e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", LockTimeout: lock}).Items
					return len(got) == 1
				})
			}
			if len(got) != 1 || got[0].Attempts != want {
				e.t.Fatalf("delivery %d: %+v, want attempts %d", want, got, want)
			}
			if want > 1 && got[0].Token == last.Token {
				e.t.Fatalf("delivery %d reused the token %s", want, last.Token)
			}
			last = got[0]
		}
		// An abandon that keeps the attempt carries the count into the next
		// stream entry; one that gives it back does not count the delivery.
		e.must("abandon (keep)", e.s.AbandonWork(e.ctx, last.ID, last.Token, 0, true))
		again := e.workOne("a:x")
		if again.Attempts != maxAttempts+2 {
			e.t.Fatalf("after an abandon keeping the attempt: attempts %d, want %d", again.Attempts, maxAttempts+2)
		}
		e.must("abandon (give back)", e.s.AbandonWork(e.ctx, again.ID, again.Token, 0, false))
		again = e.workOne("a:x")
		if again.Attempts != maxAttempts+2 {
			e.t.Fatalf("after an abandon giving the attempt back: attempts %d, want %d", again.Attempts, maxAttempts+2)
		}
		// Past max attempts the worker acks it as poison: dead letter, item gone.
		e.must("poison ack", e.s.AckWorkPoisoned(e.ctx, again.ID, again.Token, "poisoned",
			queue.DeadLetterNote{Reason: "too many attempts", Attempts: again.Attempts, MaxAttempts: maxAttempts}))
		dl, err := e.s.DeadLetters(e.ctx, "", 10)
		e.must("DeadLetters", err)
		if len(dl) != 1 || dl[0].Kind != "activity" || dl[0].Attempts != again.Attempts || dl[0].WorkBody != "w" {
			e.t.Fatalf("dead letters = %+v", dl)
		}
		e.workNone("a:x")
		wantEqual(e.t, "completion", []string{"poisoned"}, e.peekInbox("p"))
	}},
	{"fenced_ack_renew_abandon_after_a_reclaim", func(e *env) {
		e.startWork("a:x", "w")
		lock := e.shortLock()
		old := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", LockTimeout: lock}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %d items", len(old))
		}
		var cur []queue.FetchedWork
		e.after(lock, "n2 takes the expired lock back", func() bool {
			cur = e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n2"}).Items
			return len(cur) == 1
		})
		before := e.depths()
		wantErr(e.t, "old holder's renew", e.s.RenewWork(e.ctx, old[0].ID, old[0].Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "old holder's abandon", e.s.AbandonWork(e.ctx, old[0].ID, old[0].Token, 0, false), queue.ErrLockLost)
		wantErr(e.t, "old holder's ack", e.s.AckWork(e.ctx, old[0].ID, old[0].Token, "late"), queue.ErrLockLost)
		wantEqual(e.t, "depths after the refused calls", before, e.depths())
		e.fetchNone("o:p") // a refused ack delivered nothing
		e.workNone("a:x")
		e.must("current renew", e.s.RenewWork(e.ctx, cur[0].ID, cur[0].Token, longLock))
		e.must("current ack", e.s.AckWork(e.ctx, cur[0].ID, cur[0].Token, "done"))
		wantEqual(e.t, "completion", []string{"done"}, e.peekInbox("p"))
	}},
	{"a_dead_consumers_current_token_is_refused_by_the_pel", func(e *env) {
		// The token fence alone would accept this ack: nobody has fetched
		// the item since the reclaim, so the dead node's token is still the
		// item's. The stream fence refuses it: the entry is no longer
		// pending for the node's consumer.
		e.startWork("a:x", "w")
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"a:x"}, e.nodeTTL()))
		old := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1"}).Items
		if len(old) != 1 {
			e.t.Fatalf("n1 fetched %d items", len(old))
		}
		e.after(e.nodeTTL()+time.Millisecond, "n1's lock reclaimed", func() bool {
			n, err := e.s.ReclaimDeadNodes(e.ctx, "n2", 0)
			e.must("ReclaimDeadNodes", err)
			return n == 1
		})
		wantErr(e.t, "dead consumer's ack", e.s.AckWork(e.ctx, old[0].ID, old[0].Token, "late"), queue.ErrLockLost)
		wantErr(e.t, "dead consumer's renew", e.s.RenewWork(e.ctx, old[0].ID, old[0].Token, longLock), queue.ErrLockLost)
		wantErr(e.t, "dead consumer's abandon", e.s.AbandonWork(e.ctx, old[0].ID, old[0].Token, 0, true), queue.ErrLockLost)
		e.fetchNone("o:p") // a refused ack delivered nothing
		cur := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n2"}).Items
		if len(cur) != 1 || cur[0].Attempts != 2 {
			e.t.Fatalf("n2 fetched %+v, want the item at attempt 2", cur)
		}
		e.must("current ack", e.s.AckWork(e.ctx, cur[0].ID, cur[0].Token, "done"))
	}},
	{"an_entry_read_but_never_locked_is_recovered", func(e *env) {
		e.start("p", "o:p")
		e.must("advertise n2", e.s.AdvertiseNode(e.ctx, "n2", nil, longLock))
		e.must("advertise n1", e.s.AdvertiseNode(e.ctx, "n1", []string{"a:x"}, e.nodeTTL()))
		read := e.readWork("n1", []string{"a:x"}, func() {
			e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "w"})
		})
		if len(read) != 1 {
			e.t.Fatalf("n1's blocking read got %+v", read)
		}
		// n1 "crashes" before the fetch that would lock it: the entry is
		// pending for n1, so nobody else reads it while n1 lives.
		e.workNone("a:x")
		var got []queue.FetchedWork
		e.after(e.nodeTTL()+time.Millisecond, "the entry n1 read is recovered once n1 is dead", func() bool {
			e.reclaimRound()
			got = e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n2"}).Items
			return len(got) == 1
		})
		if got[0].ID != read[0].WorkID || got[0].Attempts != 1 {
			e.t.Fatalf("recovered %+v, want work item %s at attempt 1 (never run)", got[0], read[0].WorkID)
		}
		// n1's late fetch of what it read finds it gone from its consumer.
		if late := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Read: read}).Items; len(late) != 0 {
			e.t.Fatalf("n1's late fetch of its read entries locked %+v", late)
		}
		e.must("ack", e.s.AckWork(e.ctx, got[0].ID, got[0].Token, "done"))
	}},
	{"an_entry_read_but_never_locked_is_recovered_after_the_reclaim_idle_time", func(e *env) {
		if !e.virtual {
			e.t.Skip("waits five minutes of idle time: needs a clock the suite can move")
		}
		e.start("p", "o:p")
		read := e.readWork("n1", []string{"a:x"}, func() {
			e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "w"})
		})
		if len(read) != 1 {
			e.t.Fatalf("blocking read got %+v", read)
		}
		e.workNone("a:x")
		e.pass(4 * time.Minute)
		e.workNone("a:x")
		var got []queue.FetchedWork
		e.after(time.Minute, "the unlocked entry is taken back", func() bool {
			got = e.work("a:x")
			return len(got) == 1
		})
		if got[0].ID != read[0].WorkID || got[0].Attempts != 2 {
			e.t.Fatalf("recovered %+v, want %s at attempt 2 (its read counts as a delivery)", got[0], read[0].WorkID)
		}
	}},
	{"read_entries_beyond_max_go_back_to_the_others", func(e *env) {
		e.start("p", "o:p")
		read := e.readWork("n1", []string{"a:x"}, func() {
			e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "1"}, queue.WorkItem{Bucket: "a:x", Body: "2"}, queue.WorkItem{Bucket: "a:x", Body: "3"})
		})
		if len(read) != 3 {
			e.t.Fatalf("read %+v, want 3 entries", read)
		}
		got := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n1", Read: read, Max: 1}).Items
		if len(got) != 1 || got[0].ID != read[0].WorkID {
			e.t.Fatalf("n1 locked %+v, want only %s", got, read[0].WorkID)
		}
		rest := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, NodeID: "n2"}).Items
		if len(rest) != 2 || rest[0].Attempts != 1 || rest[1].Attempts != 1 {
			e.t.Fatalf("n2 got %+v, want the two other items at attempt 1", rest)
		}
	}},
	{"session_work_is_routed_to_the_owners_stream", func(e *env) {
		e.sess("s1", "a", "b") // both queued in a:x before anyone owns s1
		w1, w2 := e.worker("w1"), e.worker("w2")
		if got := e.sfetch(w1, 1); len(got) != 1 || got[0].Body != "a" {
			e.t.Fatalf("w1 fetched %v, want a", workBodies(got))
		}
		e.owner("s1", "w1")
		// w2 reads b, sees s1 owned by w1 and moves it to w1's node stream.
		e.sfetchNone(w2)
		e.sfetchNone(w2)
		read := e.readWork("w1", []string{"a:x", queue.NodeWorkBucket("w1")}, func() {})
		if len(read) != 1 || read[0].Bucket != queue.NodeWorkBucket("w1") {
			e.t.Fatalf("w1's blocking read = %+v, want b in its node stream", read)
		}
		got := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x", queue.NodeWorkBucket("w1")}, NodeID: "w1", Read: read,
			SessionOwner: "w1", SessionLease: longLock, MaxSessions: 10}).Items
		if len(got) != 1 || got[0].Body != "b" || got[0].Attempts != 1 || got[0].Bucket != queue.NodeWorkBucket("w1") {
			e.t.Fatalf("w1 locked %+v, want b at attempt 1 (routing is not a delivery)", got)
		}
		// New work of s1 goes straight to w1's stream.
		e.sess("s1", "c")
		e.sfetchNone(w2)
		if got := e.sfetch(w1, 10); len(got) != 1 || got[0].Body != "c" {
			e.t.Fatalf("w1 fetched %v, want c", workBodies(got))
		}
	}},
	{"delayed_abandon_comes_back_when_due", func(e *env) {
		e.startWork("a:x", "w")
		w := e.workOne("a:x")
		h := e.hide()
		e.must("abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, h, true))
		res := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}})
		if len(res.Items) != 0 {
			e.t.Fatalf("delayed item fetched before it was due")
		}
		e.wantWake("NextWake of the delayed item", res.NextWake, h)
		if d, _ := depth(e.depths().Activities, "a:x"); d.Delayed != 1 || d.Ready != 0 || d.Locked != 0 {
			e.t.Fatalf("depth while delayed = %+v", d)
		}
		var got []queue.FetchedWork
		e.after(h, "the delayed item is back", func() bool {
			got = e.work("a:x")
			return len(got) == 1
		})
		if got[0].ID != w.ID || got[0].Attempts != 2 {
			e.t.Fatalf("back = %+v, want %s at attempt 2 (the abandon kept its attempt)", got[0], w.ID)
		}
	}},
}
