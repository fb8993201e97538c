package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	gwredis "github.com/cschleiden/go-workflows/backend/redis"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench"
)

// gwPrefix is the key prefix of the go-workflows backend.
const gwPrefix = "gw"

// goWorkflowsOptions are the worker options used: the library's defaults
// (2 workflow and 2 activity pollers, no limit on parallel tasks, executor
// cache of 128 for 10 s) with the polling intervals at 0, as go-workflows'
// own benchmark (bench/main.go) sets them for Redis, whose dequeue blocks.
func goWorkflowsOptions(concurrency int) worker.Options {
	o := worker.DefaultOptions
	o.WorkflowPollingInterval = 0
	o.ActivityPollingInterval = 0
	if concurrency > 0 {
		o.MaxParallelWorkflowTasks = concurrency
		o.MaxParallelActivityTasks = concurrency
	}
	return o
}

func goWorkflowsSettings(concurrency int) string {
	o := goWorkflowsOptions(concurrency)
	par := func(n int) string {
		if n == 0 {
			return "unlimited"
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("redis backend (block timeout 2s default), workflow_pollers=%d activity_pollers=%d max_parallel_workflow_tasks=%s max_parallel_activity_tasks=%s polling_interval=0 executor_cache=%d ttl=%s, activity retry = library default (%d attempts), redis_pool=%d",
		o.WorkflowPollers, o.ActivityPollers, par(o.MaxParallelWorkflowTasks), par(o.MaxParallelActivityTasks),
		o.WorkflowExecutorCacheSize, o.WorkflowExecutorCacheTTL, workflow.DefaultRetryOptions.MaxAttempts, poolSize)
}

// State shared with the workflow and activity functions (one workload per
// process), which go-workflows registers by function name.
var gw struct {
	activities atomic.Int64
	steps      []atomic.Int64 // when step i of a single sequential workflow ran
	mu         sync.Mutex
	lateness   map[string]time.Duration
	lat        *latencies // steady: workflows report their end
}

// GWNoop is the no-op activity; with one sequential workflow it notes when
// each step ran.
func GWNoop(ctx context.Context, i int) (int, error) {
	gw.activities.Add(1)
	if i >= 0 && i < len(gw.steps) {
		gw.steps[i].Store(time.Now().UnixNano())
	}
	return i, nil
}

// GWSequential runs k activities one after the other.
func GWSequential(ctx workflow.Context, k int) (int, error) {
	for i := 0; i < k; i++ {
		if _, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, GWNoop, i).Get(ctx); err != nil {
			return 0, err
		}
	}
	return k, nil
}

// GWSteady runs one activity and, for the measurement only, notes when it
// returns (its final commit follows: one round trip this measure leaves out).
func GWSteady(ctx workflow.Context, k int) (int, error) {
	if _, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, GWNoop, 0).Get(ctx); err != nil {
		return 0, err
	}
	if !workflow.Replaying(ctx) && gw.lat != nil {
		gw.lat.end(workflow.WorkflowInstance(ctx).InstanceID)
	}
	return k, nil
}

// GWFanout schedules k activities at once and waits for all of them; with
// retry each has the library's default retry options (3 attempts),
// otherwise a single attempt.
func GWFanout(ctx workflow.Context, k int, retry bool) (int, error) {
	opts := workflow.DefaultActivityOptions
	if !retry {
		opts.RetryOptions = workflow.RetryOptions{MaxAttempts: 1}
	}
	futures := make([]workflow.Future[int], k)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity[int](ctx, opts, GWNoop, -1)
	}
	for _, f := range futures {
		if _, err := f.Get(ctx); err != nil {
			return 0, err
		}
	}
	return k, nil
}

// GWTimer sleeps ms milliseconds, notes how late it resumed, then runs one
// activity.
func GWTimer(ctx workflow.Context, ms int) (int, error) {
	d := time.Duration(ms) * time.Millisecond
	due := workflow.Now(ctx).Add(d)
	if err := workflow.Sleep(ctx, d); err != nil {
		return 0, err
	}
	if !workflow.Replaying(ctx) {
		late := time.Since(due)
		id := workflow.WorkflowInstance(ctx).InstanceID
		gw.mu.Lock()
		if _, seen := gw.lateness[id]; !seen {
			gw.lateness[id] = late
		}
		gw.mu.Unlock()
	}
	return workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, GWNoop, -1).Get(ctx)
}

