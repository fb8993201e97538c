package healthmonitor_test

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
	"github.com/duroworker/duroworker/examples/healthmonitor"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// Example runs one cycle of the health monitor on an in-process Redis
// (miniredis): a worker with every version registered runs the latest one.
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

	orchs := healthmonitor.Register(engine.NewOrchestrationRegistry(), healthmonitor.LatestVersion).MustBuild()
	acts := healthmonitor.Activities(engine.NewActivityRegistry()).MustBuild()
	w, err := worker.New(store, orchs, acts, worker.Options{
		NodeID:       "example-node",
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
	in := healthmonitor.Input{Target: "db-1", IntervalMS: 10, Cycles: 1}
	if err := c.StartTyped(ctx, "monitor-db-1", healthmonitor.Name, in); err != nil {
		fmt.Println("start:", err)
		return
	}
	st, err := c.Wait(ctx, "monitor-db-1")
	if err != nil {
		fmt.Println("wait:", err)
		return
	}
	fmt.Println(st.State, st.Version)
	fmt.Println(st.Output)
	// Output:
	// Completed 1.0.2
	// [v1.0.2] 1 of 1 cycles done for db-1, last check: healthy: db-1
}
