// Package workload holds duroworker's benchmark workloads (drain, steady,
// sequential, long, fanout, timers, sessions, idle, inflight, backlog and
// the capability filter) and the cases and standard plan that "duroworker
// bench" runs. They are programs that measure a running system, not tests;
// no speed threshold is ever asserted in a unit test.
package workload

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/result"
)

// Every duroworker workload below starts its own in-process workers on
// rdb's server (under opts.Prefix), drives them through a client on its own
// connection pool, and counts completion with one counter read (HMGET of
// the namespace's stats hash every opts.Poll), never with a wait per
// instance. The caller chooses the database; the workloads never flush it.

// runDrain enqueues N orchestrations of K sequential activities (K defaults
// to 1) with no worker running, then starts one worker and measures how fast
// it empties the backlog.
func runDrain(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadDrain, 2000, 1)
	r := result.Result{Workload: result.WorkloadDrain, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d", opts.N, opts.K), Expected: int64(opts.N)}
	if opts.EndAtWait {
		r.Params += " end=wait"
	}
	e, err := newEnv(ctx, rdb, opts, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	w := e.begin()
	start := time.Now()
	if err := e.startMany("d-", opts.N, orchSeq, strconv.Itoa(opts.K)); err != nil {
		return r, err
	}
	r.Add(result.MEnqueuePerSec, "", float64(opts.N)/time.Since(start).Seconds())
	start = time.Now()
	if err := e.start(&r, 1); err != nil {
		return r, err
	}
	if opts.EndAtWait {
		r.Completed, r.Failed, err = e.waitMany("d-", opts.N)
	} else {
		r.Completed, r.Failed, err = e.waitEnded(counts{}, int64(opts.N))
	}
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), true)
	r.AddThroughput(elapsed, r.Completed, e.activities.Load())
	return r, errString(&r, err)
}

// runSequential starts N orchestrations of K sequential no-op activities
// on a running worker. With N = 1 it also reports how long each step took
// and compares the first 100 steps with the last 100 (sticky replay: a
// turn must not cost more as the history grows).
func runSequential(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	return sequential(ctx, rdb, opts, result.WorkloadSequential, 1, 200)
}

// runLong is runSequential with one orchestration of 1000 steps by default.
func runLong(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	return sequential(ctx, rdb, opts, result.WorkloadLong, 1, 1000)
}

func sequential(ctx context.Context, rdb *redis.Client, opts Options, workload string, defN, defK int) (result.Result, error) {
	opts = opts.withDefaults(workload, defN, defK)
	r := result.Result{Workload: workload, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d", opts.N, opts.K), Expected: int64(opts.N)}
	e, err := newEnv(ctx, rdb, opts, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if opts.N == 1 {
		e.steps = make([]atomic.Int64, opts.K) // before the workers run activities
	}
	if err := e.start(&r, 1); err != nil {
		return r, err
	}
	base, err := e.warmUp(orchSeq, "2")
	if err != nil {
		return r, err
	}
	elapsed, err := e.phase(&r, "s-", orchSeq, strconv.Itoa(opts.K), base)
	if opts.N == 1 {
		r.AddSteps(e.steps)
	} else {
		r.Add(result.MMsPerStep, "ms", elapsed.Seconds()*1000/float64(opts.N*opts.K))
	}
	return r, errString(&r, err)
}

// runFanout starts N orchestrations that each schedule K activities at once
// and join them; with opts.Retry every activity has a retry policy.
func runFanout(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadFanout, 1, 1000)
	params := fmt.Sprintf("n=%d k=%d", opts.N, opts.K)
	input := strconv.Itoa(opts.K)
	if opts.Retry {
		params += " retry"
		input += "/retry"
	}
	if opts.FailEvery > 0 {
		params += fmt.Sprintf(" fail-every=%d", opts.FailEvery)
	}
	r := result.Result{Workload: result.WorkloadFanout, System: result.SystemDuroworker, Params: params, Expected: int64(opts.N)}
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchFanout)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if opts.Retry {
		p := fanoutRetryPolicy()
		r.Settings += fmt.Sprintf(" retry=%d attempts, %s backoff", p.MaxAttempts, p.Backoff)
	}
	base, err := e.warmUp(orchFanout, "2")
	if err != nil {
		return r, err
	}
	_, err = e.phase(&r, "f-", orchFanout, input, base)
	return r, errString(&r, err)
}

// runTimers starts N orchestrations that sleep opts.Delay (1 s) on a
// durable timer and then run one activity, and reports how late the
// orchestrations resumed after their timers were due.
func runTimers(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadTimers, 1000, 0)
	r := result.Result{Workload: result.WorkloadTimers, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d delay=%s", opts.N, opts.Delay), Expected: int64(opts.N)}
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchTimer)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	_, err = e.phase(&r, "t-", orchTimer, strconv.FormatInt(opts.Delay.Milliseconds(), 10), counts{})
	e.lateness.AddTo(&r)
	return r, errString(&r, err)
}

