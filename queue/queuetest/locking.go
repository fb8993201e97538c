package queuetest

import (
	"fmt"
	"sync"
	"time"

	"github.com/duroworker/duroworker/queue"
)

var lockingCases = []testCase{
	{"fetch_takes_an_exclusive_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		if it.InstanceID != "i1" || it.Token == "" || it.Attempts != 1 || !it.Instance.Locked {
			e.t.Fatalf("item = %+v", it)
		}
		e.fetchNone("o:b")
		if r := e.instance("i1"); !r.Locked {
			e.t.Fatalf("instance not locked: %+v", r)
		}
	}},
	{"tokens_are_unique", func(e *env) {
		for i := range 4 {
			e.create(fmt.Sprintf("i%d", i), "o:b", "start")
		}
		seen := map[string]bool{}
		res := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 2})
		res2 := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 2})
		for _, it := range append(res.Items, res2.Items...) {
			if seen[it.Token] {
				e.t.Fatalf("token %q handed out twice", it.Token)
			}
			seen[it.Token] = true
		}
		if len(seen) != 4 {
			e.t.Fatalf("%d tokens, want 4", len(seen))
		}
		// A token fences only its own instance.
		a, b := res.Items[0], res.Items[1]
		err := e.ackErr(queue.OrchestrationAck{InstanceID: a.InstanceID, Token: b.Token})
		wantErr(e.t, "ack with another instance's token", err, queue.ErrLockLost)
		// A new lock of the same instance gets a new token.
		e.ack(queue.OrchestrationAck{InstanceID: a.InstanceID, Token: a.Token})
		again := e.turn(a.InstanceID, "m")
		if again.Token == a.Token {
			e.t.Fatal("second lock reused the first token")
		}
	}},
	{"concurrent_fetchers_never_share_an_instance", func(e *env) {
		const n = 10
		for i := range n {
			e.create(fmt.Sprintf("i%02d", i), "o:b", "start")
		}
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{
					Buckets: []string{"o:b"}, Max: 3, LockTimeout: longLock})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for _, it := range res.Items {
					got[it.InstanceID]++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			e.t.Fatalf("concurrent fetch: %v", err)
		}
		for id, c := range got {
			if c != 1 {
				e.t.Fatalf("%s locked by %d fetchers", id, c)
			}
		}
		if len(got) != n {
			e.t.Fatalf("%d instances locked in total, want %d (none lost to a race)", len(got), n)
		}
	}},
	{"messages_arriving_during_the_lock_wait_for_it", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.enqueue("i1", "late")
		e.fetchNone("o:b") // the new message does not make a locked instance fetchable
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		next := e.fetchOne("o:b")
		wantEqual(e.t, "batch after ack", []string{"late"}, next.Messages)
	}},
	{"ack_deletes_only_the_fetched_batch", func(e *env) {
		e.create("i1", "o:b", "m1")
		e.enqueue("i1", "m2")
		it := e.fetchOne("o:b")
		wantEqual(e.t, "batch", []string{"m1", "m2"}, it.Messages)
		e.enqueue("i1", "m3")
		e.enqueue("i1", "m4")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		wantEqual(e.t, "left after ack", []string{"m3", "m4"}, e.fetchOne("o:b").Messages)
	}},
	{"ack_releases_the_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		if r := e.instance("i1"); r.Locked {
			e.t.Fatalf("locked after ack: %+v", r)
		}
		e.fetchNone("o:b") // nothing to do
		e.enqueue("i1", "m")
		if got := e.fetchOne("o:b"); got.Attempts != 1 {
			e.t.Fatalf("attempts after a released lock = %d, want 1", got.Attempts)
		}
	}},
	{"abandon_releases_the_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		e.must("abandon", e.s.AbandonOrchestration(e.ctx, "i1", it.Token, 0, true))
		if r := e.instance("i1"); r.Locked {
			e.t.Fatalf("locked after abandon: %+v", r)
		}
		again := e.fetchOne("o:b")
		if again.Token == it.Token {
			e.t.Fatal("refetch reused the abandoned token")
		}
		wantEqual(e.t, "batch after abandon", []string{"start"}, again.Messages)
	}},
	{"only_the_holder_can_renew_or_abandon", func(e *env) {
		e.create("i1", "o:b", "start")
		it := e.fetchOne("o:b")
		wantErr(e.t, "renew with a wrong token", e.s.RenewOrchestrationLock(e.ctx, "i1", "nope", longLock), queue.ErrLockLost)
		wantErr(e.t, "abandon with a wrong token", e.s.AbandonOrchestration(e.ctx, "i1", "nope", 0, false), queue.ErrLockLost)
		if r := e.instance("i1"); !r.Locked || r.Attempts != 1 {
			e.t.Fatalf("after refused renew/abandon: %+v", r)
		}
		e.fetchNone("o:b")
		e.must("renew", e.s.RenewOrchestrationLock(e.ctx, "i1", it.Token, longLock))
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
	}},
	{"locks_are_per_instance", func(e *env) {
		e.create("i1", "o:b", "start")
		e.tick()
		e.create("i2", "o:b", "start")
		a := e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1}).Items
		if len(a) != 1 || a[0].InstanceID != "i1" {
			e.t.Fatalf("first fetch = %v, want i1", itemIDs(a))
		}
		b := e.fetchOne("o:b")
		if b.InstanceID != "i2" {
			e.t.Fatalf("second fetch = %s, want i2", b.InstanceID)
		}
	}},
	{"concurrent_workers_process_every_message_once_in_order", func(e *env) {
		const instances, msgs, workers = 3, 15, 4
		for i := range instances {
			e.start(fmt.Sprintf("i%d", i), "o:b")
		}
		var mu sync.Mutex
		processed := map[string][]string{}
		total := 0
		done := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, workers+instances)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(30 * time.Second)
				for time.Now().Before(deadline) {
					select {
					case <-done:
						return
					default:
					}
					res, err := e.s.FetchOrchestrations(e.ctx, queue.FetchOrchestrationsRequest{
						Buckets: []string{"o:b"}, Max: 2, LockTimeout: longLock})
					if err != nil {
						errs <- err
						return
					}
					for _, it := range res.Items {
						mu.Lock()
						processed[it.InstanceID] = append(processed[it.InstanceID], it.Messages...)
						total += len(it.Messages)
						mu.Unlock()
						if err := e.s.AckOrchestration(e.ctx, queue.OrchestrationAck{InstanceID: it.InstanceID,
							Token: it.Token, ExecutionID: 1, Status: queue.StatusRunning}); err != nil {
							errs <- err
							return
						}
					}
					if len(res.Items) == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
		}
		var pw sync.WaitGroup
		for i := range instances {
			pw.Add(1)
			go func() {
				defer pw.Done()
				for j := range msgs {
					if err := e.s.Enqueue(e.ctx, fmt.Sprintf("i%d", i), fmt.Sprintf("m%02d", j)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		pw.Wait()
		e.eventually("all messages processed", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return total >= instances*msgs || len(errs) > 0
		})
		close(done)
		wg.Wait()
		close(errs)
		for err := range errs {
			e.t.Fatalf("worker: %v", err)
		}
		for i := range instances {
			var want []string
			for j := range msgs {
				want = append(want, fmt.Sprintf("m%02d", j))
			}
			wantEqual(e.t, fmt.Sprintf("messages of i%d", i), want, processed[fmt.Sprintf("i%d", i)])
		}
	}},
	{"instance_record_reports_the_lock", func(e *env) {
		e.create("i1", "o:b", "start")
		if r := e.instance("i1"); r.Locked || r.Attempts != 0 {
			e.t.Fatalf("new instance = %+v", r)
		}
		it := e.fetchOne("o:b")
		if !it.Instance.Locked || it.Instance.Attempts != 1 {
			e.t.Fatalf("fetched record = %+v", it.Instance)
		}
		e.ack(queue.OrchestrationAck{InstanceID: "i1", Token: it.Token})
		if r := e.instance("i1"); r.Locked || r.Attempts != 0 {
			e.t.Fatalf("after ack = %+v", r)
		}
	}},
	{"locked_instance_counts_as_locked_in_queue_depths", func(e *env) {
		e.create("i1", "o:b", "start")
		e.create("i2", "o:b", "start")
		e.fetch(queue.FetchOrchestrationsRequest{Buckets: []string{"o:b"}, Max: 1})
		d, ok := depth(e.depths().Orchestrations, "o:b")
		if !ok || d.Ready != 1 || d.Locked != 1 || d.Delayed != 0 {
			e.t.Fatalf("depth of o:b = %+v (listed %v), want 1 ready 1 locked", d, ok)
		}
	}},
}