func runGoWorkflows(ctx context.Context, rdb *redis.Client, cfg config) (bench.Result, error) {
	r := bench.Result{Params: cfg.params(), Settings: goWorkflowsSettings(cfg.concurrency), Expected: int64(cfg.n)}
	gw.lateness = map[string]time.Duration{}
	crdb, rt := bench.CountedClient(rdb, poolSize)
	defer crdb.Close()
	b, err := gwredis.NewRedisBackend(crdb, gwredis.WithKeyPrefix(gwPrefix),
		gwredis.WithBackendOptions(backend.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	if err != nil {
		return r, err
	}
	defer b.Close()
	c := client.New(b)
	wo := goWorkflowsOptions(cfg.concurrency)
	w := worker.New(b, &wo)
	for _, wf := range []any{GWSequential, GWSteady, GWFanout, GWTimer} {
		if err := w.RegisterWorkflow(wf); err != nil {
			return r, err
		}
	}
	if err := w.RegisterActivity(GWNoop); err != nil {
		return r, err
	}
	wctx, stopWorker := context.WithCancel(ctx)
	defer func() {
		stopWorker()
		_ = w.WaitForCompletion()
	}()
	started := false
	startWorker := func() error {
		if started {
			return nil
		}
		started = true
		return w.Start(wctx)
	}
	polls := &counter{}
	// Completion: instances created minus the backend's set of active
	// instances, one SCARD per poll.
	activeKey := gwPrefix + ":instances-active"
	var created atomic.Int64
	ended := func() (int64, error) {
		polls.add(1)
		n, err := rdb.SCard(ctx, activeKey).Result()
		return created.Load() - n, err
	}
	create := func(id string, wf any, args ...any) error {
		_, err := c.CreateWorkflowInstance(ctx, client.WorkflowInstanceOptions{InstanceID: id}, wf, args...)
		if err == nil {
			created.Add(1)
		}
		return err
	}
	createMany := func(prefix string, n int, wf any, args ...any) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		var firstErr error
		var once sync.Once
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					if err := create(prefix+strconv.FormatInt(i, 10), wf, args...); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			}()
		}
		wg.Wait()
		return firstErr
	}
	p := newProgress(cfg.system + " " + cfg.workload)
	defer p.done()

	switch cfg.workload {
	case bench.WorkloadDrain:
		win := begin(ctx, rdb, rt, polls)
		t0 := time.Now()
		if err := createMany("d-", cfg.n, GWSequential, cfg.k); err != nil {
			return r, err
		}
		r.Add(bench.MEnqueuePerSec, "", float64(cfg.n)/time.Since(t0).Seconds())
		t0 = time.Now()
		if err := startWorker(); err != nil {
			return r, err
		}
		r.Completed, err = waitFor(ctx, cfg, p, int64(cfg.n), ended)
		elapsed := time.Since(t0)
		win.End(ctx, &r, int64(cfg.n), true)
		throughput(&r, elapsed, r.Completed, gw.activities.Load())
		return r, err

	case bench.WorkloadSequential, bench.WorkloadLong, bench.WorkloadFanout, bench.WorkloadTimers:
		if err := startWorker(); err != nil {
			return r, err
		}
		if err := gwWarmUp(ctx, cfg, create, ended); err != nil {
			return r, err
		}
		base, err := ended()
		if err != nil {
			return r, err
		}
		gw.activities.Store(0)
		if cfg.n == 1 && cfg.workload != bench.WorkloadFanout && cfg.workload != bench.WorkloadTimers {
			gw.steps = make([]atomic.Int64, cfg.k)
		}
		win := begin(ctx, rdb, rt, polls)
		t0 := time.Now()
		switch cfg.workload {
		case bench.WorkloadFanout:
			err = createMany("f-", cfg.n, GWFanout, cfg.k, cfg.retry)
		case bench.WorkloadTimers:
			err = createMany("t-", cfg.n, GWTimer, int(cfg.delay/time.Millisecond))
		default:
			err = createMany("s-", cfg.n, GWSequential, cfg.k)
		}
		if err != nil {
			return r, err
		}
		done, err := waitFor(ctx, cfg, p, base+int64(cfg.n), ended)
		r.Completed = done - base
		elapsed := time.Since(t0)
		win.End(ctx, &r, int64(cfg.n), false)
		throughput(&r, elapsed, r.Completed, gw.activities.Load())
		switch {
		case cfg.workload == bench.WorkloadTimers:
			gw.mu.Lock()
			lat := make([]time.Duration, 0, len(gw.lateness))
			for _, d := range gw.lateness {
				lat = append(lat, d)
			}
			gw.mu.Unlock()
			r.AddPercentiles("lateness ", bench.Summarize(lat))
		case gw.steps != nil:
			stepStats(&r, gw.steps)
		case cfg.workload != bench.WorkloadFanout:
			r.Add(bench.MMsPerStep, "ms", elapsed.Seconds()*1000/float64(cfg.n*cfg.k))
		}
		return r, err

	case bench.WorkloadSteady:
		if err := startWorker(); err != nil {
			return r, err
		}
		if err := gwWarmUp(ctx, cfg, create, ended); err != nil {
			return r, err
		}
		lat := newLatencies()
		gw.lat = lat
		win := begin(ctx, rdb, rt, polls)
		t0 := time.Now()
		n, err := steadyDriver(ctx, cfg, &r, p, lat, func(id string) error { return create(id, GWSteady, 1) })
		r.Expected = n
		if err != nil {
			return r, err
		}
		deadline := time.Now().Add(cfg.timeout)
		for lat.count() < n && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		r.Completed = lat.count()
		win.End(ctx, &r, n, false)
		steadyResult(&r, lat, t0)
		r.Note("go-workflows latency ends when the workflow function returns, before the commit of its last task (one round trip earlier than duroworker's)")
		if r.Completed < n {
			return r, fmt.Errorf("%d of %d workflows ended", r.Completed, n)
		}
		return r, nil
	}
	return r, fmt.Errorf("go-workflows: workload %q not implemented", cfg.workload)
}

