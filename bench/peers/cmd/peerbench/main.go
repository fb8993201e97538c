// Command peerbench runs duroworker's benchmark workloads on peer systems,
// so that "duroworker bench --vs go-workflows,asynq" can compare them on the
// same Redis: github.com/cschleiden/go-workflows (its Redis backend) for
// drain, steady, sequential, fanout, long and timers, and
// github.com/hibiken/asynq (plain tasks) for drain and steady.
//
// It lives in its own module (bench/peers) so that duroworker's go.mod does
// not carry the peers. It prints one JSON Result (bench/internal/result) on stdout and a
// progress line on stderr. "peerbench -info" prints the peers' versions and
// the settings used.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duroworker/duroworker/bench/internal/measure"
	"github.com/duroworker/duroworker/bench/internal/progress"
	"github.com/duroworker/duroworker/bench/internal/result"
)

// config is the workload as the duroworker CLI passes it.
type config struct {
	system      string
	workload    string
	caseName    string
	n, k        int
	rate        float64
	duration    time.Duration
	delay       time.Duration
	retry       bool
	concurrency int
	pollers     int
	poll        time.Duration
	timeout     time.Duration
}

// minPoolSize is the smallest connection pool of a peer's Redis client: the
// same as duroworker's worker gets with its default concurrency (8 + 16 + 8).
const minPoolSize = 32

// poolSize is the connection pool of a peer's Redis client when waiters
// goroutines may each hold a connection at once (go-workflows' pollers sit
// in blocking reads, asynq's processors each dequeue): one connection for
// every waiter and 16 for everything else, at least minPoolSize. A smaller
// pool starves the peer (go-workflows at 32+32 pollers on a pool of 32 ran
// at 12 orch/s, every command waiting for a blocked poller's 2 s timeout).
func poolSize(waiters int) int {
	return max(minPoolSize, waiters+16)
}

func main() {
	var cfg config
	var redisURL string
	var info bool
	flag.BoolVar(&info, "info", false, "print the peers' versions and settings as JSON and exit")
	flag.StringVar(&redisURL, "redis", "redis://127.0.0.1:6379/0", "Redis URL; the database must be empty (the caller flushes it)")
	flag.StringVar(&cfg.system, "system", result.SystemGoWorkflows, "go-workflows or asynq")
	flag.StringVar(&cfg.workload, "workload", result.WorkloadDrain, "drain, steady, sequential, fanout, long or timers")
	flag.StringVar(&cfg.caseName, "case", "", "case name to put in the result")
	flag.IntVar(&cfg.n, "n", 0, "orchestrations (workflows, tasks)")
	flag.IntVar(&cfg.k, "k", 0, "activities per workflow")
	flag.Float64Var(&cfg.rate, "rate", 0, "steady: offered starts per second (0: one at a time)")
	flag.DurationVar(&cfg.duration, "duration", 10*time.Second, "steady: how long to offer -rate")
	flag.DurationVar(&cfg.delay, "delay", time.Second, "timers: sleep")
	flag.BoolVar(&cfg.retry, "retry", false, "a retry policy on every activity (go-workflows: its default, 3 attempts; without: 1 attempt); asynq: its default MaxRetry (without: 0)")
	flag.IntVar(&cfg.concurrency, "concurrency", 0, "worker concurrency (0: see -info)")
	flag.IntVar(&cfg.pollers, "pollers", 0, "go-workflows: workflow and activity pollers (0: its default, 2)")
	flag.DurationVar(&cfg.poll, "poll", 2*time.Millisecond, "how often completion is polled")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.Parse()

	if info {
		out, _ := json.Marshal(map[string]any{"versions": versions(), "settings": map[string]string{
			result.SystemGoWorkflows: goWorkflowsSettings(0, 0, false) + " (per case: -pollers, -retry)",
			result.SystemAsynq:       asynqSettings(0, false) + " (per case: -concurrency, -retry)",
		}})
		fmt.Println(string(out))
		return
	}
	cfg.defaults()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		fail(cfg, fmt.Errorf("-redis: %w", err))
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		fail(cfg, err)
	}

	var res result.Result
	switch cfg.system {
	case result.SystemGoWorkflows:
		res, err = runGoWorkflows(ctx, rdb, cfg)
	case result.SystemAsynq:
		res, err = runAsynq(ctx, rdb, cfg)
	default:
		err = fmt.Errorf("unknown -system %q", cfg.system)
	}
	res.System, res.Workload, res.Case = cfg.system, cfg.workload, cfg.caseName
	if err != nil && res.Error == "" {
		res.Error = err.Error()
	}
	if res.Error == "" && res.Failed > 0 {
		res.Error = fmt.Sprintf("%d failed", res.Failed)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Error != "" {
		os.Exit(1)
	}
}

