// Command chaosworker is the worker process of the fault-injection suite in
// tests/chaos: the suite builds it, starts several, and SIGKILLs, SIGSTOPs and
// SIGTERMs them while they run the orchestrations of package shapes. It is
// not an example of a production worker (see cmd/duroworker).
//
// Every activity run appends one line to the file given by -records when it
// starts and one when it returns its result, outside Redis, so that the suite
// can count runs whatever happens to the store:
//
//	<instance>\t<label>\t<attempt>\t<node>\t<unix nanoseconds>\t<start|done>
//
// It prints "ready" on stdout once the worker has started, logs at level
// Warn to stderr, and shuts down gracefully on SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/session"
	"github.com/duroworker/duroworker/tests/chaos/shapes"
	"github.com/duroworker/duroworker/worker"
)

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "Redis address (the suite's proxy)")
	prefix := flag.String("prefix", "chaos", "key prefix")
	node := flag.String("node", "", "node id")
	records := flag.String("records", "", "file that receives one line per completed activity run")
	activityLock := flag.Duration("activity-lock", 30*time.Second, "ActivityLockTimeout")
	orchLock := flag.Duration("orch-lock", 5*time.Second, "OrchestrationLockTimeout")
	sessionLock := flag.Duration("session-lock", 30*time.Second, "Sessions.LockTimeout")
	sessionIdle := flag.Duration("session-idle", 5*time.Minute, "Sessions.IdleTimeout")
	maxSessions := flag.Int("max-sessions", 10, "Sessions.MaxSessions")
	heartbeat := flag.Duration("heartbeat", 5*time.Second, "NodeHeartbeat")
	flag.Parse()
	if *node == "" || *records == "" {
		fmt.Fprintln(os.Stderr, "chaosworker: -node and -records are required")
		os.Exit(2)
	}

	f, err := os.OpenFile(*records, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker: opening the records file:", err)
		os.Exit(2)
	}
	defer f.Close()
	record := func(ctx *engine.ActivityContext, label string, done bool) {
		phase := "start"
		if done {
			phase = "done"
		}
		// One write per line with O_APPEND: lines of concurrent runs never
		// interleave, and a SIGKILL loses nothing already written.
		line := fmt.Sprintf("%s\t%s\t%d\t%s\t%d\t%s\n", ctx.InstanceID(), label, ctx.Attempt(), *node, time.Now().UnixNano(), phase)
		if _, err := f.WriteString(line); err != nil {
			fmt.Fprintln(os.Stderr, "chaosworker: writing a record:", err)
			os.Exit(3)
		}
	}
	orchs, acts := shapes.Registries(record)

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	store := queue.New(rdb, queue.Options{Prefix: *prefix})
	w, err := worker.New(store, orchs, acts, worker.Options{
		NodeID:                   *node,
		Logger:                   log,
		ActivityLockTimeout:      *activityLock,
		OrchestrationLockTimeout: *orchLock,
		Sessions:                 session.Options{LockTimeout: *sessionLock, IdleTimeout: *sessionIdle, MaxSessions: *maxSessions},
		NodeHeartbeat:            *heartbeat,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := w.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker: starting the worker:", err)
		os.Exit(2)
	}
	fmt.Println("ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker: shutdown:", err)
	}
}
