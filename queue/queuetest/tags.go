package queuetest

import (
	"fmt"
	"sync"

	"github.com/duroworker/duroworker/queue"
)

// Untagged activities live in "a:<name>", tagged ones in "t:<tag>#<name>"
// (package capability builds the names; the store treats them as opaque).
const (
	untagged = "a:Encode"
	gpu      = "t:gpu#Encode"
	cpu      = "t:cpu#Encode"
)

// tagged schedules one item per bucket, bodies naming their bucket.
func (e *env) tagged(buckets ...string) {
	e.t.Helper()
	e.start("p", "o:p")
	var items []queue.WorkItem
	for _, b := range buckets {
		items = append(items, queue.WorkItem{Bucket: b, Body: "in " + b})
	}
	e.schedule("p", items...)
}

var tagCases = []testCase{
	{"tagged_and_untagged_buckets_are_separate", func(e *env) {
		e.tagged(untagged, gpu)
		wantEqual(e.t, "untagged worker", []string{"in " + untagged}, workBodies(e.work(untagged)))
		wantEqual(e.t, "gpu worker", []string{"in " + gpu}, workBodies(e.work(gpu)))
	}},
	{"different_tags_are_separate", func(e *env) {
		e.tagged(gpu, cpu)
		wantEqual(e.t, "cpu worker", []string{"in " + cpu}, workBodies(e.work(cpu)))
		e.workNone(cpu, untagged)
		wantEqual(e.t, "gpu worker", []string{"in " + gpu}, workBodies(e.work(gpu)))
	}},
	{"worker_serving_several_buckets_gets_all_of_them", func(e *env) {
		e.tagged(untagged, gpu, cpu)
		got := workBodies(e.work(untagged, gpu))
		wantEqual(e.t, "untagged+gpu worker", []string{"in " + untagged, "in " + gpu}, sorted(got))
	}},
	{"work_buckets_lists_tagged_and_untagged", func(e *env) {
		e.tagged(untagged, gpu, cpu)
		wantEqual(e.t, "work buckets", []string{untagged, cpu, gpu}, e.workBuckets())
	}},
	{"work_buckets_of_a_new_store_is_empty", func(e *env) {
		wantEqual(e.t, "work buckets", []string{}, e.workBuckets())
	}},
	{"work_buckets_lists_each_bucket_once_and_keeps_it", func(e *env) {
		e.tagged(gpu, gpu, gpu)
		for _, w := range e.work(gpu) {
			e.must("ack", e.s.AckWork(e.ctx, w.ID, w.Token, ""))
		}
		wantEqual(e.t, "work buckets", []string{gpu}, e.workBuckets())
	}},
	{"serving_every_listed_bucket_gets_everything", func(e *env) {
		e.tagged(untagged, gpu, cpu)
		got := workBodies(e.work(e.workBuckets()...))
		if len(got) != 3 {
			e.t.Fatalf("any-tag worker got %v", got)
		}
	}},
	{"tag_survives_abandon", func(e *env) {
		e.tagged(gpu)
		w := e.workOne(gpu)
		e.must("abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false))
		e.workNone(untagged, cpu)
		if again := e.workOne(gpu); again.Bucket != gpu || again.ID != w.ID {
			e.t.Fatalf("after abandon: %+v", again)
		}
	}},
	{"tag_survives_lock_expiry", func(e *env) {
		e.tagged(gpu)
		w := e.workOneLock(e.shortLock(), gpu)
		e.pass(e.shortLock())
		e.workNone(untagged, cpu)
		if again := e.stealWork(gpu, 0); again.Bucket != gpu || again.ID != w.ID || again.Attempts != 2 {
			e.t.Fatalf("after expiry: %+v", again)
		}
	}},
	{"tagged_completion_reaches_the_instance", func(e *env) {
		e.tagged(gpu)
		w := e.workOne(gpu)
		if w.InstanceID != "p" {
			e.t.Fatalf("work item instance = %q", w.InstanceID)
		}
		e.must("ack", e.s.AckWork(e.ctx, w.ID, w.Token, "encoded"))
		wantEqual(e.t, "completion", []string{"encoded"}, e.fetchOne("o:p").Messages)
	}},
	{"concurrent_runtimes_with_different_tags_stay_apart", func(e *env) {
		e.start("p", "o:p")
		var items []queue.WorkItem
		for i := range 10 {
			items = append(items, queue.WorkItem{Bucket: gpu, Body: fmt.Sprintf("%s/%d", gpu, i)},
				queue.WorkItem{Bucket: cpu, Body: fmt.Sprintf("%s/%d", cpu, i)})
		}
		e.schedule("p", items...)
		var wg sync.WaitGroup
		got := map[string][]queue.FetchedWork{}
		var mu sync.Mutex
		for _, b := range []string{gpu, cpu, gpu, cpu} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					res, err := e.s.FetchWork(e.ctx, queue.FetchWorkRequest{Buckets: []string{b}, Max: 2, LockTimeout: longLock})
					if err != nil {
						e.t.Errorf("fetch: %v", err)
						return
					}
					mu.Lock()
					got[b] = append(got[b], res.Items...)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for b, ws := range got {
			seen := map[string]bool{}
			for _, w := range ws {
				if w.Bucket != b || w.Body[:len(b)] != b || seen[w.ID] {
					e.t.Fatalf("%s runtime got %+v (duplicate %v)", b, w, seen[w.ID])
				}
				seen[w.ID] = true
			}
			if len(ws) != 10 {
				e.t.Fatalf("%s runtimes got %d items, want 10", b, len(ws))
			}
		}
	}},
	{"tagged_buckets_have_their_own_depths_and_serving", func(e *env) {
		e.tagged(untagged, gpu, gpu)
		d := e.depths()
		g, _ := depth(d.Activities, gpu)
		u, _ := depth(d.Activities, untagged)
		if g.Ready != 2 || u.Ready != 1 || !g.Unserved {
			e.t.Fatalf("depths: gpu %+v untagged %+v", g, u)
		}
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n1", []string{untagged}, longLock))
		wantEqual(e.t, "unserved", []string{gpu}, e.unserved(100))
		e.must("advertise", e.s.AdvertiseNode(e.ctx, "n2", []string{gpu}, longLock))
		wantEqual(e.t, "unserved", []string{}, e.unserved(100))
	}},
	{"released_session_item_returns_to_its_tagged_bucket", func(e *env) {
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: gpu, Body: "first", Session: "s1"})
		w1 := sworker{owner: "w1", maxSessions: 5, lease: longLock, home: gpu}
		e.sfetchOne(w1)
		e.schedule("p", queue.WorkItem{Bucket: gpu, Body: "second", Session: "s1"})
		if _, err := e.s.ReleaseSessions(e.ctx, "w1"); err != nil {
			e.t.Fatalf("release: %v", err)
		}
		e.workNone(untagged, cpu)
		if got := e.sfetchOne(sworker{owner: "w2", maxSessions: 5, lease: longLock, home: gpu}); got.Body != "second" || got.Bucket != gpu {
			e.t.Fatalf("after release: %+v", got)
		}
	}},
}
