package worker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestIdleWorkerWakesForEveryDelivery is a liveness check of the
// orchestration wake-ups (scripts publish only when a ready entry is added
// or a lock is released): a worker whose BlockTimeout and lock timeouts are
// one minute, so that only a wake-up (or a timer's NextWake) can make it
// fetch in time, runs every
// step of orchestrations that it waits for while idle on empty buckets: a
// start, an activity completion, a timer, a queued event, completions of a
// fan-out that reach the instance while its turn runs or while it waits,
// and a second start once everything is idle again. Each step has 30 s, half
// the block timeout: a lost wake-up fails the test instead of slowing it.
func TestIdleWorkerWakesForEveryDelivery(t *testing.T) {
	srv := redistest.Start(t)
	store := queue.New(srv.Client(t), queue.Options{Prefix: "wk"})
	c := client.New(store)
	defer c.Close()
	ready := make(chan string, 4)
	acts := engine.NewActivityRegistry().
		Register("Echo", func(ctx *engine.ActivityContext, in string) (string, error) { return in, nil }).
		Register("Ready", func(ctx *engine.ActivityContext, in string) (string, error) {
			ready <- in
			return in, nil
		}).MustBuild()
	orchs := engine.NewOrchestrationRegistry().Register("Flow", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		if _, err := ctx.ScheduleActivity("Echo", in).Get(); err != nil {
			return "", err
		}
		if _, err := ctx.ScheduleTimer(50 * time.Millisecond).Get(); err != nil {
			return "", err
		}
		if _, err := ctx.ScheduleActivity("Ready", in).Get(); err != nil {
			return "", err
		}
		ev, err := ctx.DequeueEvent("go").Get()
		if err != nil {
			return "", err
		}
		fs := make([]*engine.Future[string], 5)
		for i := range fs {
			fs[i] = ctx.ScheduleActivity("Echo", fmt.Sprint(i))
		}
		if _, err := engine.JoinAll(ctx, fs); err != nil {
			return "", err
		}
		return in + ":" + ev, nil
	}).Register("Echo", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return in, nil
	}).MustBuild()
	// The lock timeout is long too: a fetch's NextWake includes the deadline
	// of the lock it just took, which would wake the dispatcher early.
	w, err := New(store, orchs, acts, Options{Logger: quietLogger(), BlockTimeout: time.Minute,
		OrchestrationLockTimeout: time.Minute, ActivityLockTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = w.Shutdown(sctx)
	}()
	// idle lets the dispatchers come back empty and wait.
	idle := func() { time.Sleep(300 * time.Millisecond) }
	wait := func(id, want string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		st, err := c.Wait(wctx, id)
		if err != nil || st.State != client.StateCompleted || st.Output != want {
			t.Fatalf("%s: %+v %v (want completed with %q)", id, st, err, want)
		}
	}

	idle()
	if err := c.Start(ctx, "f1", "Flow", "f1"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("f1 did not reach its Ready activity within 30 s (start, completion or timer wake-up lost)")
	}
	idle()
	if err := c.EnqueueEvent(ctx, "f1", "go", "ev"); err != nil {
		t.Fatal(err)
	}
	wait("f1", "f1:ev")

	idle()
	if err := c.Start(ctx, "e1", "Echo", "e1"); err != nil {
		t.Fatal(err)
	}
	wait("e1", "e1")
}
