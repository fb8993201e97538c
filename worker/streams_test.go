package worker

import (
	"context"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
)

// TestIdleActivityDispatcherWakesOnItsStream: nothing is published for new
// activity work any more; an idle activity dispatcher is blocked in
// XREADGROUP on its buckets' streams, and the XADD of the ack that
// schedules an activity wakes it. With a BlockTimeout of ten minutes, the
// activities below only run within the test's deadline through that read.
func TestIdleActivityDispatcherWakesOnItsStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	store := queue.New(rdb, queue.Options{Prefix: "streams"})
	orchs := engine.NewOrchestrationRegistry().
		Register("Twice", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			a, err := ctx.ScheduleActivity("Up", in).Get()
			if err != nil {
				return "", err
			}
			return ctx.ScheduleActivity("Up", a).Get()
		}).MustBuild()
	acts := engine.NewActivityRegistry().
		Register("Up", func(_ *engine.ActivityContext, in string) (string, error) { return in + "!", nil }).
		MustBuild()
	w, err := New(store, orchs, acts, Options{Logger: quietLogger(), NodeID: "n1", BlockTimeout: 10 * time.Minute})
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
		if err := w.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	// Orchestrations still wake on pub/sub: wait for the subscription, so
	// that only the activity side depends on the stream read.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		n, err := rdb.PubSubNumSub(ctx, store.Keys().WakeOrchChannel()).Result()
		if err == nil && n[store.Keys().WakeOrchChannel()] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not subscribe to wake:orch")
		}
	}
	c := client.New(store)
	defer c.Close()
	for _, id := range []string{"i1", "i2"} {
		// The dispatcher has gone idle (blocked) before each start.
		time.Sleep(200 * time.Millisecond)
		if err := c.Start(ctx, id, "Twice", "x"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		st, err := c.Wait(wctx, id)
		cancel()
		if err != nil || st.Output != `x!!` && st.Output != `"x!!"` {
			t.Fatalf("%s: %+v, %v", id, st, err)
		}
	}
}
