package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// The seed's pattern: one stable name, one function per version. New
// executions run the latest version unless a policy pins one.
func ExampleNewOrchestrationRegistry() {
	const monitor = "my-app::orchestration::monitor" // never changes

	monitorV1 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		ctx.TraceInfo("[v1.0.0] Starting...")
		if _, err := ctx.ScheduleTimer(time.Minute).Get(); err != nil {
			return "", err
		}
		return ctx.ContinueAsNew(in)
	}
	monitorV2 := func(ctx *engine.OrchestrationContext, in string) (string, error) {
		ctx.TraceInfo("[v1.0.1] Starting...")
		if _, err := ctx.ScheduleTimer(5 * time.Minute).Get(); err != nil {
			return "", err
		}
		return ctx.ContinueAsNew(in)
	}

	latest := engine.NewOrchestrationRegistry().
		Register(monitor, monitorV1).                   // 1.0.0
		RegisterVersioned(monitor, "1.0.1", monitorV2). // explicit version
		MustBuild()
	_, v, _ := latest.Resolve(monitor, "")
	fmt.Println("latest policy starts", v)

	pinned := engine.NewOrchestrationRegistry().
		Register(monitor, monitorV1).
		RegisterVersioned(monitor, "1.0.1", monitorV2).
		SetPolicy(monitor, engine.Exact("1.0.0")).
		MustBuild()
	_, v, _ = pinned.Resolve(monitor, "")
	fmt.Println("exact policy starts", v)

	_, err := engine.NewOrchestrationRegistry().
		RegisterVersioned(monitor, "2.0.0", monitorV2).
		RegisterVersioned(monitor, "1.5.0", monitorV1).
		Build()
	fmt.Println(err)
	// Output:
	// latest policy starts 1.0.1
	// exact policy starts 1.0.0
	// building orchestration registry: orchestration "my-app::orchestration::monitor": version 1.5.0 registered after 2.0.0 (versions must increase)
}

// Scheduling calls take options and return futures, so a retried activity
// composes with Select and Join like any other. This runs on a worker with
// an embedded Redis; "flaky" fails twice before it succeeds.
func ExampleOrchestrationContext_ScheduleActivity() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := queue.New(rdb, queue.Options{Prefix: "example"})

	orchs := engine.NewOrchestrationRegistry().
		Register("Order", func(ctx *engine.OrchestrationContext, id string) (string, error) {
			retry := engine.WithRetry(engine.NewRetryPolicy(5).WithBackoff(engine.FixedBackoff(10 * time.Millisecond)))
			charge := ctx.ScheduleActivity("flaky", id, retry, engine.WithTimeout(time.Minute))
			deadline := ctx.ScheduleTimer(time.Hour)
			if ctx.Select(charge, deadline) == 1 {
				return "", errors.New("no charge within the hour") // charge has been cancelled
			}
			receipt, err := charge.Get()
			if err != nil {
				return "", err
			}
			items := []*engine.Future[string]{
				ctx.ScheduleActivity("pack", "book"),
				ctx.ScheduleActivity("pack", "pen"),
			}
			packed, err := engine.JoinAll(ctx, items)
			if err != nil {
				return "", err
			}
			return receipt + "; " + strings.Join(packed, ", "), nil
		}).
		MustBuild()
	var calls atomic.Int32
	acts := engine.NewActivityRegistry().
		Register("flaky", func(ctx *engine.ActivityContext, id string) (string, error) {
			if calls.Add(1) <= 2 {
				return "", errors.New("payment service unavailable")
			}
			return "charged " + id, nil
		}).
		Register("pack", func(ctx *engine.ActivityContext, item string) (string, error) {
			return "packed " + item, nil
		}).
		MustBuild()

	w, _ := worker.New(store, orchs, acts, worker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	_ = w.Start(ctx)
	defer func() { _ = w.Shutdown(ctx) }()

	c := client.New(store)
	defer c.Close()
	_ = c.Start(ctx, "order-1", "Order", "order-1")
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.Wait(wctx, "order-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(st.State, st.Output)
	fmt.Println("attempts of flaky:", calls.Load())
	// Output:
	// Completed charged order-1; packed book, packed pen
	// attempts of flaky: 3
}
