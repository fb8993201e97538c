package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/worker"
)

// TestRedisRestartMidRun restarts a real redis-server (AOF, appendfsync
// always) while orchestrations run: workers and the client keep going once
// it is back (NOSCRIPT answered by re-sending scripts), and every
// orchestration started before the restart completes.
func TestRedisRestartMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts redis-server")
	}
	srv := redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: "always"})
	rdb := srv.Client(t)
	for _, sticky := range []bool{true, false} {
		t.Run(fmt.Sprintf("sticky=%v", sticky), func(t *testing.T) {
			if err := rdb.FlushDB(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, rdb, sticky)
			orchs := engine.NewOrchestrationRegistry().Register("Steps", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				total := 0
				for i := 0; i < 5; i++ {
					if _, err := ctx.ScheduleTimer(100 * time.Millisecond).Get(); err != nil {
						return "", err
					}
					v, err := engine.ScheduleActivityTyped[int](ctx, "Inc", total).Get()
					if err != nil {
						return "", err
					}
					total = v
				}
				return fmt.Sprint(total), nil
			}).MustBuild()
			ab := engine.NewActivityRegistry()
			engine.RegisterActivityTyped(ab, "Inc", func(ctx *engine.ActivityContext, n int) (int, error) { return n + 1, nil })
			e.startWorker(orchs, ab.MustBuild(), worker.Options{})
			ctx := context.Background()
			const n = 10
			for i := 0; i < n; i++ {
				if err := e.client.Start(ctx, fmt.Sprintf("r%d", i), "Steps", ""); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(150 * time.Millisecond) // let them get going, then pull the plug
			srv.Restart(t)
			var ids []string
			for i := 0; i < n; i++ {
				ids = append(ids, fmt.Sprintf("r%d", i))
			}
			ended := e.waitAll(ids...)
			for _, id := range ids {
				if st := ended[id]; st.State != client.StateCompleted || st.Output != "5" {
					t.Fatalf("%s: %+v", id, st)
				}
			}
		})
	}
}

// TestRedisUnavailableForAWhile stops redis-server for a second: workers
// log and back off without crashing, and resume when it returns.
func TestRedisUnavailableForAWhile(t *testing.T) {
	if testing.Short() {
		t.Skip("stops and starts redis-server")
	}
	srv := redistest.StartWith(t, redistest.Config{AppendOnly: true, AppendFsync: "always"})
	rdb := srv.Client(t)
	e := newEnv(t, rdb, true)
	orchs, acts := echoRegistries()
	e.startWorker(orchs, acts, worker.Options{})
	ctx := context.Background()
	if err := e.client.Start(ctx, "before", "Echo", "1"); err != nil {
		t.Fatal(err)
	}
	e.wait("before")
	srv.Stop(t)
	if err := e.client.Start(ctx, "during", "Echo", "2"); err == nil {
		t.Fatal("Start succeeded with Redis down")
	}
	time.Sleep(time.Second) // workers see errors and back off
	srv.Restart(t)
	if err := e.client.Start(ctx, "after", "Echo", "3"); err != nil {
		t.Fatal(err)
	}
	if st := e.wait("after"); st.Output != "3" {
		t.Fatalf("%+v", st)
	}
}
