// Command workerproc is a worker process for the multi-process fault tests
// in package tests: they start it, SIGKILL or SIGTERM it, and start it again.
// It is not an example of a production worker (see cmd/duroworker).
//
// Orchestrations: "Slow" runs one activity "Sleep" (its input is a duration)
// and returns its result; "Loop" continues as new until its counter reaches
// a target, sleeping on a durable timer each round; each registered version
// of "Loop" appends its version to the input. Every activity run appends
// "<node>:<instance>:<attempt>" to the Redis list "<prefix>:runs", so tests
// can count executions across processes.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	prefix := flag.String("prefix", "dw", "key prefix")
	node := flag.String("node", "proc", "node id")
	versions := flag.String("versions", "1.0.0", "comma-separated versions of Loop to register")
	activityLock := flag.Duration("activity-lock", 30*time.Second, "activity lock timeout")
	loopTimer := flag.Duration("loop-timer", 100*time.Millisecond, "durable timer of each Loop round")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	store := queue.New(rdb, queue.Options{Prefix: *prefix})
	runs := "{" + *prefix + "}:test:runs"

	ob := engine.NewOrchestrationRegistry().Register("Slow", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		return ctx.ScheduleActivity("Sleep", in).Get()
	})
	for _, v := range strings.Split(*versions, ",") {
		version := v
		ob.RegisterVersioned("Loop", version, func(ctx *engine.OrchestrationContext, in string) (string, error) {
			out := in + " " + version
			if strings.Count(out, " ") >= 8 {
				return out, nil
			}
			if _, err := ctx.ScheduleTimer(*loopTimer).Get(); err != nil {
				return "", err
			}
			if _, err := ctx.ScheduleActivity("Sleep", "10ms").Get(); err != nil {
				return "", err
			}
			return ctx.ContinueAsNew(out)
		})
	}
	orchs := ob.MustBuild()
	acts := engine.NewActivityRegistry().Register("Sleep", func(ctx *engine.ActivityContext, in string) (string, error) {
		d, err := time.ParseDuration(in)
		if err != nil {
			return "", err
		}
		rdb.RPush(ctx, runs, fmt.Sprintf("%s:%s:%d", *node, ctx.InstanceID(), ctx.Attempt()))
		select {
		case <-time.After(d):
			return "slept " + in + " on " + *node, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}).MustBuild()

	w, err := worker.New(store, orchs, acts, worker.Options{
		NodeID: *node, Logger: log, ActivityLockTimeout: *activityLock,
		BlockTimeout: 200 * time.Millisecond, NodeHeartbeat: 200 * time.Millisecond,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = w.Shutdown(sctx)
}
