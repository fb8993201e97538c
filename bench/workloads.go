package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Workload names, as the CLI and the peer program spell them.
const (
	WorkloadDrain      = "drain"
	WorkloadSteady     = "steady"
	WorkloadSequential = "sequential"
	WorkloadFanout     = "fanout"
	WorkloadLong       = "long"
	WorkloadTimers     = "timers"
	WorkloadFilter     = "filter"
	WorkloadSessions   = "sessions"
	WorkloadIdle       = "idle"
	WorkloadInflight   = "inflight"
)

// Every duroworker workload below starts its own in-process workers on
// rdb's server (under opts.Prefix), drives them through a client on its own
// connection pool, and counts completion with one counter read (HMGET of
// the namespace's stats hash every opts.Poll), never with a wait per
// instance. The caller chooses the database; the workloads never flush it.

// RunDrain enqueues N orchestrations of K sequential activities (K defaults
// to 1) with no worker running, then starts one worker and measures how fast
// it empties the backlog.
func RunDrain(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadDrain)
	if opts.N <= 0 {
		opts.N = 2000
	}
	if opts.K <= 0 {
		opts.K = 1
	}
	r := Result{Workload: WorkloadDrain, System: SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d", opts.N, opts.K), Expected: int64(opts.N)}
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
	r.Add(MEnqueuePerSec, "", float64(opts.N)/time.Since(start).Seconds())
	start = time.Now()
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	r.Completed, r.Failed, err = e.waitEnded(counts{}, int64(opts.N))
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), true)
	throughput(&r, elapsed, r.Completed, e.activities.Load())
	return r, errString(&r, err)
}

// RunSequential starts N orchestrations of K sequential no-op activities
// on a running worker. With N = 1 it also reports how long each step took
// and compares the first 100 steps with the last 100 (sticky replay: a
// turn must not cost more as the history grows).
func RunSequential(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	return runSequential(ctx, rdb, opts, WorkloadSequential, 1, 200)
}

// RunLong is RunSequential with one orchestration of 1000 steps by default.
func RunLong(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	return runSequential(ctx, rdb, opts, WorkloadLong, 1, 1000)
}

func runSequential(ctx context.Context, rdb *redis.Client, opts Options, workload string, defN, defK int) (Result, error) {
	opts = opts.withDefaults(workload)
	if opts.N <= 0 {
		opts.N = defN
	}
	if opts.K <= 0 {
		opts.K = defK
	}
	r := Result{Workload: workload, System: SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d", opts.N, opts.K), Expected: int64(opts.N)}
	e, err := newEnv(ctx, rdb, opts, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if opts.N == 1 {
		e.recordSteps = true
		e.steps = make([]atomic.Int64, opts.K)
	}
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	if err := e.warmUp(orchSeq, "2"); err != nil {
		return r, err
	}
	base, err := e.baseCounts()
	if err != nil {
		return r, err
	}
	e.activities.Store(0)
	for i := range e.steps {
		e.steps[i].Store(0)
	}
	w := e.begin()
	start := time.Now()
	if err := e.startMany("s-", opts.N, orchSeq, strconv.Itoa(opts.K)); err != nil {
		return r, err
	}
	r.Completed, r.Failed, err = e.waitEnded(base, int64(opts.N))
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), false)
	throughput(&r, elapsed, r.Completed, e.activities.Load())
	if opts.N == 1 {
		stepStats(&r, e.steps)
	} else {
		r.Add(MMsPerStep, "ms", elapsed.Seconds()*1000/float64(opts.N*opts.K))
	}
	return r, errString(&r, err)
}

// stepStats reports the mean step time and the first and last 100 steps of
// one sequential orchestration from the times its activities ran.
func stepStats(r *Result, steps []atomic.Int64) {
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
	r.Add(MMsPerStep, "ms", ms(0, k-1)/float64(k-1))
	if k >= 201 {
		first, last := ms(0, 100), ms(k-101, k-1)
		r.Add(MFirst100, "ms", first)
		r.Add(MLast100, "ms", last)
		if first > 0 {
			r.Add(MLastOverFirst, "", last/first)
		}
	} else if k >= 101 {
		first, last := ms(0, 100), ms(k-101, k-1)
		r.Add(MFirst100, "ms", first)
		r.Add(MLast100, "ms", last)
		if first > 0 {
			r.Add(MLastOverFirst, "", last/first)
		}
		r.Note("k=%d < 201: the first and last 100 steps overlap", k)
	}
}

