package basics_test

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
	"github.com/duroworker/duroworker/examples/basics"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Example runs Hello and FanOut on an in-process Redis (miniredis).
func Example() {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		fmt.Println("miniredis:", err)
		return
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := queue.New(rdb, queue.Options{Prefix: "example"})

	orchs := engine.NewOrchestrationRegistry()
	basics.Register(orchs)
	acts := engine.NewActivityRegistry()
	basics.Activities(acts)
	w, err := worker.New(store, orchs.MustBuild(), acts.MustBuild(), worker.Options{
		BlockTimeout: 200 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println("worker:", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Start(ctx); err != nil {
		fmt.Println("start worker:", err)
		return
	}
	defer w.Shutdown(context.Background())

	c := client.New(store)
	defer c.Close()
	if err := c.Start(ctx, "hello-1", basics.HelloName, "world"); err != nil {
		fmt.Println("start:", err)
		return
	}
	if err := c.StartTyped(ctx, "fan-out-1", basics.FanOutName, 10); err != nil {
		fmt.Println("start:", err)
		return
	}
	for _, id := range []string{"hello-1", "fan-out-1"} {
		st, err := c.Wait(ctx, id)
		if err != nil {
			fmt.Println("wait:", err)
			return
		}
		fmt.Println(id, st.State, st.Output)
	}
	// Output:
	// hello-1 Completed Hello, world!
	// fan-out-1 Completed 385
}
