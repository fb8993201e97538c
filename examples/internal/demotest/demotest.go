// Package demotest holds what the tests of the example programs share: a
// test that runs a program's scenario, and the plumbing of a runnable
// Example (an in-process Redis, one worker node and a client). It is not
// part of duroworker's API.
package demotest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
)

// RedisEnv names the environment variable that points the program tests at
// a real Redis (for example redis://localhost:6379/0) instead of an
// in-process miniredis.
const RedisEnv = "DUROWORKER_EXAMPLES_REDIS"

// Run runs an example program's run function (its flags and output, its
// exit code) and expects exit code 0: on an in-process miniredis, or on the
// Redis at $DUROWORKER_EXAMPLES_REDIS when it is set. It logs the program's
// output.
func Run(t *testing.T, run func(args []string, out io.Writer) int) {
	t.Helper()
	var args []string
	if url := os.Getenv(RedisEnv); url != "" {
		args = []string{"-redis", url}
	}
	var out bytes.Buffer
	if code := run(args, &out); code != 0 {
		t.Fatalf("exit code %d, output:\n%s", code, out.String())
	}
	t.Log("\n" + out.String())
}

// Example runs use with a client of one worker node serving orchs and acts
// on an in-process Redis (miniredis), within 30 seconds. Options left zero
// get example values: idle dispatchers block for 200 ms and the node logs
// nothing. Like an Example function, it prints what went wrong (the error
// use returned, or why the node could not start) instead of failing.
func Example(orchs *engine.OrchestrationRegistry, acts *engine.ActivityRegistry, opts worker.Options, use func(ctx context.Context, c *client.Client) error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		fmt.Println("miniredis:", err)
		return
	}
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := queue.New(rdb, queue.Options{Prefix: "example"})

	if opts.BlockTimeout == 0 {
		opts.BlockTimeout = 200 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w, err := worker.New(store, orchs, acts, opts)
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
	if err := use(ctx, c); err != nil {
		fmt.Println(err)
	}
}
