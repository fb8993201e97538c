package queuetest

import (
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
