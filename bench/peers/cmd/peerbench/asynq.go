package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench"
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

func asynqSettings(concurrency int) string {
	c := asynqConfig(concurrency)
	return fmt.Sprintf("plain tasks (MaxRetry default 25, not exercised), concurrency=%d task_check_interval=%s (default 1s), queue=default, redis_pool=%d",
		c.Concurrency, c.TaskCheckInterval, poolSize)
}

func runAsynq(ctx context.Context, rdb *redis.Client, cfg config) (bench.Result, error) {
	r := bench.Result{Params: cfg.params(), Settings: asynqSettings(cfg.concurrency), Expected: int64(cfg.n)}
	switch cfg.workload {
	case bench.WorkloadDrain, bench.WorkloadSteady:
	default:
		return r, fmt.Errorf("asynq runs plain tasks: drain and steady only, not %q", cfg.workload)
	}
	crdb, rt := bench.CountedClient(rdb, poolSize)
	defer crdb.Close()
	cl := asynq.NewClientFromRedisClient(crdb)
	defer cl.Close()
	srv := asynq.NewServerFromRedisClient(crdb, asynqConfig(cfg.concurrency))
	var handled atomic.Int64
	var lat atomic.Pointer[latencies]
	lat.Store(newLatencies())
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqTaskType, func(ctx context.Context, t *asynq.Task) error {
		handled.Add(1)
		lat.Load().end(string(t.Payload()))
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
		_, err := cl.EnqueueContext(ctx, asynq.NewTask(asynqTaskType, []byte(id)))
		return err
	}
	polls := &counter{} // completion is counted in the handler, not polled
	p := newProgress(cfg.system + " " + cfg.workload)
	defer p.done()
	count := func() (int64, error) { return handled.Load(), nil }

	switch cfg.workload {
	case bench.WorkloadDrain:
		win := begin(ctx, rdb, rt, polls)
		t0 := time.Now()
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
					if i >= int64(cfg.n) {
						return
					}
					if err := enqueue("d-" + strconv.FormatInt(i, 10)); err != nil {
						once.Do(func() { firstErr = err })
						return
					}
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return r, firstErr
		}
		r.Add(bench.MEnqueuePerSec, "", float64(cfg.n)/time.Since(t0).Seconds())
		t0 = time.Now()
		if err := startServer(); err != nil {
			return r, err
		}
		n, err := waitFor(ctx, cfg, p, int64(cfg.n), count)
		elapsed := time.Since(t0)
		r.Completed = n
		win.End(ctx, &r, int64(cfg.n), true)
		throughput(&r, elapsed, n, n)
		r.Note("asynq completion is counted when the handler returns (its ack follows)")
		return r, err

	case bench.WorkloadSteady:
		if err := startServer(); err != nil {
			return r, err
		}
		for i := 0; i < 8; i++ { // warm-up
			id := fmt.Sprintf("warm-%d", i)
			done := lat.Load().expect(id, time.Now(), false)
			if err := enqueue(id); err != nil {
				return r, err
			}
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				return r, fmt.Errorf("asynq warm-up task did not run within 30s")
			}
		}
		measured := newLatencies()
		lat.Store(measured)
		win := begin(ctx, rdb, rt, polls)
		t0 := time.Now()
		n, err := steadyDriver(ctx, cfg, &r, p, measured, enqueue)
		r.Expected = n
		if err != nil {
			return r, err
		}
		deadline := time.Now().Add(cfg.timeout)
		for measured.count() < n && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		r.Completed = measured.count()
		win.End(ctx, &r, n, false)
		steadyResult(&r, measured, t0)
		r.Note("asynq latency ends when the handler returns, before the task's ack")
		if r.Completed < n {
			return r, fmt.Errorf("%d of %d tasks ran", r.Completed, n)
		}
		return r, nil
	}
	return r, nil
}