// runSessions starts opts.Workers workers and N orchestrations that each
// schedule K activities at once on one session, and checks that each
// session's activities all ran on one worker.
func runSessions(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadSessions, 1, 500)
	r := result.Result{Workload: result.WorkloadSessions, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d workers=%d", opts.N, opts.K, opts.Workers), Expected: int64(opts.N)}
	e, err := openEnv(ctx, rdb, opts, &r, opts.Workers, orchSession)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	_, err = e.phase(&r, "ss-", orchSession, strconv.Itoa(opts.K), counts{})
	e.mu.Lock()
	maxWorkers, split := 0, 0
	used := map[string]bool{}
	for _, set := range e.sessions {
		maxWorkers = max(maxWorkers, len(set))
		if len(set) > 1 {
			split++
		}
		for w := range set {
			used[w] = true
		}
	}
	sessions := len(e.sessions)
	e.mu.Unlock()
	r.Add(result.MWorkersUsed, "", float64(maxWorkers))
	r.Add(result.MSessionsMoved, "", float64(split))
	r.Note("%d sessions ran on %d of %d workers", sessions, len(used), opts.Workers)
	if err == nil && (split > 0 || sessions != opts.N) {
		err = fmt.Errorf("sessions: %d of %d sessions ran on more than one worker (%d sessions seen)", split, opts.N, sessions)
	}
	return r, errString(&r, err)
}

// runIdle starts one worker with nothing to do and measures, after a
// settling second, the commands it sends per second over opts.Duration.
func runIdle(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadIdle, 0, 0)
	r := result.Result{Workload: result.WorkloadIdle, System: result.SystemDuroworker, Params: fmt.Sprintf("duration=%s", opts.Duration)}
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	o := e.workers[0].Options()
	r.Settings += fmt.Sprintf(" node_heartbeat=%s", o.NodeHeartbeat)
	if err := sleepCtx(ctx, time.Second); err != nil {
		return r, err
	}
	rt0, sent0 := e.wrt.Count(), e.wrt.Commands()
	before := measure.ReadServerStats(ctx, rdb)
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < opts.Duration {
		if opts.Progress != nil {
			opts.Progress(int64(time.Since(start)/time.Millisecond), int64(opts.Duration/time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tick.C:
		}
	}
	after := measure.ReadServerStats(ctx, rdb)
	secs := time.Since(start).Seconds()
	r.Add(result.MIdleSent, "", float64(e.wrt.Commands()-sent0)/secs)
	r.Add(result.MIdleRoundTrips, "", float64(e.wrt.Count()-rt0)/secs)
	if before.OK && after.OK {
		r.Add(result.MIdleCommands, "", float64(after.TotalCommands-before.TotalCommands-1)/secs)
		if top := measure.TopCommands(before, after, 1, 5); top != "" {
			r.Note("Redis commands over the whole window (calls, µs): %s", top)
		}
	}
	return r, nil
}

// runInflight starts N orchestrations (10,000 by default) that each run
// one activity and then wait for an event, waits until all of them are
// waiting, and reports the process's resident memory.
func runInflight(ctx context.Context, rdb *redis.Client, opts Options) (result.Result, error) {
	opts = opts.withDefaults(result.WorkloadInflight, 10_000, 0)
	r := result.Result{Workload: result.WorkloadInflight, System: result.SystemDuroworker, Params: fmt.Sprintf("n=%d", opts.N), Expected: int64(opts.N)}
	runtime.GC()
	debug.FreeOSMemory()
	r.Add(result.MRSSBaseline, "MB", float64(measure.ProcessRSS())/(1<<20))
	e, err := openEnv(ctx, rdb, opts, &r, 1, orchHold)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	w := e.begin()
	start := time.Now()
	if err := e.startMany("h-", opts.N, orchHold, ""); err != nil {
		return r, err
	}
	// In flight: every instance ran its activity and recorded that it
	// waits for the event, which puts its history at 4 events (started,
	// activity scheduled and completed, event subscribed).
	deadline := time.Now().Add(opts.Timeout)
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	var peak int64
	for {
		ev, running, err := e.eventsAndRunning()
		if err != nil {
			return r, err
		}
		if rss := measure.ProcessRSS(); rss > peak {
			peak = rss
		}
		waiting := min(ev/4, running)
		if opts.Progress != nil {
			opts.Progress(waiting, int64(opts.N))
		}
		if ev >= 4*int64(opts.N) && running >= int64(opts.N) && e.activities.Load() >= int64(opts.N) {
			r.Completed = running
			break
		}
		if time.Now().After(deadline) {
			r.Completed = waiting
			return r, errString(&r, fmt.Errorf("timed out: %d of %d in flight", waiting, opts.N))
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-tk.C:
		}
	}
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), true)
	r.Add(result.MElapsed, "s", elapsed.Seconds())
	rss := measure.ProcessRSS()
	r.Add(result.MRSS, "MB", float64(max(rss, peak))/(1<<20))
	r.Add(result.MHeap, "MB", float64(measure.HeapInUse())/(1<<20))
	r.Add(result.MGoroutines, "", float64(runtime.NumGoroutine()))
	r.Note("rss is the whole bench process (worker, client and driver), the peak seen while instances started")
	return r, nil
}

func (e *env) eventsAndRunning() (events, running int64, err error) {
	e.polls.Add(1)
	v, err := e.rdb.HMGet(e.ctx, e.keys.StatsKey(), "events", "running").Result()
	if err != nil {
		return 0, 0, err
	}
	a, _ := strconv.ParseInt(str(v[0]), 10, 64)
	b, _ := strconv.ParseInt(str(v[1]), 10, 64)
	return a, b, nil
}

func str(x any) string {
	s, _ := x.(string)
	return s
}

func errString(r *result.Result, err error) error {
	if err != nil {
		r.Error = err.Error()
	}
	if err == nil && r.Failed > 0 {
		r.Error = fmt.Sprintf("%d orchestrations failed", r.Failed)
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