func (c *config) defaults() {
	switch c.workload {
	case result.WorkloadDrain:
		if c.n <= 0 {
			c.n = 2000
		}
		c.k = max(c.k, 1)
	case result.WorkloadSteady:
		if c.n <= 0 {
			c.n = 2000
		}
	case result.WorkloadSequential:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 200)
	case result.WorkloadLong:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 1000)
	case result.WorkloadFanout:
		c.n, c.k = max(c.n, 1), orDefault(c.k, 1000)
	case result.WorkloadTimers:
		c.n = orDefault(c.n, 1000)
	}
	if c.duration <= 0 {
		c.duration = 10 * time.Second
	}
	if c.delay <= 0 {
		c.delay = time.Second
	}
	if c.poll <= 0 {
		c.poll = 2 * time.Millisecond
	}
	if c.timeout <= 0 {
		c.timeout = 10 * time.Minute
	}
}

func orDefault(v, d int) int {
	if v <= 0 {
		return d
	}
	return v
}

func fail(cfg config, err error) {
	out, _ := json.Marshal(result.Result{System: cfg.system, Workload: cfg.workload, Case: cfg.caseName, Error: err.Error()})
	fmt.Println(string(out))
	os.Exit(1)
}

// versions reports the module versions of the peers built into this binary.
func versions() map[string]string {
	out := map[string]string{}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	for _, d := range bi.Deps {
		switch d.Path {
		case "github.com/cschleiden/go-workflows":
			out[result.SystemGoWorkflows] = d.Version
		case "github.com/hibiken/asynq":
			out[result.SystemAsynq] = d.Version
		case "github.com/redis/go-redis/v9":
			out["go-redis"] = d.Version
		}
	}
	return out
}

// params describes the workload for the result.
func (c config) params() string {
	switch c.workload {
	case result.WorkloadSteady:
		if c.rate > 0 {
			return fmt.Sprintf("rate=%g/s duration=%s", c.rate, c.duration)
		}
		return fmt.Sprintf("one at a time n=%d", c.n)
	case result.WorkloadTimers:
		return fmt.Sprintf("n=%d delay=%s", c.n, c.delay)
	case result.WorkloadFanout:
		if c.retry {
			return fmt.Sprintf("n=%d k=%d retry", c.n, c.k)
		}
	}
	return fmt.Sprintf("n=%d k=%d", c.n, c.k)
}

// begin starts the measurement window of a phase: the round trips of rt,
// less the bench's own polls.
func begin(ctx context.Context, rdb *redis.Client, rt *measure.RoundTrips, polls *atomic.Int64) *measure.Window {
	return measure.BeginWindow(ctx, rdb, polls.Load, rt)
}

// newProgress returns the progress bar of the workload on stderr, indented
// under the bench command's line.
func newProgress(cfg config) *progress.Bar {
	return progress.New(os.Stderr, "    "+cfg.system+" "+cfg.workload)
}

// waitFor polls count until it reaches target, reporting progress, or the
// timeout passes.
func waitFor(ctx context.Context, cfg config, p *progress.Bar, target int64, count func() (int64, error)) (int64, error) {
	return measure.WaitFor(ctx, cfg.poll, cfg.timeout, target, p.Update, count)
}

// steady runs the steady workload's schedule with start as the way to start
// one instance, waits until every started instance ended, and records the
// latencies; ended says what ended in the error when some did not
// ("workflows ended").
func steady(ctx context.Context, cfg config, r *result.Result, rdb *redis.Client, rt *measure.RoundTrips, polls *atomic.Int64, p *progress.Bar, tr *measure.Tracker, ended string, start func(id string) error) error {
	win := begin(ctx, rdb, rt, polls)
	t0 := time.Now()
	schedule := measure.Schedule{N: cfg.n, Rate: cfg.rate, Duration: cfg.duration}
	n, err := schedule.Run(ctx, tr, r, p.Update, start)
	r.Expected = n
	if err != nil {
		return err
	}
	tr.WaitAll(ctx, cfg.timeout)
	r.Completed = tr.Done()
	win.End(ctx, r, n, false)
	tr.AddTo(r, t0)
	if r.Completed < n {
		return fmt.Errorf("%d of %d %s", r.Completed, n, ended)
	}
	return nil
}
