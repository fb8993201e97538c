package queue_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duroworker/duroworker/client"
	"github.com/duroworker/duroworker/engine"
	"github.com/duroworker/duroworker/internal/redistest"
	"github.com/duroworker/duroworker/queue"
	"github.com/duroworker/duroworker/worker"
	"github.com/redis/go-redis/v9"
)

// scriptCounter counts round trips and EVALSHA/EVAL calls per script name.
type scriptCounter struct {
	names map[string]string
	mu    sync.Mutex
	calls map[string]int64
	rt    atomic.Int64
}

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.rt.Add(1)
		c.note(cmd)
		return next(ctx, cmd)
	}
}

func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.rt.Add(1)
		for _, cmd := range cmds {
			c.note(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *scriptCounter) note(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	if (name == "evalsha" || name == "eval") && len(cmd.Args()) > 1 {
		if n, ok := c.names[fmt.Sprint(cmd.Args()[1])]; ok {
			name = n
		}
	}
	c.mu.Lock()
	c.calls[name]++
	c.mu.Unlock()
}

func commandStats(t *testing.T, rdb *redis.Client) map[string]int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, ok2 := strings.CutPrefix(k, "cmdstat_")
		if !ok || !ok2 {
			continue
		}
		for _, part := range strings.Split(v, ",") {
			if n, ok := strings.CutPrefix(part, "calls="); ok {
				out[name], _ = strconv.ParseInt(n, 10, 64)
			}
		}
	}
	return out
}

// TestCommandsPerOrchestration is a measurement, not a check of speed: it
// runs N one-activity orchestrations through a real worker on a real
// redis-server, one at a time (start, Wait) and then all at once (drain),
// then N/10 orchestrations of 10 parallel activities each, all at once
// (fanout: completions reach instances that are locked or already waiting),
// and logs Redis commands per orchestration from INFO commandstats (the
// commands that scripts run included), script calls per orchestration and
// round trips per orchestration. It asserts only that every orchestration
// completed. Run with DW_COUNT=1 (N from DW_COUNT_N, default 200):
//
//	DW_COUNT=1 go test -count=1 -run TestCommandsPerOrchestration -v ./queue/
func TestCommandsPerOrchestration(t *testing.T) {
	if os.Getenv("DW_COUNT") == "" {
		t.Skip("measurement: set DW_COUNT=1 to run")
	}
	n := 200
	if s := os.Getenv("DW_COUNT_N"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	srv := redistest.Start(t)
	base := srv.Client(t)
	for _, mode := range []string{"one-at-a-time", "drain", "fanout"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sc := &scriptCounter{names: queue.ScriptNamesBySHA(), calls: map[string]int64{}}
			opt := *base.Options()
			opt.PushNotificationProcessor = nil
			rdb := redis.NewClient(&opt)
			rdb.AddHook(sc)
			defer rdb.Close()
			prefix := "cnt-" + mode
			store := queue.New(rdb, queue.Options{Prefix: prefix})
			ob := engine.NewOrchestrationRegistry()
			ob.Register("one", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				return ctx.ScheduleActivity("noop", in).Get()
			})
			if mode == "fanout" { // registered only here: every name adds buckets each fetch reads
				ob.Register("fan", func(ctx *engine.OrchestrationContext, in string) (string, error) {
					fs := make([]*engine.Future[string], 10)
					for i := range fs {
						fs[i] = ctx.ScheduleActivity("noop", in)
					}
					_, err := engine.JoinAll(ctx, fs)
					return in, err
				})
			}
			ab := engine.NewActivityRegistry()
			ab.Register("noop", func(ctx *engine.ActivityContext, in string) (string, error) { return in, nil })
			w, err := worker.New(store, ob.MustBuild(), ab.MustBuild(), worker.Options{NodeID: "cnt-" + mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			cl := client.New(store)
			defer cl.Close()
			// warm up: the worker's first turn, the client's subscription
			if err := cl.Start(ctx, "warm", "one", "x"); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Wait(ctx, "warm"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			sc.mu.Lock()
			sc.calls = map[string]int64{}
			sc.mu.Unlock()
			sc.rt.Store(0)
			before := commandStats(t, base)
			name, count := "one", n
			if mode == "fanout" {
				name, count = "fan", max(n/10, 1)
			}
			ids := make([]string, count)
			for i := range ids {
				ids[i] = fmt.Sprintf("o%d", i)
			}
			if mode == "one-at-a-time" {
				for _, id := range ids {
					if err := cl.Start(ctx, id, "one", "x"); err != nil {
						t.Fatal(err)
					}
					st, err := cl.Wait(ctx, id)
					if err != nil || st.State != client.StateCompleted {
						t.Fatalf("%s: %v %v", id, st.State, err)
					}
				}
			} else {
				for _, id := range ids {
					if err := cl.Start(ctx, id, name, "x"); err != nil {
						t.Fatal(err)
					}
				}
				for st, err := range cl.WaitMany(ctx, ids) {
					if err != nil || st.State != client.StateCompleted {
						t.Fatalf("%v %v", st.State, err)
					}
				}
			}
			after := commandStats(t, base)
			sc.mu.Lock()
			sent := sc.calls
			sc.calls = map[string]int64{}
			sc.mu.Unlock()
			rt := sc.rt.Load()
			if err := w.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			per := func(v int64) string { return strconv.FormatFloat(float64(v)/float64(len(ids)), 'f', 2, 64) }
			var total int64
			var lines []string
			for name, c := range after {
				d := c - before[name]
				if name == "info" {
					d-- // the INFO that read before
				}
				if d <= 0 {
					continue
				}
				total += d
				lines = append(lines, fmt.Sprintf("  redis %-16s %8s", name, per(d)))
			}
			sort.Strings(lines)
			var scripts []string
			for name, c := range sent {
				scripts = append(scripts, fmt.Sprintf("  sent  %-16s %8s", name, per(c)))
			}
			sort.Strings(scripts)
			t.Logf("%s, N=%d: %s Redis commands/orch (scripts' inner calls included), %s round trips/orch\n%s\n%s",
				mode, len(ids), per(total), per(rt), strings.Join(scripts, "\n"), strings.Join(lines, "\n"))
		})
	}
}
