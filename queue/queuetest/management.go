package queuetest

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/queue"
)

func (e *env) list(opts queue.ListOptions) queue.ListPage {
	e.t.Helper()
	p, err := e.s.ListInstances(e.ctx, opts)
	e.must("ListInstances", err)
	if p.InstanceIDs == nil {
		p.InstanceIDs = []string{}
	}
	return p
}

func (e *env) wantMetrics(what string, want queue.SystemMetrics) {
	e.t.Helper()
	wantEqual(e.t, what, want, e.metrics())
}

var managementCases = []testCase{
	{"list_pages_oldest_first", func(e *env) {
		for _, id := range []string{"c", "a", "e", "b", "d"} {
			e.create(id, "o:b", "start")
			e.tick()
		}
		p := e.list(queue.ListOptions{Limit: 2})
		wantEqual(e.t, "page 1", queue.ListPage{InstanceIDs: []string{"c", "a"}, NextOffset: 2}, p)
		p = e.list(queue.ListOptions{Limit: 2, Offset: 2})
		wantEqual(e.t, "page 2", queue.ListPage{InstanceIDs: []string{"e", "b"}, NextOffset: 4}, p)
		p = e.list(queue.ListOptions{Limit: 2, Offset: 4})
		wantEqual(e.t, "page 3", queue.ListPage{InstanceIDs: []string{"d"}, NextOffset: -1}, p)
	}},
	{"list_default_limit", func(e *env) {
		for i := range queue.DefaultListLimit + 1 {
			e.create(fmt.Sprintf("i%03d", i), "o:b", "start")
		}
		p := e.list(queue.ListOptions{})
		if len(p.InstanceIDs) != queue.DefaultListLimit || p.NextOffset != queue.DefaultListLimit {
			e.t.Fatalf("default page: %d ids, next %d", len(p.InstanceIDs), p.NextOffset)
		}
		p = e.list(queue.ListOptions{Offset: p.NextOffset, Limit: queue.MaxListLimit * 10})
		if len(p.InstanceIDs) != 1 || p.NextOffset != -1 {
			e.t.Fatalf("last page: %v, next %d", p.InstanceIDs, p.NextOffset)
		}
	}},
	{"list_filters_by_status", func(e *env) {
		e.create("pending", "o:b", "start")
		e.start("running", "o:r")
		e.start("completed", "o:c")
		e.finish("completed", queue.StatusCompleted, "ok")
		e.start("failed", "o:f")
		e.finish("failed", queue.StatusFailed, "boom")
		for status, want := range map[string][]string{
			queue.StatusPending: {"pending"}, queue.StatusRunning: {"running"},
			queue.StatusCompleted: {"completed"}, queue.StatusFailed: {"failed"},
			"": {"completed", "failed", "pending", "running"},
		} {
			wantEqual(e.t, "list "+status, want, sorted(e.listAll(status)))
		}
		p := e.list(queue.ListOptions{Status: queue.StatusRunning, Limit: 1})
		if len(p.InstanceIDs) != 1 || p.InstanceIDs[0] != "running" {
			e.t.Fatalf("filtered page = %+v", p)
		}
	}},
	{"list_filtered_pages_are_full_until_the_last", func(e *env) {
		// Instances created in bursts (equal creation times are ordered by
		// id); every third one Running, the others Pending.
		running := map[string]bool{}
		for i := range 14 {
			id := fmt.Sprintf("i%02d", 13-i) // ids against creation order
			if i%3 == 0 {
				e.start(id, "o:"+id)
				running[id] = true
			} else {
				e.create(id, "o:b", "start")
			}
			if i%5 == 4 {
				e.tick()
			}
		}
		all := e.listAll("")
		for _, status := range []string{queue.StatusRunning, queue.StatusPending} {
			var want []string
			for _, id := range all {
				if running[id] == (status == queue.StatusRunning) {
					want = append(want, id)
				}
			}
			for _, limit := range []int{1, 2, 3} {
				got := []string{}
				for off := 0; off >= 0; {
					p := e.list(queue.ListOptions{Status: status, Offset: off, Limit: limit})
					if p.NextOffset >= 0 && len(p.InstanceIDs) != limit {
						e.t.Fatalf("%s, limit %d, offset %d: short page %v before the last", status, limit, off, p.InstanceIDs)
					}
					got = append(got, p.InstanceIDs...)
					off = p.NextOffset
				}
				wantEqual(e.t, fmt.Sprintf("%s in pages of %d", status, limit), want, got)
			}
		}
	}},
	{"queue_depths_skip_timers_that_will_be_dropped", func(e *env) {
		// A timer each for a live, a deleted and an ended instance: only the
		// live one's will be delivered.
		for _, id := range []string{"live", "deleted", "ended"} {
			e.start(id, "o:"+id)
			it := e.turn(id, "m")
			e.ack(queue.OrchestrationAck{InstanceID: id, Token: it.Token, ExecutionID: 1,
				Timers: []queue.Timer{{DueAt: e.now(id).Add(time.Hour), Body: "t"}}})
		}
		if d := e.depths(); d.Timers != 3 {
			e.t.Fatalf("timers = %d, want 3", d.Timers)
		}
		e.finish("deleted", queue.StatusCompleted, "ok")
		_, err := e.s.DeleteInstance(e.ctx, "deleted", false)
		e.must("DeleteInstance", err)
		e.finish("ended", queue.StatusFailed, "boom")
		if d := e.depths(); d.Timers != 1 || d.Partial {
			e.t.Fatalf("timers = %d (partial %v), want 1", d.Timers, d.Partial)
		}
	}},
	{"list_validates", func(e *env) {
		for _, opts := range []queue.ListOptions{{Status: "ContinuedAsNew"}, {Status: "bogus"}, {Offset: -1}, {Limit: -1}} {
			_, err := e.s.ListInstances(e.ctx, opts)
			wantPlainErr(e.t, fmt.Sprintf("ListInstances(%+v)", opts), err)
		}
	}},
	{"list_of_an_empty_store", func(e *env) {
		wantEqual(e.t, "empty", queue.ListPage{InstanceIDs: []string{}, NextOffset: -1}, e.list(queue.ListOptions{}))
		wantEqual(e.t, "empty filtered", queue.ListPage{InstanceIDs: []string{}, NextOffset: -1}, e.list(queue.ListOptions{Status: queue.StatusFailed}))
	}},
	{"list_includes_children_and_drops_deleted", func(e *env) {
		e.start("p", "o:p")
		e.tick()
		e.spawn("p", child("c", "p"))
		e.tick()
		e.create("x", "o:x", "start")
		wantEqual(e.t, "listed", []string{"p", "c", "x"}, e.listAll(""))
		_, err := e.s.DeleteInstance(e.ctx, "x", true)
		e.must("delete", err)
		wantEqual(e.t, "after delete", []string{"p", "c"}, e.listAll(""))
	}},
	{"executions_describe_each_execution", func(e *env) {
		e.start("i1", "o:b")
		start1 := e.now("i1")
		e.pass(10 * time.Millisecond)
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		ex, err := e.s.Executions(e.ctx, "i1")
		e.must("Executions", err)
		if len(ex) != 2 {
			e.t.Fatalf("executions = %+v", ex)
		}
		one, two := ex[0], ex[1]
		if one.ExecutionID != 1 || one.Status != queue.StatusContinuedAsNew || one.Output != "next-input" ||
			!one.StartedAt.Equal(start1) || !one.EndedAt.After(one.StartedAt) || one.Events != 2 {
			e.t.Fatalf("execution 1 = %+v (started %v)", one, start1)
		}
		if two.ExecutionID != 2 || two.Status != queue.StatusRunning || two.Output != "" || !two.EndedAt.IsZero() ||
			two.StartedAt.Before(one.EndedAt) || two.Events != 1 {
			e.t.Fatalf("execution 2 = %+v", two)
		}
	}},
	{"reads_of_a_missing_instance", func(e *env) {
		_, err := e.s.Instance(e.ctx, "ghost")
		wantErr(e.t, "Instance", err, queue.ErrInstanceNotFound)
		_, err = e.s.Executions(e.ctx, "ghost")
		wantErr(e.t, "Executions", err, queue.ErrInstanceNotFound)
		_, err = e.s.Children(e.ctx, "ghost")
		wantErr(e.t, "Children", err, queue.ErrInstanceNotFound)
		if h := e.history("ghost", 1); len(h) != 0 {
			e.t.Fatalf("history = %v", h)
		}
	}},
	{"instances_reads_several_in_order", func(e *env) {
		e.create("a", "o:a", "start")
		e.start("b", "o:b")
		recs, err := e.s.Instances(e.ctx, []string{"b", "ghost", "a"})
		e.must("Instances", err)
		if len(recs) != 2 || recs[0].InstanceID != "b" || recs[1].InstanceID != "a" ||
			recs[0].Status != queue.StatusRunning || recs[1].Status != queue.StatusPending {
			e.t.Fatalf("Instances = %+v", recs)
		}
		if recs, err := e.s.Instances(e.ctx, nil); err != nil || len(recs) != 0 {
			e.t.Fatalf("Instances(nil) = %v, %v", recs, err)
		}
	}},
	{"metrics_follow_the_lifecycle", func(e *env) {
		e.wantMetrics("empty", queue.SystemMetrics{})
		e.create("a", "o:a", "start")
		e.create("b", "o:b", "start")
		e.wantMetrics("created", queue.SystemMetrics{Pending: 2, Instances: 2})
		it := e.fetchOne("o:a")
		e.ack(queue.OrchestrationAck{InstanceID: "a", Token: it.Token, NewEvents: []string{"e1", "e2"}})
		e.wantMetrics("one running", queue.SystemMetrics{Pending: 1, Running: 1, Instances: 2, Executions: 1, Events: 2})
		it2 := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "b", Token: it2.Token, Status: queue.StatusFailed, NewEvents: []string{"f"}})
		e.wantMetrics("one failed from pending", queue.SystemMetrics{Running: 1, Failed: 1, Instances: 2, Executions: 2, Events: 3})
		e.continueAsNew("a", 1, "o:a", "", "x2")
		e.wantMetrics("continued as new", queue.SystemMetrics{Running: 1, Failed: 1, Instances: 2, Executions: 3, Events: 5})
		e.finish("a", queue.StatusCompleted, "ok")
		e.wantMetrics("completed", queue.SystemMetrics{Completed: 1, Failed: 1, Instances: 2, Executions: 3, Events: 6})
	}},
	{"metrics_count_children_and_ignore_failed_acks", func(e *env) {
		e.start("p", "o:p")
		it := e.turn("p", "m")
		a := queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Children: []queue.ChildStart{child("c1", "p"), child("c2", "")}, NewEvents: []string{"x"}}
		bad := a
		bad.Token = "stale"
		wantErr(e.t, "stale ack", e.ackErr(bad), queue.ErrLockLost)
		e.ack(a)
		e.ack(a) // a retry changes nothing
		e.wantMetrics("with children", queue.SystemMetrics{Pending: 2, Running: 1, Instances: 3, Executions: 1, Events: 2})
	}},
	{"metrics_after_delete_and_prune", func(e *env) {
		e.start("i1", "o:b")
		e.continueAsNew("i1", 1, "o:b", "", "x2")
		e.continueAsNew("i1", 2, "o:b", "", "x3")
		e.finish("i1", queue.StatusCompleted, "ok")
		e.start("i2", "o:b")
		e.wantMetrics("before", queue.SystemMetrics{Completed: 1, Running: 1, Instances: 2, Executions: 4, Events: 7})
		_, err := e.s.PruneExecutions(e.ctx, "i1", queue.PruneOptions{KeepLast: 1})
		e.must("prune", err)
		e.wantMetrics("after prune", queue.SystemMetrics{Completed: 1, Running: 1, Instances: 2, Executions: 2, Events: 3})
		_, err = e.s.DeleteInstance(e.ctx, "i1", false)
		e.must("delete", err)
		e.wantMetrics("after delete", queue.SystemMetrics{Running: 1, Instances: 1, Executions: 1, Events: 1})
	}},
	{"queue_depths_classify_ready_locked_and_delayed", func(e *env) {
		for _, id := range []string{"r1", "r2", "l", "d"} {
			e.create(id, "o:b", "start")
			e.tick()
		}
		e.start("p", "o:p")
		e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "1"}, queue.WorkItem{Bucket: "a:x", Body: "2"}, queue.WorkItem{Bucket: "a:x", Body: "3"})
		// Lock r1 and r2, abandon r2 with a delay; lock l.
		res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 2})
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, res.Items[1].InstanceID, res.Items[1].Token, e.hide(), true))
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, res.Items[0].InstanceID, res.Items[0].Token, 0, true))
		e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1}) // locks the oldest due one
		ws := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}, Max: 2}).Items
		e.must("abandon work", e.s.AbandonWork(e.ctx, ws[0].ID, ws[0].Token, e.hide(), true))
		d := e.depths()
		wantEqual(e.t, "orchestration depths", []queue.BucketDepth{
			{Bucket: "o:b", Ready: 2, Delayed: 1, Locked: 1, Unserved: true}}, d.Orchestrations)
		wantEqual(e.t, "activity depths", []queue.BucketDepth{
			{Bucket: "a:x", Ready: 1, Delayed: 1, Locked: 1, Unserved: true}}, d.Activities)
		if d.Timers != 0 || d.Partial {
			e.t.Fatalf("timers %d partial %v", d.Timers, d.Partial)
		}
	}},
	{"queue_depths_count_an_expired_lock_as_ready", func(e *env) {
		e.create("i1", "o:b", "start")
		e.fetchOneLock("o:b", e.shortLock())
		if d, _ := depth(e.depths().Orchestrations, "o:b"); d.Locked != 1 {
			e.t.Fatalf("depth = %+v, want locked", d)
		}
		e.after(e.shortLock()+time.Millisecond, "expired lock counted ready", func() bool {
			d, _ := depth(e.depths().Orchestrations, "o:b")
			return d.Ready == 1 && d.Locked == 0
		})
	}},
	{"queue_depths_count_timers", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{h, 2 * h, 3 * h}, []string{"a", "b", "c"})
		if n := e.timers(); n != 3 {
			e.t.Fatalf("timers = %d, want 3", n)
		}
	}},
}
