package tests

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/worker"
)

// TestStickyCacheRunsEachStepOnce counts how often orchestration code runs:
// with the sticky cache a 100-step orchestration runs each step once (a turn
// costs only its new events); replaying from history runs step i on every
// later turn too. Both produce the same output.
func TestStickyCacheRunsEachStepOnce(t *testing.T) {
	const steps = 100
	forEachSetup(t, func(t *testing.T, e *env) {
		var executed atomic.Int64
		orchs := engine.NewOrchestrationRegistry().Register("Long", func(ctx *engine.OrchestrationContext, in string) (string, error) {
			sum := 0
			for i := 0; i < steps; i++ {
				executed.Add(1)
				v, err := ctx.ScheduleActivity("Id", strconv.Itoa(i)).Get()
				if err != nil {
					return "", err
				}
				n, _ := strconv.Atoi(v)
				sum += n
			}
			return strconv.Itoa(sum), nil
		}).MustBuild()
		acts := engine.NewActivityRegistry().Register("Id", func(ctx *engine.ActivityContext, in string) (string, error) {
			return in, nil
		}).MustBuild()
		e.startWorker(orchs, acts, worker.Options{})
		if err := e.client.Start(context.Background(), "long", "Long", ""); err != nil {
			t.Fatal(err)
		}
		if st := e.wait("long"); st.Output != strconv.Itoa(steps*(steps-1)/2) {
			t.Fatalf("%+v", st)
		}
		got := executed.Load()
		if e.sticky && got != steps {
			t.Fatalf("sticky: loop body ran %d times for %d steps; the cache must avoid replay", got, steps)
		}
		if !e.sticky && got < steps*steps/2 {
			t.Fatalf("replay: loop body ran only %d times; every turn must replay from history", got)
		}
	})
}

// TestIdleWorkerBlocks checks that an idle worker blocks instead of polling:
// over three seconds it sends only a handful of commands.
func TestIdleWorkerBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server")
	}
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	e := newEnv(t, rdb, true)
	orchs, acts := echoRegistries()
	e.startWorker(orchs, acts, worker.Options{BlockTimeout: worker.DefaultBlockTimeout})
	time.Sleep(500 * time.Millisecond) // start-up traffic
	before := commandsProcessed(t, rdb)
	time.Sleep(3 * time.Second)
	sent := commandsProcessed(t, rdb) - before - 1 // minus our own INFO
	t.Logf("idle worker sent %d commands in 3s", sent)
	if sent > 15 {
		t.Fatalf("idle worker sent %d commands in 3s; it should block (at most 5/s)", sent)
	}
}

// commandsProcessed reads total_commands_processed from a real Redis.
func commandsProcessed(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no total_commands_processed in INFO")
	return 0
}

// scriptCalls reads how many EVAL/EVALSHA calls a real Redis served since
// its stats were last reset (the commands scripts run inside are not
// round trips).
func scriptCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, line := range strings.Split(info, "\r\n") {
		for _, cmd := range []string{"cmdstat_evalsha:calls=", "cmdstat_eval:calls="} {
			if v, ok := strings.CutPrefix(line, cmd); ok {
				n, _ := strconv.Atoi(strings.SplitN(v, ",", 2)[0])
				total += n
			}
		}
	}
	return total
}
