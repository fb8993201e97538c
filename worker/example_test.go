package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Example runs an orchestration with one activity end to end: a worker
// serves the registries, a client starts the instance and waits for it.
func Example() {
	mr, _ := miniredis.Run() // any Redis works; tests use a real redis-server too
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := queue.New(rdb, queue.Options{Prefix: "example"})

	orchs := engine.NewOrchestrationRegistry().
		Register("Greeter", func(ctx *engine.OrchestrationContext, name string) (string, error) {
			return ctx.ScheduleActivity("Greet", name).Get()
		}).
		MustBuild()
	acts := engine.NewActivityRegistry().
		Register("Greet", func(ctx *engine.ActivityContext, name string) (string, error) {
			return "hello, " + name, nil
		}).
		MustBuild()

	w, err := worker.New(store, orchs, acts, worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = w.Shutdown(sctx)
	}()

	c := client.New(store)
	defer c.Close()
	if err := c.Start(ctx, "greeting-1", "Greeter", "world"); err != nil {
		panic(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := c.Wait(wctx, "greeting-1")
	if err != nil {
		panic(err)
	}
	info, _ := c.GetInstanceInfo(ctx, "greeting-1")
	fmt.Println(st.State, st.Output, info.OrchestrationVersion)
	// Output: Completed hello, world 1.0.0
}
