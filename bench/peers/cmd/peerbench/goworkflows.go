package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	gwredis "github.com/cschleiden/go-workflows/backend/redis"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
)

// gwPrefix is the key prefix of the go-workflows backend.
const gwPrefix = "gw"

// goWorkflowsOptions are the worker options used: the library's defaults
// (2 workflow and 2 activity pollers, no limit on parallel tasks, executor
// cache of 128 for 10 s) with the polling intervals at 0, as go-workflows'
// own benchmark (bench/main.go) sets them for Redis, whose dequeue blocks;
// pollers > 0 sets both kinds of pollers (the bench's --gw-pollers sweep).
func goWorkflowsOptions(concurrency, pollers int) worker.Options {
	o := worker.DefaultOptions
	o.WorkflowPollingInterval = 0
	o.ActivityPollingInterval = 0
	if concurrency > 0 {
		o.MaxParallelWorkflowTasks = concurrency
		o.MaxParallelActivityTasks = concurrency
	}
	if pollers > 0 {
		o.WorkflowPollers = pollers
		o.ActivityPollers = pollers
	}
	return o
}

// gwActivityOptions are the options of every activity: with retry the
// library's defaults (its default retry, 3 attempts), otherwise a single
// attempt, as duroworker's activities without a retry policy.
func gwActivityOptions(retry bool) workflow.ActivityOptions {
	opts := workflow.DefaultActivityOptions
	if !retry {
		opts.RetryOptions = workflow.RetryOptions{MaxAttempts: 1}
	}
	return opts
}

func goWorkflowsSettings(concurrency, pollers int, retry bool) string {
	o := goWorkflowsOptions(concurrency, pollers)
	retries := "off (MaxAttempts 1, as duroworker's case)"
	if retry {
		retries = fmt.Sprintf("on (library default, %d attempts)", workflow.DefaultRetryOptions.MaxAttempts)
	}
	par := func(n int) string {
		if n == 0 {
			return "unlimited"
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("redis backend (block timeout 2s default), workflow_pollers=%d activity_pollers=%d max_parallel_workflow_tasks=%s max_parallel_activity_tasks=%s polling_interval=0 executor_cache=%d ttl=%s, activity retry %s, redis_pool=%d",
		o.WorkflowPollers, o.ActivityPollers, par(o.MaxParallelWorkflowTasks), par(o.MaxParallelActivityTasks),
		o.WorkflowExecutorCacheSize, o.WorkflowExecutorCacheTTL, retries, poolSize(o.WorkflowPollers+o.ActivityPollers))
}

// State shared with the workflow and activity functions (one workload per
// process), which go-workflows registers by function name.
var gw struct {
	retry      bool // activities have the library's default retry
	activities atomic.Int64
	steps      []atomic.Int64 // when step i of a single sequential workflow ran
	lateness   measure.Lateness
	lat        *measure.Tracker // steady: workflows report their end
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
		if _, err := workflow.ExecuteActivity[int](ctx, gwActivityOptions(gw.retry), GWNoop, i).Get(ctx); err != nil {
			return 0, err
		}
	}
	return k, nil
}

// GWSteady runs one activity and, for the measurement only, notes when it
// returns (its final commit follows: one round trip this measure leaves out).
func GWSteady(ctx workflow.Context, k int) (int, error) {
	if _, err := workflow.ExecuteActivity[int](ctx, gwActivityOptions(gw.retry), GWNoop, 0).Get(ctx); err != nil {
		return 0, err
	}
	if !workflow.Replaying(ctx) && gw.lat != nil {
		gw.lat.End(workflow.WorkflowInstance(ctx).InstanceID, time.Now())
	}
	return k, nil
}

// GWFanout schedules k activities at once and waits for all of them; with
// retry each has the library's default retry options (3 attempts),
// otherwise a single attempt.
func GWFanout(ctx workflow.Context, k int, retry bool) (int, error) {
	opts := gwActivityOptions(retry)
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
		gw.lateness.Record(workflow.WorkflowInstance(ctx).InstanceID, time.Since(due))
	}
	return workflow.ExecuteActivity[int](ctx, gwActivityOptions(gw.retry), GWNoop, -1).Get(ctx)
}