// RunFanout starts N orchestrations that each schedule K activities at once
// and join them; with opts.Retry every activity has a retry policy.
func RunFanout(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadFanout)
	if opts.N <= 0 {
		opts.N = 1
	}
	if opts.K <= 0 {
		opts.K = 1000
	}
	params := fmt.Sprintf("n=%d k=%d", opts.N, opts.K)
	input := strconv.Itoa(opts.K)
	if opts.Retry {
		params += " retry"
		input += "/retry"
	}
	if opts.FailEvery > 0 {
		params += fmt.Sprintf(" fail-every=%d", opts.FailEvery)
	}
	r := Result{Workload: WorkloadFanout, System: SystemDuroworker, Params: params, Expected: int64(opts.N)}
	e, err := newEnv(ctx, rdb, opts, orchFanout)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	if opts.Retry {
		p := fanoutRetryPolicy()
		r.Settings += fmt.Sprintf(" retry=%d attempts, %s backoff", p.MaxAttempts, p.Backoff)
	}
	if err := e.warmUp(orchFanout, "2"); err != nil {
		return r, err
	}
	base, err := e.baseCounts()
	if err != nil {
		return r, err
	}
	e.activities.Store(0)
	w := e.begin()
	start := time.Now()
	if err := e.startMany("f-", opts.N, orchFanout, input); err != nil {
		return r, err
	}
	r.Completed, r.Failed, err = e.waitEnded(base, int64(opts.N))
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), false)
	throughput(&r, elapsed, r.Completed, e.activities.Load())
	return r, errString(&r, err)
}

// RunTimers starts N orchestrations that sleep opts.Delay (1 s) on a
// durable timer and then run one activity, and reports how late the
// orchestrations resumed after their timers were due.
func RunTimers(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadTimers)
	if opts.N <= 0 {
		opts.N = 1000
	}
	r := Result{Workload: WorkloadTimers, System: SystemDuroworker, Params: fmt.Sprintf("n=%d delay=%s", opts.N, opts.Delay), Expected: int64(opts.N)}
	e, err := newEnv(ctx, rdb, opts, orchTimer)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	w := e.begin()
	start := time.Now()
	if err := e.startMany("t-", opts.N, orchTimer, strconv.FormatInt(opts.Delay.Milliseconds(), 10)); err != nil {
		return r, err
	}
	r.Completed, r.Failed, err = e.waitEnded(counts{}, int64(opts.N))
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), false)
	throughput(&r, elapsed, r.Completed, e.activities.Load())
	e.mu.Lock()
	lat := make([]time.Duration, 0, len(e.lateness))
	for _, d := range e.lateness {
		lat = append(lat, d)
	}
	e.mu.Unlock()
	r.AddPercentiles("lateness ", Summarize(lat))
	return r, errString(&r, err)
}

// RunSessions starts opts.Workers workers and N orchestrations that each
// schedule K activities at once on one session, and checks that each
// session's activities all ran on one worker.
func RunSessions(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadSessions)
	if opts.N <= 0 {
		opts.N = 1
	}
	if opts.K <= 0 {
		opts.K = 500
	}
	r := Result{Workload: WorkloadSessions, System: SystemDuroworker, Params: fmt.Sprintf("n=%d k=%d workers=%d", opts.N, opts.K, opts.Workers), Expected: int64(opts.N)}
	e, err := newEnv(ctx, rdb, opts, orchSession)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(opts.Workers); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	w := e.begin()
	start := time.Now()
	if err := e.startMany("ss-", opts.N, orchSession, strconv.Itoa(opts.K)); err != nil {
		return r, err
	}
	r.Completed, r.Failed, err = e.waitEnded(counts{}, int64(opts.N))
	elapsed := time.Since(start)
	w.End(ctx, &r, int64(opts.N), false)
	throughput(&r, elapsed, r.Completed, e.activities.Load())
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
	r.Add(MWorkersUsed, "", float64(maxWorkers))
	r.Add(MSessionsMoved, "", float64(split))
	r.Note("%d sessions ran on %d of %d workers", sessions, len(used), opts.Workers)
	if err == nil && (split > 0 || sessions != opts.N) {
		err = fmt.Errorf("sessions: %d of %d sessions ran on more than one worker (%d sessions seen)", split, opts.N, sessions)
	}
	return r, errString(&r, err)
}

