package tests

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/worker"
)

// TestShutdownReleasesRunningActivities: a worker that must stop before its
// activity finishes releases the work item at once (without counting the
// attempt), so another worker runs it without waiting for the lock to expire.
func TestShutdownReleasesRunningActivities(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var runs atomic.Int32
		slowStarted := make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Slow", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Slow", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Slow", func(ctx *engine.ActivityContext, in string) (string, error) {
			if runs.Add(1) == 1 {
				slowStarted <- struct{}{}
				<-ctx.Done() // the first run only ends when the worker gives up on it
				return "", ctx.Err()
			}
			return "finished on attempt " + string(rune('0'+ctx.Attempt())), nil
		}).MustBuild()
		// Long activity lock: only an explicit release lets node-b run it soon.
		first := e.startWorker(orchs, acts, worker.Options{NodeID: "node-a", ActivityLockTimeout: time.Minute, ActivityCancellationGrace: 100 * time.Millisecond})
		if err := e.client.Start(context.Background(), "slow", "Slow", "x"); err != nil {
			t.Fatal(err)
		}
		<-slowStarted
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if err := first.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want the deadline error that says work was released", err)
		}
		e.startWorker(orchs, acts, worker.Options{NodeID: "node-b", ActivityLockTimeout: time.Minute})
		st := e.wait("slow")
		// Attempt 1 was released without counting, so node-b runs attempt 1 again.
		if st.Output != "finished on attempt 1" {
			t.Fatalf("%+v", st)
		}
	})
}

// TestShutdownFinishesShortWork: Shutdown with enough time lets running
// activities finish and be acknowledged.
func TestShutdownFinishesShortWork(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		started := make(chan struct{}, 1)
		orchs := engine.NewOrchestrationRegistry().Register("Short", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Short", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Short", func(ctx *engine.ActivityContext, in string) (string, error) {
			started <- struct{}{}
			time.Sleep(200 * time.Millisecond)
			return "done", nil
		}).MustBuild()
		w := e.startWorker(orchs, acts, worker.Options{})
		if err := e.client.Start(context.Background(), "short", "Short", ""); err != nil {
			t.Fatal(err)
		}
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		// The activity's completion was acked before Shutdown returned.
		rec, err := e.store.Instance(context.Background(), "short")
		if err != nil {
			t.Fatal(err)
		}
		inbox, _ := e.rdb.LLen(context.Background(), e.store.Keys().InboxKey("short")).Result()
		if rec.Status == "Completed" || inbox == 1 {
			return
		}
		t.Fatalf("activity result lost at shutdown: %+v inbox %d", rec, inbox)
	})
}

// TestLongActivityKeepsItsLock: an activity that runs for several lock
// timeouts is renewed and runs exactly once.
func TestLongActivityKeepsItsLock(t *testing.T) {
	forEachSetup(t, func(t *testing.T, e *env) {
		var runs atomic.Int32
		orchs := engine.NewOrchestrationRegistry().Register("Long", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			return ctx.ScheduleActivity("Long", in).Get()
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Long", func(ctx *engine.ActivityContext, in string) (string, error) {
			runs.Add(1)
			select {
			case <-time.After(1200 * time.Millisecond):
				return "ok", nil
			case <-ctx.Done():
				return "", errors.New("lock lost")
			}
		}).MustBuild()
		opts := worker.Options{ActivityLockTimeout: 300 * time.Millisecond}
		e.startWorker(orchs, acts, opts)
		e.startWorker(orchs, acts, opts) // a second worker that would steal an expired lock
		if err := e.client.Start(context.Background(), "long", "Long", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("long"); st.Output != "ok" {
			t.Fatalf("%+v", st)
		}
		if n := runs.Load(); n != 1 {
			t.Fatalf("activity ran %d times; renewal must keep its lock", n)
		}
	})
}
