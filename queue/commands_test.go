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
// round trips per orchestration, with eager dispatch off and on
// (worker.Options.DisableEagerDispatch). It asserts only that every
// orchestration completed. Run with DW_COUNT=1 (N from DW_COUNT_N,
// default 200):
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
	for _, run := range []string{"one-at-a-time", "drain", "fanout", "one-at-a-time/no-eager", "drain/no-eager", "fanout/no-eager"} {
		mode, noEager := strings.CutSuffix(run, "/no-eager")
		t.Run(run, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			sc := &scriptCounter{names: queue.ScriptNamesBySHA(), calls: map[string]int64{}}
			opt := *base.Options()
			opt.PushNotificationProcessor = nil
			rdb := redis.NewClient(&opt)
			rdb.AddHook(sc)
			defer rdb.Close()
			prefix := "cnt-" + strings.ReplaceAll(run, "/", "-")
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
			w, err := worker.New(store, ob.MustBuild(), ab.MustBuild(), worker.Options{NodeID: prefix, DisableEagerDispatch: noEager})
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
				run, len(ids), per(total), per(rt), strings.Join(scripts, "\n"), strings.Join(lines, "\n"))
		})
	}
}

// fetchCounter counts the fetch scripts a client sends, told apart by
// their keys (fetch_orch.lua: prefix, timers, fr:o:...; fetch_work.lua:
// prefix, fr:w:..., work:...).
type fetchCounter struct {
	orch, work atomic.Int64
}

func (c *fetchCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *fetchCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.note(cmd)
		return next(ctx, cmd)
	}
}

func (c *fetchCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			c.note(cmd)
		}
		return next(ctx, cmds)
	}
}

func (c *fetchCounter) note(cmd redis.Cmder) {
	name := strings.ToLower(cmd.Name())
	args := cmd.Args()
	if (name != "evalsha" && name != "eval") || len(args) < 6 {
		return
	}
	k1, k2 := fmt.Sprint(args[4]), fmt.Sprint(args[5])
	switch {
	case strings.Contains(k1, "}:fr:w:"):
		c.work.Add(1)
	case strings.HasSuffix(k1, "}:timers") && strings.Contains(k2, "}:fr:o:"):
		c.orch.Add(1)
	}
}

// TestEagerDispatchSkipsFetches runs sequential orchestrations of several
// activity steps, one at a time, on a worker with eager dispatch on and
// off. On: no activity is fetched (each is claimed by the ack of the turn
// that schedules it) and an orchestration's turns are fetched only at its
// start and once per queue.EagerTurnsMax eager turns (each completion locks
// the next turn for the worker holding the executor). Off: every activity
// and every turn is fetched.
func TestEagerDispatchSkipsFetches(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	const orchs, steps = 3, 10
	srv := redistest.Start(t)
	base := srv.Client(t)
	for _, eager := range []bool{true, false} {
		t.Run(fmt.Sprintf("eager=%v", eager), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			fc := &fetchCounter{}
			opt := *base.Options()
			opt.PushNotificationProcessor = nil
			rdb := redis.NewClient(&opt)
			rdb.AddHook(fc)
			defer rdb.Close()
			store := queue.New(rdb, queue.Options{Prefix: fmt.Sprintf("eager-%v", eager)})
			ob := engine.NewOrchestrationRegistry()
			ob.Register("seq", func(ctx *engine.OrchestrationContext, in string) (string, error) {
				for range steps {
					if _, err := ctx.ScheduleActivity("noop", in).Get(); err != nil {
						return "", err
					}
				}
				return in, nil
			})
			ab := engine.NewActivityRegistry()
			ab.Register("noop", func(ctx *engine.ActivityContext, in string) (string, error) { return in, nil })
			w, err := worker.New(store, ob.MustBuild(), ab.MustBuild(), worker.Options{NodeID: "eager",
				DisableEagerDispatch: !eager, BlockTimeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer w.Shutdown(context.Background())
			cl := client.New(queue.New(base, queue.Options{Prefix: fmt.Sprintf("eager-%v", eager)}))
			defer cl.Close()
			run := func(id string) {
				if err := cl.Start(ctx, id, "seq", "x"); err != nil {
					t.Fatal(err)
				}
				if st, err := cl.Wait(ctx, id); err != nil || st.State != client.StateCompleted {
					t.Fatalf("%s: %v %v", id, st.State, err)
				}
			}
			run("warm") // the worker's first fetches, its subscription
			time.Sleep(200 * time.Millisecond)
			fc.orch.Store(0)
			fc.work.Store(0)
			for i := range orchs {
				run(fmt.Sprintf("o%d", i))
			}
			fo, fw := fc.orch.Load(), fc.work.Load()
			t.Logf("%d orchestrations of %d steps: %d orchestration fetches, %d work fetches", orchs, steps, fo, fw)
			// turns per orchestration: steps+1; fetched with eager dispatch:
			// the first and one after every EagerTurnsMax eager turns
			fetchedTurns := int64(orchs * (1 + steps/(queue.EagerTurnsMax+1)))
			// (one more orchestration fetch is tolerated: a wake-up that
			// arrived during a fetch is buffered and fetches once more)
			if eager && (fw != 0 || fo < fetchedTurns || fo > fetchedTurns+1) {
				t.Fatalf("eager dispatch: %d work fetches, %d orchestration fetches; want 0 and %d", fw, fo, fetchedTurns)
			}
			if !eager && (fw < orchs*steps || fo < orchs*(steps+1)) {
				t.Fatalf("without eager dispatch: %d work fetches, %d orchestration fetches; want at least %d and %d",
					fw, fo, orchs*steps, orchs*(steps+1))
			}
		})
	}
}

// TestEagerDispatchRespectsCapacity: a turn that schedules more
// activities than the worker has activity slots claims at most its free
// slots; the others are fetched when slots free up. No more activities
// than ActivityConcurrency ever run at once.
func TestEagerDispatchRespectsCapacity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server")
	}
	const fan, slots = 7, 2
	srv := redistest.Start(t)
	rdb := srv.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store := queue.New(rdb, queue.Options{Prefix: "eager-cap"})
	ob := engine.NewOrchestrationRegistry()
	ob.Register("fan", func(ctx *engine.OrchestrationContext, in string) (string, error) {
		var tasks []*engine.Future[string]
		for range fan {
			tasks = append(tasks, ctx.ScheduleActivity("slow", in))
		}
		for _, tk := range tasks {
			if _, err := tk.Get(); err != nil {
				return "", err
			}
		}
		return in, nil
	})
	var running, peak atomic.Int64
	ab := engine.NewActivityRegistry()
	ab.Register("slow", func(ctx *engine.ActivityContext, in string) (string, error) {
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		return in, nil
	})
	w, err := worker.New(store, ob.MustBuild(), ab.MustBuild(), worker.Options{NodeID: "cap", ActivityConcurrency: slots})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer w.Shutdown(context.Background())
	cl := client.New(store)
	defer cl.Close()
	for i := range 3 {
		id := fmt.Sprintf("f%d", i)
		if err := cl.Start(ctx, id, "fan", "x"); err != nil {
			t.Fatal(err)
		}
		if st, err := cl.Wait(ctx, id); err != nil || st.State != client.StateCompleted {
			t.Fatalf("%s: %v %v", id, st.State, err)
		}
	}
	if p := peak.Load(); p > slots {
		t.Fatalf("%d activities ran at once with %d slots", p, slots)
	}
}