// gwWarmUp runs a few workflows so that scripts are loaded and connections
// open before the measured phase.
func gwWarmUp(ctx context.Context, cfg config, create func(string, any, ...any) error, ended func() (int64, error)) error {
	base, err := ended()
	if err != nil {
		return err
	}
	for i := 0; i < 8; i++ {
		if err := create(fmt.Sprintf("warm-%d", i), GWSequential, 2); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := ended()
		if err != nil {
			return err
		}
		if n >= base+8 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("go-workflows warm-up did not finish within 30s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(cfg.poll):
		}
	}
}

func throughput(r *bench.Result, elapsed time.Duration, completed, activities int64) {
	secs := elapsed.Seconds()
	r.Add(bench.MElapsed, "s", secs)
	if secs > 0 {
		r.Add(bench.MOrchPerSec, "", float64(completed)/secs)
		r.Add(bench.MActPerSec, "", float64(activities)/secs)
	}
}

// stepStats reports the mean step time and the first and last 100 steps.
func stepStats(r *bench.Result, steps []atomic.Int64) {
	k := len(steps)
	if k < 2 {
		return
	}
	t := make([]int64, k)
	for i := range steps {
		t[i] = steps[i].Load()
		if t[i] == 0 {
			r.Note("step %d has no recorded time", i)
			return
		}
	}
	ms := func(a, b int) float64 { return float64(t[b]-t[a]) / 1e6 }
	r.Add(bench.MMsPerStep, "ms", ms(0, k-1)/float64(k-1))
	if k >= 101 {
		first, last := ms(0, 100), ms(k-101, k-1)
		r.Add(bench.MFirst100, "ms", first)
		r.Add(bench.MLast100, "ms", last)
		if first > 0 {
			r.Add(bench.MLastOverFirst, "", last/first)
		}
	}
}