func runGoWorkflows(ctx context.Context, rdb *redis.Client, cfg config) (result.Result, error) {
	r := result.Result{Params: cfg.params(), Settings: goWorkflowsSettings(cfg.concurrency, cfg.pollers, cfg.retry), Expected: int64(cfg.n)}
	gw.retry = cfg.retry
	wo := goWorkflowsOptions(cfg.concurrency, cfg.pollers)
	crdb, rt := measure.CountedClient(rdb, poolSize(wo.WorkflowPollers+wo.ActivityPollers))
	defer crdb.Close()
	b, err := gwredis.NewRedisBackend(crdb, gwredis.WithKeyPrefix(gwPrefix),
		gwredis.WithBackendOptions(backend.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
	if err != nil {
		return r, err
	}
	defer b.Close()
	c := client.New(b)
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
	var polls atomic.Int64
	// Completion: instances created minus the backend's set of active
	// instances, one SCARD per poll.
	activeKey := gwPrefix + ":instances-active"
	var created atomic.Int64
	ended := func() (int64, error) {
		polls.Add(1)
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
		return measure.StartMany(n, 16, func(i int64) error { return create(prefix+strconv.FormatInt(i, 10), wf, args...) })
	}
	p := newProgress(cfg)
	defer p.Clear()

	switch cfg.workload {
	case result.WorkloadDrain:
		win := begin(ctx, rdb, rt, &polls)
		t0 := time.Now()
		if err := createMany("d-", cfg.n, GWSequential, cfg.k); err != nil {
			return r, err
		}
		r.Add(result.MEnqueuePerSec, "", float64(cfg.n)/time.Since(t0).Seconds())
		t0 = time.Now()
		if err := startWorker(); err != nil {
			return r, err
		}
		r.Completed, err = waitFor(ctx, cfg, p, int64(cfg.n), ended)
		elapsed := time.Since(t0)
		win.End(ctx, &r, int64(cfg.n), true)
		r.AddThroughput(elapsed, r.Completed, gw.activities.Load())
		return r, err

	case result.WorkloadSequential, result.WorkloadLong, result.WorkloadFanout, result.WorkloadTimers:
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
		if cfg.n == 1 && cfg.workload != result.WorkloadFanout && cfg.workload != result.WorkloadTimers {
			gw.steps = make([]atomic.Int64, cfg.k)
		}
		win := begin(ctx, rdb, rt, &polls)
		t0 := time.Now()
		switch cfg.workload {
		case result.WorkloadFanout:
			err = createMany("f-", cfg.n, GWFanout, cfg.k, cfg.retry)
		case result.WorkloadTimers:
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
		r.AddThroughput(elapsed, r.Completed, gw.activities.Load())
		switch {
		case cfg.workload == result.WorkloadTimers:
			gw.lateness.AddTo(&r)
		case gw.steps != nil:
			r.AddSteps(gw.steps)
		case cfg.workload != result.WorkloadFanout:
			r.Add(result.MMsPerStep, "ms", elapsed.Seconds()*1000/float64(cfg.n*cfg.k))
		}
		return r, err

	case result.WorkloadSteady:
		if err := startWorker(); err != nil {
			return r, err
		}
		if err := gwWarmUp(ctx, cfg, create, ended); err != nil {
			return r, err
		}
		tr := measure.NewTracker()
		gw.lat = tr
		err := steady(ctx, cfg, &r, rdb, rt, &polls, p, tr, "workflows ended", func(id string) error { return create(id, GWSteady, 1) })
		r.Note("go-workflows latency ends when the workflow function returns, before the commit of its last task (one round trip earlier than duroworker's)")
		return r, err
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
