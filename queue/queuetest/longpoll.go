package queuetest

import (
	"fmt"
	"time"

	"github.com/duroworker/duroworker/queue"
)

var longPollCases = []testCase{
	{"next_wake_is_zero_when_nothing_is_known", func(e *env) {
		if res := e.fetchNone("o:b"); res.NextWake != 0 {
			e.t.Fatalf("orchestration NextWake = %v", res.NextWake)
		}
		if res := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}}); res.NextWake != 0 {
			e.t.Fatalf("work NextWake = %v", res.NextWake)
		}
	}},
	{"next_wake_reports_a_delayed_abandon", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, e.hide(), true))
		e.wantWake("NextWake", e.fetchNone("o:b").NextWake, e.hide())
	}},
	{"next_wake_reports_the_earliest_timer", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{3 * h, h}, []string{"late", "early"})
		// The timer was set relative to the start ack; some time has passed.
		res := e.fetch(queue.FetchOrchestrationsRequest{})
		if res.NextWake <= 0 || res.NextWake > h {
			e.t.Fatalf("NextWake = %v, want in (0, %v]", res.NextWake, h)
		}
		if e.virtual && res.NextWake != h {
			e.t.Fatalf("NextWake = %v, want %v", res.NextWake, h)
		}
	}},
	{"next_wake_is_the_earliest_of_buckets_and_timers", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{2 * h}, []string{"t"})
		e.create("i2", "o:b", "start")
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i2", it.Token, h, true))
		e.wantWake("NextWake with an earlier bucket entry", e.fetchNone("o:b").NextWake, h)
		e.create("i3", "o:c", "start")
		it = e.fetchOne("o:c")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i3", it.Token, 4*h, true))
		res := e.fetchNone("o:c")
		if res.NextWake <= h || res.NextWake > 2*h {
			e.t.Fatalf("NextWake with an earlier timer = %v, want in (%v, %v]", res.NextWake, h, 2*h)
		}
		if e.virtual && res.NextWake != 2*h {
			e.t.Fatalf("NextWake = %v, want the timer's %v", res.NextWake, 2*h)
		}
	}},
	{"next_wake_reports_a_lock_deadline", func(e *env) {
		e.create("i1", "o:b", "start")
		e.fetchOneLock("o:b", e.hide())
		e.wantWake("NextWake", e.fetchNone("o:b").NextWake, e.hide())
	}},
	{"next_wake_is_one_millisecond_when_due_work_is_left", func(e *env) {
		e.create("i1", "o:b", "start")
		e.create("i2", "o:b", "start")
		res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1})
		if len(res.Items) != 1 || res.NextWake != time.Millisecond {
			e.t.Fatalf("fetch Max 1 of 2: %d items, NextWake %v, want 1ms", len(res.Items), res.NextWake)
		}
	}},
	{"next_wake_ignores_unserved_buckets", func(e *env) {
		e.create("i1", "o:other", "start")
		e.startWork("a:other", "w")
		if res := e.fetchNone("o:b"); res.NextWake != 0 {
			e.t.Fatalf("NextWake = %v with work only in unserved buckets", res.NextWake)
		}
		if res := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}}); res.NextWake != 0 {
			e.t.Fatalf("work NextWake = %v with work only in unserved buckets", res.NextWake)
		}
	}},
	{"work_next_wake_reports_delays_and_ignores_timers", func(e *env) {
		e.startWork("a:x", "w")
		it := e.turn("p", "timer")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Timers: []queue.Timer{{DueAt: e.now("p").Add(10 * time.Millisecond), Body: "t"}}})
		w := e.workOne("a:x")
		e.must("abandon", e.s.AbandonWork(e.ctx, w.ID, w.Token, e.hide(), true))
		res := e.fetchWork(queue.FetchWorkRequest{Buckets: []string{"a:x"}})
		if len(res.Items) != 0 {
			e.t.Fatalf("delayed item fetched")
		}
		e.wantWake("work NextWake", res.NextWake, e.hide())
	}},
	{"create_and_enqueue_publish_the_ready_bucket", func(e *env) {
		ps := e.subscribe(e.k.WakeOrchChannel())
		e.create("i1", "o:b", "start")
		e.expectMessage(ps, e.k.WakeOrchChannel(), "o:b")
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:b@1@0.1"})
		drain(ps)
		e.enqueue("i1", "m")
		e.expectMessage(ps, e.k.WakeOrchChannel(), "x:b@1@0.1")
	}},
	{"blocked_work_read_returns_new_work_of_every_bucket", func(e *env) {
		e.start("p", "o:p")
		buckets := []string{"a:x", "t:gpu#x"}
		read := e.readWork("n1", buckets, func() {
			e.schedule("p", queue.WorkItem{Bucket: "a:x", Body: "1"}, queue.WorkItem{Bucket: "t:gpu#x", Body: "2"})
		})
		// A read woken by one stream may return that stream's entries only
		// (Redis before 7.2 serves a blocked client per signalled key).
		if len(read) == 0 || len(read) > 2 {
			e.t.Fatalf("blocked read returned %+v, want one or two entries", read)
		}
		res := e.fetchWork(queue.FetchWorkRequest{Buckets: buckets, NodeID: "n1", Read: read})
		got := map[string]bool{}
		for _, w := range res.Items {
			got[w.Bucket] = w.Attempts == 1
		}
		if len(res.Items) != 2 || !got["a:x"] || !got["t:gpu#x"] || res.Items[0].ID != read[0].WorkID {
			e.t.Fatalf("fetch with the read entries = %+v (read %+v), want the read ones first, then the rest, first attempt", res.Items, read)
		}
	}},
	{"ack_that_readies_publishes_the_new_bucket", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "during")
		ps := e.subscribe(e.k.WakeOrchChannel())
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token, ReadyBucket: "x:new"})
		e.expectMessage(ps, e.k.WakeOrchChannel(), "x:new")
	}},
	{"abandons_without_delay_publish", func(e *env) {
		e.create("i1", "o:b", "start")
		e.startWork("a:x", "w")
		orch := e.subscribe(e.k.WakeOrchChannel())
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, false))
		e.expectMessage(orch, e.k.WakeOrchChannel(), "o:b")
		w := e.workOne("a:x")
		// A work abandon wakes a blocked read of the bucket (a new entry).
		read := e.readWork("n1", []string{"a:x"}, func() {
			e.must("abandon work", e.s.AbandonWork(e.ctx, w.ID, w.Token, 0, false))
		})
		if len(read) != 1 || read[0].WorkID != w.ID {
			e.t.Fatalf("blocked read after the abandon = %+v, want work item %s", read, w.ID)
		}
	}},
	{"completion_publishes_the_instance_and_readies_it", func(e *env) {
		ps := e.subscribe(e.k.WakeOrchChannel(), e.k.EndedChannel())
		e.startWork("a:x", "w")
		w := e.workOne("a:x")
		drain(ps)
		e.must("ack work", e.s.AckWork(e.ctx, w.ID, w.Token, "result"))
		e.expectMessage(ps, e.k.WakeOrchChannel(), "o:p")
		it := e.fetchOne("o:p")
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, Status: queue.StatusCompleted})
		e.expectMessage(ps, e.k.EndedChannel(), "p")
	}},
	{"promoted_timer_publishes_its_bucket", func(e *env) {
		h := e.hide()
		e.timerTurn([]time.Duration{h}, []string{"t"})
		ps := e.subscribe(e.k.WakeOrchChannel())
		e.after(h, "timer promoted", func() bool {
			e.fetch(queue.FetchOrchestrationsRequest{})
			return e.timers() == 0
		})
		e.expectMessage(ps, e.k.WakeOrchChannel(), "x:b")
	}},
	{"delivery_to_a_waiting_or_locked_instance_does_not_publish", func(e *env) {
		// Only the delivery that adds the instance's ready entry publishes:
		// the others change nothing a fetcher could take. A marker create
		// after each step shows what was published before it (pub/sub keeps
		// the order).
		ps := e.subscribe(e.k.WakeOrchChannel())
		e.startWork("a:x", "w1", "w2", "w3")
		ws := e.work("a:x")
		if len(ws) != 3 {
			e.t.Fatalf("work items: %v, want 3", workBodies(ws))
		}
		drain(ps)
		marker := 0
		published := func() []string {
			e.t.Helper()
			marker++
			b := fmt.Sprintf("o:marker%d", marker)
			e.create(fmt.Sprintf("marker%d", marker), b, "start")
			return e.expectMessage(ps, e.k.WakeOrchChannel(), b)
		}
		e.must("ack w1", e.s.AckWork(e.ctx, ws[0].ID, ws[0].Token, "r1"))
		wantEqual(e.t, "published by a completion to an idle instance", []string{e.k.WakeOrchChannel() + "=o:p"}, published())
		e.must("ack w2", e.s.AckWork(e.ctx, ws[1].ID, ws[1].Token, "r2"))
		wantEqual(e.t, "published by a completion to a waiting instance", []string(nil), published())
		it := e.fetchOne("o:p")
		e.must("ack w3", e.s.AckWork(e.ctx, ws[2].ID, ws[2].Token, "r3"))
		wantEqual(e.t, "published by a completion to a locked instance", []string(nil), published())
		e.ack(queue.OrchestrationAck{InstanceID: "p", Token: it.Token, ExecutionID: e.instance("p").ExecutionID})
		wantEqual(e.t, "published by the ack that readies it", []string{e.k.WakeOrchChannel() + "=o:p"}, published())
		wantEqual(e.t, "messages of the next turn", []string{"r3"}, e.fetchOne("o:p").Messages)
	}},
	{"fetch_that_takes_its_promoted_timers_does_not_publish", func(e *env) {
		// A fetch that promotes a timer into a bucket it serves and has room
		// takes the instance itself: nobody else is woken for it.
		h := e.hide()
		e.timerTurn([]time.Duration{h}, []string{"t"})
		ps := e.subscribe(e.k.WakeOrchChannel())
		var got []queue.OrchestrationItem
		e.after(h, "timer promoted", func() bool {
			got = append(got, e.fetchFrom("x:b")...)
			return len(got) > 0
		})
		if got[0].InstanceID != "i1" || len(got[0].Messages) != 1 || got[0].Messages[0] != "t" {
			e.t.Fatalf("fetched %+v, want i1 with its timer", got[0])
		}
		e.create("marker", "o:marker", "start")
		if skipped := e.expectMessage(ps, e.k.WakeOrchChannel(), "o:marker"); len(skipped) != 0 {
			e.t.Fatalf("a fetch that took its promoted timer published %v", skipped)
		}
	}},
	{"namespaces_do_not_hear_each_other", func(e *env) {
		other := e.f.New(e.t)
		ps := e.subscribe(e.k.WakeOrchChannel())
		if other.Keys().WakeOrchChannel() == e.k.WakeOrchChannel() {
			e.t.Fatal("two stores share a wake channel: Factory.New must return a fresh namespace")
		}
		e.must("create elsewhere", other.CreateInstance(e.ctx, queue.CreateRequest{InstanceID: "x", Name: "n", Bucket: "o:b", Message: "m"}))
		e.create("mine", "o:mine", "start")
		if skipped := e.expectMessage(ps, e.k.WakeOrchChannel(), "o:mine"); len(skipped) != 0 {
			e.t.Fatalf("heard other namespaces: %v", skipped)
		}
	}},
}