// RunIdle starts one worker with nothing to do and measures, after a
// settling second, the commands it sends per second over opts.Duration.
func RunIdle(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadIdle)
	r := Result{Workload: WorkloadIdle, System: SystemDuroworker, Params: fmt.Sprintf("duration=%s", opts.Duration)}
	e, err := newEnv(ctx, rdb, opts, orchSeq)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
	o := e.workers[0].Options()
	r.Settings += fmt.Sprintf(" node_heartbeat=%s", o.NodeHeartbeat)
	if err := sleepCtx(ctx, time.Second); err != nil {
		return r, err
	}
	rt0, sent0 := e.wrt.Count(), e.wrt.Commands()
	before := ReadServerStats(ctx, rdb)
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
	after := ReadServerStats(ctx, rdb)
	secs := time.Since(start).Seconds()
	r.Add(MIdleSent, "", float64(e.wrt.Commands()-sent0)/secs)
	r.Add(MIdleRoundTrips, "", float64(e.wrt.Count()-rt0)/secs)
	if before.OK && after.OK {
		r.Add(MIdleCommands, "", float64(after.TotalCommands-before.TotalCommands-1)/secs)
		if top := topCommands(before, after, 1, 5); top != "" {
			r.Note("Redis commands over the whole window (calls, µs): %s", top)
		}
	}
	return r, nil
}

// RunInflight starts N orchestrations (10,000 by default) that each run
// one activity and then wait for an event, waits until all of them are
// waiting, and reports the process's resident memory.
func RunInflight(ctx context.Context, rdb *redis.Client, opts Options) (Result, error) {
	opts = opts.withDefaults(WorkloadInflight)
	if opts.N <= 0 {
		opts.N = 10_000
	}
	r := Result{Workload: WorkloadInflight, System: SystemDuroworker, Params: fmt.Sprintf("n=%d", opts.N), Expected: int64(opts.N)}
	runtime.GC()
	debug.FreeOSMemory()
	r.Add(MRSSBaseline, "MB", float64(ProcessRSS())/(1<<20))
	e, err := newEnv(ctx, rdb, opts, orchHold)
	if err != nil {
		return r, err
	}
	defer e.close(&r)
	if err := e.startWorkers(1); err != nil {
		return r, err
	}
	r.Settings = e.settings()
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
		if rss := ProcessRSS(); rss > peak {
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
	r.Add(MElapsed, "s", elapsed.Seconds())
	rss := ProcessRSS()
	r.Add(MRSS, "MB", float64(max(rss, peak))/(1<<20))
	r.Add(MHeap, "MB", float64(HeapInUse())/(1<<20))
	r.Add(MGoroutines, "", float64(runtime.NumGoroutine()))
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

// warmUp runs a few orchestrations so that scripts are loaded and
// connections open before the measured phase.
func (e *env) warmUp(name, input string) error {
	base, err := e.baseCounts()
	if err != nil {
		return err
	}
	progress := e.opts.Progress
	e.opts.Progress = nil
	e.warming.Store(true)
	defer func() { e.opts.Progress = progress; e.warming.Store(false) }()
	if err := e.startMany("warm-", 8, name, input); err != nil {
		return err
	}
	_, _, err = e.waitEnded(base, 8)
	return err
}

func throughput(r *Result, elapsed time.Duration, completed, activities int64) {
	secs := elapsed.Seconds()
	r.Add(MElapsed, "s", secs)
	if secs > 0 {
		r.Add(MOrchPerSec, "", float64(completed)/secs)
		r.Add(MActPerSec, "", float64(activities)/secs)
	}
}

func errString(r *Result, err error) error {
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

// RunFilterResult runs the capability-filter workload (RunFilter) and
// reports it as a Result.
func RunFilterResult(ctx context.Context, rdb *redis.Client, opts FilterOptions) (Result, error) {
	if opts.Incompatible == 0 {
		opts.Incompatible = 100_000
	}
	r := Result{Workload: WorkloadFilter, System: SystemDuroworker, Params: fmt.Sprintf("incompatible=%d samples=%d", opts.Incompatible, max(opts.Samples, 2000))}
	res, err := RunFilter(ctx, rdb, opts)
	if err != nil {
		r.Error = err.Error()
		return r, err
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r.Add("orch fetch p50 empty", "ms", ms(res.Orchestrations[0].P50))
	r.Add(MFilterOrchP50, "ms", ms(res.Orchestrations[1].P50))
	r.Add("orch fetch p99", "ms", ms(res.Orchestrations[1].P99))
	r.Add("act fetch p50 empty", "ms", ms(res.Activities[0].P50))
	r.Add(MFilterActP50, "ms", ms(res.Activities[1].P50))
	r.Add("act fetch p99", "ms", ms(res.Activities[1].P99))
	r.Add(MFilterOrchRatio, "", Ratio(res.Orchestrations))
	r.Add(MFilterActRatio, "", Ratio(res.Activities))
	missed := res.Orchestrations[0].FetchedNothing + res.Orchestrations[1].FetchedNothing + res.Activities[0].FetchedNothing + res.Activities[1].FetchedNothing
	r.Expected, r.Completed = 1, 1
	if missed > 0 {
		r.Error = fmt.Sprintf("%d fetches missed their compatible item", missed)
	}
	return r, nil
}
