package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
)

const asynqTaskType = "bench:noop"

// asynqDefaultConcurrency matches duroworker's default activity
// concurrency; asynq's own default is the number of CPUs.
const asynqDefaultConcurrency = 16

// asynqTaskCheckInterval replaces asynq's default of 1 s: asynq polls an
// empty queue (no blocking dequeue), sleeping half to one and a half times
// this interval, so with the default a lone task would wait up to 1.5 s.
// 1 ms keeps its latency comparable at the price of about a thousand
// polls per second while idle.
const asynqTaskCheckInterval = time.Millisecond

func asynqConfig(concurrency int) asynq.Config {
	if concurrency <= 0 {
		concurrency = asynqDefaultConcurrency
	}
	return asynq.Config{
		Concurrency:       concurrency,
		TaskCheckInterval: asynqTaskCheckInterval,
		LogLevel:          asynq.FatalLevel,
		Queues:            map[string]int{"default": 1},
	}
}

func asynqSettings(concurrency int, retry bool) string {
	c := asynqConfig(concurrency)
	retries := "MaxRetry 0 (no retry, as duroworker's case)"
	if retry {
		retries = "MaxRetry default 25"
	}
	return fmt.Sprintf("plain tasks (%s, never exercised), concurrency=%d task_check_interval=%s (default 1s), queue=default, redis_pool=%d",
		retries, c.Concurrency, c.TaskCheckInterval, poolSize(c.Concurrency))
}

func runAsynq(ctx context.Context, rdb *redis.Client, cfg config) (result.Result, error) {
	r := result.Result{Params: cfg.params(), Settings: asynqSettings(cfg.concurrency, cfg.retry), Expected: int64(cfg.n)}
	switch cfg.workload {
	case result.WorkloadDrain, result.WorkloadSteady:
	default:
		return r, fmt.Errorf("asynq runs plain tasks: drain and steady only, not %q", cfg.workload)
	}
	crdb, rt := measure.CountedClient(rdb, poolSize(asynqConfig(cfg.concurrency).Concurrency))
	defer crdb.Close()
	cl := asynq.NewClientFromRedisClient(crdb)
	defer cl.Close()
	srv := asynq.NewServerFromRedisClient(crdb, asynqConfig(cfg.concurrency))
	var handled atomic.Int64
	var lat atomic.Pointer[measure.Tracker]
	lat.Store(measure.NewTracker())
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqTaskType, func(ctx context.Context, t *asynq.Task) error {
		handled.Add(1)
		lat.Load().End(string(t.Payload()), time.Now())
		return nil
	})
	running := false
	startServer := func() error {
		running = true
		return srv.Start(mux)
	}
	defer func() {
		if running {
			srv.Shutdown()
		}
	}()
	enqueue := func(id string) error {
		var opts []asynq.Option
		if !cfg.retry {
			opts = append(opts, asynq.MaxRetry(0))
		}
		_, err := cl.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, []byte(id)), opts...)
		return err
	}
	var polls atomic.Int64 // completion is counted in the handler, not polled
	p := newProgress(cfg)
	defer p.Clear()
	count := func() (int64, error) { return handled.Load(), nil }

	switch cfg.workload {
	case result.WorkloadDrain:
		win := begin(ctx, rdb, rt, &polls)
		t0 := time.Now()
		err := measure.StartMany(cfg.n, 16, func(i int64) error { return enqueue("d-" + strconv.FormatInt(i, 10)) })
		if err != nil {
			return r, err
		}
		r.Add(result.MEnqueuePerSec, "", float64(cfg.n)/time.Since(t0).Seconds())
		t0 = time.Now()
		if err := startServer(); err != nil {
			return r, err
		}
		n, err := waitFor(ctx, cfg, p, int64(cfg.n), count)
		elapsed := time.Since(t0)
		r.Completed = n
		win.End(ctx, &r, int64(cfg.n), true)
		r.AddThroughput(elapsed, n, n)
		r.Note("asynq completion is counted when the handler returns (its ack follows)")
		return r, err

	case result.WorkloadSteady:
		if err := startServer(); err != nil {
			return r, err
		}
		for i := 0; i < 8; i++ { // warm-up
			id := fmt.Sprintf("warm-%d", i)
			done := lat.Load().Expect(id, time.Now(), false)
			if err := enqueue(id); err != nil {
				return r, err
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				return r, fmt.Errorf("asynq warm-up task did not run within 30s")
			}
		}
		measured := measure.NewTracker()
		lat.Store(measured)
		err := steady(ctx, cfg, &r, rdb, rt, &polls, p, measured, "tasks ran", enqueue)
		r.Note("asynq latency ends when the handler returns, before the task's ack")
		return r, err
	}
	return r, nil
}
